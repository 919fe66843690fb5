"""Helpers for the API tests: a running app with a seeded store, keys for every role, and requests with a key."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from api.keys import create_key
from verifier.common.settings import Settings
from verifier.store.cases import open_case
from verifier.store.db import Database
from verifier.store.connect import open_database
from verifier.store.students import get_student

ROLES = ("admissions", "academic_affairs", "reviewer", "admin")
SCOPE = "文学院"
ID_KEY = "test-id-key-0123456789abcdef"
_subjects = itertools.count(1_000_000)
# The role and scope matrices and the fuzzer send hundreds of wrong keys from one client on purpose:
# their apps get refused-key windows too wide to fill (test_api_abuse.py tests the real limits).
UNTHROTTLED: dict[str, Any] = {"api_auth_fail_per_address": 1_000_000, "api_auth_fail_per_prefix": 1_000_000}


@dataclass
class Env:
    """One app over one store: client, keys by role (plain and scoped), cohort students by scope."""

    client: TestClient
    db: Database
    settings: Settings
    keys: dict[str, str]
    scoped: dict[str, str]
    inside: list[str] = field(default_factory=list)  # 考生号 of students in SCOPE
    outside: list[str] = field(default_factory=list)
    cohort: Any = None

    def h(self, role: str | None, scoped: bool = False) -> dict[str, str]:
        """Headers carrying the key of a role (None: no key)."""
        if role is None:
            return {}
        return {"Authorization": f"Bearer {(self.scoped if scoped else self.keys)[role]}"}

    def new_case(self, ksh: str) -> int:
        """A fresh open identity_check case for a student (unique subject, so never merged with another)."""

        def unit(s: Any) -> int:
            st = get_student(s, ksh)
            return open_case(s, "identity_check", "photo", next(_subjects), st.id, actor="test").case.id

        return self.db.transaction(unit)


def make_keys(db: Database) -> tuple[dict[str, str], dict[str, str]]:
    """One unscoped and one SCOPE-limited key per role."""
    plain = {r: db.transaction(lambda s, r=r: create_key(s, r, f"test-{r}", actor="test").secret) for r in ROLES}
    scoped = {r: db.transaction(lambda s, r=r: create_key(s, r, f"test-{r}-scoped", [SCOPE], actor="test").secret) for r in ROLES}
    return plain, scoped


def wait_ready(client: TestClient, seconds: float = 120) -> None:
    """Poll /readyz until models are loaded and the database answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"not ready: {client.get('/readyz').json()}")


def seed(env: Env, cohort: Any) -> None:
    """Import the cohort's roster and upload its photos through the API, then compare everyone (cases open)."""
    import csv

    r = env.client.post("/api/v1/rosters", headers=env.h("admissions"), files={"file": ("roster.csv", cohort.roster.read_bytes(), "text/csv")})
    assert r.status_code == 200, r.text
    with open(cohort.roster, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        (env.inside if row["学院"] == SCOPE else env.outside).append(row["考生号"])
        for kind, folder in (("admission", cohort.admission_dir), ("graduation", cohort.graduation_dir)):
            path = Path(folder) / f"{row['考生号']}.jpg"
            if not path.exists():
                continue
            r = env.client.put(
                f"/api/v1/students/{row['考生号']}/photos/{kind}",
                params={"keep_failing": "true"},
                headers=env.h("admissions"),
                files={"file": (path.name, path.read_bytes(), "image/jpeg")},
            )
            assert r.status_code == 201, r.text
        r = env.client.post(f"/api/v1/students/{row['考生号']}/compare", headers=env.h("academic_affairs"))
        assert r.status_code == 200, r.text


def open_env(home: Path, cache_dir: Path, pipeline: Any, db_url: str | None = None, **settings_kw: Any) -> tuple[Env, Any]:
    """Settings, migrated database, keys and an app with the shared pipeline; returns the env and the client context."""
    from api.app import create_app
    from verifier.store.schema import upgrade

    settings = Settings(home=home, cache_dir=cache_dir, id_key=ID_KEY, **{**UNTHROTTLED, **settings_kw})
    url = db_url or settings.resolve_db_url()
    upgrade(url)
    db = open_database(url)
    plain, scoped = make_keys(db)
    client = TestClient(create_app(settings, url, pipeline=pipeline), raise_server_exceptions=False)
    ctx = client.__enter__()
    wait_ready(ctx)
    return Env(ctx, db, settings, plain, scoped), client


def serve(app: Any, settings: Settings | None = None) -> tuple[httpx.Client, Callable[[], None]]:
    """Run an app under uvicorn on 127.0.0.1:<free port> in a thread (with `verifier serve`'s config when given
    settings); returns a client and a stop function."""
    import uvicorn

    from api.server import uvicorn_config

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn_config(app, settings, "127.0.0.1", port, "warning") if settings else uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=20)
        client.close()

    return client, stop
