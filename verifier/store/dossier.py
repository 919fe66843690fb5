"""What a filing dossier (备案材料) says about one review case, gathered from the store: identity, photos, scores, audit.

Gathering is kept apart from drawing the PDF so the facts can be checked without a renderer. The 身份证号 is only
ever the masked form the store keeps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from verifier.common.reasons import REASONS, VerifierError
from verifier.core.packs import load_pack
from verifier.core.results import Thresholds
from verifier.store import audit, members
from verifier.store.models import Comparison, Photo, ReviewCase, Student
from verifier.store.photos import current_photo, read_photo
from verifier.store.photostore import PhotoStore


@dataclass(frozen=True)
class DossierPhoto:
    """One photo compared: its kind, source, date, and bytes (None when purged or unreadable)."""

    kind: str
    source: str
    taken: dt.datetime
    check_status: str
    data: bytes | None


@dataclass(frozen=True)
class DossierEvent:
    """One reviewer action from the audit log."""

    at: dt.datetime
    actor: str
    action: str
    detail: str


@dataclass(frozen=True)
class Dossier:
    """Everything one case's dossier shows."""

    case_id: int
    case_type: str
    state: str
    outcome: str | None
    students: list[Student]
    photos: list[DossierPhoto]
    score: float | None
    decision: str | None
    pack: str | None
    thresholds: Thresholds | None
    reasons: list[tuple[str, str, str]] = field(default_factory=list)
    events: list[DossierEvent] = field(default_factory=list)
    notes: list[tuple[dt.datetime, str, str]] = field(default_factory=list)


def _photo(store: PhotoStore, photo: Photo | None) -> DossierPhoto | None:
    if photo is None:
        return None
    try:
        data: bytes | None = read_photo(store, photo)
    except VerifierError:
        data = None
    return DossierPhoto(photo.kind, photo.source or "", photo.created_at, photo.check_status, data)


def _thresholds(pack_id: str | None, probe_kind: str = "graduation") -> Thresholds | None:
    """The pack's thresholds for comparing a `probe_kind` photo with the admission photo (None: unknown pack, or none for that kind)."""
    if not pack_id:
        return None
    try:
        return load_pack(pack_id).thresholds_for(probe_kind)
    except VerifierError:
        return None


def _event(e: object) -> DossierEvent:
    after = dict(getattr(e, "summary", {}) or {}).get("after") or {}
    detail = ", ".join(f"{k}={v}" for k, v in after.items() if k in ("state", "outcome", "assignee", "registration"))
    return DossierEvent(e.at, e.actor, e.action, detail)  # type: ignore[attr-defined]


def gather(session: Session, store: PhotoStore, case_id: int) -> Dossier:
    """The dossier of one case (a group case: every member and the photo that put them there); STORE_CASE_UNKNOWN when none."""
    case = session.get(ReviewCase, case_id)
    if case is None:
        raise VerifierError("STORE_CASE_UNKNOWN", detail=str(case_id))
    student = session.get(Student, case.student_id) if case.student_id else None
    cmp = session.get(Comparison, case.subject_id) if case.subject_type == "comparison" else None
    group = members.members_of(session, case.id)
    students = [s for s in (session.get(Student, m.student_id) for m in group) if s is not None] if group else [student] if student else []
    if group:
        pair = [session.get(Photo, m.photo_id) for m in group]
    elif cmp is not None:
        pair = [session.get(Photo, cmp.admission_photo_id), session.get(Photo, cmp.graduation_photo_id)]
    elif student is not None:
        pair = [current_photo(session, student.id, "admission"), current_photo(session, student.id, "graduation")]
    else:
        pair = []
    photos = [p for p in (_photo(store, x) for x in pair) if p is not None]
    codes = list(cmp.reasons or []) if cmp is not None else []
    reasons = [(c, REASONS[c].zh, REASONS[c].en) for c in codes if c in REASONS]
    for p in pair:
        reasons += [(c, REASONS[c].zh, REASONS[c].en) for c in (p.check_codes if p is not None else []) if c in REASONS]
    events = [_event(e) for e in audit.events_for(session, "case", case.id)]
    for st in students:
        events += [_event(e) for e in audit.events_for(session, "student", st.id) if e.action == "student.registration" and e.summary.get("case") == case.id]
    events.sort(key=lambda e: e.at)
    pairs = members.pairs_of(session, case.id) if group else []
    if pairs:  # highest first: the pair that made the group
        score, decision, pack = pairs[0].score, "duplicate", pairs[0].pack_id
    elif cmp is not None:
        score, decision, pack = cmp.score, cmp.decision, cmp.pack_id
    else:
        score = decision = pack = None
    probe = pair[1] if cmp is not None and len(pair) == 2 and pair[1] is not None else None
    thresholds = _thresholds(pack, probe.kind if probe is not None else "graduation")
    return Dossier(
        case.id, case.case_type, case.state, case.outcome, students, photos, score, decision, pack, thresholds, reasons, events,
        [(n.at, n.author, n.text) for n in case.notes],
    )
