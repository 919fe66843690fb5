"""The app factory: one FastAPI app per (settings, database); models load once at start-up, readiness says when."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from verifier import __version__
from verifier.common.settings import Settings
from verifier.store.db import resolve_url
from verifier.store.connect import open_database

from api import problems
from api.jobs import JobManager
from api.limits import BodyLimitMiddleware, TimeoutMiddleware
from api.metrics import MetricsMiddleware
from api.security import AuthFirstMiddleware, SecurityHeadersMiddleware
from api.routers import cases, exports, health, jobs, keys, lists, photos, students, web
from api.state import AppState

log = logging.getLogger("api")
STATIC = Path(str(resources.files("api") / "static"))  # StaticFiles serves a folder
DOCS_ASSETS = "/docs-assets"
DESCRIPTION = """照片核验与人脸比对服务 / Photo checks and face comparison for student records.

Every endpoint except `/healthz` and `/readyz` needs an API key: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
Roles: `admissions` (photo checks, uploads, corrections, roster import), `academic_affairs` (comparisons, jobs, exports,
roster import), `reviewer` (cases), `admin` (keys). A key limited to 学院/学习中心 sees only those students; a student
outside its scope answers 404 exactly like one that does not exist. Errors are `application/problem+json` with a stable
`code` and `message_zh` / `message_en` (see docs/REASONS.md)."""


def api_settings(settings: Settings) -> Settings:
    """The settings the service runs with: the decoder's pixel cap lowered to the API's cap, one inference thread per slot."""
    return dataclasses.replace(settings, max_pixels=min(settings.max_pixels, settings.api_max_pixels), threads=1)


def _load(state: AppState, pipeline: object | None) -> None:
    """Open the database, load the models and prepare the in-process batch worker (blocking; run in a thread)."""
    from verifier.batch.worker import init_worker
    from verifier.core.pipeline import Pipeline

    state.db = open_database(state.db_url, settings=dataclasses.replace(state.settings, db_retry_s=state.settings.api_db_retry_s))
    state.jobs = JobManager(state.db, state.settings)
    state.pipeline = pipeline or Pipeline.load(settings=state.settings, threads=1)  # type: ignore[assignment]
    init_worker(None, None, state.profiles, pipeline=state.pipeline)
    log.info("ready: pack %s", state.pipeline.pack.id)


def create_app(settings: Settings | None = None, db_url: str | None = None, pipeline: object | None = None, load: bool = True) -> FastAPI:
    """Build the app. `pipeline` reuses a loaded one (tests); `load=False` skips start-up loading (OpenAPI export)."""
    settings = api_settings(settings or Settings.from_env())
    url = resolve_url(db_url, settings)
    state = AppState.build(settings, url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if load:
            task = asyncio.get_running_loop().run_in_executor(None, _load, state, pipeline)
            task.add_done_callback(lambda f: f.exception() and log.error("start-up failed: %s", f.exception()))
        try:
            yield
        finally:
            if task is not None and not task.done():
                await asyncio.wait_for(asyncio.shield(task), timeout=120)
            if state.jobs is not None:
                await asyncio.get_running_loop().run_in_executor(None, state.jobs.shutdown)
            if state.db is not None:
                state.db.dispose()

    app = FastAPI(
        title="verifier",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.add_api_route("/docs", _docs_page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    app.state.verifier = state
    problems.install(app)
    for r in (health.router, photos.router, students.router, cases.router, jobs.router, exports.router, keys.router, lists.router, web.router):
        app.include_router(r)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
    app.add_middleware(TimeoutMiddleware, seconds=settings.api_timeout_s)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes, timeout_s=settings.api_body_timeout_s)
    app.add_middleware(AuthFirstMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def _docs_page() -> HTMLResponse:
    """Swagger UI from the files of the installed swagger-ui-bundle package: the office network may have no internet."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="verifier API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
    )
