"""Smoke test on PostgreSQL (VERIFIER_TEST_PG_URL, fresh schema): keys, roster, uploads, compare, cases, audit through the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apihelp import Env, open_env, seed
from store.conftest import pg_schema, pg_server  # noqa: F401  (the store tests' PostgreSQL fixtures)

from verifier.store.audit import events_for


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:  # noqa: F811
    with pg_schema(pg_server) as url:
        yield url


def test_api_on_postgresql(pg_url: str, tmp_path, cache_dir, pipeline, api_cohort) -> None:
    env, client = open_env(tmp_path / "home", cache_dir, pipeline, db_url=pg_url)
    try:
        env.cohort = api_cohort
        seed(env, api_cohort)
        assert env.db.dialect == "postgresql"
        cases = env.client.get("/api/v1/cases", headers=env.h("reviewer")).json()
        assert cases["total"] >= 1
        case_id = cases["items"][0]["id"]
        r = env.client.post(f"/api/v1/cases/{case_id}/resolve", headers=env.h("reviewer"), json={"outcome": "impersonation", "note": "冒名顶替"})
        assert r.status_code == 200 and r.json()["outcome"] == "impersonation"
        with env.db.session() as s:
            assert [e.action for e in events_for(s, "case", case_id)][-2:] == ["case.start_review", "case.resolve"]
        assert env.client.get(f"/api/v1/students/{env.outside[0]}", headers=env.h("admissions", scoped=True)).status_code == 404
        assert env.client.get("/api/v1/exports/comparisons", params={"format": "xlsx"}, headers=env.h("academic_affairs")).status_code == 200
    finally:
        client.__exit__(None, None, None)
        env.db.dispose()
