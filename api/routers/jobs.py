"""Background jobs: the batch comparison, the intake check and the duplicate sweep, with status and cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam

from verifier.batch.pairing import INTAKE
from verifier.batch.runner import BatchOptions
from verifier.core.packs import load_pack

from api.auth import ACADEMIC, ADMISSIONS, require
from api.jobs import Job, JobManager, sweep_function
from api.keys import Principal
from api.problems import ApiProblem
from api.schemas import BatchJobIn, IntakeJobIn, SweepJobIn
from api.state import AppState, get_state

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
JOB_ID = PathParam(min_length=1, max_length=32, pattern="^[0-9a-f]+$")


def _jobs(state: AppState) -> JobManager:
    if state.jobs is None:
        raise ApiProblem("API_NOT_READY", "jobs not available", headers={"Retry-After": "5"})
    return state.jobs


def files_root(state: AppState) -> Path:
    """The folder job inputs must lie in (VERIFIER_API_FILES_ROOT, default <home>/incoming)."""
    return (state.settings.api_files_root or state.settings.home / "incoming").resolve()


def inside(root: Path, relative: str) -> Path:
    """root/relative, refusing absolute paths and anything that resolves outside root (422 API_PATH_OUTSIDE_ROOT)."""
    if "\x00" in relative or Path(relative).is_absolute():
        raise ApiProblem("API_PATH_OUTSIDE_ROOT", "give a path relative to the server's files folder")
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise ApiProblem("API_PATH_OUTSIDE_ROOT", "the path leaves the server's files folder")
    return target


def _inputs(state: AppState, roster: str, *folders: str) -> tuple[Path, ...]:
    """The roster file and photo folders of a job, each inside the files folder and present."""
    root = files_root(state)
    roster_path, dirs = inside(root, roster), [inside(root, f) for f in folders]
    if not roster_path.is_file():
        raise ApiProblem("ROSTER_UNREADABLE", "roster file not found under the files folder")
    for folder in dirs:
        if not folder.is_dir():
            raise ApiProblem("BATCH_FOLDER_MISSING", "folder not found under the files folder")
    return (roster_path, *dirs)


@router.post("/batch-compare", status_code=202)
def start_batch(body: BatchJobIn, state: AppState = Depends(get_state), who: Principal = Depends(require(ACADEMIC))) -> dict[str, Any]:
    """Start the batch comparison (graduation vs admission photos of a roster) in the background; resumable like the CLI."""
    if who.scoped:
        raise ApiProblem("API_SCOPE_FORBIDDEN", "a batch covers the whole roster; use an unscoped key")
    roster, adm, grad = _inputs(state, body.roster, body.admission_dir, body.graduation_dir)
    options = BatchOptions(
        roster=roster,
        admission_dir=adm,
        graduation_dir=grad,
        db_url=state.db_url,
        workers=state.settings.api_job_workers,
        graduation_key=body.graduation_key,
        actor=who.actor,
    )
    job = _jobs(state).start_batch(options, body.model_dump(), who.actor)
    return job.public()


@router.post("/intake-check", status_code=202)
def start_intake(body: IntakeJobIn, state: AppState = Depends(get_state), who: Principal = Depends(require(ADMISSIONS, ACADEMIC))) -> dict[str, Any]:
    """Start the intake check (each admission photo checked, then compared with the ID-card photo) in the background."""
    if who.scoped:
        raise ApiProblem("API_SCOPE_FORBIDDEN", "an intake check covers the whole roster; use an unscoped key")
    roster, adm, cards = _inputs(state, body.roster, body.admission_dir, body.id_card_dir)
    options = BatchOptions(
        roster=roster, admission_dir=adm, graduation_dir=cards, db_url=state.db_url, workers=state.settings.api_job_workers,
        actor=who.actor, pairing=INTAKE,
    )
    load_pack(state.settings.pack).thresholds_for(INTAKE.probe)  # refused before a child starts
    return _jobs(state).start_intake(options, body.model_dump(), who.actor).public()


@router.post("/duplicate-sweep", status_code=202)
def start_sweep(body: SweepJobIn, state: AppState = Depends(get_state), who: Principal = Depends(require(ACADEMIC))) -> dict[str, Any]:
    """Start the duplicate-face sweep (new and replaced photos against all, or everything with full; 501 when not in this build)."""
    if who.scoped:
        raise ApiProblem("API_SCOPE_FORBIDDEN", "a sweep covers the whole population; use an unscoped key")
    if sweep_function() is None:
        raise ApiProblem("API_SWEEP_UNAVAILABLE")
    return _jobs(state).start_sweep(body.model_dump(), who.actor, body.full).public()


def visible(job: Job, who: Principal) -> bool:
    """A job's scope is its starter's: batch and sweep cover the whole population, so only unscoped keys start them.

    An unscoped key sees every job; a scoped key only jobs it started itself (none today), never a population-wide one.
    """
    return not who.scoped or job.actor == who.actor


def _visible_job(state: AppState, job_id: str, who: Principal) -> Job:
    """The job if the key may see it; otherwise the same 404 API_JOB_UNKNOWN as for a job that does not exist."""
    job = _jobs(state).get(job_id)
    if not visible(job, who):
        raise ApiProblem("API_JOB_UNKNOWN")
    return job


@router.get("")
def list_jobs(state: AppState = Depends(get_state), who: Principal = Depends(require(ACADEMIC))) -> dict[str, Any]:
    """Jobs this server started that the key may see, newest first."""
    manager = _jobs(state)
    return {"items": [j for j in manager.list() if visible(manager.get(j["id"]), who)]}


@router.get("/{job_id}")
def job_status(job_id: str = JOB_ID, state: AppState = Depends(get_state), who: Principal = Depends(require(ACADEMIC))) -> dict[str, Any]:
    """State, progress (students done of total) and the run's counts from the store."""
    return _jobs(state).status(_visible_job(state, job_id, who).id)


@router.post("/{job_id}/cancel", status_code=202)
def cancel_job(job_id: str = JOB_ID, state: AppState = Depends(get_state), who: Principal = Depends(require(ACADEMIC))) -> dict[str, Any]:
    """Stop a running job: photos in flight finish, the run stays resumable."""
    return _jobs(state).cancel(_visible_job(state, job_id, who).id, who.actor).public()
