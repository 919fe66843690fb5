"""OpenAPI: the served document equals docs/openapi.json, and property-based fuzzing of every operation never gets a 5xx."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from apihelp import ROLES, Env
from hypothesis import HealthCheck, settings

from verifier.cli.serve import openapi_json

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
schema = schemathesis.openapi.from_dict(json.loads(DOC.read_text(encoding="utf-8")))
# The role whose key the fuzzer sends, by path prefix, so requests get past auth and reach validation and the handlers.
ROLE_FOR = (
    ("/api/v1/keys", "admin"),
    ("/api/v1/cases", "reviewer"),
    ("/api/v1/photos", "admissions"),
    ("/api/v1/rosters", "admissions"),
    ("/api/v1/students/{ksh}/photos/{kind}", "admissions"),
)


def test_committed_openapi_is_current(env: Env) -> None:
    """Regenerate with: verifier openapi --out docs/openapi.json"""
    assert DOC.read_text(encoding="utf-8") == openapi_json(), "docs/openapi.json is stale: run `verifier openapi --out docs/openapi.json`"
    assert env.client.get("/openapi.json").json() == json.loads(DOC.read_text(encoding="utf-8"))


@schema.parametrize()
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_fuzz_no_server_errors(case, env: Env) -> None:
    """Each operation with the key of the role it is meant for, so requests reach validation and the handlers."""
    role = next((r for prefix, r in ROLE_FOR if case.path.startswith(prefix) and (case.method != "PUT" or "photos" in prefix)), "academic_affairs")
    if case.path == "/api/v1/students/{ksh}/photos/{kind}" and case.method == "GET":
        role = "academic_affairs"
    _call_and_check(case, env, env.h(role))


# Every caller the API can meet: no key, a wrong key, each role unscoped and limited to one 学院.
CALLERS = ("none", "wrong", *[f"{r}{s}" for r in ROLES for s in ("", "-scoped")])


def _headers(env: Env, caller: str) -> dict[str, str]:
    if caller == "none":
        return {}
    if caller == "wrong":
        return {"X-API-Key": "vfk_0123456789ab_" + "x" * 43}
    role, _, scoped = caller.partition("-")
    return env.h(role, scoped=bool(scoped))


@pytest.mark.parametrize("caller", CALLERS)
@schema.parametrize()
@settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_fuzz_every_caller_no_server_errors(case, caller: str, env: Env) -> None:
    """The same fuzzing as every kind of caller: whatever the key (or none), no operation answers 5xx."""
    response = _call_and_check(case, env, _headers(env, caller))
    if caller in ("none", "wrong") and case.path.startswith("/api/"):
        assert response.status_code == 401, (caller, case.method, case.path, response.status_code)


def _call_and_check(case, env: Env, headers: dict[str, str]):
    """Call the operation; no 5xx (but the sweep's deliberate 501), every error problem+json with a reason code."""
    response = case.call(app=env.client.app, headers=headers)
    deliberate = response.status_code == 501 and "API_SWEEP_UNAVAILABLE" in response.text
    assert response.status_code < 500 or deliberate, (case.method, case.path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        content_type = response.headers.get("content-type") or [""]
        assert content_type[0].startswith("application/problem+json"), response.text[:200]
        assert response.json()["code"]
    return response
