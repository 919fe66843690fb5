"""API faults on a throw-away PostgreSQL: 503 with Retry-After while the database is away, then recovery by
itself; two reviewers deciding one case at once: one wins, the other gets 409 with the case as it now stands."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from apihelp import Env, open_env
from store.pgcluster import Cluster, make_cluster

from api.keys import create_key
from verifier.store.models import Student


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = make_cluster()
    yield c
    c.remove()


@pytest.fixture
def env(cluster: Cluster, tmp_path, cache_dir, pipeline, request) -> Iterator[Env]:
    url = cluster.new_database(f"api_{request.node.name.replace('test_', '')[:40]}")
    env, client = open_env(tmp_path / "home", cache_dir, pipeline, db_url=url, api_db_retry_s=1.0)
    env.db.transaction(lambda s: s.add(Student(ksh="20219990000001", name="测试", college="文学院")))
    try:
        yield env
    finally:
        client.__exit__(None, None, None)
        env.db.dispose()


def test_database_away_is_503_with_retry_after_then_recovers_by_itself(env: Env, cluster: Cluster):
    case_id = env.new_case("20219990000001")
    assert env.client.get(f"/api/v1/cases/{case_id}", headers=env.h("reviewer")).status_code == 200
    cluster.stop()
    try:
        t0 = time.monotonic()
        r = env.client.get(f"/api/v1/cases/{case_id}", headers=env.h("reviewer"))
        answered = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "STORE_DB_UNREACHABLE" and int(r.headers["Retry-After"]) >= 1
        assert answered < 5, answered
        w = env.client.post(f"/api/v1/cases/{case_id}/claim", headers=env.h("reviewer"))
        assert w.status_code == 503 and "Retry-After" in w.headers
        fresh = env.client.get(f"/api/v1/cases/{case_id}", headers=env.h("admin"))  # a key not verified yet: looked up while away
        assert fresh.status_code == 503 and fresh.json()["code"] == "STORE_DB_UNREACHABLE", fresh.text
        assert "Retry-After" in fresh.headers and "WWW-Authenticate" not in fresh.headers
    finally:
        cluster.start()
    t1 = time.monotonic()
    while env.client.get(f"/api/v1/cases/{case_id}", headers=env.h("reviewer")).status_code != 200:
        assert time.monotonic() - t1 < 30, "the API did not recover"
        time.sleep(0.2)
    print(f"api: 503 answered in {answered:.2f} s, recovered {time.monotonic() - t1:.2f} s after the server was back")
    assert env.client.post(f"/api/v1/cases/{case_id}/claim", headers=env.h("reviewer")).status_code == 200


def test_two_reviewers_deciding_one_case_one_wins_the_other_gets_409_with_the_current_state(env: Env):
    case_id = env.new_case("20219990000001")
    second = env.db.transaction(lambda s: create_key(s, "reviewer", "second-reviewer", actor="test").secret)
    keys = {"first": env.h("reviewer"), "second": {"Authorization": f"Bearer {second}"}}
    results: dict[str, object] = {}
    start = threading.Barrier(2)

    def decide(who: str, outcome: str) -> None:
        start.wait()
        results[who] = env.client.post(f"/api/v1/cases/{case_id}/resolve", headers=keys[who], json={"outcome": outcome, "note": who})

    threads = [threading.Thread(target=decide, args=a) for a in (("first", "same_person"), ("second", "impersonation"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 409], [(r.status_code, r.text) for r in results.values()]
    winner = next(r for r in results.values() if r.status_code == 200).json()
    loser = next(r for r in results.values() if r.status_code == 409).json()
    assert loser["code"] in ("API_CASE_CLAIMED", "STORE_CASE_TRANSITION_INVALID")
    assert loser["current"]["state"] in ("in_review", "resolved") and loser["current"]["id"] == case_id
    final = env.client.get(f"/api/v1/cases/{case_id}", headers=env.h("reviewer")).json()
    assert final["state"] == "resolved" and final["outcome"] == winner["outcome"]
