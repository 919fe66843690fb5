"""What the fault tests share: the cohort, the undisturbed reference run, and `batch compare` as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from verifier.batch.runner import BatchOptions, BatchRunner
from verifier.common.settings import Settings
from verifier.demo.cohort import make_cohort
from verifier.store.schema import upgrade

ID_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def cohort(pipeline, faces, tmp_path_factory):
    return make_cohort(pipeline, faces, tmp_path_factory.mktemp("cohort"), 28, seed=3, impostor_rate=0.2, missing_rate=0.08, unusable_rate=0.08)


@pytest.fixture(scope="module")
def reference(cohort, tmp_path_factory, cache_dir) -> bytes:
    """report.csv of an undisturbed run on SQLite (its home and reports stay beside it for size figures)."""
    tmp = tmp_path_factory.mktemp("ref")
    settings = Settings(home=tmp / "home", cache_dir=cache_dir, id_key=ID_KEY)
    upgrade(settings.resolve_db_url())
    BatchRunner(BatchOptions(cohort.roster, cohort.admission_dir, cohort.graduation_dir, out_dir=tmp / "out", workers=1), settings).run()
    return (tmp / "out" / "report.csv").read_bytes()


def run_batch(cohort, home: Path, out: Path, cache_dir: Path, db_url: str, roster: Path | None = None, **env: str) -> subprocess.Popen:
    """`verifier batch compare` over the cohort (or another roster) as its own process."""
    environ = {**os.environ, "VERIFIER_HOME": str(home), "VERIFIER_CACHE_DIR": str(cache_dir), "VERIFIER_ID_KEY": ID_KEY, "VERIFIER_DB": db_url, **env}
    args = ["batch", "compare", "--roster", str(roster or cohort.roster), "--admission-dir", str(cohort.admission_dir)]
    args += ["--graduation-dir", str(cohort.graduation_dir), "--out", str(out), "--workers", "1"]
    return subprocess.Popen([sys.executable, "-m", "verifier", *args], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def crash_and_resume(cohort, root: Path, cache_dir: Path, kill_after_s: float, db_url: str | None = None) -> tuple[bool, bytes]:
    """One kill point: a batch on a fresh store, SIGKILL after kill_after_s, then the same command to the end.

    Returns whether the kill landed while the batch was still running, and the resumed report.csv.
    """
    db = db_url or f"sqlite:///{root / 'home' / 'verifier.db'}"
    proc = run_batch(cohort, root / "home", root / "killed", cache_dir, db)
    time.sleep(kill_after_s)
    landed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    resumed = run_batch(cohort, root / "home", root / "resumed", cache_dir, db)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    return landed, (root / "resumed" / "report.csv").read_bytes()
