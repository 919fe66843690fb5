"""Review cases (复核案件): open → in_review → resolved with an outcome; every transition audited, bad ones refused.

Allowed moves: open → in_review (a reviewer takes it), in_review → open (handed back),
in_review → resolved (with an outcome). A resolved case is final; new evidence opens a new case.
At most one unresolved case exists per (case type, subject); opening another returns the existing one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from verifier.common.reasons import VerifierError
from verifier.store import audit, members
from verifier.store.models import CASE_OUTCOMES, CASE_TYPES, SUBJECT_TYPES, ReviewCase, utcnow

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
                notes=_note_line(actor, note) if note else "",
            )
            session.add(case)
            session.flush()
    except IntegrityError:
        again = _open_for(session, case_type, subject_type, subject_id)
        if again is None:
            raise
        return Opened(again, False)
    audit.record(session, actor, "case.open", "case", case.id, after={"type": case_type, "subject": f"{subject_type}:{subject_id}"})
    return Opened(case, True)


def _note_line(actor: str, note: str) -> str:
    return f"[{utcnow().isoformat(timespec='seconds')} {actor}] {note.strip()}\n"


def _load(session: Session, case_id: int) -> ReviewCase:
    case = session.get(ReviewCase, case_id, with_for_update=True, populate_existing=True)
    if case is None:
        raise VerifierError("STORE_CASE_UNKNOWN", detail=str(case_id))
    return case


def _move(session: Session, case: ReviewCase, to: str, actor: str, note: str) -> dict[str, str | None]:
    if to not in TRANSITIONS[case.state]:
        raise VerifierError("STORE_CASE_TRANSITION_INVALID", detail=f"case {case.id}: {case.state} → {to}", measured=case.state, limit=sorted(TRANSITIONS[case.state]))
    before = {"state": case.state, "assignee": case.assignee, "outcome": case.outcome}
    case.state = to
    if note:
        case.notes = (case.notes or "") + _note_line(actor, note)
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
    return case


def add_note(session: Session, case_id: int, actor: str, note: str) -> ReviewCase:
    """Append a timestamped note to a case that is not resolved."""
    case = _load(session, case_id)
    if case.state == "resolved":
        raise VerifierError("STORE_CASE_TRANSITION_INVALID", detail=f"case {case.id} is resolved; notes are closed")
    case.notes = (case.notes or "") + _note_line(actor, note)
    session.flush()
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
