"""Runs: each batch run or sweep with its parameters, counts, start, end and final status."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from verifier.store import audit
from verifier.store.models import RUN_STATUSES, Run, utcnow


def start_run(session: Session, kind: str, parameters: dict[str, Any] | None = None, actor: str = "system") -> Run:
    """Record that a run began (status running); commit it so a crash leaves a trace."""
    run = Run(kind=kind, actor=actor, parameters=dict(parameters or {}), counts={}, status="running")
    session.add(run)
    session.flush()
    audit.record(session, actor, "run.start", "run", run.id, after={"kind": kind})
    return run


def update_counts(session: Session, run_id: int, counts: dict[str, Any]) -> Run:
    """Replace the run's counts (progress so far)."""
    run = session.get(Run, run_id, with_for_update=True)
    assert run is not None, f"run {run_id} does not exist"
    run.counts = dict(counts)
    session.flush()
    return run


def finish_run(session: Session, run_id: int, status: str = "completed", counts: dict[str, Any] | None = None) -> Run:
    """Record how a run ended (completed, failed or interrupted) and its final counts."""
    if status not in RUN_STATUSES or status == "running":
        raise ValueError(f"status must be one of {RUN_STATUSES[1:]}")
    run = session.get(Run, run_id, with_for_update=True)
    assert run is not None, f"run {run_id} does not exist"
    if counts is not None:
        run.counts = dict(counts)
    run.status, run.ended_at = status, utcnow()
    session.flush()
    audit.record(session, run.actor, "run.finish", "run", run.id, after={"status": status, "counts": run.counts})
    return run


def latest_runs(session: Session, kind: str | None = None, limit: int = 20) -> list[Run]:
    """Most recent runs first."""
    q = select(Run).order_by(Run.id.desc()).limit(limit)
    if kind:
        q = q.where(Run.kind == kind)
    return list(session.scalars(q))
