"""Students: roster import, photo upload or replacement (a correction keeps history), photo fetch, compare one student now.

A student has three kinds of photo: 录取照片 (admission), 毕业照片 (graduation) and 身份证照片 (id_card: the chip
photo, or the portrait the worker cuts from a scan of the card's front; the rest of a scan is never stored).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path as FsPath
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, File, Path, Query, UploadFile
from fastapi.responses import Response

from verifier.batch.decision import StudentDecision, decide_student
from verifier.common.files import write_output
from verifier.batch.pairing import GRADUATION
from verifier.batch.runner import STORE_DECISION, findings_of
from verifier.batch.worker import PhotoJob, PhotoWork, process_chunk
from verifier.common.choices import PHOTO_KINDS
from verifier.common.reasons import REASONS, Severity
from verifier.core.decode import sniff_format
from verifier.photos.roster import RosterLimits, load_roster
from verifier.photos.spec import display_name, ksh_from_name
from verifier.store import audit, embeddings
from verifier.store.cases import open_case
from verifier.store.comparisons import latest_for_student, record_comparison
from verifier.store.models import Photo
from verifier.store.photos import add_photo, current_photo, history, read_photo, set_check_result
from verifier.store.models import utcnow
from verifier.store.students import ID_MISMATCH, RejectedRow, get_student, import_roster

from api.auth import ACADEMIC, ADMISSIONS, require, visible_student
from api.keys import Principal
from api.limits import run_db
from api.problems import ApiProblem
from api.schemas import PhotoKind
from api.state import AppState, get_state

router = APIRouter(prefix="/api/v1", tags=["students"])
KSH = Path(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z]+$", description="考生号")
IMAGE_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp"}
IMAGE_CONTENT: dict[int | str, dict[str, Any]] = {200: {"content": {m: {} for m in IMAGE_TYPES.values()}}}


def image_media_type(data: bytes) -> str:
    """The media type of stored photo bytes (JPEG, PNG or BMP: an ID-card chip photo may be any of them)."""
    return IMAGE_TYPES.get(sniff_format(data) or "", "application/octet-stream")


def _reason_objs(codes: list[str]) -> list[dict[str, Any]]:
    return [{"code": c, "message_zh": REASONS[c].zh, "message_en": REASONS[c].en} for c in codes if c in REASONS]


def _photo_meta(p: Photo) -> dict[str, Any]:
    return {
        "photo_id": p.id,
        "kind": p.kind,
        "current": p.is_current,
        "sha256": p.sha256,
        "bytes": p.byte_size,
        "width": p.width,
        "height": p.height,
        "check_status": p.check_status,
        "check_codes": list(p.check_codes or []),
        "replaces": p.replaces_id,
        "replaced_by": p.replaced_by_id,
        "created_at": p.created_at.isoformat(timespec="seconds"),
        "purged": p.file_path is None,
    }


@router.post("/rosters")
async def import_roster_file(
    file: UploadFile = File(description="roster CSV (UTF-8 or GBK/GB18030) or XLSX from the 教务管理系统"),
    state: AppState = Depends(get_state),
    who: Principal = Depends(require(ADMISSIONS, ACADEMIC)),
) -> dict[str, Any]:
    """Upsert the roster's students by 考生号; a scoped key only updates students already on its 学院/学习中心 rolls.

    For a scoped key, a new 考生号 and one that exists in another 学院 get the same refusal
    (API_STUDENT_OUT_OF_SCOPE), so an import never tells who is on the rolls elsewhere; refusals are audited.
    ID-number mismatches are limited per key (VERIFIER_API_ID_MISMATCH_LIMIT per VERIFIER_API_ID_MISMATCH_WINDOW).

    Parsing is CPU work an upload can make expensive, so it takes an inference slot (503 when none is free)
    and runs under the roster caps of the settings.
    """
    data = await file.read()
    suffix = ".xlsx" if data[:2] == b"PK" else ".csv"
    db = state.database()
    key = state.settings.id_key_bytes()

    def work() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="roster-") as tmp:
            path = FsPath(tmp) / f"api-upload{suffix}"
            write_output(path, data)
            roster = load_roster(path, limits=RosterLimits.from_settings(state.settings))
        refused: list[RejectedRow] = []
        if who.scoped:
            with db.session() as s:
                for ksh, row in list(roster.students.items()):
                    stored = get_student(s, ksh)
                    if stored is None or not who.sees(row.college, row.centre) or not who.sees(stored.college, stored.centre):
                        refused.append(RejectedRow(ksh, "API_STUDENT_OUT_OF_SCOPE"))
                        del roster.students[ksh]

        def unit(s: Any) -> Any:
            since = utcnow() - dt.timedelta(seconds=state.settings.api_id_mismatch_window_s)
            budget = max(0, state.settings.api_id_mismatch_limit - audit.count_since(s, who.actor, ID_MISMATCH, since))
            if refused:
                audit.record(s, who.actor, "roster.scope_refused", "roster", "api-upload", after={"rows": len(refused), "ksh": [r.ksh for r in refused[:200]]})
            return import_roster(s, roster, key, who.actor, id_budget=budget)

        report = db.transaction(unit)
        report.rejected.extend(refused)
        return {"counts": report.counts(), "rejected": [r.to_dict() for r in report.rejected], "encoding": roster.encoding, "format": roster.format}

    return await state.limiter.run(work)


@router.get("/students/{ksh}")
def student_detail(ksh: str = KSH, state: AppState = Depends(get_state), who: Principal = Depends(require(ADMISSIONS, ACADEMIC))) -> dict[str, Any]:
    """A student's record (身份证号 masked), the photo history of every kind (admission, graduation, id_card) and the latest comparison."""
    with state.database().session() as s:
        st = visible_student(s, who, ksh)
        cmp = latest_for_student(s, st.id)
        return {
            "ksh": st.ksh,
            "student_no": st.student_no,
            "name": st.name,
            "id_masked": st.id_masked,
            "college": st.college,
            "centre": st.centre,
            "intake": st.intake,
            "status": st.status,
            "registration": st.registration,
            "photos": {k: [_photo_meta(p) for p in history(s, st.id, k)] for k in PHOTO_KINDS},
            "latest_comparison": None
            if cmp is None
            else {"id": cmp.id, "score": cmp.score, "decision": cmp.decision, "reasons": _reason_objs(list(cmp.reasons or [])), "pack": cmp.pack_id},
        }


def _fail_problem(work: PhotoWork) -> ApiProblem:
    first = next((r for r in work.reasons if r.get("severity") == Severity.FAIL.value), work.reasons[0] if work.reasons else None)
    code = first["code"] if first else "CHECK_INTERNAL_ERROR"
    return ApiProblem(code, "the photo failed its checks and was not stored", reasons=work.reasons, check_status=work.status)


@router.put("/students/{ksh}/photos/{kind}", status_code=201)
async def upload_photo(
    ksh: str = KSH,
    kind: PhotoKind = Path(description="admission, graduation or id_card (a scan of the card's front is cut to its portrait)"),
    file: UploadFile = File(description="the photo"),
    keep_failing: bool = Query(False, description="store a photo that fails spec or quality checks (with its fail status); unreadable images are always refused"),
    state: AppState = Depends(get_state),
    who: Principal = Depends(require(ADMISSIONS)),
) -> dict[str, Any]:
    """Upload or replace a photo: checked and embedded first; a failing photo is refused (422) with every reason.

    A replacement is a correction (照片勘误): the previous photo stays in the history, linked both ways.
    With keep_failing, a photo that decodes but fails its checks is stored with status fail (as the batch does).
    An id_card upload that is a scan of the card's front stores only the portrait cut from it (IDCARD_SCAN_CROPPED);
    a scan without one is refused (IDCARD_SCAN_NO_PORTRAIT), or with keep_failing recorded as a row with no file.
    """
    data = await file.read()
    db = state.database()

    def find() -> None:
        with db.session() as s:
            visible_student(s, who, ksh)

    await run_db(find)
    pipeline = state.require_pipeline()
    name = file.filename or f"{ksh}.jpg"
    named = ksh_from_name(name, state.profiles["admission"])  # a name that is a 考生号 must be this student's
    if named is not None and named != ksh:
        raise ApiProblem("FILE_NAME_OTHER_STUDENT", "the file is named for a different 考生号 than the student it is uploaded to")
    t0 = time.perf_counter()
    work = (await state.limiter.run(process_chunk, [PhotoJob(ksh, kind.value, name, data)]))[0]
    state.metrics.inference.labels("upload").observe(time.perf_counter() - t0)
    state.metrics.decision("photo_check", work.status)
    undecodable = any(c.startswith(("FILE_", "IMAGE_", "CHECK_INTERNAL")) for c in work.codes)
    if work.status == "fail" and (undecodable or not keep_failing):
        raise _fail_problem(work)
    store, pack_id = state.store, pipeline.pack.id

    def write(s: Any) -> dict[str, Any]:
        st = visible_student(s, who, ksh)
        before = current_photo(s, st.id, kind.value)
        photo = add_photo(
            s, store, st, kind.value, work.stored_bytes(data), f"api:{display_name(name)}", work.status, work.codes, work.width, work.height,
            actor=who.actor, origin_sha256=work.origin_sha256,
        )
        set_check_result(s, photo, work.status, work.codes, actor=who.actor)
        if work.embedding is not None:
            embeddings.put(s, photo.id, pack_id, work.embedding)
        unchanged = before is not None and before.id == photo.id
        return {
            "ksh": st.ksh,
            "kind": kind.value,
            "photo_id": photo.id,
            "created": not unchanged,
            "replaced_photo_id": None if unchanged or before is None else before.id,
            "check_status": work.status,
            "reasons": work.reasons,
        }

    return await run_db(db.transaction, write)


@router.get("/students/{ksh}/photos/{kind}", response_class=Response, responses=IMAGE_CONTENT)
def fetch_photo(
    ksh: str = KSH,
    kind: PhotoKind = Path(),
    photo_id: int | None = Query(None, ge=1, le=2**31 - 1, description="an earlier photo of the history; default the current one"),
    state: AppState = Depends(get_state),
    who: Principal = Depends(require(ADMISSIONS, ACADEMIC)),
) -> Response:
    """The photo's bytes (admissions and academic affairs only); every view is written to the audit log."""
    db = state.database()

    def read(s: Any) -> bytes:
        st = visible_student(s, who, ksh)
        if photo_id is None:
            photo = current_photo(s, st.id, kind.value)
        else:
            photo = s.get(Photo, photo_id)
            photo = photo if photo is not None and photo.student_id == st.id and photo.kind == kind.value else None
        if photo is None:
            raise ApiProblem("API_NOT_FOUND", f"no {kind.value} photo")
        data = read_photo(state.store, photo)
        audit.record(s, who.actor, "photo.view", "photo", photo.id, after={"kind": kind.value})
        return data

    data = db.transaction(read)
    return Response(data, media_type=image_media_type(data), headers={"Cache-Control": "no-store"})


@router.post("/students/{ksh}/compare")
async def compare_student(ksh: str = KSH, state: AppState = Depends(get_state), who: Principal = Depends(require(ACADEMIC))) -> dict[str, Any]:
    """Compare the student's current graduation photo with the admission photo now; flagged pairs open a review case."""
    db = state.database()
    pipeline = state.require_pipeline()
    pack_id, store = pipeline.pack.id, state.store

    def load() -> tuple[int, dict[str, Photo | None], dict[str, np.ndarray | None], list[PhotoJob]]:
        with db.session() as s:
            st = visible_student(s, who, ksh)
            photos = {k: current_photo(s, st.id, k) for k in ("admission", "graduation")}
            vectors: dict[str, np.ndarray | None] = {}
            todo: list[PhotoJob] = []
            for k, p in photos.items():
                vectors[k] = embeddings.get_or_none(s, p.id, pack_id) if p is not None else None
                if p is not None and vectors[k] is None and p.file_path and not findings_of(p).blocking:
                    todo.append(PhotoJob(st.ksh, k, f"{st.ksh}.jpg", read_photo(store, p)))
            return st.id, photos, vectors, todo

    student_id, photos, vectors, todo = await run_db(load)
    if todo:
        t0 = time.perf_counter()
        works = await state.limiter.run(process_chunk, todo)
        state.metrics.inference.labels("compare_student").observe(time.perf_counter() - t0)
        for job, work in zip(todo, works, strict=True):
            vectors[job.kind] = work.embedding
            photo = photos[job.kind]
            assert photo is not None

            def keep(s: Any, photo_id: int = photo.id, work: PhotoWork = work) -> None:
                p = s.get(Photo, photo_id)
                set_check_result(s, p, work.status, work.codes, actor=who.actor)
                if work.embedding is not None:
                    embeddings.put(s, photo_id, pack_id, work.embedding)

            await run_db(db.transaction, keep)
            photos[job.kind] = await run_db(_reload, db, photo.id)
    adm, grad = photos["admission"], photos["graduation"]
    score = float(vectors["admission"] @ vectors["graduation"]) if vectors.get("admission") is not None and vectors.get("graduation") is not None else None
    outcome = decide_student(findings_of(adm), findings_of(grad), score, pipeline.thresholds)
    state.metrics.decision("student_compare", outcome.decision.value)
    body: dict[str, Any] = {
        "ksh": ksh,
        "decision": outcome.decision.value,
        "score": None if score is None else round(score, 4),
        "thresholds": pipeline.thresholds.to_dict(),
        "reasons": [r.to_dict() for r in outcome.reasons],
        "comparison_id": None,
        "created": False,
        "case_id": None,
    }
    if outcome.decision is StudentDecision.MISSING_PHOTO or adm is None or grad is None:
        return body

    def record(s: Any) -> dict[str, Any]:
        a, g = s.get(Photo, adm.id), s.get(Photo, grad.id)
        rec = record_comparison(s, a, g, pack_id, outcome.score, STORE_DECISION[outcome.decision], [r.code for r in outcome.reasons])
        case_id = None
        if rec.created:
            audit.record(s, who.actor, "comparison.record", "comparison", rec.comparison.id, after={"decision": rec.comparison.decision, "pack": pack_id})
            case_type = GRADUATION.cases.get(outcome.decision)
            if case_type:
                case_id = open_case(s, case_type, "comparison", rec.comparison.id, student_id, actor=who.actor).case.id
        return {"comparison_id": rec.comparison.id, "created": rec.created, "case_id": case_id}

    body.update(await run_db(db.transaction, record))
    return body


def _reload(db: Any, photo_id: int) -> Photo | None:
    with db.session() as s:
        return s.get(Photo, photo_id)
