"""Review cases (复核案件): open → in_review → resolved with an outcome; every transition audited, bad ones refused.

Allowed moves: open → in_review (a reviewer takes it), in_review → open (handed back),
in_review → resolved (with an outcome). A resolved case is final; new evidence opens a new case.
At most one unresolved case exists per (case type, subject); opening another returns the existing one.
A student's registration (学位注册) follows the outcomes in the same transaction: same_person and photo_replaced
clear it, impersonation blocks it, dismissed leaves it; a new case on a cleared student puts it back to pending.
An intake case (intake_mismatch: ID card vs admission photo) only blocks: its other outcomes say nothing of the degree.
Group (duplicate_face) cases name no single student and leave registrations to the members' own cases.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from verifier.common.reasons import VerifierError
from verifier.common.text import escape_unsafe
from verifier.store import audit, members
from verifier.store.models import CASE_OUTCOMES, CASE_TYPES, INTAKE_OUTCOME_REGISTRATION, OUTCOME_REGISTRATION, SUBJECT_TYPES, CaseNote, ReviewCase, Student, utcnow

NOTE_MAX = 2000

TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_review"}),
    "in_review": frozenset({"open", "resolved"}),
    "resolved": frozenset(),
}


@dataclass(frozen=True)
class Opened:
    """A case and whether this call opened it (False: an unresolved case for the subject already existed)."""

    case: ReviewCase
    created: bool


def _open_for(session: Session, case_type: str, subject_type: str, subject_id: int) -> ReviewCase | None:
    return session.scalar(
        select(ReviewCase).where(
            ReviewCase.case_type == case_type,
            ReviewCase.subject_type == subject_type,
            ReviewCase.subject_id == subject_id,
            ReviewCase.state != "resolved",
        )
    )


def open_case(
    session: Session,
    case_type: str,
    subject_type: str,
    subject_id: int,
    student_id: int | None = None,
    actor: str = "system",
    note: str = "",
) -> Opened:
    """Open a case for a subject (student, photo, comparison or duplicate), or return the one already open."""
    if case_type not in CASE_TYPES or subject_type not in SUBJECT_TYPES:
        raise VerifierError("STORE_CASE_TYPE_INVALID", detail=f"{case_type}/{subject_type}")
    existing = _open_for(session, case_type, subject_type, subject_id)
    if existing is not None:
        return Opened(existing, False)
    try:
        with session.begin_nested():
            case = ReviewCase(
                case_type=case_type,
                subject_type=subject_type,
                subject_id=subject_id,
                student_id=student_id,
                state="open",
                opened_by=actor,
            )
            session.add(case)
            session.flush()
            if note:
                append_note(session, case, actor, note)
    except IntegrityError:
        again = _open_for(session, case_type, subject_type, subject_id)
        if again is None:
            raise
        return Opened(again, False)
    audit.record(session, actor, "case.open", "case", case.id, after={"type": case_type, "subject": f"{subject_type}:{subject_id}"})
    if student_id is not None:
        set_registration(session, student_id, "pending", actor, case.id, only_from="cleared")
    return Opened(case, True)


def set_registration(session: Session, student_id: int, to: str, actor: str, case_id: int, only_from: str | None = None) -> bool:
    """Move a student's registration to `to` (audited as student.registration with the case that moved it); False if unchanged."""
    student = session.get(Student, student_id, with_for_update=True)
    if student is None or student.registration == to or (only_from is not None and student.registration != only_from):
        return False
    before = student.registration
    student.registration = to
    session.flush()
    audit.record(session, actor, "student.registration", "student", student.id, before={"registration": before}, after={"registration": to}, case=case_id)
    return True


def valid_note(text: str) -> str:
    """The note stripped; refused (STORE_NOTE_INVALID) when empty, over NOTE_MAX or holding NUL (PostgreSQL text cannot).

    Other control characters are kept as typed or pasted: a note is its own row, and every plain-text
    rendering (note_line) escapes them, so they cannot pose as another entry.
    """
    clean = text.strip()
    if not clean or len(clean) > NOTE_MAX or "\x00" in clean:
        raise VerifierError("STORE_NOTE_INVALID", measured=len(clean), limit=NOTE_MAX)
    return clean


def append_note(session: Session, case: ReviewCase, author: str, text: str) -> CaseNote:
    """Add one structured note (author, time, text) to a case; the caller checks the case may take notes."""
    row = CaseNote(case_id=case.id, author=author[:100], text=valid_note(text))
    session.add(row)
    session.flush()
    session.expire(case, ["notes"])
    return row


def note_line(note: CaseNote) -> str:
    """One note as one line of plain text: `[time author] text`, the text's newlines and controls escaped."""
    return f"[{note.at.isoformat(timespec='seconds')} {escape_unsafe(note.author)}] {escape_unsafe(note.text)}"


def notes_text(case: ReviewCase) -> str:
    """A case's notes as plain text, one line per note, for exports and terminals."""
    return "\n".join(note_line(n) for n in case.notes)


def _load(session: Session, case_id: int) -> ReviewCase:
    case = session.get(ReviewCase, case_id, with_for_update=True, populate_existing=True)
    if case is None:
        raise VerifierError("STORE_CASE_UNKNOWN", detail=str(case_id))
    return case


def _move(session: Session, case: ReviewCase, to: str, actor: str, note: str) -> dict[str, str | None]:
    if to not in TRANSITIONS[case.state]:
        raise VerifierError("STORE_CASE_TRANSITION_INVALID", detail=f"case {case.id}: {case.state} → {to}", measured=case.state, limit=sorted(TRANSITIONS[case.state]))
    before = {"state": case.state, "assignee": case.assignee, "outcome": case.outcome}
    if note:
        append_note(session, case, actor, note)
    case.state = to
    return before


def start_review(session: Session, case_id: int, assignee: str, actor: str | None = None, note: str = "") -> ReviewCase:
    """open → in_review: a reviewer takes the case."""
    if not assignee:
        raise VerifierError("STORE_CASE_TRANSITION_INVALID", detail="in_review needs an assignee")
    case = _load(session, case_id)
    who = actor or assignee
    before = _move(session, case, "in_review", who, note)
    case.assignee, case.review_started_at = assignee, utcnow()
    session.flush()
    audit.record(session, who, "case.start_review", "case", case.id, before=before, after={"state": "in_review", "assignee": assignee})
    return case


def release(session: Session, case_id: int, actor: str, note: str = "") -> ReviewCase:
    """in_review → open: hand the case back to the queue."""
    case = _load(session, case_id)
    before = _move(session, case, "open", actor, note)
    case.assignee, case.review_started_at = None, None
    session.flush()
    audit.record(session, actor, "case.release", "case", case.id, before=before, after={"state": "open", "assignee": None})
    return case


def resolve(session: Session, case_id: int, outcome: str, actor: str, note: str = "") -> ReviewCase:
    """in_review → resolved with an outcome (same_person, impersonation, photo_replaced, dismissed); a group case's
    members still without a verdict take the outcome's (confirmed for same_person/impersonation, else dismissed)."""
    if outcome not in CASE_OUTCOMES:
        raise VerifierError("STORE_CASE_OUTCOME_INVALID", detail=repr(outcome), limit=list(CASE_OUTCOMES))
    case = _load(session, case_id)
    before = _move(session, case, "resolved", actor, note)
    case.outcome, case.resolved_by, case.resolved_at = outcome, actor, utcnow()
    session.flush()
    if case.case_type == "duplicate_face":
        members.decide_rest(session, case.id, outcome, actor)
    audit.record(session, actor, "case.resolve", "case", case.id, before=before, after={"state": "resolved", "outcome": outcome})
    rule = INTAKE_OUTCOME_REGISTRATION if case.case_type == "intake_mismatch" else OUTCOME_REGISTRATION
    if case.student_id is not None and outcome in rule:
        set_registration(session, case.student_id, rule[outcome], actor, case.id)
    return case


def add_note(session: Session, case_id: int, actor: str, note: str) -> ReviewCase:
    """Append a timestamped note to a case that is not resolved."""
    case = _load(session, case_id)
    if case.state == "resolved":
        raise VerifierError("STORE_CASE_TRANSITION_INVALID", detail=f"case {case.id} is resolved; notes are closed")
    append_note(session, case, actor, note)
    audit.record(session, actor, "case.note", "case", case.id, after={"chars": len(note)})
    return case


def list_cases(
    session: Session,
    state: str | None = None,
    case_type: str | None = None,
    assignee: str | None = None,
    student_id: int | None = None,
) -> list[ReviewCase]:
    """Cases, oldest first, filtered by state, type, assignee or student."""
    q = select(ReviewCase).order_by(ReviewCase.id)
    if state:
        q = q.where(ReviewCase.state == state)
    if case_type:
        q = q.where(ReviewCase.case_type == case_type)
    if assignee:
        q = q.where(ReviewCase.assignee == assignee)
    if student_id is not None:
        q = q.where(ReviewCase.student_id == student_id)
    return list(session.scalars(q))
