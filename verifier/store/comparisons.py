"""Comparisons of a probe photo (graduation or ID card) with an admission photo: one row per (admission, probe, pack)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from verifier.common.reasons import VerifierError
from verifier.store.models import DECISIONS, Comparison, Photo

# The photo kinds compared with the admission photo: at graduation, and at intake (身份证照片).
PROBE_KINDS = ("graduation", "id_card")


@dataclass(frozen=True)
class Recorded:
    """A stored comparison and whether this call created it (False: an earlier run already had it)."""

    comparison: Comparison
    created: bool


def _find(session: Session, admission_id: int, graduation_id: int, pack_id: str) -> Comparison | None:
    return session.scalar(
        select(Comparison).where(
            Comparison.admission_photo_id == admission_id,
            Comparison.graduation_photo_id == graduation_id,
            Comparison.pack_id == pack_id,
        )
    )


def record_comparison(
    session: Session,
    admission: Photo,
    graduation: Photo,
    pack_id: str,
    score: float | None,
    decision: str,
    reasons: Sequence[str] = (),
    run_id: int | None = None,
) -> Recorded:
    """Store a comparison unless this pair was already compared with this pack (re-runs do not duplicate)."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}")
    if admission.kind != "admission" or graduation.kind not in PROBE_KINDS or admission.student_id != graduation.student_id:
        raise VerifierError("STORE_COMPARISON_INVALID", detail=f"photos {admission.id}/{graduation.id}")
    existing = _find(session, admission.id, graduation.id, pack_id)
    if existing is not None:
        return Recorded(existing, False)
    try:
        with session.begin_nested():
            row = Comparison(
                student_id=admission.student_id,
                admission_photo_id=admission.id,
                graduation_photo_id=graduation.id,
                pack_id=pack_id,
                score=None if score is None else float(score),
                decision=decision,
                reasons=list(reasons),
                run_id=run_id,
            )
            session.add(row)
            session.flush()
        return Recorded(row, True)
    except IntegrityError:
        again = _find(session, admission.id, graduation.id, pack_id)
        if again is None:
            raise
        return Recorded(again, False)


def get_comparison(session: Session, admission_id: int, graduation_id: int, pack_id: str) -> Comparison | None:
    """The stored comparison of this pair under this pack, or None (lets a resumed run skip done work)."""
    return _find(session, admission_id, graduation_id, pack_id)


def latest_for_student(session: Session, student_id: int, pack_id: str | None = None) -> Comparison | None:
    """The student's most recent comparison (optionally under one pack)."""
    q = select(Comparison).where(Comparison.student_id == student_id).order_by(Comparison.id.desc()).limit(1)
    if pack_id:
        q = q.where(Comparison.pack_id == pack_id)
    return session.scalar(q)
