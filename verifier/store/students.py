"""Students in the store: idempotent roster import (upsert by 考生号), lookups, graduation status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from verifier.common.reasons import REASONS, VerifierError
from verifier.store import audit
from verifier.store.models import Student

IMPORT_BATCH = 500
ID_MISMATCH = "student.id_mismatch"  # the audit action the ID-number rate limit counts
_FIELDS = ("name", "student_no", "college", "centre", "intake")


class RosterStudent(Protocol):
    """What import needs from a roster row (verifier.roster.Student satisfies it)."""

    ksh: str
    name: str
    student_no: str
    college: str
    centre: str
    intake: str

    def id_hash(self, key: bytes) -> str: ...

    @property
    def id_masked(self) -> str: ...


class RosterRowError(Protocol):
    """A rejected roster row (verifier.roster.RowError satisfies it)."""

    line: int
    code: str
    detail: str
    ksh: str


class RosterLike(Protocol):
    """What import needs from a loaded roster (verifier.roster.RosterLoad satisfies it)."""

    students: Mapping[str, RosterStudent]
    rejected: Sequence[RosterRowError]


@dataclass(frozen=True)
class RejectedRow:
    """A roster row that was not imported, with its reason code."""

    ksh: str
    code: str
    detail: str = ""
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        row = REASONS[self.code]
        return {"line": self.line, "ksh": self.ksh, "code": self.code, "message_zh": row.zh, "message_en": row.en, "detail": self.detail}


@dataclass
class ImportReport:
    """What a roster import did: 考生号 lists per outcome, and rejected rows with reasons."""

    inserted: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    # ID-number mismatches this import may still report (None = no limit); see import_roster.
    id_budget: int | None = None

    def counts(self) -> dict[str, int]:
        """Numbers only (safe for logs and the audit summary)."""
        return {
            "inserted": len(self.inserted),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "rejected": len(self.rejected),
        }


def _values(row: RosterStudent, id_key: bytes) -> dict[str, Any]:
    """Stored columns for a roster row; blank cells are dropped so they never erase stored values."""
    v: dict[str, Any] = {f: getattr(row, f, "") or "" for f in _FIELDS}
    v = {k: x for k, x in v.items() if x}
    h = row.id_hash(id_key)
    if h:
        v["id_hash"] = h
        v["id_masked"] = row.id_masked
    return v


def _apply(session: Session, row: RosterStudent, existing: Student | None, id_key: bytes, actor: str, report: ImportReport) -> None:
    values = _values(row, id_key)
    if existing is None:
        try:
            with session.begin_nested():
                session.add(Student(ksh=row.ksh, **values))
        except IntegrityError:  # another import inserted the same 考生号 a moment ago
            existing = session.scalar(select(Student).where(Student.ksh == row.ksh))
            if existing is None:
                raise
        else:
            report.inserted.append(row.ksh)
            return
    if existing.id_hash and values.get("id_hash"):
        if report.id_budget is not None and report.id_budget <= 0:
            report.rejected.append(RejectedRow(row.ksh, "STORE_IMPORT_ID_LIMIT"))
            return
        if values["id_hash"] != existing.id_hash:
            report.rejected.append(RejectedRow(row.ksh, "STORE_IMPORT_ID_CHANGED"))
            audit.record(session, actor, ID_MISMATCH, "student", existing.id, source="roster import")
            if report.id_budget is not None:
                report.id_budget -= 1
            return
    changes = {k: (getattr(existing, k), v) for k, v in values.items() if getattr(existing, k) != v}
    if not changes:
        report.unchanged.append(row.ksh)
        return
    for k, (_old, new) in changes.items():
        setattr(existing, k, new)
    session.flush()
    shown = {k: c for k, c in changes.items() if k != "id_hash"}
    audit.record(
        session,
        actor,
        "student.update",
        "student",
        existing.id,
        before={k: old for k, (old, _new) in shown.items()},
        after={k: new for k, (_old, new) in shown.items()},
        source="roster import",
    )
    report.updated.append(row.ksh)


def import_roster(session: Session, roster_load: RosterLike, id_key: bytes, actor: str = "system", id_budget: int | None = None) -> ImportReport:
    """Upsert every roster student by 考生号 (idempotent); loader-rejected rows are reported with their codes.

    A row whose 身份证号 differs from the stored one is refused (STORE_IMPORT_ID_CHANGED) and audited
    (student.id_mismatch): silently swapping the identity behind a 考生号 is what impersonation looks like.
    The answer never shows the stored number, not even masked. Match or mismatch is still an answer, so a
    caller may be given `id_budget`, the mismatches it may still learn of: once spent, every row whose
    number would be compared is refused alike (STORE_IMPORT_ID_LIMIT), match or not. Blank cells keep stored values.
    """
    report = ImportReport(id_budget=id_budget)
    for bad in roster_load.rejected:
        report.rejected.append(RejectedRow(bad.ksh, bad.code, bad.detail, bad.line))
    kshs = sorted(roster_load.students)
    for start in range(0, len(kshs), IMPORT_BATCH):
        chunk = kshs[start : start + IMPORT_BATCH]
        found = {s.ksh: s for s in session.scalars(select(Student).where(Student.ksh.in_(chunk)).with_for_update())}
        for ksh in chunk:
            _apply(session, roster_load.students[ksh], found.get(ksh), id_key, actor, report)
        session.flush()
    path = getattr(roster_load, "path", None)
    name = Path(path).name[:64] if path else "-"
    audit.record(session, actor, "roster.import", "roster", name, after=report.counts())
    return report


def get_student(session: Session, ksh: str) -> Student | None:
    """The student with this 考生号, or None."""
    return session.scalar(select(Student).where(Student.ksh == ksh))


def require_student(session: Session, ksh: str) -> Student:
    """The student with this 考生号, or VerifierError STORE_STUDENT_UNKNOWN."""
    s = get_student(session, ksh)
    if s is None:
        raise VerifierError("STORE_STUDENT_UNKNOWN", detail=ksh)
    return s


def mark_graduated(session: Session, kshs: Iterable[str], on: dt.date, actor: str = "system") -> tuple[list[str], list[str]]:
    """Set status graduated with the graduation date (what retention counts from); returns (marked, unknown 考生号)."""
    marked: list[str] = []
    unknown: list[str] = []
    for ksh in kshs:
        s = session.scalar(select(Student).where(Student.ksh == ksh).with_for_update())
        if s is None:
            unknown.append(ksh)
            continue
        if s.status == "graduated" and s.graduated_on == on:
            continue
        before = {"status": s.status, "graduated_on": s.graduated_on.isoformat() if s.graduated_on else None}
        s.status, s.graduated_on = "graduated", on
        session.flush()
        audit.record(session, actor, "student.graduate", "student", s.id, before=before, after={"status": "graduated", "graduated_on": on.isoformat()})
        marked.append(ksh)
    return marked, unknown
