"""Database faults: a terminated backend and a restarted server are retried with backoff for a bounded time.

Runs on a throw-away cluster (tests/store/pgcluster.py) that the test stops and starts; the shared server is
only used for pg_terminate_backend on this test's own connections.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, func, select, text

from tests.store.pgcluster import Cluster, make_cluster
from verifier.common.reasons import VerifierError
from verifier.store import schema
from verifier.store.connect import open_database
from verifier.store.models import Student


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = make_cluster()
    schema.upgrade(c.url)
    yield c
    c.remove()


def _add_student(s, key: str) -> int:
    s.add(Student(ksh=key, student_no=key, name="测试", college="计算机学院"))
    s.flush()
    return s.scalar(select(func.count()).select_from(Student))


def test_terminated_backend_mid_transaction_is_retried_once(cluster: Cluster):
    db = open_database(cluster.url)
    admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    calls = []

    def unit(s):
        calls.append(1)
        pid = s.scalar(text("SELECT pg_backend_pid()"))
        if len(calls) == 1:
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        return _add_student(s, f"T{time.monotonic_ns()}")

    before = db.retries_done
    db.transaction(unit)
    assert len(calls) == 2 and db.retries_done == before + 1
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Student).where(Student.ksh.like("T%"))) == 1
    db.dispose()
    admin.dispose()


def test_write_waits_for_a_restarted_server_and_lands_once(cluster: Cluster):
    db = open_database(cluster.url)
    db.retry_s = 30.0
    with db.session() as s:
        before = s.scalar(select(func.count()).select_from(Student))
    cluster.stop()
    back = threading.Timer(3.0, cluster.start)
    back.start()
    t0 = time.monotonic()
    db.transaction(lambda s: _add_student(s, "RESTART1"))
    waited = time.monotonic() - t0
    back.join()
    assert 2.5 <= waited < 15, waited
    assert db.retries_done >= 2
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Student)) == before + 1
    db.dispose()


def test_server_away_too_long_stops_with_reason_and_no_password(cluster: Cluster):
    db = open_database(cluster.url.replace("postgres@", "postgres:s3cret@"))
    db.retry_s = 1.0
    cluster.stop()
    try:
        t0 = time.monotonic()
        with pytest.raises(VerifierError) as err:
            db.transaction(lambda s: _add_student(s, "NEVER"))
        assert time.monotonic() - t0 < 5
        assert err.value.reason.code == "STORE_DB_UNREACHABLE"
        assert "s3cret" not in str(err.value) and "retries" in str(err.value)
    finally:
        cluster.start()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Student).where(Student.ksh == "NEVER")) == 0
    db.dispose()
