"""The photo fixer for backfill (补传) and correction (勘误): source photos in, upload-ready ID photos out.

For each source: decode (EXIF orientation applied), require exactly one face,
refuse what cannot be fixed honestly (face too small to upscale, too little
picture around the face), frame a 295x413 portrait, encode a baseline JPEG
at the highest quality that fits the profile's size limit, name it
`<考生号>.jpg`, and run the photo checks on the result. Sources are only
ever read. OUT receives the photos, fix_report.csv / fix_report.xlsx with
Chinese headers, and upload.zip with the photos that pass the checks.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from verifier.core.decode import DecodedImage
from verifier.photos.framing import Framing, crop_box, frame_face
from verifier.common.files import open_output, ensure_private_dir, write_output
from verifier.common.parallel import map_chunks
from verifier.core.pipeline import read_image_file
from verifier.common.reasons import Reason, Severity, VerifierError, reason
from verifier.core.results import Face
from verifier.common.tabular import cell

if TYPE_CHECKING:
    from verifier.core.pipeline import Pipeline
    from verifier.photos.profiles import Profile
    from verifier.photos.roster import RosterLoad

REPORT_CSV = "fix_report.csv"
REPORT_XLSX = "fix_report.xlsx"
UPLOAD_ZIP = "upload.zip"
REPORT_HEADERS = ("源文件", "考生号", "结果", "原因", "输出文件", "输出大小", "JPEG质量", "检查结论")

FIXED, CHECK_FAILED, NOT_FIXED = "fixed", "check_failed", "not_fixed"
_STATUS_ZH = {FIXED: "已修复", CHECK_FAILED: "已修复但未通过检查", NOT_FIXED: "未修复"}
_CHECK_ZH = {"pass": "通过", "warn": "通过（有警告）", "fail": "不通过"}


@dataclass(frozen=True)
class FixOptions:
    """The fixer's own limits (the size limit and name pattern come from the profile)."""

    max_upscale: float = 2.0  # refuse when the portrait would enlarge the source more than this
    max_padding: float = 0.15  # refuse when more than this share of the framing lies outside the source
    min_quality: int = 30  # lowest JPEG quality tried before giving up on the size limit
    max_quality: int = 95  # Pillow's advice: above 95 only grows the file
    dpi: int = 300  # 295x413 at 300 dpi is the one-inch (25x35 mm) ID photo
    run_checks: bool = True


@dataclass
class FixResult:
    """The outcome for one source photo: one report row."""

    source: str  # path relative to SRC (or the name given), for display
    ksh: str | None
    status: str  # fixed | check_failed | not_fixed
    reasons: list[Reason] = field(default_factory=list)
    output: str | None = None  # file name in OUT when written
    output_bytes: int | None = None
    quality: int | None = None
    check_status: str | None = None  # pass | warn | fail from check_photo
    check: dict[str, Any] | None = None
    upscale: float | None = None
    data: bytes | None = field(default=None, repr=False)  # the encoded JPEG before it is written

    @property
    def written(self) -> bool:
        return self.output is not None

    @property
    def uploadable(self) -> bool:
        return self.status == FIXED

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ksh": self.ksh,
            "status": self.status,
            "reasons": [r.to_dict() for r in self.reasons],
            "output": self.output,
            "output_bytes": self.output_bytes,
            "quality": self.quality,
            "check_status": self.check_status,
            "upscale": None if self.upscale is None else round(self.upscale, 3),
        }

    def report_row(self) -> list[Any]:
        """The row under REPORT_HEADERS, in Chinese."""
        why = "; ".join(_describe(r) for r in self.reasons)
        check = _CHECK_ZH.get(self.check_status or "", "")
        return [self.source, self.ksh or "", _STATUS_ZH[self.status], why, self.output or "", self.output_bytes or "", self.quality or "", check]


@dataclass
class FixReport:
    """A whole fixer run: one result per source plus where the outputs went."""

    src: Path
    out: Path
    profile: str
    results: list[FixResult]
    csv_path: Path
    xlsx_path: Path
    zip_path: Path
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        c = {FIXED: 0, CHECK_FAILED: 0, NOT_FIXED: 0}
        for r in self.results:
            c[r.status] += 1
        return c

    @property
    def zipped(self) -> list[str]:
        return [r.output for r in self.results if r.uploadable and r.output]

    @property
    def all_fixed(self) -> bool:
        return all(r.uploadable for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": str(self.src),
            "out": str(self.out),
            "profile": self.profile,
            "counts": self.counts,
            "sources": len(self.results),
            "zipped": len(self.zipped),
            "report_csv": str(self.csv_path),
            "report_xlsx": str(self.xlsx_path),
            "upload_zip": str(self.zip_path),
            "seconds": round(self.seconds, 3),
        }


def _describe(r: Reason) -> str:
    """`CODE 中文说明（实测 x，限值 y）` for a report cell."""
    text = f"{r.code} {r.message_zh}"
    parts = []
    if r.measured is not None:
        parts.append(f"实测 {r.measured}")
    if r.limit is not None:
        parts.append(f"限值 {r.limit}")
    return text + (f"（{'，'.join(parts)}）" if parts else "")


def _output_size(profile: "Profile") -> tuple[int, int]:
    """The portrait size the profile recommends, else the one-inch 295x413."""
    size = profile.recommended_size
    return (int(size[0]), int(size[1])) if size else (295, 413)


def framing_for(profile: "Profile") -> Framing:
    """ID framing at the profile's output size."""
    w, h = _output_size(profile)
    return Framing(width=w, height=h)


def padding_share(face: Face, width: int, height: int, framing: Framing) -> float:
    """Share of the framing rectangle (before levelling) that lies outside the source image."""
    x, y, w, h = crop_box(face, framing)
    ix = max(0.0, min(width, x + w) - max(0.0, x))
    iy = max(0.0, min(height, y + h) - max(0.0, y))
    return 1.0 - (ix * iy) / (w * h)


def upscale_factor(face: Face, framing: Framing) -> float:
    """How much the source is enlarged to make the portrait (above 1 is upscaling)."""
    return framing.width * framing.face_width / float(face.box[2])


def encode_baseline(pixels_bgr: np.ndarray, quality: int, dpi: int = 300) -> bytes:
    """Baseline (non-progressive) JPEG with optimised Huffman tables and no metadata."""
    img = Image.fromarray(np.ascontiguousarray(pixels_bgr[:, :, ::-1]))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, optimize=True, progressive=False, dpi=(dpi, dpi))
    return buf.getvalue()


def encode_within(pixels_bgr: np.ndarray, max_bytes: int | None, options: FixOptions = FixOptions()) -> tuple[bytes | None, int]:
    """Binary search for the highest quality whose JPEG fits `max_bytes`; (None, lowest tried) if none fits."""
    lo, hi = options.min_quality, options.max_quality
    top = encode_baseline(pixels_bgr, hi, options.dpi)
    if max_bytes is None or len(top) <= max_bytes:
        return top, hi
    best: tuple[bytes, int] | None = None
    hi -= 1
    while lo <= hi:
        q = (lo + hi) // 2
        data = encode_baseline(pixels_bgr, q, options.dpi)
        if len(data) <= max_bytes:
            best = (data, q)
            lo = q + 1
        else:
            hi = q - 1
    return (best[0], best[1]) if best else (None, options.min_quality)


def _run_check(data: bytes, name: str, pipeline: "Pipeline", profile: "Profile", roster_ksh: set[str] | None) -> dict[str, Any]:
    """check_photo on the encoded output, as a plain dict."""
    from verifier.photos.checks import check_photo

    return check_photo(data, profile, pipeline=pipeline, roster_ksh=roster_ksh, file_name=name).to_dict()


def _check_reasons(check: dict[str, Any]) -> list[Reason]:
    """The reasons of a check result (failures and warnings), as Reason objects for the report."""
    return [
        Reason(r["code"], Severity(r.get("severity", "fail")), r.get("message_zh", ""), r.get("message_en", ""), r.get("measured"), r.get("limit"))
        for r in check.get("reasons", [])
    ]


def fix_photo(
    source: Path,
    pipeline: "Pipeline",
    profile: "Profile",
    ksh: str,
    options: FixOptions = FixOptions(),
    roster_ksh: set[str] | None = None,
    display: str | None = None,
) -> FixResult:
    """Make one upload-ready ID photo from a source (nothing is written; the JPEG is in `.data`)."""
    name = display or source.name

    def refuse(r: Reason, upscale: float | None = None) -> FixResult:
        return FixResult(name, ksh, NOT_FIXED, [r], upscale=upscale)

    try:
        raw = read_image_file(Path(source), pipeline.settings.max_file_bytes)
        decoded = pipeline.decode(raw)
    except VerifierError as exc:
        return refuse(exc.reason)
    pixels = decoded.pixels if isinstance(decoded, DecodedImage) else decoded
    faces = list(pipeline.detector.detect(pixels))
    if not faces:
        return refuse(reason("FACE_NOT_FOUND", measured=0, limit=1))
    if len(faces) > 1:
        return refuse(reason("FACE_MULTIPLE", measured=len(faces), limit=1))
    face = faces[0]
    framing = framing_for(profile)
    up = upscale_factor(face, framing)
    if up > options.max_upscale:
        return refuse(reason("FIX_FACE_TOO_SMALL", measured=round(up, 2), limit=options.max_upscale), up)
    h, w = pixels.shape[:2]
    pad = padding_share(face, w, h, framing)
    if pad > options.max_padding:
        return refuse(reason("FIX_CROP_OUTSIDE_IMAGE", measured=round(pad, 3), limit=options.max_padding), up)
    portrait = frame_face(pixels, face, framing)
    data, quality = encode_within(portrait, profile.max_bytes, options)
    if data is None:
        return refuse(reason("FIX_SIZE_LIMIT", measured=options.min_quality, limit=profile.max_bytes), up)
    out_name = f"{ksh}.jpg"
    result = FixResult(name, ksh, FIXED, [], None, len(data), quality, upscale=up, data=data)
    if options.run_checks:
        check = _run_check(data, out_name, pipeline, profile, roster_ksh)
        result.check = check
        result.check_status = str(check.get("status"))
        result.reasons = _check_reasons(check)
        if result.check_status == "fail":
            result.status = CHECK_FAILED
    return result


def _inside(a: Path, b: Path) -> bool:
    """True when folder `a` is `b` or lies under it (after resolving links)."""
    return a == b or b in a.parents


def check_folders(src: Path, out: Path) -> tuple[Path, Path]:
    """Resolve SRC and OUT and refuse overlapping folders (usage error)."""
    s, o = Path(src).resolve(), Path(out).resolve()
    if not s.is_dir():
        raise VerifierError("FILE_NOT_FOUND", detail=f"source folder {src}")
    if _inside(o, s) or _inside(s, o):
        raise VerifierError("FIX_OUT_INSIDE_SRC", detail=f"SRC={s} OUT={o}", measured=str(o), limit=str(s))
    if o.exists() and not o.is_dir():
        raise VerifierError("FIX_OUT_UNUSABLE", detail=f"not a folder: {o}")
    return s, o


def list_sources(src: Path) -> list[Path]:
    """Every regular file under SRC (recursive, hidden files and folders skipped), sorted."""
    found = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            if not f.startswith("."):
                found.append(Path(root) / f)
    return sorted(found, key=lambda p: p.relative_to(src).as_posix())


def _display(path: Path, src: Path) -> str:
    """A printable relative name (undecodable bytes escaped)."""
    rel = path.relative_to(src).as_posix()
    return rel.encode("utf-8", "backslashreplace").decode("utf-8")


def _student_no_map(roster: "RosterLoad") -> dict[str, str]:
    """学号 -> 考生号 from a roster; a 学号 listed twice maps to nothing (ambiguous)."""
    mapping: dict[str, str] = {}
    ambiguous: set[str] = set()
    for ksh, student in roster.students.items():
        no = (student.student_no or "").strip()
        if not no:
            continue
        if no in mapping and mapping[no] != ksh:
            ambiguous.add(no)
        mapping[no] = ksh
    return {k: v for k, v in mapping.items() if k not in ambiguous}


def resolve_ksh(stem: str, pattern: str | None, roster_ksh: set[str] | None, by_student_no: Mapping[str, str]) -> str | None:
    """The 考生号 for a source file stem: on the roster, via 学号, or by the profile's pattern."""
    stem = stem.strip()
    if roster_ksh is not None and stem in roster_ksh:
        return stem
    if stem in by_student_no:
        return by_student_no[stem]
    if not stem or "/" in stem or "\\" in stem:
        return None
    if pattern is None or re.fullmatch(pattern, stem):
        return stem
    return None


def _write_csv(path: Path, rows: Iterable[list[Any]]) -> None:
    """UTF-8 with BOM so Excel opens the Chinese headers correctly."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(REPORT_HEADERS)
    writer.writerows(["" if v is None else cell(v) for v in row] for row in rows)
    write_output(path, buf.getvalue().encode("utf-8-sig"))


def _write_xlsx(path: Path, rows: Iterable[list[Any]]) -> None:
    """One sheet, Chinese headers, frozen header row."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "修复结果"
    ws.append(list(REPORT_HEADERS))
    for row in rows:
        ws.append([cell(v) for v in row])
    ws.freeze_panes = "A2"
    for col, width in zip("ABCDEFGH", (28, 18, 18, 60, 22, 10, 10, 14)):
        ws.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    write_output(path, buf.getvalue())


def _write_zip(path: Path, out: Path, names: list[str]) -> None:
    """upload.zip with the given photos at its top level, written atomically with mode 0600."""
    with open_output(path, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in names:
            zf.write(out / name, arcname=name)


def _planned(src: Path, sources: list[Path], profile: "Profile", roster: "RosterLoad | None") -> Iterator[tuple[Path, str, str | None, FixResult | None]]:
    """(path, display name, 考生号, result when decided without opening the file) for every source, in order."""
    roster_ksh = set(roster.students) if roster is not None else None
    by_no = _student_no_map(roster) if roster is not None else {}
    pattern = profile.name_pattern
    keys = {p: resolve_ksh(p.stem, pattern, roster_ksh, by_no) for p in sources}
    claims: dict[str, list[Path]] = {}
    for p, k in keys.items():
        if k is not None:
            claims.setdefault(k, []).append(p)
    for p in sources:
        name, ksh = _display(p, src), keys[p]
        if ksh is None:
            yield p, name, None, FixResult(name, None, NOT_FIXED, [reason("FIX_KSH_UNKNOWN", measured=name, limit=pattern)])
        elif len(claims[ksh]) > 1:
            others = [_display(q, src) for q in claims[ksh] if q != p]
            yield p, name, ksh, FixResult(name, ksh, NOT_FIXED, [reason("FIX_KSH_DUPLICATE", measured=others, limit=1)])
        else:
            yield p, name, ksh, None


def _fixed_in_order(
    plan: Iterable[tuple[Path, str, str | None, FixResult | None]],
    pipeline: "Pipeline",
    profile: "Profile",
    options: FixOptions,
    roster_ksh: set[str] | None,
    workers: int,
) -> Iterator[FixResult]:
    """Results in source order over `workers` threads sharing the pipeline; rows decided without the file pass through."""

    def fix(chunk: list[tuple[Path, str, str | None, FixResult | None]]) -> list[FixResult]:
        return [decided or fix_photo(path, pipeline, profile, str(ksh), options, roster_ksh, display=name) for path, name, ksh, decided in chunk]

    for _, result in map_chunks(plan, fix, workers, chunk_size=2):
        yield result


def fix_folder(
    src: Path,
    out: Path,
    pipeline: "Pipeline",
    profile: "Profile",
    roster: "RosterLoad | None" = None,
    options: FixOptions = FixOptions(),
    progress: Callable[[FixResult], None] | None = None,
    workers: int = 1,
) -> FixReport:
    """Fix every photo under SRC into OUT; one result per source file, reports and upload.zip in OUT.

    workers > 1 fixes photos on that many threads sharing the pipeline; OUT is written here only.
    """
    t0 = time.perf_counter()
    s, o = check_folders(src, out)
    sources = list_sources(s)
    try:
        ensure_private_dir(o)
    except OSError as exc:
        raise VerifierError("FIX_OUT_UNUSABLE", detail=f"{o}: {exc.strerror or exc}") from None
    roster_ksh = set(roster.students) if roster is not None else None
    workers = max(1, min(workers, len(sources)))
    results: list[FixResult] = []
    for r in _fixed_in_order(_planned(s, sources, profile, roster), pipeline, profile, options, roster_ksh, workers):
        if r.data is not None:
            r.output = f"{r.ksh}.jpg"
            write_output(o / r.output, r.data)
            r.data = None
        results.append(r)
        if progress is not None:
            progress(r)
    rows = [r.report_row() for r in results]
    _write_csv(o / REPORT_CSV, rows)
    _write_xlsx(o / REPORT_XLSX, rows)
    _write_zip(o / UPLOAD_ZIP, o, [r.output for r in results if r.uploadable and r.output])
    return FixReport(s, o, profile.name, results, o / REPORT_CSV, o / REPORT_XLSX, o / UPLOAD_ZIP, time.perf_counter() - t0)
