"""Background jobs: the batch comparison (and the duplicate sweep, when installed) in a child process.

`BatchRunner.run` installs a SIGINT handler (first Ctrl-C: finish the photos in flight, then stop),
which only works in a main thread; so each job is its own spawned process, and cancel sends it SIGINT,
exactly what a person at the terminal would do. Progress and counts come from the store: the `runs` row
the runner keeps, and the comparisons recorded under its id so far. Job records live in memory; the
runs table is the durable record (a restarted server lists past runs there).
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from verifier.batch.runner import RUN_KIND, BatchOptions
from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings
from verifier.store import audit
from verifier.store.db import Database
from verifier.store.models import Comparison, Run

from api.problems import ApiProblem

log = logging.getLogger("api")
FINAL = ("completed", "failed", "cancelled", "interrupted")


def _in_child(conn: Any, work: Callable[[], dict[str, Any]]) -> None:
    """Run a job's work in a child process and send how it ended through the pipe (SIGINT = cancel)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        conn.send(work())
    except KeyboardInterrupt:
        conn.send({"state": "cancelled"})
    except VerifierError as exc:
        conn.send({"state": "failed", "code": exc.reason.code, "detail": str(exc.detail)[:300]})
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a failed job
        conn.send({"state": "failed", "code": "API_INTERNAL_ERROR", "detail": type(exc).__name__})
    finally:
        conn.close()


def _batch_child(options: BatchOptions, settings: Settings, conn: Any) -> None:
    """Child process: load the roster (for the total), run the batch, report how it ended."""

    def work() -> dict[str, Any]:
        from verifier.batch.runner import BatchRunner
        from verifier.photos.roster import RosterLimits, load_roster

        conn.send({"total": len(load_roster(options.roster, limits=RosterLimits.from_settings(settings)).students)})
        summary = BatchRunner(options, settings).run()
        return {
            "state": "interrupted" if summary.interrupted else "completed",
            "run_id": summary.run_id,
            "summary": {
                "students": summary.students,
                "processed": summary.processed,
                "unchanged": summary.unchanged,
                "decisions": dict(summary.decisions),
                "reports": [p.name for p in summary.reports],
                "resumed": summary.resumed,
            },
        }

    _in_child(conn, work)


def sweep_function() -> Any | None:
    """The duplicate sweep's library class (verifier.sweep.runner.Sweep) when it is part of this build, else None."""
    if importlib.util.find_spec("verifier.sweep.runner") is None:
        return None
    module = importlib.import_module("verifier.sweep.runner")
    return getattr(module, "Sweep", None) if hasattr(module, "SweepOptions") else None


def _sweep_child(db_url: str, settings: Settings, workers: int, actor: str, full: bool, conn: Any) -> None:
    """Child process: run the duplicate sweep (SIGINT ends it as an interrupted run) and report how it ended."""

    def work() -> dict[str, Any]:
        from verifier.sweep.runner import Sweep, SweepOptions

        summary = Sweep(SweepOptions(db_url=db_url, workers=workers, actor=actor, full=full), settings).run()
        counts = {k: int(v) for k, v in summary.counts.items()}
        return {
            "state": "completed",
            "run_id": summary.run_id,
            "summary": {"mode": summary.mode, "index": summary.index, "threshold": summary.threshold, "counts": counts,
                        "reports": [p.name for p in summary.reports]},
        }

    _in_child(conn, work)


@dataclass
class Job:
    """One background job as the API reports it."""

    id: str
    kind: str
    actor: str
    parameters: dict[str, Any]
    run_key: str = ""
    baseline_run: int = 0
    run_kind: str = RUN_KIND
    state: str = "starting"
    created_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    run_id: int | None = None
    total: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    cancel_requested: bool = False
    process: Any = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "actor": self.actor,
            "parameters": self.parameters,
            "created_at": _iso(self.created_at),
            "ended_at": _iso(self.ended_at),
            "run_id": self.run_id,
            "summary": self.summary,
            "error": self.error,
        }


def _iso(t: float | None) -> str | None:
    import datetime as dt

    return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


class JobManager:
    """Starts, watches, reports and cancels background jobs; one job of each kind at a time."""

    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ctx = mp.get_context("spawn")

    def _busy(self, kind: str) -> bool:
        return any(j.kind == kind and j.state not in FINAL for j in self.jobs.values())

    def start_batch(self, options: BatchOptions, parameters: dict[str, Any], actor: str) -> Job:
        """Start the batch comparison in a child process (409 API_JOB_BUSY while one runs)."""
        return self._start("batch_compare", RUN_KIND, options.key(), parameters, actor, _batch_child, (options, self.settings))

    def start_intake(self, options: BatchOptions, parameters: dict[str, Any], actor: str) -> Job:
        """Start the intake check (ID card vs admission photos) in a child process (409 API_JOB_BUSY while one runs)."""
        return self._start("intake_check", options.pairing.run_kind, options.key(), parameters, actor, _batch_child, (options, self.settings))

    def start_sweep(self, parameters: dict[str, Any], actor: str, full: bool = False) -> Job:
        """Start the duplicate sweep in a child process (409 API_JOB_BUSY while one runs)."""
        args = (self.db.url, self.settings, self.settings.api_job_workers, actor, full)
        return self._start("duplicate_sweep", "sweep", "", parameters, actor, _sweep_child, args)

    def _start(self, kind: str, run_kind: str, run_key: str, parameters: dict[str, Any], actor: str, target: Any, args: tuple[Any, ...]) -> Job:
        with self._lock:
            if self._busy(kind):
                raise ApiProblem("API_JOB_BUSY", f"a {kind} job is running")
            with self.db.session() as s:
                baseline = s.scalar(select(func.max(Run.id))) or 0
            job = Job(uuid.uuid4().hex[:12], kind, actor, parameters, run_key, baseline, run_kind=run_kind)
            parent, child = self._ctx.Pipe(duplex=False)
            proc = self._ctx.Process(target=target, args=(*args, child), name=f"{kind}-{job.id}", daemon=True)
            proc.start()
            child.close()
            job.process, job.state = proc, "running"
            self.jobs[job.id] = job
        self.db.transaction(lambda s: audit.record(s, actor, "job.start", "job", job.id, after={"kind": job.kind, **parameters}))
        threading.Thread(target=self._watch, args=(job, parent), name=f"watch-{job.id}", daemon=True).start()
        return job

    def _watch(self, job: Job, conn: Any) -> None:
        """Follow the child's messages until it exits."""
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if "total" in msg:
                job.total = msg["total"]
            if "state" in msg:
                job.run_id = msg.get("run_id", job.run_id)
                job.summary = msg.get("summary", {})
                if msg["state"] == "failed":
                    job.error = {"code": msg.get("code"), "detail": msg.get("detail", "")}
                state = msg["state"]
                job.state = "cancelled" if job.cancel_requested and state in ("interrupted", "cancelled") else state
                job.ended_at = time.time()
        job.process.join(timeout=10)
        if job.state not in FINAL and job.cancel_requested:  # stopped before it could report (e.g. still starting)
            job.state, job.ended_at = "cancelled", time.time()
        if job.state not in FINAL:
            job.state, job.ended_at = "failed", time.time()
            job.error = {"code": "API_INTERNAL_ERROR", "detail": f"job process exited with {job.process.exitcode}"}
        end = {"kind": job.kind, "state": job.state, "run_id": job.run_id, "error": (job.error or {}).get("code")}
        try:
            self.db.transaction(lambda s: audit.record(s, job.actor, "job.end", "job", job.id, after=end))
        except Exception:  # noqa: BLE001 - the job's state is already known in memory; a store outage must not kill the watcher
            log.warning("could not audit the end of job %s", job.id)

    def get(self, job_id: str) -> Job:
        """A job by id (404 API_JOB_UNKNOWN)."""
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiProblem("API_JOB_UNKNOWN")
        return job

    def _run_for(self, job: Job) -> Run | None:
        with self.db.session() as s:
            if job.run_id is not None:
                return s.get(Run, job.run_id)
            for run in s.scalars(select(Run).where(Run.kind == job.run_kind).order_by(Run.id.desc()).limit(20)):
                if run.parameters.get("key", "") == job.run_key and (run.id > job.baseline_run or (job.run_key and run.status == "running")):
                    job.run_id = run.id
                    return run
        return None

    def status(self, job_id: str) -> dict[str, Any]:
        """The job with progress (students done of total) and the run's counts from the store."""
        job = self.get(job_id)
        out = job.public()
        run = self._run_for(job)
        compared = 0
        if run is not None:
            with self.db.session() as s:
                compared = s.scalar(select(func.count(Comparison.id)).where(Comparison.run_id == run.id)) or 0
            out["run_id"] = run.id
            out["run"] = {"status": run.status, "counts": run.counts, "started_at": run.started_at.isoformat(timespec="seconds")}
        counts = dict(run.counts) if run is not None else {}
        done = max(int(counts.get("processed", 0)) + int(counts.get("unchanged", 0)), compared)
        if job.state == "completed" and job.total is not None:
            done = job.total
        out["progress"] = {"done": done, "total": job.total, "compared_this_run": compared}
        return out

    def list(self) -> list[dict[str, Any]]:
        """Every job this server started, newest first."""
        return [j.public() for j in sorted(self.jobs.values(), key=lambda j: j.created_at, reverse=True)]

    def cancel(self, job_id: str, actor: str) -> Job:
        """Ask a running job to stop (SIGINT: photos in flight finish, the run is left resumable)."""
        job = self.get(job_id)
        if job.state in FINAL:
            raise ApiProblem("API_JOB_FINISHED", f"job is {job.state}")
        job.cancel_requested = True
        job.state = "cancelling"
        if job.process is not None and job.process.pid:
            try:
                os.kill(job.process.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        self.db.transaction(lambda s: audit.record(s, actor, "job.cancel", "job", job.id, after={"kind": job.kind}))
        return job

    def shutdown(self, wait: float = 10.0) -> None:
        """Stop every running job (as cancel does) and wait a little for them."""
        for job in self.jobs.values():
            if job.state not in FINAL and job.process is not None and job.process.is_alive():
                job.cancel_requested = True
                try:
                    os.kill(job.process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + wait
        for job in self.jobs.values():
            if job.process is not None:
                job.process.join(timeout=max(0.0, deadline - time.monotonic()))
