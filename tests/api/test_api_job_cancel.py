"""Cancelling a batch job through a real uvicorn server on loopback: it stops soon, says `cancelled`, and resumes to the undisturbed report."""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apihelp import ID_KEY, make_keys, serve

from verifier.batch.runner import BatchOptions, BatchRunner
from verifier.common.settings import Settings
from verifier.demo.cohort import make_cohort
from verifier.store.audit import events_for
from verifier.store.connect import open_database
from verifier.store.schema import upgrade

STUDENTS = 40
# From the cancel request to a final state: the chunk in flight (4 students) and the run's bookkeeping.
STOP_WITHIN_S = 30


@pytest.fixture(scope="module")
def cohort(pipeline, faces, tmp_path_factory):
    """Enough students that a batch on one worker takes many seconds (it must still be running when cancelled)."""
    return make_cohort(pipeline, faces, tmp_path_factory.mktemp("cancel-cohort"), STUDENTS, seed=11, impostor_rate=0.2, missing_rate=0.05, unusable_rate=0.05)


@pytest.fixture(scope="module")
def reference(cohort, cache_dir, tmp_path_factory) -> bytes:
    """report.csv of an undisturbed run of the same batch on its own store."""
    tmp = tmp_path_factory.mktemp("cancel-reference")
    settings = Settings(home=tmp / "home", cache_dir=cache_dir, id_key=ID_KEY)
    upgrade(settings.resolve_db_url())
    BatchRunner(BatchOptions(cohort.roster, cohort.admission_dir, cohort.graduation_dir, out_dir=tmp / "out", workers=1), settings).run()
    return (tmp / "out" / "report.csv").read_bytes()


@pytest.fixture
def live(tmp_path: Path, cache_dir: Path, pipeline, cohort) -> Iterator[tuple[httpx.Client, dict[str, str], Settings]]:
    """uvicorn on 127.0.0.1:<free port> over a fresh SQLite store, the cohort under its files folder."""
    from api.app import create_app

    settings = Settings(home=tmp_path / "home", cache_dir=cache_dir, id_key=ID_KEY, api_job_workers=1)
    url = settings.resolve_db_url()
    upgrade(url)
    db = open_database(url)
    plain, _ = make_keys(db)
    db.dispose()
    root = settings.home / "incoming"
    shutil.copytree(cohort.admission_dir, root / "adm")
    shutil.copytree(cohort.graduation_dir, root / "grad")
    shutil.copy(cohort.roster, root / "roster.csv")
    client, stop = serve(create_app(settings, url, pipeline=pipeline))
    try:
        yield client, {"Authorization": f"Bearer {plain['academic_affairs']}"}, settings
    finally:
        stop()


def _wait(client: httpx.Client, headers: dict[str, str], job: str, until, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        st = client.get(f"/api/v1/jobs/{job}", headers=headers).json()
        if until(st) or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


def test_cancelled_batch_stops_soon_and_resumes_to_the_undisturbed_report(live, reference: bytes) -> None:
    client, headers, settings = live
    (settings.home / "reports").mkdir(mode=0o755)
    os.chmod(settings.home / "reports", 0o755)  # as an operator's mkdir -p leaves it
    body = {"roster": "roster.csv", "admission_dir": "adm", "graduation_dir": "grad"}
    r = client.post("/api/v1/jobs/batch-compare", headers=headers, json=body)
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    st = _wait(client, headers, job, lambda s: s["progress"]["done"] >= 4 or s["state"] not in ("starting", "running"), 300)
    assert st["state"] == "running", st
    c = client.post(f"/api/v1/jobs/{job}/cancel", headers=headers)
    assert c.status_code == 202 and c.json()["state"] == "cancelling", c.text
    t0 = time.monotonic()
    st = _wait(client, headers, job, lambda s: s["state"] not in ("running", "cancelling", "starting"), STOP_WITHIN_S + 60)
    stopped_after = time.monotonic() - t0
    assert st["state"] == "cancelled", (st["state"], st["error"], st["progress"])
    assert stopped_after < STOP_WITHIN_S, stopped_after
    assert st["run"]["status"] == "interrupted" and st["progress"]["done"] < STUDENTS, st
    db = open_database(settings.resolve_db_url())
    try:
        deadline = time.monotonic() + 15  # the watcher audits the end once the job process has exited
        while True:
            with db.session() as s:
                events = [(e.action, e.summary.get("after", {})) for e in events_for(s, "job", job)]
            if events[-1][0] == "job.end" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [a for a, _ in events] == ["job.start", "job.cancel", "job.end"], events
        assert events[-1][1]["state"] == "cancelled"
    finally:
        db.dispose()

    r = client.post("/api/v1/jobs/batch-compare", headers=headers, json=body)
    assert r.status_code == 202, r.text
    again = r.json()["id"]
    st = _wait(client, headers, again, lambda s: s["state"] not in ("running", "starting"), 600)
    assert st["state"] == "completed", (st["state"], st["error"])
    assert st["summary"]["resumed"] is True and st["summary"]["unchanged"] > 0, st["summary"]
    reports = sorted((settings.home / "reports").glob("batch-*/report.csv"), key=lambda p: p.stat().st_mtime)
    assert reports and reports[-1].read_bytes() == reference
    assert stat.S_IMODE((settings.home / "reports").stat().st_mode) == 0o700
    assert stat.S_IMODE(reports[-1].stat().st_mode) == 0o600
