"""Liveness, readiness (database reachable, models loaded) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import principal
from api.keys import Principal
from api.schemas import Health, Ready
from api.state import AppState, get_state

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers (no key needed)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}})
def readyz(state: AppState = Depends(get_state)) -> JSONResponse:
    """200 once the database answers and the models are loaded, else 503 (no key needed)."""
    r = state.readiness()
    return JSONResponse(r, status_code=200 if r["ready"] else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(state: AppState = Depends(get_state), _who: Principal = Depends(principal)) -> Response:
    """Prometheus text format; any valid key (the metrics hold no personal data)."""
    state.readiness()
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
