"""Two writers (processes or threads) on one database: no duplicate rows, no errors surfaced, chains intact."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from storehelp import add_students, concurrent_writer, picture

from verifier.store import photos
from verifier.store.db import Database
from verifier.store.models import Comparison, Embedding, Photo, ReviewCase

N = 25


@pytest.mark.parametrize("mode", ["processes", "threads"])
def test_concurrent_writers(db: Database, store, mode: str) -> None:  # type: ignore[no-untyped-def]
    with db.write_session() as s:
        students = add_students(s, N + 5)
        for st in students[N:]:
            photos.add_photo(s, store, st, "admission", picture(30_000 + st.id))
    start_at = time.time() + (3.0 if mode == "processes" else 0.3)
    pool = (
        ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
        if mode == "processes"
        else ThreadPoolExecutor(2)
    )
    with pool:
        futures = [pool.submit(concurrent_writer, db.url, str(store.root), w, N, start_at) for w in (1, 2)]
        errors = [e for f in futures for e in f.result(timeout=300)]
    assert errors == []
    with db.session() as s:
        current = Counter(s.execute(select(Photo.student_id, Photo.kind).where(Photo.is_current.is_(True))).all())
        assert len(current) == 2 * N + 5 and set(current.values()) == {1}
        assert s.scalar(select(func.count()).select_from(Photo).where(Photo.kind == "graduation")) == N
        assert s.scalar(select(func.count()).select_from(Comparison)) == N
        assert s.scalar(select(func.count()).select_from(ReviewCase)) == N
        assert s.scalar(select(func.count()).select_from(Embedding)) == N
        for sid in range(1, N + 6):
            chain = list(s.scalars(select(Photo).where(Photo.student_id == sid, Photo.kind == "admission").order_by(Photo.id)))
            # one linear chain: each links to the next, only the last is current
            for older, newer in zip(chain, chain[1:]):
                assert older.replaced_by_id == newer.id and newer.replaces_id == older.id and not older.is_current
            assert chain[-1].is_current and chain[-1].replaced_by_id is None and chain[0].replaces_id is None
        versions = Counter(s.scalars(select(Photo.student_id).where(Photo.kind == "admission")))
        assert sorted(versions.values()) == [1] * N + [3] * 5  # base + one correction from each writer
