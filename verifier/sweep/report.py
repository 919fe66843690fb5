"""Reports of one duplicate sweep: report.csv, report.xlsx (Chinese headers) and a self-contained report.html.

One row per pair found by the sweep (two photos of two students scoring at or above the
duplicate threshold), grouped as the cases were; the HTML page shows each pair's photos side
by side (thumbnails embedded) so a reviewer can judge from the one file.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select

from verifier.common.choices import PHOTO_KIND_ZH
from verifier.batch.report import MAX_HTML_THUMBS, THUMB_WIDTH, thumbnail
from verifier.common.files import write_output
from verifier.common.reasons import VerifierError
from verifier.store.db import Database
from verifier.store.models import Photo, Student
from verifier.store.photostore import PhotoStore
from verifier.common.tabular import TableWriter

COLUMNS = [
    "group", "case_id", "status", "score",
    "ksh_a", "name_a", "student_no_a", "college_a", "kind_a",
    "ksh_b", "name_b", "student_no_b", "college_b", "kind_b",
    "candidate_id", "photo_a_id", "photo_b_id",
]
HEADERS_ZH = [
    "组号", "案件号", "状态", "相似度",
    "考生号A", "姓名A", "学号A", "学院A", "照片类型A",
    "考生号B", "姓名B", "学号B", "学院B", "照片类型B",
    "候选编号", "照片A编号", "照片B编号",
]
STATUS_ZH = {"new": "新发现", "again": "再次发现", "adjudicated": "已裁定（不再提交）"}


def _load(db: Database, photo_ids: set[int]) -> tuple[dict[int, Photo], dict[int, Student]]:
    """The photos and their students for the report rows; one read, retried while the database is away."""
    ordered = sorted(photo_ids)

    def read(session) -> tuple[dict[int, Photo], dict[int, Student]]:
        photos: dict[int, Photo] = {}
        students: dict[int, Student] = {}
        for i in range(0, len(ordered), 900):
            for p in session.scalars(select(Photo).where(Photo.id.in_(ordered[i : i + 900]))):
                photos[p.id] = p
        sids = sorted({p.student_id for p in photos.values()})
        for i in range(0, len(sids), 900):
            for s in session.scalars(select(Student).where(Student.id.in_(sids[i : i + 900]))):
                students[s.id] = s
        return photos, students

    return db.read(read)


def write_sweep_reports(db: Database, store: PhotoStore, rows: list, out_dir: Path, label: str = "") -> list[Path]:
    """Write the three reports for the pairs of one sweep (rows: verifier.sweep.runner.PairRow) and return their paths."""
    photos, students = _load(db, {x for r in rows for x in (r.photo_a, r.photo_b)})
    ordered = sorted(rows, key=lambda r: (r.group is None, r.group or 0, -r.score))
    table = TableWriter(out_dir, "report", COLUMNS, HEADERS_ZH, "重复人脸")
    try:
        for r in ordered:
            sides = []
            for pid in (r.photo_a, r.photo_b):
                p = photos[pid]
                s = students[p.student_id]
                sides.append((s.ksh, s.name, s.student_no, s.college, p.kind))
            (ka, na, noa, ca, kia), (kb, nb, nob, cb, kib) = sides
            common = [ka, na, noa, ca]
            values = [r.group or "", r.case_id or "", r.status, round(r.score, 4), *common, kia, kb, nb, nob, cb, kib, r.candidate_id, r.photo_a, r.photo_b]
            display = [r.group or "", r.case_id or "", STATUS_ZH[r.status], round(r.score, 4), *common, PHOTO_KIND_ZH[kia], kb, nb, nob, cb, PHOTO_KIND_ZH[kib], r.candidate_id, r.photo_a, r.photo_b]
            table.add(values, display)
    except BaseException:
        table.discard()
        raise
    csv_path, xlsx_path = table.close()
    page = _html(ordered, photos, students, store, label)
    write_output(Path(out_dir) / "report.html", page.encode("utf-8"))
    return [csv_path, xlsx_path, Path(out_dir) / "report.html"]


def _picture(store: PhotoStore, photo: Photo, allow: bool) -> str:
    uri = None
    if allow and photo.file_path:
        try:
            uri = thumbnail(store.read(photo.sha256))
        except (OSError, VerifierError):
            uri = None
    return f'<img src="{uri}" alt="">' if uri else '<div class="none">无照片<br>no photo</div>'


def _html(rows: list, photos: dict[int, Photo], students: dict[int, Student], store: PhotoStore, label: str) -> str:
    groups: dict[object, list] = defaultdict(list)
    for r in rows:
        groups[r.group if r.group is not None else f"a{r.candidate_id}"].append(r)
    sections, shown = [], 0
    for key, members in groups.items():
        head = members[0]
        if head.status == "adjudicated":
            title = "已裁定，不再提交 / adjudicated, not raised again"
        else:
            n_students = len({photos[x].student_id for r in members for x in (r.photo_a, r.photo_b)})
            title = f"第 {key} 组 · 案件 {head.case_id} · {n_students} 名学生 / group {key} · case {head.case_id} · {n_students} students"
        cards = []
        for r in members:
            figs = []
            for pid in (r.photo_a, r.photo_b):
                p = photos[pid]
                s = students[p.student_id]
                figs.append(
                    f"<figure>{_picture(store, p, shown < MAX_HTML_THUMBS)}<figcaption><b>{html.escape(s.name)}</b><br>"
                    f"{html.escape(s.ksh)} · {html.escape(s.student_no)}<br>{html.escape(s.college)}<br>{PHOTO_KIND_ZH[p.kind]} {p.kind}</figcaption></figure>"
                )
                shown += 1
            cards.append(
                f'<div class="pair {r.status}"><div class="photos">{"".join(figs)}</div>'
                f'<p>相似度 score {r.score:.3f} · {STATUS_ZH[r.status]} ({r.status}) · 候选 candidate {r.candidate_id}</p></div>'
            )
        sections.append(f"<section><h2>{html.escape(title)}</h2>{''.join(cards)}</section>")
    body = "".join(sections) or "<p>本次未发现重复人脸 / no duplicate faces found in this sweep</p>"
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>重复人脸筛查 / duplicate-face sweep</title>
<style>
body{{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:1.5em;background:#f6f7f9;color:#222}}
section{{background:#fff;margin:1em 0;padding:.8em;border-radius:6px;border-left:6px solid #c0392b}}
.pair{{display:inline-block;margin:.4em;padding:.4em;border:1px solid #ddd;border-radius:4px;vertical-align:top}}
.pair.adjudicated{{opacity:.6}} .photos{{display:flex;gap:.5em}} figure{{margin:0;text-align:center;font-size:.8em}}
img{{width:{THUMB_WIDTH}px;border:1px solid #ccc}}
.none{{width:{THUMB_WIDTH}px;height:{THUMB_WIDTH * 1.4:.0f}px;display:flex;align-items:center;justify-content:center;background:#eee;color:#777}}
h2{{font-size:1.05em;margin:.2em 0}}
</style></head><body>
<h1>重复人脸筛查：疑似同一人脸出现在不同考生号下 <small>Duplicate-face sweep: one face under different students</small></h1>
<p>{html.escape(label)}</p><p>{len(rows)} 对 / pairs</p>
{body}
</body></html>
"""
