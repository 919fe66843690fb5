"""Each 学院's work lists: who is missing a photo, fails the specification, is in review, failed 身份复核, or awaits comparison.

Decisions recorded here because the issue is silent:
- Withdrawn students (离校) are on no list; the admission photo is required of everyone else, the graduation
  photo only of graduates (status `graduated`).
- "Not compared yet": a graduate with a current admission and a current graduation photo and no comparison
  row for that exact pair (under `pack_id` when given, under any pack otherwise).
- A case touches a student through its `student_id` or, for a group case, through its members; a group member the
  reviewer dismissed (not the same person as the others) is not on the impersonation list. One row per case.
- Only current photos count for the specification list; the 身份证号 appears masked, as in every export.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, select, union
from sqlalchemy.orm import Session, aliased

from verifier.common.choices import PHOTO_KIND_ZH
from verifier.common.reasons import reason
from verifier.store.export import CASE_TYPE_ZH, STATE_ZH, _CHECK_ZH, _STATUS_ZH, Table, _when
from verifier.store.models import CaseMember, Comparison, Photo, ReviewCase, Student

LIST_KINDS = ("missing_photo", "spec_failed", "in_review", "impersonation", "not_compared")
TITLES_ZH = {
    "missing_photo": "缺少照片",
    "spec_failed": "照片不合规",
    "in_review": "复核中",
    "impersonation": "身份复核未通过",
    "not_compared": "尚未比对",
}
_WHO = ["考生号", "学号", "姓名", "身份证号（脱敏）", "学习中心", "入学批次", "状态"]


@dataclass(frozen=True)
class NamedList:
    """One list of a 学院: its kind, Chinese title, headers and rows (materialised: the lists are short)."""

    kind: str
    title_zh: str
    headers: list[str]
    rows: list[list[Any]]

    def table(self) -> Table:
        """The list as an export table (for the XLSX writer)."""
        return Table(self.headers, iter(self.rows))


def _who(st: Student) -> list[Any]:
    return [st.ksh, st.student_no, st.name, st.id_masked, st.centre, st.intake, _STATUS_ZH.get(st.status, st.status)]


def _in(college: str, centres: Collection[str] | None) -> Any:
    """The students of a 学院 on the rolls (not withdrawn), only those of `centres` when given (a 学习中心-scoped key)."""
    clause = (Student.college == college) & (Student.status != "withdrawn")
    return clause if centres is None else clause & Student.centre.in_(sorted(centres))


def _students(college: str, centres: Collection[str] | None) -> Select[Any]:
    return select(Student).where(_in(college, centres))


def _current(kind: str) -> Any:
    photo = aliased(Photo)
    return photo, (photo.student_id == Student.id) & (photo.kind == kind) & photo.is_current.is_(True)


def missing_photo(session: Session, college: str, centres: Collection[str] | None = None) -> NamedList:
    """Students without a current admission photo, and graduates without a current graduation photo."""
    adm, adm_on = _current("admission")
    grad, grad_on = _current("graduation")
    q = _students(college, centres).add_columns(adm.id, grad.id).outerjoin(adm, adm_on).outerjoin(grad, grad_on).order_by(Student.ksh)
    rows = []
    for st, adm_id, grad_id in session.execute(q):
        missing = [k for k, pid in (("admission", adm_id), ("graduation", grad_id if st.status == "graduated" else 1)) if pid is None]
        if missing:
            rows.append(_who(st) + ["、".join(PHOTO_KIND_ZH[k] for k in missing)])
    return NamedList("missing_photo", TITLES_ZH["missing_photo"], _WHO + ["缺少"], rows)


def spec_failed(session: Session, college: str, centres: Collection[str] | None = None) -> NamedList:
    """Current photos whose specification or quality check failed, with every reason in Chinese."""
    q = (
        _students(college, centres)
        .add_columns(Photo)
        .join(Photo, (Photo.student_id == Student.id) & Photo.is_current.is_(True) & (Photo.check_status == "fail"))
        .order_by(Student.ksh, Photo.kind)
    )
    rows = []
    for st, photo in session.execute(q):
        codes = list(photo.check_codes or [])
        rows.append(_who(st) + [PHOTO_KIND_ZH.get(photo.kind, photo.kind), _CHECK_ZH.get(photo.check_status, photo.check_status), ";".join(codes), "；".join(_zh(c) for c in codes), _when(photo.created_at)])
    return NamedList("spec_failed", TITLES_ZH["spec_failed"], _WHO + ["照片", "检查结果", "原因代码", "原因", "上传时间"], rows)


def _zh(code: str) -> str:
    try:
        return reason(code).message_zh
    except KeyError:
        return code


def _touching(college: str, centres: Collection[str] | None, without_dismissed: bool = False) -> Select[Any]:
    """(case, student) for every case touching a student of the college, directly or as a group member (dismissed ones left out on request)."""
    direct = select(ReviewCase.id.label("case_id"), ReviewCase.student_id.label("student_id")).where(ReviewCase.student_id.is_not(None))
    members = select(CaseMember.case_id.label("case_id"), CaseMember.student_id.label("student_id"))
    if without_dismissed:
        members = members.where(CaseMember.outcome.is_distinct_from("dismissed"))
    pairs = union(direct, members).subquery()
    return (
        select(ReviewCase, Student)
        .join(pairs, pairs.c.case_id == ReviewCase.id)
        .join(Student, Student.id == pairs.c.student_id)
        .where(_in(college, centres))
    )


def in_review(session: Session, college: str, centres: Collection[str] | None = None) -> NamedList:
    """Students with an open or in-review case."""
    q = _touching(college, centres).where(ReviewCase.state != "resolved").order_by(Student.ksh, ReviewCase.id)
    rows = [
        _who(st) + [c.id, CASE_TYPE_ZH.get(c.case_type, c.case_type), STATE_ZH.get(c.state, c.state), c.assignee or "", _when(c.created_at)]
        for c, st in session.execute(q)
    ]
    return NamedList("in_review", TITLES_ZH["in_review"], _WHO + ["案件编号", "类型", "案件状态", "复核人", "立案时间"], rows)


def impersonation(session: Session, college: str, centres: Collection[str] | None = None) -> NamedList:
    """Students a resolved case found to be 冒名顶替 (outcome impersonation)."""
    q = _touching(college, centres, without_dismissed=True).where(ReviewCase.state == "resolved", ReviewCase.outcome == "impersonation").order_by(Student.ksh, ReviewCase.id)
    rows = [_who(st) + [c.id, CASE_TYPE_ZH.get(c.case_type, c.case_type), c.resolved_by or "", _when(c.resolved_at)] for c, st in session.execute(q)]
    return NamedList("impersonation", TITLES_ZH["impersonation"], _WHO + ["案件编号", "类型", "结案人", "结案时间"], rows)


def not_compared(session: Session, college: str, pack_id: str | None = None, centres: Collection[str] | None = None) -> NamedList:
    """Graduates with both current photos and no comparison of that pair (under pack_id, if given)."""
    adm, adm_on = _current("admission")
    grad, grad_on = _current("graduation")
    done = (Comparison.admission_photo_id == adm.id) & (Comparison.graduation_photo_id == grad.id)
    if pack_id:
        done = done & (Comparison.pack_id == pack_id)
    q = (
        _students(college, centres)
        .where(Student.status == "graduated")
        .add_columns(adm, grad)
        .join(adm, adm_on)
        .join(grad, grad_on)
        .where(~exists(select(Comparison.id).where(done)))
        .order_by(Student.ksh)
    )
    rows = [_who(st) + [_when(st.graduated_on), _when(a.created_at), _when(g.created_at)] for st, a, g in session.execute(q)]
    return NamedList("not_compared", TITLES_ZH["not_compared"], _WHO + ["毕业日期", "录取照片上传时间", "毕业照片上传时间"], rows)


def has_college(session: Session, college: str, centres: Collection[str] | None = None) -> bool:
    """Whether any student belongs to the 学院 (within `centres` when given): an unknown one is reported, not listed empty."""
    clause = Student.college == college
    if centres is not None:
        clause = clause & Student.centre.in_(sorted(centres))
    return session.scalar(select(exists().where(clause))) or False


def college_lists(session: Session, college: str, pack_id: str | None = None, centres: Collection[str] | None = None) -> list[NamedList]:
    """The five lists of one 学院 (only its students in `centres` when given), in LIST_KINDS order."""
    return [
        missing_photo(session, college, centres),
        spec_failed(session, college, centres),
        in_review(session, college, centres),
        impersonation(session, college, centres),
        not_compared(session, college, pack_id, centres),
    ]


def sheets(lists: list[NamedList]) -> Iterator[tuple[str, Table]]:
    """(sheet title, table) per list, for export.write_sheets."""
    for item in lists:
        yield item.title_zh, item.table()
