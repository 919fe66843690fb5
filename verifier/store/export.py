"""Exports the offices pass around: cases, comparisons, students as UTF-8-BOM CSV or XLSX, with Chinese headers.

Both formats carry the same Chinese header row (the BOM lets Excel open the CSV as UTF-8). Cells that
start with = + - @ are prefixed with an apostrophe so a spreadsheet never runs them as formulas.
The 身份证号 appears only in its masked form.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased

from verifier.common.choices import EXPORT_FORMATS, EXPORT_KINDS, PHOTO_KIND_ZH
from verifier.common.files import write_output
from verifier.common.tabular import cell as safe_cell
from verifier.store.cases import notes_text
from verifier.store.models import REGISTRATION_ZH, Comparison, Photo, ReviewCase, Student

KINDS = EXPORT_KINDS
FORMATS = EXPORT_FORMATS

_STATUS_ZH = {"enrolled": "在籍", "graduated": "已毕业", "withdrawn": "离校"}
CASE_TYPE_ZH = {
    "comparison_failed": "比对未通过",
    "comparison_review": "比对待复核",
    "duplicate_face": "疑似重复人脸",
    "photo_correction": "照片勘误",
    "identity_check": "身份复核",
    "intake_mismatch": "入学身份核验未通过",
}
STATE_ZH = {"open": "待处理", "in_review": "复核中", "resolved": "已结案"}
OUTCOME_ZH = {"same_person": "本人", "impersonation": "冒名顶替", "photo_replaced": "已更换照片", "dismissed": "不成立"}
_DECISION_ZH = {"match": "通过", "review": "待复核", "mismatch": "不一致", "unusable": "无法比对"}
_CHECK_ZH = {"unchecked": "未检查", "pass": "合格", "warn": "合格（有提示）", "fail": "不合格"}


@dataclass(frozen=True)
class Table:
    """An export: Chinese headers and a stream of rows."""

    headers: list[str]
    rows: Iterator[list[Any]]


def _when(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    return value.isoformat()


def _students(session: Session, state: str | None, college: str | None) -> Table:
    adm, grad = aliased(Photo), aliased(Photo)
    q: Select[Any] = (
        select(Student, adm.check_status, grad.check_status)
        .outerjoin(adm, (adm.student_id == Student.id) & (adm.kind == "admission") & adm.is_current.is_(True))
        .outerjoin(grad, (grad.student_id == Student.id) & (grad.kind == "graduation") & grad.is_current.is_(True))
        .order_by(Student.college, Student.ksh)
    )
    if state:
        q = q.where(Student.status == state)
    if college:
        q = q.where(Student.college == college)
    headers = ["考生号", "学号", "姓名", "身份证号（脱敏）", "学院", "学习中心", "入学批次", "状态", "毕业日期", "录取照片", "毕业照片", "学位注册"]

    def rows() -> Iterator[list[Any]]:
        for st, a, g in session.execute(q).yield_per(1000):
            yield [
                st.ksh,
                st.student_no,
                st.name,
                st.id_masked,
                st.college,
                st.centre,
                st.intake,
                _STATUS_ZH.get(st.status, st.status),
                _when(st.graduated_on),
                _CHECK_ZH.get(a, a) if a else "无",
                _CHECK_ZH.get(g, g) if g else "无",
                REGISTRATION_ZH.get(st.registration, st.registration),
            ]

    return Table(headers, rows())


def _comparisons(session: Session, state: str | None, college: str | None) -> Table:
    q: Select[Any] = (
        select(Comparison, Student, Photo.kind)
        .join(Student, Student.id == Comparison.student_id)
        .join(Photo, Photo.id == Comparison.graduation_photo_id)
        .order_by(Student.college, Student.ksh, Comparison.id)
    )
    if state:
        q = q.where(Comparison.decision == state)
    if college:
        q = q.where(Student.college == college)
    # The probe's kind goes last so the existing columns keep their positions.
    headers = ["考生号", "学号", "姓名", "学院", "学习中心", "录取照片编号", "比对照片编号", "模型包", "相似度", "结论", "原因代码", "运行编号", "比对时间", "比对照片类型"]

    def rows() -> Iterator[list[Any]]:
        for c, st, probe_kind in session.execute(q).yield_per(1000):
            yield [
                st.ksh,
                st.student_no,
                st.name,
                st.college,
                st.centre,
                c.admission_photo_id,
                c.graduation_photo_id,
                c.pack_id,
                None if c.score is None else round(c.score, 4),
                _DECISION_ZH.get(c.decision, c.decision),
                ";".join(c.reasons or []),
                c.run_id or "",
                _when(c.created_at),
                PHOTO_KIND_ZH.get(probe_kind, probe_kind),
            ]

    return Table(headers, rows())


def _cases(session: Session, state: str | None, college: str | None) -> Table:
    q: Select[Any] = select(ReviewCase, Student).outerjoin(Student, Student.id == ReviewCase.student_id).order_by(ReviewCase.id)
    if state:
        q = q.where(ReviewCase.state == state)
    if college:
        q = q.where(Student.college == college)
    headers = ["案件编号", "类型", "状态", "结论", "考生号", "姓名", "学院", "学习中心", "复核人", "备注", "立案时间", "开始复核时间", "结案时间", "结案人", "学位注册"]

    def rows() -> Iterator[list[Any]]:
        for case, st in session.execute(q).yield_per(1000):
            yield [
                case.id,
                CASE_TYPE_ZH.get(case.case_type, case.case_type),
                STATE_ZH.get(case.state, case.state),
                OUTCOME_ZH.get(case.outcome, case.outcome) if case.outcome else "",
                st.ksh if st else "",
                st.name if st else "",
                st.college if st else "",
                st.centre if st else "",
                case.assignee or "",
                notes_text(case),
                _when(case.created_at),
                _when(case.review_started_at),
                _when(case.resolved_at),
                case.resolved_by or "",
                REGISTRATION_ZH.get(st.registration, st.registration) if st else "",
            ]

    return Table(headers, rows())


def table(session: Session, kind: str, state: str | None = None, college: str | None = None) -> Table:
    """The rows of one export kind (cases: state open|in_review|resolved; comparisons: decision; students: status)."""
    builders = {"cases": _cases, "comparisons": _comparisons, "students": _students}
    if kind not in builders:
        raise ValueError(f"kind must be one of {KINDS}")
    return builders[kind](session, state, college)


def write(tbl: Table, fmt: str, out: Path | str) -> int:
    """Write a table to out (atomically, mode 0600); returns the number of data rows."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    n = 0
    if fmt == "csv":
        import io

        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(tbl.headers)
        for row in tbl.rows:
            w.writerow(["" if v is None else safe_cell(v) for v in row])
            n += 1
        write_output(out, ("\ufeff" + buf.getvalue()).encode("utf-8"))
        return n
    return write_sheets([("导出", tbl)], out)


def write_sheets(named: Iterable[tuple[str, Table]], out: Path | str) -> int:
    """Write tables as the sheets of one XLSX (bold, frozen Chinese header row), atomically 0600; returns the data rows."""
    import io

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    n = 0
    for title, tbl in named:
        ws = wb.create_sheet(title)
        ws.freeze_panes = "A2"
        header = []
        for h in tbl.headers:
            cell = WriteOnlyCell(ws, value=h)
            cell.font = Font(bold=True)
            header.append(cell)
        ws.append(header)
        for row in tbl.rows:
            ws.append([safe_cell(v) for v in row])
            n += 1
    buf = io.BytesIO()
    wb.save(buf)
    write_output(out, buf.getvalue())
    return n


def export(session: Session, kind: str, fmt: str, out: Path | str, state: str | None = None, college: str | None = None) -> int:
    """Export one kind to a file; returns the row count."""
    return write(table(session, kind, state, college), fmt, out)
