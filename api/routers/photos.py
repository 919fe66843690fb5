"""Photo checks (spec + quality) and comparison of two uploaded photos: no store, inference bounded by the limiter."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, File, Form, UploadFile

from verifier.photos.checks import check_photo

from api.auth import ACADEMIC, ADMISSIONS, require
from api.keys import Principal
from api.problems import ApiProblem
from api.schemas import CheckOut, CompareOut, ProfileName
from api.state import AppState, get_state

router = APIRouter(prefix="/api/v1", tags=["photos"])


@router.post("/photos/check", response_model=CheckOut)
async def check(
    file: UploadFile = File(description="the photo, named as submitted (<考生号>.jpg for admission photos)"),
    profile: ProfileName = Form(ProfileName.admission),
    state: AppState = Depends(get_state),
    _who: Principal = Depends(require(ADMISSIONS)),
) -> CheckOut:
    """Check one photo against a profile; a failing photo is a 200 with status fail and every reason."""
    data = await file.read()
    pipeline = state.require_pipeline()
    t0 = time.perf_counter()
    result = await state.limiter.run(check_photo, data, state.profiles[profile.value], pipeline, None, file.filename or "")
    state.metrics.inference.labels("check").observe(time.perf_counter() - t0)
    state.metrics.decision("check", result.status)
    return CheckOut(**result.to_dict())


@router.post("/compare", response_model=CompareOut)
async def compare(
    a: UploadFile = File(description="first photo (e.g. admission)"),
    b: UploadFile = File(description="second photo (e.g. graduation)"),
    state: AppState = Depends(get_state),
    _who: Principal = Depends(require(ACADEMIC)),
) -> CompareOut:
    """Compare two uploaded photos; an unusable photo (no face, not an image…) is a 422 with its reason code."""
    da, db = await a.read(), await b.read()
    pipeline = state.require_pipeline()
    t0 = time.perf_counter()
    result = await state.limiter.run(pipeline.compare, da, db)
    state.metrics.inference.labels("compare").observe(time.perf_counter() - t0)
    out = result.to_dict()
    if result.decision is None:
        r = result.reason
        side = "a" if result.a.reason is not None else "b"
        state.metrics.decision("compare", "unusable")
        raise ApiProblem(r.code, f"photo {side}: {r.message_en}", side=side, measured=r.measured, limit=r.limit, reasons=[r.to_dict()])
    state.metrics.decision("compare", out["decision"])
    return CompareOut(**out, pack=pipeline.pack.id)
