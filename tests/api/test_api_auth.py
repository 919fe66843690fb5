"""The auth matrix: every endpoint × no key / wrong role / out-of-scope / right role, plus key expiry and revocation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from apihelp import ROLES, SCOPE, Env
from idcardhelp import chip_from_admission

from api.jobs import sweep_function
from api.keys import create_key, revoke_key
from verifier.store.audit import events_for
from verifier.store.models import AuditEvent, utcnow


SWEEP = sweep_function() is not None


@dataclass(frozen=True)
class Endpoint:
    """How to call one endpoint for a target student (ksh) and case; which roles may; what scope does."""

    name: str
    method: str
    path: Callable[[Env, str, int], str]
    roles: tuple[str, ...]
    ok: int
    scope: str  # "student": out-of-scope target answers 404; "college": another 学院 answers 404 like an unknown one; "filter": a filter outside scope answers 403; "roster": rows refused; "whole": scoped keys 403; "none"
    kw: Callable[[Env, str], dict[str, Any]] = lambda e, k: {}
    filter_path: Callable[[Env], str] | None = None
    variant: bool = False  # another value of a path parameter of an operation already listed (not counted as an operation)


def _photo(env: Env, ksh: str) -> tuple[str, bytes, str]:
    path = env.cohort.admission_dir / f"{ksh}.jpg"
    data = (path if path.exists() else env.cohort.admission_dir / f"{env.inside[0]}.jpg").read_bytes()
    return (f"{ksh}.jpg", data, "image/jpeg")


def _id_card(env: Env, ksh: str) -> tuple[str, bytes, str]:
    return (f"{ksh}.bmp", chip_from_admission(_photo(env, ksh)[1]), "image/bmp")


@pytest.fixture(scope="module", autouse=True)
def _id_card_photo(env: Env) -> None:
    """The in-scope student the matrix targets has an ID-card photo, so fetching one is a 200 for the right role."""
    r = env.client.put(f"/api/v1/students/{env.inside[0]}/photos/id_card", headers=env.h("admissions"), files={"file": _id_card(env, env.inside[0])})
    assert r.status_code == 201, r.text


def _college(env: Env, ksh: str) -> str:
    """The 学院 of a cohort student, from the roster file."""
    import csv

    with open(env.cohort.roster, encoding="utf-8-sig", newline="") as fh:
        return next(row["学院"] for row in csv.DictReader(fh) if row["考生号"] == ksh)


def _roster(env: Env, ksh: str) -> dict[str, Any]:
    return {"files": {"file": ("roster.csv", env.cohort.roster.read_bytes(), "text/csv")}}


ENDPOINTS = [
    Endpoint("metrics", "GET", lambda e, k, c: "/metrics", ROLES, 200, "none"),
    Endpoint("me", "GET", lambda e, k, c: "/api/v1/me", ROLES, 200, "none"),
    Endpoint("check", "POST", lambda e, k, c: "/api/v1/photos/check", ("admissions",), 200, "none",
             lambda e, k: {"files": {"file": _photo(e, k)}, "data": {"profile": "admission"}}),
    Endpoint("compare", "POST", lambda e, k, c: "/api/v1/compare", ("academic_affairs",), 200, "none",
             lambda e, k: {"files": {"a": _photo(e, k), "b": _photo(e, k)}}),
    Endpoint("roster", "POST", lambda e, k, c: "/api/v1/rosters", ("admissions", "academic_affairs"), 200, "roster", _roster),
    Endpoint("student", "GET", lambda e, k, c: f"/api/v1/students/{k}", ("admissions", "academic_affairs"), 200, "student"),
    Endpoint("upload", "PUT", lambda e, k, c: f"/api/v1/students/{k}/photos/admission", ("admissions",), 201, "student",
             lambda e, k: {"files": {"file": _photo(e, k)}}),
    Endpoint("fetch_photo", "GET", lambda e, k, c: f"/api/v1/students/{k}/photos/admission", ("admissions", "academic_affairs"), 200, "student"),
    Endpoint("upload_id_card", "PUT", lambda e, k, c: f"/api/v1/students/{k}/photos/id_card", ("admissions",), 201, "student",
             lambda e, k: {"files": {"file": _id_card(e, k)}}, variant=True),
    Endpoint("fetch_id_card", "GET", lambda e, k, c: f"/api/v1/students/{k}/photos/id_card", ("admissions", "academic_affairs"), 200, "student", variant=True),
    Endpoint("compare_student", "POST", lambda e, k, c: f"/api/v1/students/{k}/compare", ("academic_affairs",), 200, "student"),
    Endpoint("cases", "GET", lambda e, k, c: "/api/v1/cases", ("reviewer",), 200, "filter", filter_path=lambda e: "/api/v1/cases?college=计算机学院"),
    Endpoint("case", "GET", lambda e, k, c: f"/api/v1/cases/{c}", ("reviewer",), 200, "student"),
    Endpoint("case_photo", "GET", lambda e, k, c: f"/api/v1/cases/{c}/photos/a", ("reviewer",), 200, "student"),
    Endpoint("case_id_card", "GET", lambda e, k, c: f"/api/v1/cases/{c}/photos/id_card", ("reviewer",), 200, "student", variant=True),
    Endpoint("member_photo", "GET", lambda e, k, c: f"/api/v1/cases/{c}/members/1/photo", ("reviewer",), 404, "student"),
    Endpoint("members", "POST", lambda e, k, c: f"/api/v1/cases/{c}/members", ("reviewer",), 409, "student",
             lambda e, k: {"json": {"verdicts": [{"member_id": 1, "outcome": "confirmed"}]}}),
    Endpoint("claim", "POST", lambda e, k, c: f"/api/v1/cases/{c}/claim", ("reviewer",), 200, "student"),
    Endpoint("note", "POST", lambda e, k, c: f"/api/v1/cases/{c}/notes", ("reviewer",), 200, "student", lambda e, k: {"json": {"note": "看过"}}),
    Endpoint("resolve", "POST", lambda e, k, c: f"/api/v1/cases/{c}/resolve", ("reviewer",), 200, "student",
             lambda e, k: {"json": {"outcome": "same_person", "note": "核实为本人"}}),
    Endpoint("release", "POST", lambda e, k, c: f"/api/v1/cases/{c}/release", ("reviewer",), 409, "student"),
    Endpoint("dossier", "GET", lambda e, k, c: f"/api/v1/cases/{c}/dossier", ("reviewer", "academic_affairs"), 200, "student"),
    Endpoint("dossiers", "GET", lambda e, k, c: f"/api/v1/cases/dossiers?id={c}&id={c}", ("reviewer", "academic_affairs"), 200, "student"),
    Endpoint("batch", "POST", lambda e, k, c: "/api/v1/jobs/batch-compare", ("academic_affairs",), 422, "whole",
             lambda e, k: {"json": {"roster": "../../etc/passwd", "admission_dir": "a", "graduation_dir": "g"}}),
    Endpoint("intake", "POST", lambda e, k, c: "/api/v1/jobs/intake-check", ("admissions", "academic_affairs"), 422, "whole",
             lambda e, k: {"json": {"roster": "../../etc/passwd", "admission_dir": "a", "id_card_dir": "c"}}),
    Endpoint("sweep", "POST", lambda e, k, c: "/api/v1/jobs/duplicate-sweep", ("academic_affairs",), 202 if SWEEP else 501, "whole", lambda e, k: {"json": {}}),
    Endpoint("jobs", "GET", lambda e, k, c: "/api/v1/jobs", ("academic_affairs",), 200, "none"),
    Endpoint("job", "GET", lambda e, k, c: "/api/v1/jobs/abc123", ("academic_affairs",), 404, "none"),
    Endpoint("job_cancel", "POST", lambda e, k, c: "/api/v1/jobs/abc123/cancel", ("academic_affairs",), 404, "none"),
    Endpoint("export", "GET", lambda e, k, c: "/api/v1/exports/students?format=csv", ("academic_affairs",), 200, "filter",
             filter_path=lambda e: "/api/v1/exports/students?format=csv&college=计算机学院"),
    Endpoint("lists", "GET", lambda e, k, c: f"/api/v1/lists/{_college(e, k)}", ROLES, 200, "college"),
    Endpoint("lists_xlsx", "GET", lambda e, k, c: f"/api/v1/lists/{_college(e, k)}/xlsx", ROLES, 200, "college"),
    Endpoint("keys", "GET", lambda e, k, c: "/api/v1/keys", ("admin",), 200, "none"),
    Endpoint("key_create", "POST", lambda e, k, c: "/api/v1/keys", ("admin",), 201, "none", lambda e, k: {"json": {"role": "reviewer", "name": "新复核人"}}),
    Endpoint("key_revoke", "POST", lambda e, k, c: "/api/v1/keys/999999/revoke", ("admin",), 404, "none"),
]


def _call(env: Env, ep: Endpoint, headers: dict[str, str], ksh: str, case_id: int, path: str | None = None) -> Any:
    return env.client.request(ep.method, path or ep.path(env, ksh, case_id), headers=headers, **ep.kw(env, ksh))


def _problem(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:400])
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["message_zh"] and body["message_en"]
    if code:
        assert body["code"] == code, body
    return body


def test_matrix_covers_every_endpoint(env: Env) -> None:
    spec = env.client.get("/openapi.json").json()
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item if p not in ("/healthz", "/readyz")}
    assert len(ops) == len([e for e in ENDPOINTS if not e.variant]), sorted(ops)


@pytest.mark.parametrize("ep", ENDPOINTS, ids=lambda e: e.name)
def test_no_key_is_401(env: Env, ep: Endpoint) -> None:
    case_id = env.new_case(env.inside[0])
    r = _call(env, ep, {}, env.inside[0], case_id)
    _problem(r, 401, "API_KEY_MISSING")
    assert "Bearer" in r.headers.get("www-authenticate", "")
    bad = _call(env, ep, {"X-API-Key": "vfk_000000000000_not-a-key"}, env.inside[0], case_id)
    _problem(bad, 401, "API_KEY_INVALID")


@pytest.mark.parametrize("ep", [e for e in ENDPOINTS if set(ROLES) - set(e.roles)], ids=lambda e: e.name)
def test_wrong_role_is_403(env: Env, ep: Endpoint) -> None:
    case_id = env.new_case(env.inside[0])
    for role in sorted(set(ROLES) - set(ep.roles)):
        _problem(_call(env, ep, env.h(role), env.inside[0], case_id), 403, "API_ROLE_FORBIDDEN")


@pytest.mark.parametrize("ep", [e for e in ENDPOINTS if e.scope != "none"], ids=lambda e: e.name)
def test_out_of_scope(env: Env, ep: Endpoint) -> None:
    role = ep.roles[0]
    outsider = env.outside[0]
    case_id = env.new_case(outsider)
    headers = env.h(role, scoped=True)
    if ep.scope == "student":
        _problem(_call(env, ep, headers, outsider, case_id), 404, "STORE_CASE_UNKNOWN" if "/cases/" in ep.path(env, "x", 1) else "STORE_STUDENT_UNKNOWN")
        missing = _call(env, ep, headers, "20999999999999", 999_999)
        assert missing.status_code == 404 and missing.json()["code"] in ("STORE_STUDENT_UNKNOWN", "STORE_CASE_UNKNOWN")
    elif ep.scope == "college":
        other = _problem(_call(env, ep, headers, outsider, case_id), 404, "STORE_COLLEGE_UNKNOWN")
        unknown = env.client.request(ep.method, ep.path(env, outsider, case_id).replace(_college(env, outsider), "无此学院"), headers=env.h(role))
        assert _problem(unknown, 404, "STORE_COLLEGE_UNKNOWN")["detail"] == other["detail"]
    elif ep.scope == "filter":
        assert ep.filter_path is not None
        _problem(env.client.request(ep.method, ep.filter_path(env), headers=headers), 403, "API_SCOPE_FORBIDDEN")
        r = _call(env, ep, headers, outsider, case_id)
        assert r.status_code == 200
        assert outsider not in r.text and env.inside[0] in r.text
    elif ep.scope == "roster":
        r = _call(env, ep, headers, outsider, case_id)
        assert r.status_code == 200, r.text
        refused = {x["ksh"] for x in r.json()["rejected"] if x["code"] == "API_STUDENT_OUT_OF_SCOPE"}
        assert refused == set(env.outside)
    else:
        _problem(_call(env, ep, headers, outsider, case_id), 403, "API_SCOPE_FORBIDDEN")


@pytest.mark.parametrize("ep", ENDPOINTS, ids=lambda e: e.name)
def test_right_role(env: Env, ep: Endpoint) -> None:
    for role in ep.roles:
        for scoped in (False, True) if ep.scope in ("student", "filter", "college") else (False,):
            case_id = env.new_case(env.inside[0])
            r = _call(env, ep, env.h(role, scoped), env.inside[0], case_id)
            if ep.name == "sweep" and r.status_code == 409:  # a sweep started by an earlier test is still running
                assert r.json()["code"] == "API_JOB_BUSY"
                continue
            assert r.status_code == ep.ok, (role, scoped, r.status_code, r.text[:300])
            if ep.ok >= 400:
                assert r.json()["code"] not in ("API_KEY_MISSING", "API_KEY_INVALID", "API_ROLE_FORBIDDEN", "API_SCOPE_FORBIDDEN")


def test_scoped_reviewer_sees_only_its_cases(env: Env) -> None:
    mine, theirs = env.new_case(env.inside[0]), env.new_case(env.outside[0])
    ids = {c["id"] for c in env.client.get("/api/v1/cases?limit=500", headers=env.h("reviewer", True)).json()["items"]}
    assert mine in ids and theirs not in ids
    every = {c["id"] for c in env.client.get("/api/v1/cases?limit=500", headers=env.h("reviewer")).json()["items"]}
    assert {mine, theirs} <= every
    assert all(c["college"] == SCOPE for c in env.client.get("/api/v1/cases?limit=500", headers=env.h("reviewer", True)).json()["items"])


def test_expired_and_revoked_keys_are_401(env: Env) -> None:
    def lapsed(s):  # type: ignore[no-untyped-def]  # a key whose expiry has passed since it was made
        issued = create_key(s, "reviewer", "old", expires_at=utcnow() + dt.timedelta(days=1), actor="test")
        issued.key.expires_at = utcnow() - dt.timedelta(days=1)
        return issued.secret

    expired = env.db.transaction(lapsed)
    _problem(env.client.get("/api/v1/me", headers={"X-API-Key": expired}), 401, "API_KEY_EXPIRED")
    issued = env.db.transaction(lambda s: create_key(s, "reviewer", "soon revoked", actor="test"))
    h = {"Authorization": f"Bearer {issued.secret}"}
    assert env.client.get("/api/v1/me", headers=h).status_code == 200
    r = env.client.post(f"/api/v1/keys/{issued.key.id}/revoke", headers=env.h("admin"))
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    _problem(env.client.get("/api/v1/me", headers=h), 401, "API_KEY_REVOKED")
    with env.db.session() as s:
        actions = [e.action for e in events_for(s, "api_key", issued.key.id)]
        assert actions == ["apikey.create", "apikey.revoke"]
        ev = events_for(s, "api_key", issued.key.id)[-1]
        assert ev.actor.startswith("key:") and "test-admin" in ev.actor
        assert all(issued.secret not in str(e.summary) for e in s.query(AuditEvent).all())
    env.db.transaction(lambda s: revoke_key(s, issued.key.id))


def test_keys_are_stored_hashed(env: Env) -> None:
    r = env.client.post("/api/v1/keys", headers=env.h("admin"), json={"role": "admissions", "name": "招生办", "scopes": [SCOPE]})
    assert r.status_code == 201
    secret = r.json()["key"]
    from sqlalchemy import text

    with env.db.engine.connect() as conn:
        dump = " ".join(str(row) for row in conn.execute(text("SELECT * FROM api_keys")))
    assert secret not in dump and secret.split("_", 2)[2] not in dump
    listed = env.client.get("/api/v1/keys", headers=env.h("admin")).json()
    assert all("key" not in k and "secret_hash" not in k for k in listed)
