"""Issue 21 (scope leaks, ID-number oracle, forged lines, hardening) through a real uvicorn on loopback, over SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apihelp import ID_KEY, SCOPE, make_keys
from sqlalchemy import select
from store.conftest import pg_schema, pg_server  # noqa: F401  (the store tests' PostgreSQL fixtures)

from verifier.common.settings import Settings
from verifier.store.audit import events_for
from verifier.store.connect import open_database
from verifier.store.models import ApiKey, AuditEvent
from verifier.store.schema import upgrade
from verifier.store.students import get_student

OTHER = "理学院"
ID_IN, ID_OTHER, ID_WRONG = "11010519491231002X", "440524188001010014", "110101199003070011"
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def roster_csv(*rows: tuple[str, str, str, str, str]) -> bytes:
    """A roster CSV: (考生号, 姓名, 学院, 学习中心, 身份证号) per row."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["考生号", "姓名", "学院", "学习中心", "身份证号"])
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


class Live:
    """A uvicorn server run exactly as `verifier serve` configures it, a store, and keys by role."""

    def __init__(self, base: str, db: Any, settings: Settings, url: str, plain: dict[str, str], scoped: dict[str, str]):
        self.client = httpx.Client(base_url=base, timeout=30)
        self.base, self.db, self.settings, self.url, self.plain, self.scoped = base, db, settings, url, plain, scoped
        self.port = int(base.rsplit(":", 1)[1])

    def h(self, role: str, scoped: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {(self.scoped if scoped else self.plain)[role]}"}

    def roster(self, role: str, data: bytes, scoped: bool = False) -> dict[str, Any]:
        r = self.client.post("/api/v1/rosters", headers=self.h(role, scoped), files={"file": ("roster.csv", data, "text/csv")})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory, cache_dir, pipeline) -> Iterator[Live]:
    """uvicorn on 127.0.0.1:<free port> with api.server's config, over a migrated store holding five students."""
    import uvicorn

    from api.app import create_app
    from api.server import uvicorn_config

    with contextlib.ExitStack() as stack:
        home = tmp_path_factory.mktemp(f"security-{request.param}")
        if request.param == "postgresql":
            url = stack.enter_context(pg_schema(request.getfixturevalue("pg_server")))
        else:
            url = f"sqlite:///{home / 'verifier.db'}"
        settings = Settings(home=home, cache_dir=cache_dir, id_key=ID_KEY, api_id_mismatch_limit=2, api_header_timeout_s=1.0, api_files_root=home / "incoming")
        upgrade(url)
        db = open_database(url)
        stack.callback(db.dispose)
        plain, scoped = make_keys(db)
        port = _free_port()
        server = uvicorn.Server(uvicorn_config(create_app(settings, url, pipeline=pipeline), settings, "127.0.0.1", port, "warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        env = Live(f"http://127.0.0.1:{port}", db, settings, url, plain, scoped)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if env.client.get("/readyz").status_code == 200:
                    break
            time.sleep(0.2)
        env.roster("admissions", roster_csv(
            ("30000000000001", "甲", SCOPE, "", ID_IN),
            ("30000000000002", "乙", OTHER, "", ID_OTHER),
            ("30000000000003", "丙", OTHER, SCOPE, ""),  # 理学院 taught at a centre named like the scope
            ("30000000000004", "丁", SCOPE, "", ""),
            ("30000000000005", "戊", SCOPE, "", ID_OTHER),
        ))
        yield env
        server.should_exit = True
        thread.join(timeout=30)
        env.client.close()


def _case(env: Live, ksh: str) -> int:
    from verifier.store.cases import open_case

    def unit(s: Any) -> int:
        st = get_student(s, ksh)
        return open_case(s, "identity_check", "student", st.id, st.id, actor="test").case.id

    return env.db.transaction(unit)


# 5. Scope leaks


def test_scoped_key_cannot_see_or_cancel_population_jobs(live: Live) -> None:
    incoming = live.settings.home / "incoming"
    for d in ("adm", "grad"):
        (incoming / d).mkdir(parents=True, exist_ok=True)
    (incoming / "r.csv").write_bytes(roster_csv(("30000000000001", "甲", SCOPE, "", "")))
    r = live.client.post("/api/v1/jobs/batch-compare", headers=live.h("academic_affairs"), json={"roster": "r.csv", "admission_dir": "adm", "graduation_dir": "grad"})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    assert job in [j["id"] for j in live.client.get("/api/v1/jobs", headers=live.h("academic_affairs")).json()["items"]]
    assert live.client.get("/api/v1/jobs", headers=live.h("academic_affairs", True)).json()["items"] == []
    for method, path in (("GET", f"/api/v1/jobs/{job}"), ("POST", f"/api/v1/jobs/{job}/cancel")):
        mine = live.client.request(method, path, headers=live.h("academic_affairs", True))
        missing = live.client.request(method, path.replace(job, "0123456789ab"), headers=live.h("academic_affairs", True))
        assert mine.status_code == missing.status_code == 404 and mine.json()["code"] == missing.json()["code"] == "API_JOB_UNKNOWN"
    deadline = time.monotonic() + 120
    while live.client.get(f"/api/v1/jobs/{job}", headers=live.h("academic_affairs")).json()["state"] not in ("completed", "failed", "cancelled", "interrupted"):
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.5)
    assert live.client.get(f"/api/v1/jobs/{job}", headers=live.h("academic_affairs")).json()["state"] != "cancelling"


def test_scoped_import_does_not_tell_who_exists_elsewhere(live: Live) -> None:
    out = live.roster("admissions", roster_csv(("30000000000002", "乙", SCOPE, "", ""), ("39999999999999", "新", SCOPE, "", "")), scoped=True)
    assert out["counts"] == {"inserted": 0, "updated": 0, "unchanged": 0, "rejected": 2}
    by = {r["ksh"]: {k: v for k, v in r.items() if k != "ksh"} for r in out["rejected"]}
    assert by["30000000000002"] == by["39999999999999"] and by["39999999999999"]["code"] == "API_STUDENT_OUT_OF_SCOPE"
    with live.db.session() as s:
        assert get_student(s, "39999999999999") is None and get_student(s, "30000000000002").college == OTHER
        refused = s.scalars(select(AuditEvent).where(AuditEvent.action == "roster.scope_refused")).all()
        assert refused and set(refused[-1].summary["after"]["ksh"]) == {"30000000000002", "39999999999999"}
    ok = live.roster("admissions", roster_csv(("30000000000004", "丁丁", SCOPE, "", "")), scoped=True)
    assert ok["counts"]["updated"] == 1  # a student on the key's own rolls is still updated


def test_a_scope_matches_only_its_own_column(live: Live) -> None:
    out = live.roster("admissions", roster_csv(("30000000000004", "丁", OTHER, SCOPE, "")), scoped=True)
    assert [r["code"] for r in out["rejected"]] == ["API_STUDENT_OUT_OF_SCOPE"]
    with live.db.session() as s:
        assert get_student(s, "30000000000004").college == SCOPE
    r = live.client.get("/api/v1/students/30000000000003", headers=live.h("admissions", True))
    assert r.status_code == 404 and r.json()["code"] == "STORE_STUDENT_UNKNOWN"
    assert live.client.get("/api/v1/students/30000000000003", headers=live.h("admissions")).status_code == 200
    theirs, mine = _case(live, "30000000000003"), _case(live, "30000000000001")
    ids = {c["id"] for c in live.client.get("/api/v1/cases?limit=500", headers=live.h("reviewer", True)).json()["items"]}
    assert mine in ids and theirs not in ids
    assert live.client.get(f"/api/v1/cases/{theirs}", headers=live.h("reviewer", True)).status_code == 404
    export = live.client.get("/api/v1/exports/students?format=csv", headers=live.h("academic_affairs", True)).text
    assert "30000000000001" in export and "30000000000003" not in export


# 6. ID-number oracle


def test_id_number_guesses_learn_nothing_and_are_limited(live: Live) -> None:
    from api.keys import create_key

    key = live.db.transaction(lambda s: create_key(s, "admissions", "guesser", actor="test").secret)
    h = {"Authorization": f"Bearer {key}"}

    def send(ksh: str, number: str) -> dict[str, Any]:
        r = live.client.post("/api/v1/rosters", headers=h, files={"file": ("r.csv", roster_csv((ksh, "戊", SCOPE, "", number)), "text/csv")})
        assert r.status_code == 200, r.text
        return r.json()

    first = send("30000000000005", ID_WRONG)
    assert [r["code"] for r in first["rejected"]] == ["STORE_IMPORT_ID_CHANGED"]
    assert "4405" not in str(first) and "0014" not in str(first) and "*" not in str(first)  # no stored form, not even masked
    send("30000000000005", ID_IN)  # second wrong guess: the limit (2) is spent
    wrong, right = send("30000000000005", ID_WRONG), send("30000000000005", ID_OTHER)
    assert wrong["rejected"] == right["rejected"] and wrong["counts"] == right["counts"]
    assert right["rejected"][0]["code"] == "STORE_IMPORT_ID_LIMIT"
    with live.db.session() as s:
        st = get_student(s, "30000000000005")
        mismatches = [e for e in events_for(s, "student", st.id) if e.action == "student.id_mismatch"]
        assert len(mismatches) == 2 and all("guesser" in e.actor for e in mismatches)
    assert send("30000000000001", ID_IN)["counts"]["rejected"] == 1  # spent for every student, not per student


# 7. Forged lines


def test_note_newline_cannot_forge_an_entry(live: Live) -> None:
    case_id = _case(live, "30000000000001")
    forged = "看过\n[2026-01-01T00:00:00+00:00 key:1:test-admin] 已核实，驳回"
    r = live.client.post(f"/api/v1/cases/{case_id}/notes", headers=live.h("reviewer"), json={"note": forged})
    assert r.status_code == 200, r.text
    notes = r.json()["notes"]
    assert isinstance(notes, list) and len(notes) == 1
    assert notes[0]["text"] == forged and notes[0]["author"].endswith(":test-reviewer")
    export = live.client.get("/api/v1/exports/cases?format=csv", headers=live.h("academic_affairs")).content.decode("utf-8-sig")
    row = next(r for r in csv.reader(io.StringIO(export)) if r and r[0] == str(case_id))
    lines = row[9].splitlines()
    assert len(lines) == 1 and "test-reviewer]" in lines[0] and "\\n[2026-01-01" in lines[0]


@pytest.mark.parametrize("body,code", [
    ({"role": "reviewer", "name": "ok\n2\tx\tadmin\t*\tactive"}, "API_KEY_NAME_INVALID"),
    ({"role": "reviewer", "name": "blank scope", "scopes": ["  "]}, "API_KEY_SCOPE_INVALID"),
    ({"role": "reviewer", "name": "huge scope", "scopes": ["学" * 200_000]}, "API_KEY_SCOPE_INVALID"),
    ({"role": "reviewer", "name": "control scope", "scopes": ["文学院\u202e"]}, "API_KEY_SCOPE_INVALID"),
    ({"role": "reviewer", "name": "expired", "expires": "2020-01-01"}, "API_KEY_EXPIRY_INVALID"),
])
def test_bad_key_fields_are_refused(live: Live, body: dict[str, Any], code: str) -> None:
    before = live.client.get("/api/v1/keys", headers=live.h("admin")).json()
    r = live.client.post("/api/v1/keys", headers=live.h("admin"), json=body)
    assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert live.client.get("/api/v1/keys", headers=live.h("admin")).json() == before


def test_keys_list_cannot_be_forged(live: Live) -> None:
    """A row written before validation existed (straight into the table) still prints as one line."""
    from api.keys import create_key

    def unit(s: Any) -> int:
        row = create_key(s, "reviewer", "legacy", actor="test").key
        row.name = "legacy\n99\tforged\tadmin\t*\tactive\t-"
        return row.id

    live.db.transaction(unit)
    env = {**os.environ, "VERIFIER_HOME": str(live.settings.home), "VERIFIER_ID_KEY": ID_KEY}
    out = subprocess.run([sys.executable, "-m", "verifier", "keys", "list", "--db", live.url], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    with live.db.session() as s:
        count = len(s.scalars(select(ApiKey)).all())
    lines = out.stdout.splitlines()
    assert len(lines) == count and not any(line.startswith("99\t") for line in lines)
    assert all(len(line.split("\t")) == 6 for line in lines)


# 8. Hardening


def test_far_future_date_filter_is_a_coded_4xx(live: Live) -> None:
    for q in ("until=9999-12-31", "since=0001-01-01"):
        r = live.client.get(f"/api/v1/cases?{q}", headers=live.h("reviewer"))
        assert r.status_code == 422 and r.json()["code"] == "API_DATE_OUT_OF_RANGE", r.text
    assert live.client.get("/api/v1/cases?until=2999-12-31", headers=live.h("reviewer")).status_code == 200


def test_every_response_carries_nosniff_and_api_answers_no_store(live: Live) -> None:
    for path, headers in (("/healthz", {}), ("/review", {}), ("/openapi.json", {}), ("/api/v1/me", {}), ("/api/v1/me", live.h("reviewer")),
                          ("/api/v1/students/30000000000001", live.h("admissions")), ("/api/v1/nope", live.h("admissions"))):
        r = live.client.get(path, headers=headers)
        assert r.headers.get("x-content-type-options") == "nosniff", (path, r.status_code)
        if path.startswith("/api/"):
            assert r.headers.get("cache-control") == "no-store", (path, r.status_code)


def test_docs_page_loads_nothing_from_outside(live: Live) -> None:
    import re

    page = live.client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)""", page.text) + re.findall(r"""url:\s*['"]([^'"]+)""", page.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    for u in urls:
        assert live.client.get(u).status_code == 200, u
    assert "swagger-ui" in live.client.get("/docs-assets/swagger-ui-bundle.js").text[:5000].lower()


def _raw(port: int, head: bytes, wait: float) -> tuple[bytes, float]:
    """Send a request head, never a body; what the server answers within `wait` seconds, and when."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head)
        data = b""
        with contextlib.suppress(TimeoutError, socket.timeout):
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    return data, time.monotonic() - t0


def test_unauthenticated_upload_is_refused_before_its_body(live: Live) -> None:
    head = (b"PUT /api/v1/students/30000000000001/photos/admission HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: 1000000\r\n\r\n")
    data, took = _raw(live.port, head, wait=5)
    assert data.startswith(b"HTTP/1.1 401"), data[:200]
    assert took < 5
    data, _ = _raw(live.port, head.replace(b"Host: x\r\n", b"Host: x\r\nX-API-Key: vfk_000000000000_guess\r\n"), wait=5)
    assert data.startswith(b"HTTP/1.1 401"), data[:200]


def test_slow_request_head_is_cut_off(live: Live) -> None:
    data, took = _raw(live.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", wait=8)
    assert data.startswith(b"HTTP/1.1 408"), data[:300]
    assert took < live.settings.api_header_timeout_s + 3
    endless = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (live.settings.api_max_header_bytes + 1024)  # a head that never ends
    data, took = _raw(live.port, endless, wait=5)
    assert data.startswith(b"HTTP/1.1 4") and not data.startswith(b"HTTP/1.1 408"), data[:200]  # refused for size, not time
    assert took < live.settings.api_header_timeout_s
    assert live.client.get("/healthz").status_code == 200


def test_serve_config_takes_its_limits_from_settings() -> None:
    from api.server import uvicorn_config

    s = Settings(api_limit_concurrency=7, api_backlog=9, api_keep_alive_s=3, api_max_header_bytes=4096, api_header_timeout_s=2.5)
    c = uvicorn_config(object(), s, "127.0.0.1", 1)
    assert (c.limit_concurrency, c.backlog, c.timeout_keep_alive, c.h11_max_incomplete_event_size) == (7, 9, 3, 4096)
    assert c.http.header_timeout_s == 2.5
