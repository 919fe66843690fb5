"""Whole duplicate groups in review (issue 21, defects 1 and 2) through uvicorn on loopback, on SQLite and PostgreSQL.

A 文学院 reviewer must not see, claim or decide a group case with a 法学院 member, even though the case's subject
pair is in 文学院; a population-wide reviewer sees every member with photo and scores and decides member by
member; the next sweep treats exactly the decided pairs as adjudicated.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from groupshelp import GROUP, PAIR, GroupEnv, load_sources, open_group_env
from store.conftest import pg_schema, pg_server  # noqa: F401  (the store tests' PostgreSQL fixtures)

from verifier.core.packs import load_pack
from verifier.store.audit import events_for
from verifier.store.models import ReviewCase

DUPLICATE = load_pack("sface-yunet-int8").thresholds.duplicate


@pytest.fixture(scope="module")
def sources(pipeline, single_faces):
    return load_sources(pipeline, single_faces)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def genv(request, tmp_path_factory, cache_dir, pipeline, sources) -> Iterator[GroupEnv]:
    home = tmp_path_factory.mktemp(f"groups-{request.param}")
    if request.param == "sqlite":
        env = open_group_env(home, cache_dir, pipeline, sources)
        yield env
    else:
        with pg_schema(request.getfixturevalue("pg_server")) as url:
            env = open_group_env(home, cache_dir, pipeline, sources, db_url=url)
            yield env
    env.stop()
    env.db.dispose()


def _members(env: GroupEnv) -> dict[str, dict]:
    body = env.client.get(f"/api/v1/cases/{env.group_case}", headers=env.h("reviewer")).json()
    return {m["ksh"]: m for m in body["members"]}


def test_scoped_reviewer_cannot_see_claim_or_decide_a_group_with_an_outside_member(genv: GroupEnv, tmp_path: Path) -> None:
    h = genv.h("reviewer", scoped=True)
    with genv.db.session() as s:
        case = s.get(ReviewCase, genv.group_case)
        assert case.student_id == genv.ids[GROUP[0]]  # the case's own student (and subject pair) is inside 文学院
    listed = {c["id"] for c in genv.client.get("/api/v1/cases?limit=500", headers=h).json()["items"]}
    assert genv.pair_case in listed and genv.group_case not in listed
    base = f"/api/v1/cases/{genv.group_case}"
    member = next(iter(_members(genv).values()))["member_id"]
    for method, path, body in (
        ("GET", base, None),
        ("GET", f"{base}/photos/a", None),
        ("GET", f"{base}/members/{member}/photo", None),
        ("POST", f"{base}/claim", None),
        ("POST", f"{base}/notes", {"note": "看过"}),
        ("POST", f"{base}/resolve", {"outcome": "dismissed", "note": "不是同一人"}),
        ("POST", f"{base}/members", {"verdicts": [{"member_id": member, "outcome": "dismissed"}]}),
    ):
        r = genv.client.request(method, path, headers=h, json=body)
        assert r.status_code == 404 and r.json()["code"] == "STORE_CASE_UNKNOWN", (method, path, r.status_code, r.text[:200])
    with genv.db.session() as s:
        case = s.get(ReviewCase, genv.group_case)
        assert case.state == "open" and case.assignee is None and case.outcome is None
    # Nothing was adjudicated: a full sweep raises the group's six pairs again, under the same open case.
    summary = genv.sweep(tmp_path / "sweep", full=True)
    assert summary.counts["adjudicated_pairs"] == 0 and summary.counts["cases_opened"] == 0
    # The 文学院 pair case is the scoped reviewer's to decide.
    r = genv.client.get(f"/api/v1/cases/{genv.pair_case}", headers=h)
    assert r.status_code == 200 and {m["ksh"] for m in r.json()["members"]} == set(PAIR)


def test_scoped_case_export_leaves_out_a_group_with_an_outside_member(genv: GroupEnv) -> None:
    def case_ids(h: dict[str, str]) -> set[int]:
        r = genv.client.get("/api/v1/exports/cases?format=csv", headers=h)
        assert r.status_code == 200, r.text[:200]
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        return {int(row[0]) for row in rows[1:]}

    everyone = case_ids(genv.h("academic_affairs"))
    scoped = case_ids(genv.h("academic_affairs", scoped=True))
    assert {genv.group_case, genv.pair_case} <= everyone
    # The group's own student is in 文学院, but one member is not: the scoped export must not list it.
    assert genv.pair_case in scoped and genv.group_case not in scoped


def test_population_reviewer_sees_every_member_photo_and_score(genv: GroupEnv) -> None:
    r = genv.client.get(f"/api/v1/cases/{genv.group_case}", headers=genv.h("reviewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    members = body["members"]
    assert [m["ksh"] for m in members] == GROUP
    assert [m["college"] for m in members] == ["文学院", "文学院", "文学院", "法学院"]
    assert all("*" in m["id_masked"] and m["outcome"] is None for m in members)
    assert [s["ksh"] for s in body["students"]] == GROUP
    assert len(body["pairs"]) == 6 and all(p["score"] >= DUPLICATE for p in body["pairs"])
    n = len(members)
    matrix = body["matrix"]
    assert len(matrix) == n and all(len(row) == n for row in matrix)
    assert all(matrix[i][i] is None for i in range(n))
    assert all(matrix[i][j] == matrix[j][i] and matrix[i][j] >= DUPLICATE for i in range(n) for j in range(n) if i != j)
    for m in members:
        photo = genv.client.get(m["photo_url"], headers=genv.h("reviewer"))
        assert photo.status_code == 200 and photo.content[:2] == b"\xff\xd8" and photo.headers["cache-control"] == "no-store"
    with genv.db.session() as s:
        views = [e for e in events_for(s, "photo", members[3]["photo_id"]) if e.action == "photo.view"]
        assert views and views[-1].summary["case"] == genv.group_case
    missing = genv.client.get(f"/api/v1/cases/{genv.group_case}/members/999999/photo", headers=genv.h("reviewer"))
    assert missing.status_code == 404 and missing.json()["code"] == "STORE_CASE_MEMBER_UNKNOWN"


def test_confirm_three_dismiss_one_then_the_sweep_counts_the_group_adjudicated(genv: GroupEnv, tmp_path: Path) -> None:
    h = genv.h("reviewer")
    url = f"/api/v1/cases/{genv.group_case}/members"
    members = _members(genv)
    stale = genv.client.post(url, headers=h, json={"verdicts": [{"member_id": members[GROUP[0]]["member_id"], "outcome": "confirmed"}], "pairs_seen": 3})
    assert stale.status_code == 409 and stale.json()["code"] == "STORE_CASE_TRANSITION_INVALID"
    three = [{"member_id": members[k]["member_id"], "outcome": "confirmed"} for k in GROUP[:3]]
    r = genv.client.post(url, headers=h, json={"verdicts": three, "note": "三人为同一人", "pairs_seen": 6})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "in_review" and body["assignee"].endswith(":test-reviewer")
    assert [m["outcome"] for m in body["members"]] == ["confirmed"] * 3 + [None]
    other = genv.client.post(url, headers=genv.h("reviewer", scoped=True), json={"verdicts": three})
    assert other.status_code == 404
    # Three confirmed, one undecided: the pairs among the three are decided, the three with G4 are not.
    partial = genv.sweep(tmp_path / "partial", full=True)
    assert partial.counts["adjudicated_pairs"] == 0 and partial.counts["cases_opened"] == 0  # the case is still open: all six stay with it
    last = [{"member_id": members[GROUP[3]]["member_id"], "outcome": "dismissed"}]
    r = genv.client.post(url, headers=h, json={"verdicts": last})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "resolved" and body["outcome"] == "same_person"
    assert {m["ksh"]: m["outcome"] for m in body["members"]} == {**dict.fromkeys(GROUP[:3], "confirmed"), GROUP[3]: "dismissed"}
    with genv.db.session() as s:
        decided = [e for e in events_for(s, "case", genv.group_case) if e.action == "case.member_decide"]
        assert len(decided) == 4 and all(e.actor.endswith(":test-reviewer") for e in decided)
        assert [e.summary["after"]["outcome"] for e in decided] == ["confirmed"] * 3 + ["dismissed"]
        assert [e.action for e in events_for(s, "case", genv.group_case)][-1] == "case.resolve"
    after = genv.sweep(tmp_path / "after", full=True)
    assert after.counts["adjudicated_pairs"] == 6 and after.counts["cases_opened"] == 0
    again = genv.client.post(url, headers=h, json={"verdicts": last})
    assert again.status_code == 409
