"""Review cases (复核案件) for reviewers: list and filter, view with the photos, claim, release, note, resolve.

A duplicate_face case covers a group of students. A key sees, claims and decides such a case only when every
member is within its scope (a group that spans 学院 goes to a reviewer who sees them all), and the reviewer
decides member by member; see `verifier.store.members` for what a verdict adjudicates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from verifier.common.reasons import REASONS, VerifierError
from verifier.store import audit
from verifier.store import cases as case_service
from verifier.store import members as member_service
from verifier.store.models import CaseMember, Comparison, DuplicateCandidate, Photo, ReviewCase, Student
from verifier.store.photos import current_photo, read_photo

from api.dates import day_end, day_start
from api.auth import ACADEMIC, REVIEWER, check_college, require, scope_clause
from api.routers.students import IMAGE_CONTENT, image_media_type
from api.keys import Principal
from api.problems import ApiProblem
from api.schemas import CaseState, CaseType, MembersIn, NoteIn, ResolveIn
from api.state import AppState, get_state

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
CASE_ID = Path(ge=1, le=2**31 - 1)
# The photo views of a single-student case, in the order the reviewer page shows them (ID card, admission, graduation).
VIEW_KINDS = ("id_card", "admission", "graduation")
KIND_LABELS = {
    "id_card": ("身份证照片", "ID-card photo"),
    "admission": ("录取照片", "Admission photo"),
    "graduation": ("毕业照片", "Graduation photo"),
}


def _scoped(q: Any, who: Principal) -> Any:
    """Cases whose student is in the key's scope and, for a group case, whose every member is."""
    if who.scoped:
        q = q.where(scope_clause(who))
        other = aliased(Student)
        outside = select(CaseMember.id).join(other, other.id == CaseMember.student_id).where(CaseMember.case_id == ReviewCase.id, ~scope_clause(who, other))
        q = q.where(~exists(outside))
    return q


@router.get("")
def list_cases(
    state_: CaseState | None = Query(None, alias="state"),
    type_: CaseType | None = Query(None, alias="type"),
    college: str | None = Query(None, max_length=200, description="学院"),
    centre: str | None = Query(None, max_length=200, description="学习中心"),
    since: dt.date | None = Query(None, description="opened on or after (YYYY-MM-DD, UTC)"),
    until: dt.date | None = Query(None, description="opened on or before (YYYY-MM-DD, UTC)"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
    state: AppState = Depends(get_state),
    who: Principal = Depends(require(REVIEWER)),
) -> dict[str, Any]:
    """Cases oldest first with filters (type, state, 学院, 学习中心, date) and counts by state and type under the same filters."""
    check_college(who, college)
    check_college(who, centre)
    base = select(ReviewCase, Student).outerjoin(Student, Student.id == ReviewCase.student_id)
    base = _scoped(base, who)
    if type_:
        base = base.where(ReviewCase.case_type == type_.value)
    if college:
        base = base.where(Student.college == college)
    if centre:
        base = base.where(Student.centre == centre)
    if since:
        base = base.where(ReviewCase.created_at >= day_start(since, "since"))
    if until:
        base = base.where(ReviewCase.created_at < day_end(until, "until"))
    with state.database().session() as s:
        by_state = {st: n for st, n in s.execute(base.with_only_columns(ReviewCase.state, func.count()).group_by(ReviewCase.state))}
        filtered = base.where(ReviewCase.state == state_.value) if state_ else base
        by_type = {t: n for t, n in s.execute(filtered.with_only_columns(ReviewCase.case_type, func.count()).group_by(ReviewCase.case_type))}
        total = sum(by_type.values())
        rows = s.execute(filtered.order_by(ReviewCase.id).limit(limit).offset(offset)).all()
        items = [_summary(c, st) for c, st in rows]
    return {"total": total, "counts": {"state": by_state, "type": by_type}, "items": items, "limit": limit, "offset": offset}


def _summary(c: ReviewCase, st: Student | None) -> dict[str, Any]:
    return {
        "id": c.id,
        "case_type": c.case_type,
        "state": c.state,
        "outcome": c.outcome,
        "assignee": c.assignee,
        "created_at": c.created_at.isoformat(timespec="seconds"),
        "ksh": st.ksh if st else None,
        "name": st.name if st else None,
        "college": st.college if st else None,
        "centre": st.centre if st else None,
    }


def _student(st: Student | None) -> dict[str, Any] | None:
    if st is None:
        return None
    return {"ksh": st.ksh, "student_no": st.student_no, "name": st.name, "id_masked": st.id_masked, "college": st.college,
            "centre": st.centre, "intake": st.intake, "status": st.status, "registration": st.registration}


def _evidence(s: Session, case: ReviewCase) -> dict[str, Any]:
    """Students, the photos and the scores behind a case (for a group case every member; `_visible_case` adds its pairs)."""
    students: list[Student | None] = [s.get(Student, case.student_id) if case.student_id else None]
    members: list[CaseMember] = []
    photos: dict[str, Photo | None] = {"a": None, "b": None}
    labels = {"a": "admission", "b": "graduation"}
    score = decision = pack = None
    codes: list[str] = []
    if case.subject_type == "comparison":
        cmp = s.get(Comparison, case.subject_id)
        if cmp is not None:
            photos = {"a": s.get(Photo, cmp.admission_photo_id), "b": s.get(Photo, cmp.graduation_photo_id)}
            probe = photos["b"]
            labels = {"a": "admission", "b": probe.kind if probe is not None else "graduation"}  # an intake case compares the ID card
            score, decision, pack, codes = cmp.score, cmp.decision, cmp.pack_id, list(cmp.reasons or [])
            students = [s.get(Student, cmp.student_id)]
    elif case.subject_type == "duplicate":
        dup = s.get(DuplicateCandidate, case.subject_id)
        if dup is not None:
            photos = {"a": s.get(Photo, dup.photo_a_id), "b": s.get(Photo, dup.photo_b_id)}
            students = [s.get(Student, dup.student_a_id), s.get(Student, dup.student_b_id)]
            labels = {"a": "student_a", "b": "student_b"}
            score, decision, pack = dup.score, "duplicate", dup.pack_id
        members = member_service.members_of(s, case.id)
        if members:
            students = [s.get(Student, m.student_id) for m in members]
    else:
        photo = s.get(Photo, case.subject_id) if case.subject_type == "photo" else None
        sid = photo.student_id if photo is not None else case.student_id
        if sid is not None:
            students = [s.get(Student, sid)]
            photos = {"a": current_photo(s, sid, "admission"), "b": current_photo(s, sid, "graduation")}
    views = _views(s, students, photos) if case.subject_type != "duplicate" and not members else {}
    return {"students": students, "photos": photos, "labels": labels, "score": score, "decision": decision, "pack": pack, "codes": codes,
            "members": members, "pairs": [], "views": views}


def _views(s: Session, students: list[Student | None], photos: dict[str, Photo | None]) -> dict[str, Photo | None]:
    """A single student's photo of every kind: the one the case compared where it has one, else the current one (None: missing)."""
    st = students[0] if len(students) == 1 else None
    if st is None:
        return {}
    compared = {p.kind: p for p in photos.values() if p is not None}
    return {k: compared.get(k) or current_photo(s, st.id, k) for k in VIEW_KINDS}


def _visible_case(s: Session, who: Principal, case_id: int, lock: bool = False) -> tuple[ReviewCase, dict[str, Any]]:
    """The case and its evidence if every student involved (every member of a group case) is in the key's scope; 404 otherwise."""
    case = s.get(ReviewCase, case_id)
    if case is None:
        raise ApiProblem("STORE_CASE_UNKNOWN")
    ev = _evidence(s, case)
    if who.scoped and not all(st is not None and who.sees(st.college, st.centre) for st in ev["students"]):
        raise ApiProblem("STORE_CASE_UNKNOWN")
    if ev["members"]:
        ev["pairs"] = member_service.pairs_of(s, case.id)
    return case, ev


def _detail(case: ReviewCase, ev: dict[str, Any]) -> dict[str, Any]:
    students = ev["students"]
    return {
        **_summary(case, students[0] if students else None),
        "notes": [{"at": n.at.isoformat(timespec="seconds"), "author": n.author, "text": n.text} for n in case.notes],
        "opened_by": case.opened_by,
        "resolved_by": case.resolved_by,
        "review_started_at": case.review_started_at.isoformat(timespec="seconds") if case.review_started_at else None,
        "resolved_at": case.resolved_at.isoformat(timespec="seconds") if case.resolved_at else None,
        "students": [_student(st) for st in students],
        "score": None if ev["score"] is None else round(ev["score"], 4),
        "decision": ev["decision"],
        "pack": ev["pack"],
        "reasons": [{"code": c, "message_zh": REASONS[c].zh, "message_en": REASONS[c].en} for c in ev["codes"] if c in REASONS],
        "photos": {
            side: None if p is None else {"label": ev["labels"][side], "photo_id": p.id, "check_status": p.check_status, "url": f"/api/v1/cases/{case.id}/photos/{side}"}
            for side, p in ev["photos"].items()
        },
        "views": [_view(case, kind, p, ev["photos"]) for kind, p in ev["views"].items()],
        **_group(case, ev),
    }


def _view(case: ReviewCase, kind: str, p: Photo | None, compared: dict[str, Photo | None]) -> dict[str, Any]:
    """One photo of the case view, labelled in Chinese and English; photo_id and url are None when the student has none."""
    zh, en = KIND_LABELS[kind]
    body: dict[str, Any] = {"kind": kind, "label_zh": zh, "label_en": en, "photo_id": None, "check_status": None, "compared": False, "has_image": False, "url": None}
    if p is not None:
        body.update(photo_id=p.id, check_status=p.check_status, compared=any(c is not None and c.id == p.id for c in compared.values()),
                    has_image=p.file_path is not None, url=f"/api/v1/cases/{case.id}/photos/{kind}")
    return body


def _group(case: ReviewCase, ev: dict[str, Any]) -> dict[str, Any]:
    """A group case's members (with verdicts and photo links), its photo pairs, and the member × member matrix of best scores."""
    members: list[CaseMember] = ev["members"]
    if not members:
        return {"members": [], "pairs": [], "matrix": []}
    pos = {m.student_id: i for i, m in enumerate(members)}
    matrix: list[list[float | None]] = [[None] * len(members) for _ in members]
    pairs = []
    for p in ev["pairs"]:
        i, j = pos.get(p.student_a_id), pos.get(p.student_b_id)
        if i is None or j is None:
            continue
        score = round(p.score, 4)
        pairs.append({"candidate_id": p.id, "a": members[i].id, "b": members[j].id, "photo_a": p.photo_a_id, "photo_b": p.photo_b_id, "score": score})
        for x, y in ((i, j), (j, i)):
            matrix[x][y] = score if matrix[x][y] is None else max(matrix[x][y], score)
    out = []
    for m, st in zip(members, ev["students"], strict=True):
        out.append({
            "member_id": m.id,
            **(_student(st) or {}),
            "photo_id": m.photo_id,
            "photo_url": f"/api/v1/cases/{case.id}/members/{m.id}/photo",
            "outcome": m.outcome,
            "decided_by": m.decided_by,
            "decided_at": m.decided_at.isoformat(timespec="seconds") if m.decided_at else None,
        })
    return {"members": out, "pairs": pairs, "matrix": matrix}


PDF, ZIP = "application/pdf", "application/zip"
DOSSIER_MAX = 200


def _dossier(state: AppState, who: Principal, case_ids: list[int]) -> Response:
    """The filing dossier (备案材料) of cases all in the key's scope (404 names none outside it); the export is audited."""
    from verifier.batch.dossier_pdf import package

    def build(s: Session) -> tuple[str, bytes]:
        for case_id in case_ids:
            _visible_case(s, who, case_id)
        name, data = package(s, state.store, case_ids)
        for case_id in dict.fromkeys(case_ids):
            audit.record(s, who.actor, "case.dossier", "case", case_id, after={"file": name})
        return name, data

    name, data = state.database().transaction(build)
    media = PDF if name.endswith(".pdf") else ZIP
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/dossiers", response_class=Response, responses={200: {"content": {ZIP: {}, PDF: {}}}})
def dossiers(
    ids: list[int] = Query(..., alias="id", min_length=1, max_length=DOSSIER_MAX, description="case ids (repeat id=)"),
    state: AppState = Depends(get_state),
    who: Principal = Depends(require(REVIEWER, ACADEMIC)),
) -> Response:
    """Several cases' dossiers as one zip of PDFs (one id: the PDF itself)."""
    if any(not 1 <= i <= 2**31 - 1 for i in ids):
        raise ApiProblem("STORE_CASE_UNKNOWN")
    return _dossier(state, who, ids)


@router.get("/{case_id}/dossier", response_class=Response, responses={200: {"content": {PDF: {}}}})
def dossier(case_id: int = CASE_ID, state: AppState = Depends(get_state), who: Principal = Depends(require(REVIEWER, ACADEMIC))) -> Response:
    """One case's filing dossier as an A4 PDF in Chinese."""
    return _dossier(state, who, [case_id])


@router.get("/{case_id}")
def get_case(case_id: int = CASE_ID, state: AppState = Depends(get_state), who: Principal = Depends(require(REVIEWER))) -> dict[str, Any]:
    """A case with its students (身份证号 masked), score, decision, reasons, the two compared photos and, for a single
    student's case, `views`: the student's ID-card, admission and graduation photos (a missing one has no url)."""
    with state.database().session() as s:
        case, ev = _visible_case(s, who, case_id)
        return _detail(case, ev)


@router.get("/{case_id}/photos/{side}", response_class=Response, responses=IMAGE_CONTENT)
def case_photo(
    case_id: int = CASE_ID,
    side: str = Path(pattern="^(a|b|id_card|admission|graduation)$", description="a or b: the compared pair; a photo kind: that photo of the case view"),
    state: AppState = Depends(get_state),
    who: Principal = Depends(require(REVIEWER)),
) -> Response:
    """One of the case's two compared photos, or one of its case view by kind; the view is audited."""
    db = state.database()

    def read(s: Session) -> bytes:
        case, ev = _visible_case(s, who, case_id)
        photo = ev["photos"].get(side) if side in ("a", "b") else ev["views"].get(side)
        if photo is None:
            raise ApiProblem("API_NOT_FOUND", f"case has no photo {side}")
        data = read_photo(state.store, photo)
        audit.record(s, who.actor, "photo.view", "photo", photo.id, case=case.id)
        return data

    data = db.transaction(read)
    return _image(data)


def _image(data: bytes) -> Response:
    return Response(data, media_type=image_media_type(data), headers={"Cache-Control": "no-store"})


@router.get("/{case_id}/members/{member_id}/photo", response_class=Response, responses=IMAGE_CONTENT)
def member_photo(
    case_id: int = CASE_ID,
    member_id: int = Path(ge=1, le=2**31 - 1),
    state: AppState = Depends(get_state),
    who: Principal = Depends(require(REVIEWER)),
) -> Response:
    """The photo that put a member in a group case; the view is audited."""

    def read(s: Session) -> bytes:
        case, ev = _visible_case(s, who, case_id)
        member = next((m for m in ev["members"] if m.id == member_id), None)
        photo = s.get(Photo, member.photo_id) if member is not None else None
        if photo is None:
            raise ApiProblem("STORE_CASE_MEMBER_UNKNOWN", f"case {case.id} member {member_id}")
        data = read_photo(state.store, photo)
        audit.record(s, who.actor, "photo.view", "photo", photo.id, case=case.id)
        return data

    return _image(state.database().transaction(read))


# A change refused because another reviewer got there first: the 409 carries the case as it now stands.
CONFLICT_CODES = ("API_CASE_CLAIMED", "STORE_CASE_TRANSITION_INVALID")


def _change(state: AppState, who: Principal, case_id: int, fn: Any) -> dict[str, Any]:
    db = state.database()

    def unit(s: Session) -> dict[str, Any]:
        case, _ = _visible_case(s, who, case_id)
        fn(s, case)
        case, ev = _visible_case(s, who, case_id)
        return _detail(case, ev)

    try:
        return db.transaction(unit)
    except (ApiProblem, VerifierError) as exc:
        code = exc.code if isinstance(exc, ApiProblem) else exc.reason.code
        if code not in CONFLICT_CODES:
            raise
        current = db.read(lambda s: _detail(*_visible_case(s, who, case_id)))  # the state the other reviewer left
        raise ApiProblem(code, exc.detail, headers=getattr(exc, "headers", None), current=current) from None


@router.post("/{case_id}/claim")
def claim(case_id: int = CASE_ID, state: AppState = Depends(get_state), who: Principal = Depends(require(REVIEWER))) -> dict[str, Any]:
    """open → in_review, assigned to this key; claiming a case one already holds is a no-op."""

    def fn(s: Session, case: ReviewCase) -> None:
        if case.state == "in_review" and case.assignee == who.actor:
            return
        if case.state == "in_review":
            raise ApiProblem("API_CASE_CLAIMED")
        case_service.start_review(s, case.id, who.actor)

    return _change(state, who, case_id, fn)


def _held(case: ReviewCase, who: Principal) -> None:
    if case.state == "in_review" and case.assignee != who.actor:
        raise ApiProblem("API_CASE_CLAIMED")


@router.post("/{case_id}/release")
def release(case_id: int = CASE_ID, state: AppState = Depends(get_state), who: Principal = Depends(require(REVIEWER))) -> dict[str, Any]:
    """in_review → open: hand the case back to the queue."""

    def fn(s: Session, case: ReviewCase) -> None:
        _held(case, who)
        case_service.release(s, case.id, who.actor)

    return _change(state, who, case_id, fn)


@router.post("/{case_id}/notes")
def add_note(body: NoteIn, case_id: int = CASE_ID, state: AppState = Depends(get_state), who: Principal = Depends(require(REVIEWER))) -> dict[str, Any]:
    """Append a note to an unresolved case."""
    return _change(state, who, case_id, lambda s, case: case_service.add_note(s, case.id, who.actor, body.note))


@router.post("/{case_id}/resolve")
def resolve(body: ResolveIn, case_id: int = CASE_ID, state: AppState = Depends(get_state), who: Principal = Depends(require(REVIEWER))) -> dict[str, Any]:
    """Close a case with an outcome and a note; an open case is claimed first. needs_new_photo is stored as
    photo_replaced and opens a photo_correction case for the student, so the re-collection is tracked."""

    def fn(s: Session, case: ReviewCase) -> None:
        _held(case, who)
        if case.state == "open":
            case_service.start_review(s, case.id, who.actor)
        outcome = "photo_replaced" if body.outcome.value == "needs_new_photo" else body.outcome.value
        note = body.note if body.outcome.value != "needs_new_photo" else ("需要重新采集照片 / needs a new photo. " + body.note).strip()
        case_service.resolve(s, case.id, outcome, who.actor, note)
        if body.outcome.value == "needs_new_photo" and case.student_id is not None:
            case_service.open_case(s, "photo_correction", "student", case.student_id, case.student_id, actor=who.actor, note=f"from case {case.id}")
        state.metrics.decision("case_outcome", body.outcome.value)

    return _change(state, who, case_id, fn)


@router.post("/{case_id}/members")
def decide_members(body: MembersIn, case_id: int = CASE_ID, state: AppState = Depends(get_state), who: Principal = Depends(require(REVIEWER))) -> dict[str, Any]:
    """Give members of a group case a verdict (confirmed: the same person as the other confirmed members; dismissed: nobody
    else in the group), each audited; an open case is claimed first, and the case resolves once every member has one."""

    def fn(s: Session, case: ReviewCase) -> None:
        if case.case_type != "duplicate_face":
            raise ApiProblem("STORE_CASE_TRANSITION_INVALID", f"case {case.id} is not a group case")
        _held(case, who)
        if body.pairs_seen is not None and body.pairs_seen != len(member_service.pairs_of(s, case.id)):
            raise ApiProblem("STORE_CASE_TRANSITION_INVALID", f"case {case.id} gained pairs since it was shown; reload it")
        if case.state == "open":
            case_service.start_review(s, case.id, who.actor)
        member_service.decide(s, case.id, {v.member_id: v.outcome.value for v in body.verdicts}, who.actor)
        if body.note:
            case_service.add_note(s, case.id, who.actor, body.note)
        if member_service.all_decided(s, case.id):
            outcome = member_service.group_outcome(member_service.members_of(s, case.id))
            case_service.resolve(s, case.id, outcome, who.actor)
            state.metrics.decision("case_outcome", outcome)

    return _change(state, who, case_id, fn)
