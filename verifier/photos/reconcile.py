"""Reconcile a roster with a set of photo files: who has no photo, whose photo has no student, duplicates.

Photos are read once, in a stream: each file leaves only a small fingerprint
(SHA-256 of the bytes and a 64-bit perceptual hash of the decoded pixels).
The same picture under two 考生号 is a sign of impersonation or double
enrolment; identical bytes are certain, near-identical pixels (re-encoded,
resized) are found by pHash: a 64-bit hash finds candidates through a
multi-index search (thousands of photos cost far less than comparing every
pair), and a finer 256-bit hash confirms them, because ID photos share so much
layout that 64 bits alone match unrelated pictures in a large population.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import imagehash
import numpy as np
from PIL import Image

from verifier.common.choices import FINE_MAX_DISTANCE
from verifier.core.decode import decode_image
from verifier.common.files import ensure_private_dir, write_output
from verifier.common.reasons import Reason, VerifierError, reason
from verifier.photos.roster import RosterLoad, Student
from verifier.common.tabular import cell, printable

# Calibrated on the dev face set, each photo re-encoded at another size and quality:
# 64-bit pHash: same picture 0-2, different people >= 18 (but unrelated synthetic pictures reach 6);
# 256-bit pHash: same picture 0-6, different people >= 92, unrelated pictures with 64-bit distance <= 8: >= 74.
PHASH_MAX_DISTANCE = 6  # candidate radius, of 64 bits
# FINE_MAX_DISTANCE (24, the confirmation radius, of 256 bits) is in verifier.common.choices: it is the CLI's --max-distance default.
MAX_PHOTO_BYTES = 64 * 1024 * 1024
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif")

CATEGORIES: dict[str, tuple[str, str]] = {
    # key: (中文类别 / sheet name, reason code)
    "missing_photo": ("缺少照片", "RECON_NO_PHOTO"),
    "not_on_roster": ("名单外照片", "RECON_NOT_ON_ROSTER"),
    "multiple_files": ("一人多个文件", "RECON_MULTIPLE_FILES"),
    "same_bytes": ("不同考生号相同文件", "RECON_SAME_BYTES"),
    "same_picture": ("不同考生号疑似同一照片", "RECON_SAME_PICTURE"),
    "unreadable": ("照片无法读取", ""),  # each row carries the file or decode code
    "roster_row": ("名单问题行", ""),
}
HEADERS = ("类别", "考生号", "姓名", "学院", "学习中心", "文件", "说明", "原因代码", "组号")


def stem(path: Path) -> str | None:
    """Default 考生号 of a photo: its file name without extension (full-width digits made half-width)."""
    s = unicodedata.normalize("NFKC", path.stem).strip()
    return s or None


def is_photo_name(path: Path) -> bool:
    """Whether a directory entry looks like a photo by name (content is judged later, by decoding)."""
    return path.suffix.lower() in PHOTO_SUFFIXES and not path.name.startswith(".")


def iter_photo_files(roots: Iterable[Path]) -> Iterator[Path]:
    """Files with photo-like names under each root (recursive, sorted), or the root itself if it is a file."""
    for root in roots:
        if not root.is_dir():
            yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                p = Path(dirpath) / name
                if is_photo_name(p):
                    yield p
            for d in dirnames:
                p = Path(dirpath) / d
                if is_photo_name(p):
                    yield p  # a folder named like a photo is reported, not walked silently


@dataclass(frozen=True)
class PhotoFile:
    """What reconciliation keeps of one photo file: where, whose, and its two fingerprints."""

    path: Path
    ksh: str | None  # None when the file name is not a valid 考生号
    size: int | None = None
    sha256: str | None = None
    phash: int | None = None  # 64-bit pHash, for finding candidates
    phash_fine: int | None = None  # 256-bit pHash, for confirming them
    problem: Reason | None = None  # why it could not be read or decoded


@dataclass(frozen=True)
class SameGroup:
    """Files under two or more 考生号 that hold the same picture."""

    kind: str  # "same_bytes" | "same_picture"
    files: tuple[PhotoFile, ...]
    max_distance: int  # largest 256-bit pHash distance along the links that joined the group (0 for identical bytes)

    @property
    def kshs(self) -> tuple[str, ...]:
        return tuple(sorted({f.ksh for f in self.files if f.ksh}))


@dataclass(frozen=True)
class ReportRow:
    """One line of the reconciliation report."""

    category: str
    code: str
    ksh: str = ""
    name: str = ""
    college: str = ""
    centre: str = ""
    file: str = ""
    note: str = ""
    group: int | None = None

    def cells(self) -> list[Any]:
        return [CATEGORIES[self.category][0], self.ksh, self.name, self.college, self.centre, self.file, self.note, self.code, self.group]

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "category_zh": CATEGORIES[self.category][0],
            "code": self.code,
            "ksh": self.ksh,
            "name": self.name,
            "college": self.college,
            "centre": self.centre,
            "file": self.file,
            "note": self.note,
            "group": self.group,
        }


@dataclass
class Reconciliation:
    """The result: each list is one category of the report."""

    roster: RosterLoad
    photos_seen: int
    students_with_photo: int
    missing_photo: list[Student]
    not_on_roster: list[PhotoFile]
    multiple_files: dict[str, list[PhotoFile]]
    same_picture: list[SameGroup]
    unreadable: list[PhotoFile]
    phash_max_distance: int = PHASH_MAX_DISTANCE
    fine_max_distance: int = FINE_MAX_DISTANCE
    photos: list[PhotoFile] = field(default_factory=list, repr=False)

    def counts(self) -> dict[str, int]:
        """Counts per category (no personal data): for the CLI, logs and the summary sheet."""
        return {
            "roster_students": len(self.roster.students),
            "roster_rows_rejected": len(self.roster.rejected),
            "roster_rows_warned": len(self.roster.warnings),
            "photos": self.photos_seen,
            "students_with_photo": self.students_with_photo,
            "missing_photo": len(self.missing_photo),
            "not_on_roster": len(self.not_on_roster),
            "multiple_files": len(self.multiple_files),
            "same_bytes": sum(g.kind == "same_bytes" for g in self.same_picture),
            "same_picture": sum(g.kind == "same_picture" for g in self.same_picture),
            "unreadable": len(self.unreadable),
        }

    def rows(self) -> list[ReportRow]:
        """Every finding as a report row, in category order."""
        st = self.roster.students
        out: list[ReportRow] = []

        def row(category: str, ksh: str | None, file: str = "", note: str = "", group: int | None = None, code: str = "") -> ReportRow:
            s = st.get(ksh or "")
            return ReportRow(
                category,
                code or CATEGORIES[category][1],
                ksh or "",
                s.name if s else "",
                s.college if s else "",
                s.centre if s else "",
                file,
                note,
                group,
            )

        for s in sorted(self.missing_photo, key=lambda s: (s.college, s.centre, s.ksh)):
            out.append(row("missing_photo", s.ksh, note="名单中有此考生，但没有照片文件 / on the roster, no photo file"))
        for p in sorted(self.not_on_roster, key=lambda p: (p.ksh or "", str(p.path))):
            if p.ksh is None:
                note = "文件名不是有效的考生号 / file name is not a valid 考生号"
            else:
                note = "考生号不在名单中 / 考生号 not on the roster"
            out.append(row("not_on_roster", p.ksh, str(p.path), note))
        for ksh in sorted(self.multiple_files):
            files = self.multiple_files[ksh]
            for p in files:
                note = f"该考生共 {len(files)} 个文件 / {len(files)} files for this student"
                out.append(row("multiple_files", ksh, str(p.path), note))
        for gi, g in enumerate(self.same_picture, start=1):
            for p in g.files:
                others = ", ".join(k for k in g.kshs if k != p.ksh)
                if g.kind == "same_bytes":
                    note = f"与考生号 {others} 的文件字节完全相同 / byte-identical to the file of {others}"
                else:
                    note = (
                        f"与考生号 {others} 的照片疑似同一张（感知哈希差异 {g.max_distance}/256 位，阈值 {self.fine_max_distance}）"
                        f" / apparently the same picture as {others} (pHash differs in {g.max_distance}/256 bits, limit {self.fine_max_distance})"
                    )
                out.append(row(g.kind, p.ksh, str(p.path), note, gi))
        for p in sorted(self.unreadable, key=lambda p: str(p.path)):
            r = p.problem
            note = f"{r.message_zh} / {r.message_en}" if r else ""
            out.append(row("unreadable", p.ksh, str(p.path), note, code=r.code if r else ""))
        roster_name = self.roster.path.name if self.roster.path else ""
        for e in sorted(self.roster.rejected + self.roster.warnings, key=lambda e: e.line):
            d = e.to_dict()
            note = f"第 {e.line} 行：{d['message_zh']} / line {e.line}: {d['message_en']}" + (f"（{e.detail}）" if e.detail else "")
            out.append(row("roster_row", e.ksh, f"{roster_name}:{e.line}", note, code=e.code))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Counts, roster facts and every finding, for --json and the API."""
        return {
            "counts": self.counts(),
            "roster": self.roster.summary(),
            "phash_max_distance": self.phash_max_distance,
            "fine_max_distance": self.fine_max_distance,
            "findings": [r.to_dict() for r in self.rows()],
        }


def _bits_to_int(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(bits.flatten()).tobytes(), "big")


def phashes(pixels: np.ndarray) -> tuple[int, int]:
    """64-bit and 256-bit DCT perceptual hashes (imagehash.phash) of a BGR image, as ints."""
    gray = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    small = Image.fromarray(cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA), mode="L")  # cheap uniform pre-shrink
    return _bits_to_int(imagehash.phash(small, hash_size=8).hash), _bits_to_int(imagehash.phash(small, hash_size=16).hash)


def fingerprint(path: Path, ksh: str | None) -> PhotoFile:
    """Read one file and fingerprint it; a bad file gets its reason code instead of raising."""
    try:
        if path.is_dir():
            return PhotoFile(path, ksh, problem=reason("FILE_IS_DIRECTORY"))
        size = path.stat().st_size
        if size > MAX_PHOTO_BYTES:
            return PhotoFile(path, ksh, size, problem=reason("FILE_TOO_LARGE_TO_READ", size, MAX_PHOTO_BYTES))
        data = path.read_bytes()
    except FileNotFoundError:
        return PhotoFile(path, ksh, problem=reason("FILE_NOT_FOUND"))
    except OSError:
        return PhotoFile(path, ksh, problem=reason("FILE_UNREADABLE"))
    sha = hashlib.sha256(data).hexdigest()
    try:
        image = decode_image(data)
    except VerifierError as exc:
        return PhotoFile(path, ksh, len(data), sha, problem=exc.reason)
    coarse, fine = phashes(image.pixels)
    return PhotoFile(path, ksh, len(data), sha, coarse, fine)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per uint64."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)
    return table[x.view(np.uint8).reshape(-1, 8)].sum(axis=1)


def near_pairs(hashes: list[int], max_distance: int) -> Iterator[tuple[int, int, int]]:
    """Yield (i, j, distance) for i < j with Hamming distance <= max_distance, by multi-index hashing.

    Split the 64 bits into max_distance + 1 bands: two hashes within the distance agree exactly on
    at least one band (pigeonhole), so only hashes sharing a band value are compared.
    """
    n = len(hashes)
    if n < 2:
        return
    arr = np.array(hashes, dtype=np.uint64)
    bands = max(1, min(max_distance + 1, 64))
    widths = [64 // bands + (1 if b < 64 % bands else 0) for b in range(bands)]
    seen: set[tuple[int, int]] = set()
    shift = 0
    for width in widths:
        keys = (arr >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        shift += width
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
        for members in np.split(order, bounds):
            if len(members) < 2:
                continue
            members = np.sort(members)
            for k in range(len(members) - 1):
                i = int(members[k])
                rest = members[k + 1 :]
                dist = _popcount(arr[rest] ^ arr[i])
                for j, d in zip(rest[dist <= max_distance].tolist(), dist[dist <= max_distance].tolist()):
                    if (i, j) not in seen:
                        seen.add((i, j))
                        yield i, j, int(d)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _same_picture_groups(photos: list[PhotoFile], max_distance: int, fine_max_distance: int) -> list[SameGroup]:
    """Join files of different 考生号 by identical bytes or near pHash; keep groups spanning two or more 考生号."""
    idx = [i for i, p in enumerate(photos) if p.ksh is not None and p.sha256 is not None and p.size]
    uf = _UnionFind(len(photos))
    links: list[tuple[int, int]] = []
    by_sha: dict[str, list[int]] = defaultdict(list)
    for i in idx:
        by_sha[photos[i].sha256 or ""].append(i)
    for members in by_sha.values():
        for j in members[1:]:
            uf.union(members[0], j)
    hashed = [i for i in idx if photos[i].phash is not None]
    for a, b, _ in near_pairs([photos[i].phash or 0 for i in hashed], max_distance):
        i, j = hashed[a], hashed[b]
        if photos[i].ksh == photos[j].ksh or photos[i].sha256 == photos[j].sha256:
            continue
        d = ((photos[i].phash_fine or 0) ^ (photos[j].phash_fine or 0)).bit_count()
        if d > fine_max_distance:
            continue
        uf.union(i, j)
        links.append((i, d))
    max_link: dict[int, int] = defaultdict(int)
    for i, d in links:
        root = uf.find(i)
        max_link[root] = max(max_link[root], d)
    components: dict[int, list[int]] = defaultdict(list)
    for i in idx:
        components[uf.find(i)].append(i)
    groups: list[SameGroup] = []
    for root, members in components.items():
        if len({photos[i].ksh for i in members}) < 2:
            continue
        files = tuple(sorted((photos[i] for i in members), key=lambda p: (p.ksh or "", str(p.path))))
        kind = "same_bytes" if len({p.sha256 for p in files}) == 1 else "same_picture"
        groups.append(SameGroup(kind, files, max_link.get(root, 0)))
    groups.sort(key=lambda g: (g.kind != "same_bytes", g.kshs))
    return groups


def _fingerprints(
    photo_paths: Iterable[Path], ksh_for: Callable[[Path], str | None], workers: int
) -> Iterator[PhotoFile]:
    """Fingerprint a stream of paths on a few threads with a bounded window (decoding releases the GIL)."""
    if workers <= 1:
        for p in photo_paths:
            yield fingerprint(p, ksh_for(p))
        return
    window = workers * 4
    with ThreadPoolExecutor(workers) as pool:
        pending: list[Any] = []
        for p in photo_paths:
            pending.append(pool.submit(fingerprint, p, ksh_for(p)))
            if len(pending) >= window:
                yield pending.pop(0).result()
        for f in pending:
            yield f.result()


def reconcile(
    roster: RosterLoad,
    photo_paths: Iterable[Path],
    ksh_of: Callable[[Path], str | None] = stem,
    *,
    phash_max_distance: int = PHASH_MAX_DISTANCE,
    fine_max_distance: int = FINE_MAX_DISTANCE,
    workers: int | None = None,
    progress: Callable[[], None] | None = None,
) -> Reconciliation:
    """Compare a roster with photo files and list every mismatch and duplicate; never raises on a bad photo."""
    pattern = re.compile(roster.ksh_pattern)

    def ksh_for(path: Path) -> str | None:
        k = ksh_of(path)
        if k is None or (k not in roster.students and not pattern.search(k)):
            return None
        return k

    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    photos: list[PhotoFile] = []
    by_ksh: dict[str, list[PhotoFile]] = defaultdict(list)
    for photo in _fingerprints(photo_paths, ksh_for, workers):
        photos.append(photo)
        if photo.ksh is not None:
            by_ksh[photo.ksh].append(photo)
        if progress:
            progress()
    return Reconciliation(
        roster=roster,
        photos_seen=len(photos),
        students_with_photo=sum(1 for k in roster.students if k in by_ksh),
        missing_photo=[s for k, s in roster.students.items() if k not in by_ksh],
        not_on_roster=[p for p in photos if p.ksh is None or p.ksh not in roster.students],
        multiple_files={k: sorted(v, key=lambda p: str(p.path)) for k, v in by_ksh.items() if len(v) > 1},
        same_picture=_same_picture_groups(photos, phash_max_distance, fine_max_distance),
        unreadable=[p for p in photos if p.problem is not None],
        phash_max_distance=phash_max_distance,
        fine_max_distance=fine_max_distance,
        photos=photos,
    )


def write_reconciliation(rec: Reconciliation, out_dir: Path) -> dict[str, Path]:
    """Write reconciliation.csv (UTF-8 with BOM, for Excel) and reconciliation.xlsx (summary + one sheet per category)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    ensure_private_dir(out_dir)
    rows = rec.rows()

    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(HEADERS)
    for r in rows:
        writer.writerow(["" if c is None else cell(c) for c in r.cells()])
    csv_path = out_dir / "reconciliation.csv"
    write_output(csv_path, buf.getvalue().encode("utf-8-sig"))

    wb = Workbook(write_only=True)
    bold = Font(bold=True)

    def text_cell(ws: Any, value: Any, header: bool = False) -> WriteOnlyCell:
        out = WriteOnlyCell(ws, value=printable(value))
        if isinstance(value, str):
            out.data_type = "s"  # never a formula, even if the text starts with "="
        if header:
            out.font = bold
        return out

    summary = wb.create_sheet("汇总")
    summary.append([text_cell(summary, "项目", True), text_cell(summary, "数量", True)])
    labels = {
        "roster_students": "名单人数",
        "roster_rows_rejected": "名单错误行（已跳过）",
        "roster_rows_warned": "名单警告行（已载入）",
        "photos": "照片文件数",
        "students_with_photo": "有照片的考生数",
        "missing_photo": CATEGORIES["missing_photo"][0],
        "not_on_roster": CATEGORIES["not_on_roster"][0],
        "multiple_files": CATEGORIES["multiple_files"][0] + "（考生数）",
        "same_bytes": CATEGORIES["same_bytes"][0] + "（组数）",
        "same_picture": CATEGORIES["same_picture"][0] + "（组数）",
        "unreadable": CATEGORIES["unreadable"][0],
    }
    for key, n in rec.counts().items():
        summary.append([text_cell(summary, labels.get(key, key)), n])
    by_category: dict[str, list[ReportRow]] = defaultdict(list)
    for r in rows:
        by_category[r.category].append(r)
    for key, (title, _code) in CATEGORIES.items():
        ws = wb.create_sheet(title[:31])
        ws.append([text_cell(ws, h, True) for h in HEADERS])
        for r in by_category.get(key, []):
            ws.append([text_cell(ws, c) if c is not None else None for c in r.cells()])
    xbuf = io.BytesIO()
    wb.save(xbuf)
    xlsx_path = out_dir / "reconciliation.xlsx"
    write_output(xlsx_path, xbuf.getvalue())
    return {"csv": csv_path, "xlsx": xlsx_path}
