"""Faults across a whole `batch compare` (real models, real PostgreSQL cluster of the test's own, real photos).

A server restart mid-batch, SIGKILL at random points, two overlapping batches and a sweep at once: every
time the final report equals an undisturbed run's and the store holds each comparison and case once.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from tests.faultkit import ID_KEY, cohort, crash_and_resume, reference, run_batch as _batch  # noqa: F401 - fixtures
from tests.store.pgcluster import Cluster, make_cluster
from verifier.store.models import Comparison, DuplicateCandidate, ReviewCase
from verifier.store.schema import upgrade

@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = make_cluster()
    yield c
    c.remove()


def _fresh_db(cluster: Cluster, name: str) -> str:
    url = cluster.new_database(name)
    upgrade(url)
    return url


def _count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model))


def _wait_for(engine, at_least: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if _count(engine, Comparison) >= at_least:
                return
        except Exception:  # noqa: BLE001 - the schema may not be visible yet
            pass
        time.sleep(0.05)


def _store_is_consistent(engine, cohort) -> None:
    """Each photo pair compared once, every compared student once, one case per failed or review comparison."""
    with engine.connect() as conn:
        pairs = conn.execute(select(Comparison.admission_photo_id, Comparison.graduation_photo_id, Comparison.pack_id)).all()
        students = conn.scalars(select(Comparison.student_id)).all()
        flagged = conn.scalar(select(func.count()).select_from(Comparison).where(Comparison.decision.in_(("mismatch", "review"))))
        cases = conn.scalars(select(ReviewCase.subject_id).where(ReviewCase.subject_type == "comparison")).all()
    assert len(pairs) == len(set(pairs)) == sum(1 for v in cohort.expected.values() if v != "missing")
    assert len(students) == len(set(students))
    assert len(cases) == len(set(cases)) == flagged


def test_postgres_restart_mid_batch_gives_the_undisturbed_report(cohort, cluster, reference, tmp_path, cache_dir):
    url = _fresh_db(cluster, "restart_batch")
    engine = create_engine(url)
    proc = _batch(cohort, tmp_path / "home", tmp_path / "out", cache_dir, url)
    _wait_for(engine, 4, proc)
    assert proc.poll() is None, "the batch ended before the restart"
    engine.dispose()
    t0 = time.monotonic()
    cluster.stop()
    time.sleep(3)
    cluster.start()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    print(f"restart: server away {time.monotonic() - t0:.1f} s, batch finished")
    assert (tmp_path / "out" / "report.csv").read_bytes() == reference
    engine = create_engine(url)
    _store_is_consistent(engine, cohort)
    engine.dispose()


CRASH_BUDGET_S = 75.0


def test_sigkill_at_random_points_then_resume_gives_the_undisturbed_report(cohort, reference, tmp_path, cache_dir):
    """Kill points drawn at random over the whole run (startup, mid-chunk, mid-commit, reports); each resumed."""
    t0 = time.monotonic()
    proc = _batch(cohort, tmp_path / "timed" / "home", tmp_path / "timed" / "out", cache_dir, f"sqlite:///{tmp_path / 'timed' / 'home' / 'verifier.db'}")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    full_s = time.monotonic() - t0
    rng = random.Random(int(os.environ.get("VERIFIER_CRASH_SEED", "16")))
    points, landed = [], 0
    deadline = time.monotonic() + CRASH_BUDGET_S - 2 * full_s
    while time.monotonic() < deadline or len(points) < 3:
        at = rng.uniform(0.1, full_s)
        hit, report = crash_and_resume(cohort, tmp_path / f"k{len(points)}", cache_dir, at)
        assert report == reference, f"kill at {at:.2f} s of {full_s:.1f} s: resumed report differs"
        points.append(at)
        landed += hit
    print(f"crash points: {len(points)} tried over a {full_s:.1f} s run, {landed} landed mid-run: {sorted(round(p, 2) for p in points)}")
    assert landed >= 3


def _split_roster(cohort, folder: Path) -> tuple[Path, Path]:
    """Two rosters over the cohort that share the middle third of its students."""
    with open(cohort.roster, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    third = len(body) // 3
    paths = []
    for name, part in (("a.csv", body[: 2 * third]), ("b.csv", body[third:])):
        path = folder / name
        with open(path, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([header, *part])
        paths.append(path)
    return paths[0], paths[1]


def test_two_overlapping_batches_and_a_sweep_at_once(cohort, cluster, reference, tmp_path, cache_dir):
    url = _fresh_db(cluster, "concurrent")
    a, b = _split_roster(cohort, tmp_path)
    runs = [_batch(cohort, tmp_path / "home", tmp_path / name, cache_dir, url, roster=roster) for name, roster in (("outa", a), ("outb", b))]
    engine = create_engine(url)
    _wait_for(engine, 2, runs[0])
    env = {**os.environ, "VERIFIER_HOME": str(tmp_path / "home"), "VERIFIER_CACHE_DIR": str(cache_dir), "VERIFIER_ID_KEY": ID_KEY}
    sweep = subprocess.run([sys.executable, "-m", "verifier", "sweep", "--db", url, "--out", str(tmp_path / "sweep1"), "--workers", "1"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert sweep.returncode == 0, sweep.stderr
    for proc in runs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    _store_is_consistent(engine, cohort)
    proc = _batch(cohort, tmp_path / "home", tmp_path / "all", cache_dir, url)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert (tmp_path / "all" / "report.csv").read_bytes() == reference
    _store_is_consistent(engine, cohort)
    engine.dispose()


def _sweep(url: str, home: Path, out: Path, cache_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VERIFIER_HOME": str(home), "VERIFIER_CACHE_DIR": str(cache_dir), "VERIFIER_ID_KEY": ID_KEY}
    return subprocess.run([sys.executable, "-m", "verifier", "sweep", "--db", url, "--out", str(out), "--workers", "1", *extra],
                          env=env, capture_output=True, text=True, timeout=300)


def _duplicates(engine) -> tuple[set, int]:
    with engine.connect() as conn:
        pairs = conn.execute(select(DuplicateCandidate.photo_a_id, DuplicateCandidate.photo_b_id)).all()
        cases = conn.scalar(select(func.count()).select_from(ReviewCase).where(ReviewCase.case_type.like("duplicate%")))
    assert len(pairs) == len(set(pairs))
    return set(pairs), cases


def test_postgres_restart_mid_sweep_stops_clearly_or_finishes_and_resumes_to_the_same_result(cohort, cluster, tmp_path, cache_dir):
    url = _fresh_db(cluster, "restart_sweep")
    proc = _batch(cohort, tmp_path / "home", tmp_path / "out", cache_dir, url)
    assert proc.communicate(timeout=300) and proc.returncode == 0
    engine = create_engine(url)
    rng = random.Random(16)
    outcomes = []
    for attempt in range(3):
        env = {**os.environ, "VERIFIER_HOME": str(tmp_path / "home"), "VERIFIER_CACHE_DIR": str(cache_dir), "VERIFIER_ID_KEY": ID_KEY,
               "VERIFIER_DB_RETRY_S": "20"}
        sweep = subprocess.Popen([sys.executable, "-m", "verifier", "sweep", "--db", url, "--out", str(tmp_path / f"s{attempt}"), "--workers", "1", "--full"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.2, 2.5))
        cluster.stop()
        time.sleep(2)
        cluster.start()
        _, err = sweep.communicate(timeout=300)
        assert sweep.returncode == 0 or "[STORE_DB_UNREACHABLE]" in err, err
        assert "Traceback" not in err, err
        outcomes.append(sweep.returncode)
    engine.dispose()
    engine = create_engine(url)
    resumed = _sweep(url, tmp_path / "home", tmp_path / "s-resume", cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    after_resume = _duplicates(engine)
    clean = _sweep(url, tmp_path / "home", tmp_path / "s-full", cache_dir, "--full")
    assert clean.returncode == 0, clean.stderr
    assert _duplicates(engine) == after_resume and after_resume[0], "a clean full sweep found something else"
    print(f"sweep restarts: exit codes {outcomes}, {len(after_resume[0])} duplicate pairs, {after_resume[1]} cases")
    engine.dispose()
