"""Embedding on Ray actors (`--ray`): the same stored results as one local process, a killed worker included.

Real models, real face-set photos, real SQLite stores, and a real Ray cluster started on loopback for the module.
The actors run the same ONNX sessions (single-threaded) over the same chunks as the local path, so every embedding
must be equal bit for bit; any difference means the Ray path computed something else.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from verifier.cli.main import main
from verifier.common.settings import Settings
from verifier.demo.cohort import make_cohort
from verifier.store.connect import open_database
from verifier.store.models import Comparison, Embedding, Photo, Student
from verifier.store.schema import upgrade
from verifier.sweep.photo_import import ImportOptions, import_photos

ID_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="module", autouse=True)
def worker_env(cache_dir: Path) -> Iterator[None]:
    """The test's model cache and ID key in the environment, set before conftest's `ray_local` starts, so its workers inherit them."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VERIFIER_CACHE_DIR", str(cache_dir))
        mp.setenv("VERIFIER_ID_KEY", ID_KEY)
        yield


@pytest.fixture(scope="module")
def cohort(pipeline, faces, tmp_path_factory):
    """Twenty-eight students (about fifty photos): genuine pairs, impostors, missing and unusable photos."""
    c = make_cohort(pipeline, faces, tmp_path_factory.mktemp("ray-cohort"), 28, seed=3, impostor_rate=0.2, missing_rate=0.08, unusable_rate=0.08)
    assert set(c.expected.values()) == {"genuine", "impostor", "missing", "unusable"}, c.expected
    return c


def _settings(home: Path, cache_dir: Path) -> Settings:
    settings = Settings(home=home, cache_dir=cache_dir, id_key=ID_KEY)
    upgrade(settings.resolve_db_url())
    return settings


def _import_both_kinds(cohort, settings: Settings, ray_address: str | None) -> None:
    for kind, folder in (("admission", cohort.admission_dir), ("graduation", cohort.graduation_dir)):
        summary = import_photos(ImportOptions(folder, kind, cohort.roster, workers=1 if ray_address is None else 2, ray_address=ray_address), settings)
        assert not summary.rejected, summary.rejected


def _stored_embeddings(settings: Settings) -> dict[tuple[str, str], bytes]:
    db = open_database(settings.resolve_db_url(), settings=settings)
    try:
        with db.session() as s:
            rows = s.execute(select(Student.ksh, Photo.kind, Embedding.vector).join(Photo, Photo.student_id == Student.id).join(Embedding, Embedding.photo_id == Photo.id))
            return {(ksh, kind): vector for ksh, kind, vector in rows}
    finally:
        db.dispose()


def _stored_comparisons(home: Path, cache_dir: Path) -> dict[str, tuple]:
    settings = Settings(home=home, cache_dir=cache_dir, id_key=ID_KEY)
    db = open_database(settings.resolve_db_url(), settings=settings)
    try:
        with db.session() as s:
            rows = s.execute(select(Student.ksh, Comparison.score, Comparison.decision, Comparison.reasons).join(Student, Student.id == Comparison.student_id))
            return {ksh: (score, decision, tuple(reasons)) for ksh, score, decision, reasons in rows}
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def local_embeddings(cohort, cache_dir, tmp_path_factory) -> dict[tuple[str, str], bytes]:
    """The reference: both photo folders imported by one local process."""
    settings = _settings(tmp_path_factory.mktemp("local-home"), cache_dir)
    _import_both_kinds(cohort, settings, None)
    stored = _stored_embeddings(settings)
    assert len(stored) >= 36, f"only {len(stored)} photos embedded: the comparison would prove little"
    return stored


def test_photos_imported_on_ray_store_the_same_embeddings_bit_for_bit(ray_local, cohort, cache_dir, local_embeddings, tmp_path, watched):
    settings = _settings(tmp_path / "home", cache_dir)
    _import_both_kinds(cohort, settings, "local")
    _ran_on_two_set_up_actors(watched, 2)
    assert _stored_embeddings(settings) == local_embeddings


class _WatchedPool:
    """Ray's ActorPool, watched: which actors it got (set up before any chunk?), how many chunks, and optionally a kill.

    With `kill`, one worker actor's process is SIGKILLed before the first result is taken, while it holds chunks.
    """

    kill = False
    seen: list[dict] = []

    def __init__(self, actors: list):
        import ray
        from ray.util.actor_pool import ActorPool  # the real one (ray.util.ActorPool is this class here)

        self.pool = ActorPool(actors)
        # Run inside each actor (a lambda travels by value; this module is not importable there): its pid, and
        # whether its pipeline was loaded when it started.
        state = lambda _self: (os.getpid(), "pipeline" in __import__("verifier.batch.worker", fromlist=["_STATE"])._STATE)  # noqa: E731
        states = ray.get([a.__ray_call__.remote(state) for a in dict.fromkeys(actors)])
        self.record = {"pids": [pid for pid, _ in states], "loaded": [ok for _, ok in states], "chunks": 0, "killed": None}
        _WatchedPool.seen.append(self.record)

    def submit(self, fn, value) -> None:
        self.record["chunks"] += 1
        self.pool.submit(fn, value)

    def get_next(self):
        if self.kill and self.record["killed"] is None:
            self.record["killed"] = self.record["pids"][0]
            os.kill(self.record["killed"], signal.SIGKILL)
        return self.pool.get_next()


@pytest.fixture()
def watched(monkeypatch) -> type[_WatchedPool]:
    """Every Ray map of the test goes through a _WatchedPool."""
    import ray.util

    monkeypatch.setattr(ray.util, "ActorPool", _WatchedPool)
    monkeypatch.setattr(_WatchedPool, "kill", False)
    monkeypatch.setattr(_WatchedPool, "seen", [])
    return _WatchedPool


def _ran_on_two_set_up_actors(watched: type[_WatchedPool], maps: int) -> None:
    assert len(watched.seen) == maps, "the Ray path was not taken"
    for record in watched.seen:
        assert len(set(record["pids"])) == 2 and os.getpid() not in record["pids"], record
        assert all(record["loaded"]), "a worker's models must be loaded when it starts, not per chunk"
        assert record["chunks"] >= 3, record


def test_a_worker_killed_mid_run_is_restarted_and_its_chunks_retried(ray_local, cohort, cache_dir, local_embeddings, tmp_path, watched):
    watched.kill = True
    settings = _settings(tmp_path / "home", cache_dir)
    _import_both_kinds(cohort, settings, "local")
    _ran_on_two_set_up_actors(watched, 2)
    for record in watched.seen:
        assert record["killed"] is not None, "a worker should have been killed in each import"
    assert _stored_embeddings(settings) == local_embeddings


def _compare(cohort, home: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict[str, dict]:
    """`verifier batch compare` into its own home; the report rows by 考生号."""
    monkeypatch.setenv("VERIFIER_HOME", str(home))
    out = home / "out"
    args = ["batch", "compare", "--roster", str(cohort.roster), "--admission-dir", str(cohort.admission_dir),
            "--graduation-dir", str(cohort.graduation_dir), "--out", str(out), "--workers", "2", *extra]
    assert main(args) == 0
    with open(out / "report.csv", encoding="utf-8-sig", newline="") as fh:
        return {r["ksh"]: r for r in csv.DictReader(fh)}


def test_batch_compare_on_ray_gives_the_same_decisions_and_scores(ray_local, cohort, cache_dir, tmp_path, monkeypatch, watched):
    with monkeypatch.context() as without_ray:
        without_ray.setitem(sys.modules, "ray", None)  # without --ray nothing needs Ray
        local = _compare(cohort, tmp_path / "local", without_ray)
    on_ray = _compare(cohort, tmp_path / "ray", monkeypatch, "--ray", "local")
    _ran_on_two_set_up_actors(watched, 1)
    assert set(local) == set(cohort.expected)
    assert {"pass", "missing_photo", "photo_unusable"} <= {r["decision"] for r in local.values()}
    keep = ("decision", "score", "reasons", "photo_issues")
    assert {k: [r[f] for f in keep] for k, r in on_ray.items()} == {k: [r[f] for f in keep] for k, r in local.items()}
    stored = _stored_comparisons(tmp_path / "ray", cache_dir)
    assert stored and stored == _stored_comparisons(tmp_path / "local", cache_dir)


def test_ray_missing_is_a_clear_error_and_no_work_is_done(cohort, cache_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("VERIFIER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("VERIFIER_ID_KEY", ID_KEY)
    code = main(["batch", "compare", "--roster", str(cohort.roster), "--admission-dir", str(cohort.admission_dir),
                 "--graduation-dir", str(cohort.graduation_dir), "--out", str(tmp_path / "out"), "--ray", "local"])
    err = capsys.readouterr().err
    assert code == 2
    assert "[CLUSTER_RAY_MISSING]" in err and "verifier[cluster]" in err
    assert not (tmp_path / "out").exists()
    settings = _settings(tmp_path / "home2", cache_dir)
    with pytest.raises(Exception) as exc:
        import_photos(ImportOptions(cohort.admission_dir, "admission", ray_address="local"), settings)
    assert getattr(exc.value, "reason", None) is not None and exc.value.reason.code == "CLUSTER_RAY_MISSING"


def test_photos_import_and_sweep_take_ray_from_the_cli_and_the_sweep_embeds_on_ray(ray_local, cohort, cache_dir, local_embeddings, tmp_path, monkeypatch, watched, capsys):
    """`photos import --ray local`, then the embeddings dropped so `sweep --ray local` must make them again on the actors."""
    home = tmp_path / "home"
    settings = _settings(home, cache_dir)
    monkeypatch.setenv("VERIFIER_HOME", str(home))
    for kind, folder in (("admission", cohort.admission_dir), ("graduation", cohort.graduation_dir)):
        assert main(["photos", "import", str(folder), "--kind", kind, "--roster", str(cohort.roster), "--workers", "2", "--ray", "local"]) == 0
    assert _stored_embeddings(settings) == local_embeddings
    db = open_database(settings.resolve_db_url(), settings=settings)
    db.transaction(lambda s: s.execute(delete(Embedding)))
    db.dispose()
    capsys.readouterr()
    assert main(["sweep", "--ray", "local", "--shards", "2", "--workers", "2", "--out", str(tmp_path / "sweep"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["counts"]["embed_embedded"] == len(local_embeddings) and summary["counts"]["shards"] == 2
    assert _stored_embeddings(settings) == local_embeddings
    _ran_on_two_set_up_actors(watched, 3)
