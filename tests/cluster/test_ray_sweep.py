"""The duplicate sweep on a local Ray cluster: sharded search on actors equals one index, survives a killed
actor, names the failed shards when it cannot finish, and leaves the store as it was then."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from sqlalchemy import func, insert, select

from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings
from verifier.core.packs import load_pack
from verifier.store.connect import open_database
from verifier.store.models import DuplicateCandidate, Embedding, Photo, ReviewCase, Student, utcnow
from verifier.store.runs import latest_runs
from verifier.store.schema import upgrade
from verifier.sweep import ray_search
from verifier.sweep.index import FaceIndex, choose_params
from verifier.sweep.ray_search import ShardedSearch, ray_pairs
from verifier.sweep.runner import Sweep, SweepOptions

PACK = load_pack("sface-yunet-int8")
THRESHOLD = PACK.thresholds.duplicate
DIM = 128


def _vectors(n: int, planted: int, seed: int) -> np.ndarray:
    """Uniform unit vectors (the worst case for IVF) with `planted` near-duplicate pairs at cos 0.7-0.95."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    src = rng.choice(n, planted, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), planted, replace=False)
    for a, b, cos in zip(src, dst, rng.uniform(0.7, 0.95, planted), strict=True):
        r = x[b] - (x[b] @ x[a]) * x[a]
        x[b] = cos * x[a] + np.sqrt(1 - cos * cos) * r / np.linalg.norm(r)
    return x


def _shard_worker_pids() -> list[int]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("ray::ShardWorker"):
            out.append(p.pid)
    return out


def _kill_first_shard_worker(stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL the first shard actor process seen (it is searching or about to)."""
    while not stop.is_set():
        pids = [p for p in _shard_worker_pids() if p not in killed]
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
            return
        time.sleep(0.005)


@pytest.mark.parametrize("force_approximate", [False, True], ids=["flat", "ivf"])
def test_sharded_search_on_ray_actors_equals_one_index_pair_for_pair(ray_local, force_approximate: bool):
    x = _vectors(5000, 60, seed=1)
    ids = np.arange(1, 5001, dtype=np.int64)
    index = FaceIndex.build(ids, ids, x, choose_params(5000, force_approximate=force_approximate))
    one = index.all_pairs(THRESHOLD)
    assert len(one) >= 60
    report = ShardedSearch(0)
    got = ray_pairs(index, 3, THRESHOLD, report=report)
    assert got.keys().tolist() == one.keys().tolist()
    assert np.allclose(got.score, one.score, atol=1e-5)
    assert report.tasks == 6 and len({w["pid"] for w in report.workers}) == 3  # 3 shards, 6 shard pairs, 3 actors
    assert sum(w["rows"] for w in report.workers) == 5000
    is_new = np.zeros(index.n, bool)
    is_new[-250:] = True
    assert ray_pairs(index, 4, THRESHOLD, is_new).keys().tolist() == index.pairs_with(is_new, THRESHOLD).keys().tolist()


def test_a_shard_actor_killed_mid_search_is_restarted_and_the_result_is_unchanged(ray_local):
    x = _vectors(40_000, 200, seed=2)
    ids = np.arange(1, 40_001, dtype=np.int64)
    index = FaceIndex.build(ids, ids, x, choose_params(40_000))
    one = index.all_pairs(THRESHOLD)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_shard_worker, args=(stop, killed))
    killer.start()
    try:
        got = ray_pairs(index, 3, THRESHOLD)
    finally:
        stop.set()
        killer.join()
    assert killed, "no shard actor was seen to kill"
    assert got.keys().tolist() == one.keys().tolist()


def _store(tmp_path: Path, n: int) -> tuple[Settings, str]:
    """A SQLite store of n photos (two per student) with synthetic embeddings under the default pack."""
    settings = Settings(home=tmp_path / "home", id_key="test-key-0123456789abcdef")
    url = settings.resolve_db_url()
    upgrade(url)
    x = _vectors(n, 40, seed=5)
    db = open_database(url)
    now = utcnow()
    with db.engine.begin() as conn:
        conn.execute(insert(Student), [{"id": s, "ksh": f"{s:014d}", "name": f"学生{s}", "student_no": f"S{s}", "college": "文学院",
                                        "status": "enrolled", "created_at": now, "updated_at": now} for s in range(1, n // 2 + 1)])
        conn.execute(insert(Photo), [{"id": r + 1, "student_id": r // 2 + 1, "kind": ("admission", "graduation")[r % 2], "source": "",
                                      "sha256": f"{r + 1:064x}", "byte_size": 1, "check_status": "pass", "check_codes": [],
                                      "file_path": f"synthetic/{r + 1}", "is_current": True, "created_at": now} for r in range(n)])
        conn.execute(insert(Embedding), [{"photo_id": r + 1, "pack_id": PACK.id, "dim": DIM, "vector": x[r].astype("<f4").tobytes(),
                                          "created_at": now} for r in range(n)])
    db.dispose()
    return settings, url


def _found(url: str) -> list[tuple[int, int, float]]:
    db = open_database(url)
    try:
        with db.session() as s:
            return sorted((c.photo_a_id, c.photo_b_id, round(c.score, 5)) for c in s.scalars(select(DuplicateCandidate)))
    finally:
        db.dispose()


def test_sweep_with_ray_writes_what_the_single_machine_sweep_writes(ray_local, tmp_path):
    single, url_1 = _store(tmp_path / "one", 4000)
    sharded, url_r = _store(tmp_path / "ray", 4000)
    a = Sweep(SweepOptions(db_url=url_1, out_dir=tmp_path / "r1"), single).run()
    b = Sweep(SweepOptions(db_url=url_r, out_dir=tmp_path / "r2", ray="local", shards=3), sharded).run()
    assert a.counts["pairs"] >= 30 and b.counts["pairs"] == a.counts["pairs"]
    assert _found(url_r) == _found(url_1)
    assert b.counts["cases_opened"] == a.counts["cases_opened"] and b.counts["shards"] == 3 and b.counts["shard_tasks"] == 6
    for settings, url in ((single, url_1), (sharded, url_r)):
        db = open_database(url)
        with db.session() as s:
            run = latest_runs(s, "sweep", limit=1)[0]
        db.dispose()
        assert run.status == "completed"
    assert run.parameters["ray"] == "local" and run.counts["shards"] == 3


def test_a_sweep_whose_shards_cannot_finish_names_them_and_writes_nothing(ray_local, tmp_path, monkeypatch):
    settings, url = _store(tmp_path, 40_000)
    monkeypatch.setattr(ray_search, "RETRIES", 0)  # a lost actor stays lost
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_shard_worker, args=(stop, killed))
    killer.start()
    try:
        with pytest.raises(VerifierError) as err:
            Sweep(SweepOptions(db_url=url, out_dir=tmp_path / "r", ray="local", shards=3), settings).run()
    finally:
        stop.set()
        killer.join()
    assert killed and err.value.reason.code == "SWEEP_SHARDS_FAILED"
    assert err.value.detail.startswith("shards ") and "Actor" in err.value.detail, err.value.detail
    db = open_database(url)
    try:
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(DuplicateCandidate)) == 0
            assert s.scalar(select(func.count()).select_from(ReviewCase)) == 0
            run = latest_runs(s, "sweep", limit=1)[0]
            assert run.status == "failed"
    finally:
        db.dispose()
    assert not (settings.home / "index" / f"{PACK.id}-admission+graduation").exists()  # no index saved either
