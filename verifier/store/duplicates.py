"""Duplicate-face candidates: two photos of two different students that look like one face, found by a sweep."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from verifier.common.reasons import VerifierError
from verifier.store.models import DuplicateCandidate, Photo


@dataclass(frozen=True)
class RecordedPair:
    """A stored candidate and whether this sweep found it first."""

    candidate: DuplicateCandidate
    created: bool


def _find(session: Session, a: int, b: int, pack_id: str) -> DuplicateCandidate | None:
    return session.scalar(
        select(DuplicateCandidate).where(
            DuplicateCandidate.photo_a_id == a, DuplicateCandidate.photo_b_id == b, DuplicateCandidate.pack_id == pack_id
        )
    )


def record_candidate(session: Session, photo_1: Photo, photo_2: Photo, pack_id: str, score: float, sweep_id: int | None) -> RecordedPair:
    """Store a pair (in either order) once per pack; a later sweep that finds it again updates last_sweep_id and score."""
    if photo_1.student_id == photo_2.student_id:
        raise VerifierError("STORE_DUPLICATE_SAME_STUDENT", detail=f"photos {photo_1.id}/{photo_2.id}")
    a, b = (photo_1, photo_2) if photo_1.id < photo_2.id else (photo_2, photo_1)
    existing = _find(session, a.id, b.id, pack_id)
    if existing is None:
        try:
            with session.begin_nested():
                row = DuplicateCandidate(
                    photo_a_id=a.id,
                    photo_b_id=b.id,
                    student_a_id=a.student_id,
                    student_b_id=b.student_id,
                    pack_id=pack_id,
                    score=float(score),
                    sweep_id=sweep_id,
                    last_sweep_id=sweep_id,
                )
                session.add(row)
                session.flush()
            return RecordedPair(row, True)
        except IntegrityError:
            existing = _find(session, a.id, b.id, pack_id)
            if existing is None:
                raise
    if sweep_id is not None and existing.last_sweep_id != sweep_id:
        existing.last_sweep_id, existing.score = sweep_id, float(score)
        session.flush()
    return RecordedPair(existing, False)


def candidates(session: Session, pack_id: str | None = None, sweep_id: int | None = None, min_score: float | None = None) -> list[DuplicateCandidate]:
    """Stored candidates, highest score first; filter by pack, by the sweep that last saw them, by score."""
    q = select(DuplicateCandidate).order_by(DuplicateCandidate.score.desc(), DuplicateCandidate.id)
    if pack_id:
        q = q.where(DuplicateCandidate.pack_id == pack_id)
    if sweep_id is not None:
        q = q.where(DuplicateCandidate.last_sweep_id == sweep_id)
    if min_score is not None:
        q = q.where(DuplicateCandidate.score >= min_score)
    return list(session.scalars(q))
