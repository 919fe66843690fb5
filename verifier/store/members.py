"""Group (duplicate_face) cases member by member: who is in a case, which pairs it covers, each member's verdict.

A member's verdict is `confirmed` (the same person as the other confirmed members) or `dismissed` (not the same
person as any other member). A pair of a case is adjudicated when both its students carry a verdict in that case;
a case is resolved when every member does. A pair that joins a case after a verdict was given reopens the
verdicts of its two students, so no decision ever covers a pair its reviewer was not shown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from verifier.common.reasons import VerifierError
from verifier.store import audit
from verifier.store.models import MEMBER_OUTCOMES, CaseMember, CasePair, DuplicateCandidate, ReviewCase, utcnow

CONFIRMING = frozenset({"same_person", "impersonation"})


@dataclass(frozen=True)
class Growth:
    """What adding pairs to a case changed: the candidates added, how many members joined, how many verdicts reopened."""

    added: tuple[int, ...]
    members: int
    reopened: int

    @property
    def pairs(self) -> int:
        return len(self.added)


def members_of(session: Session, case_id: int) -> list[CaseMember]:
    """The case's members in the order they joined."""
    return list(session.scalars(select(CaseMember).where(CaseMember.case_id == case_id).order_by(CaseMember.id)))


def pairs_of(session: Session, case_id: int) -> list[DuplicateCandidate]:
    """The duplicate candidates (photo pairs with scores) the case covers, highest score first."""
    q = (
        select(DuplicateCandidate)
        .join(CasePair, CasePair.candidate_id == DuplicateCandidate.id)
        .where(CasePair.case_id == case_id)
        .order_by(DuplicateCandidate.score.desc(), DuplicateCandidate.id)
    )
    return list(session.scalars(q))


def candidates_by_case(session: Session, case_ids: Iterable[int]) -> dict[int, set[int]]:
    """Candidate ids each case covers."""
    out: dict[int, set[int]] = defaultdict(set)
    ids = sorted(set(case_ids))
    for i in range(0, len(ids), 900):
        for case_id, cand in session.execute(select(CasePair.case_id, CasePair.candidate_id).where(CasePair.case_id.in_(ids[i : i + 900]))):
            out[case_id].add(cand)
    return dict(out)


def add_pairs(session: Session, case: ReviewCase, pairs: Iterable[DuplicateCandidate], actor: str) -> Growth:
    """Put candidates under a case: new pairs and members are added; a decided member touched by a new pair is reopened."""
    have = {c for (c,) in session.execute(select(CasePair.candidate_id).where(CasePair.case_id == case.id))}
    by_student = {m.student_id: m for m in members_of(session, case.id)}
    new_pairs = sorted((p for p in pairs if p.id not in have), key=lambda p: p.id)
    added = reopened = 0
    for p in new_pairs:
        session.add(CasePair(case_id=case.id, candidate_id=p.id))
        for sid, pid in ((p.student_a_id, p.photo_a_id), (p.student_b_id, p.photo_b_id)):
            m = by_student.get(sid)
            if m is None:
                m = by_student[sid] = CaseMember(case_id=case.id, student_id=sid, photo_id=pid)
                session.add(m)
                added += 1
            elif m.outcome is not None:
                audit.record(session, actor, "case.member_reopen", "case", case.id, before={"member": m.id, "outcome": m.outcome}, after={"candidate": p.id})
                m.outcome, m.decided_by, m.decided_at = None, None, None
                reopened += 1
    session.flush()
    return Growth(tuple(p.id for p in new_pairs), added, reopened)


def decide(session: Session, case_id: int, verdicts: dict[int, str], actor: str) -> ReviewCase:
    """Give members (by member id) a verdict on a case in review, each audited; the caller resolves it once all have one."""
    case = session.get(ReviewCase, case_id, populate_existing=True)
    if case is None:
        raise VerifierError("STORE_CASE_UNKNOWN", detail=str(case_id))
    if case.state != "in_review":
        raise VerifierError("STORE_CASE_TRANSITION_INVALID", detail=f"case {case_id} is {case.state}; verdicts need a case in review", measured=case.state)
    members = {m.id: m for m in members_of(session, case_id)}
    for member_id, outcome in sorted(verdicts.items()):
        if outcome not in MEMBER_OUTCOMES:
            raise VerifierError("STORE_CASE_OUTCOME_INVALID", detail=repr(outcome), limit=list(MEMBER_OUTCOMES))
        m = members.get(member_id)
        if m is None:
            raise VerifierError("STORE_CASE_MEMBER_UNKNOWN", detail=f"case {case_id} member {member_id}")
        before = m.outcome
        m.outcome, m.decided_by, m.decided_at = outcome, actor, utcnow()
        audit.record(session, actor, "case.member_decide", "case", case_id, before={"member": m.id, "outcome": before}, after={"member": m.id, "student": m.student_id, "outcome": outcome})
    session.flush()
    return case


def decide_rest(session: Session, case_id: int, outcome: str, actor: str) -> int:
    """A whole-case outcome given to every member still without a verdict (same_person/impersonation confirm, others dismiss)."""
    verdict = "confirmed" if outcome in CONFIRMING else "dismissed"
    todo = [m for m in members_of(session, case_id) if m.outcome is None]
    for m in todo:
        m.outcome, m.decided_by, m.decided_at = verdict, actor, utcnow()
        audit.record(session, actor, "case.member_decide", "case", case_id, before={"member": m.id, "outcome": None}, after={"member": m.id, "student": m.student_id, "outcome": verdict, "by_case": outcome})
    session.flush()
    return len(todo)


def all_decided(session: Session, case_id: int) -> bool:
    """True when the case has members and every one carries a verdict."""
    members = members_of(session, case_id)
    return bool(members) and all(m.outcome is not None for m in members)


def group_outcome(members: Iterable[CaseMember]) -> str:
    """The case's outcome from its members: same_person when two or more are confirmed, else dismissed."""
    return "same_person" if sum(m.outcome == "confirmed" for m in members) >= 2 else "dismissed"


def adjudicated(session: Session) -> set[int]:
    """Candidates some case adjudicated: both of the pair's students carry a verdict in a case that covers the pair."""
    ma, mb = aliased(CaseMember), aliased(CaseMember)
    q = (
        select(CasePair.candidate_id)
        .join(DuplicateCandidate, DuplicateCandidate.id == CasePair.candidate_id)
        .join(ma, and_(ma.case_id == CasePair.case_id, ma.student_id == DuplicateCandidate.student_a_id))
        .join(mb, and_(mb.case_id == CasePair.case_id, mb.student_id == DuplicateCandidate.student_b_id))
        .where(ma.outcome.is_not(None), mb.outcome.is_not(None))
    )
    return set(session.scalars(q))


def open_pairs(session: Session, case_type: str) -> dict[int, int]:
    """Candidate id → the lowest unresolved case of this type that covers it."""
    q = (
        select(CasePair.candidate_id, CasePair.case_id)
        .join(ReviewCase, ReviewCase.id == CasePair.case_id)
        .where(ReviewCase.case_type == case_type, ReviewCase.state != "resolved")
        .order_by(CasePair.case_id)
    )
    out: dict[int, int] = {}
    for cand, case_id in session.execute(q):
        out.setdefault(cand, case_id)
    return out
