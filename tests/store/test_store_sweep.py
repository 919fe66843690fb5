"""The duplicate sweep on both databases (SQLite and PostgreSQL) with stored vectors: pairs, groups, cases, adjudication."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select
from storehelp import add_students, picture

from verifier.common.settings import Settings
from verifier.store import cases, embeddings
from verifier.store.db import Database
from verifier.store.models import ReviewCase
from verifier.store.photos import add_photo
from verifier.store.photostore import PhotoStore
from verifier.sweep.runner import Sweep, SweepOptions

PACK = "sface-yunet-int8"


def _near(rng: np.random.Generator, v: np.ndarray, cos: float) -> np.ndarray:
    r = rng.standard_normal(v.size).astype(np.float32)
    r -= (r @ v) * v
    r /= np.linalg.norm(r)
    return (cos * v + np.sqrt(1 - cos * cos) * r).astype(np.float32)


def _fill(db: Database, store: PhotoStore) -> list[int]:
    """40 students with random faces; 0~1 share a face, 2~3~4 share one, 5's own two photos match."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 128)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    base[1] = _near(rng, base[0], 0.9)
    base[3], base[4] = _near(rng, base[2], 0.92), _near(rng, base[2], 0.9)  # 3~4 then about 0.83, above the duplicate threshold

    def write(s) -> list[int]:
        students = add_students(s, 40)
        for i, st in enumerate(students):
            adm = add_photo(s, store, st, "admission", picture(i))
            embeddings.put(s, adm.id, PACK, base[i])
        grad = add_photo(s, store, students[5], "graduation", picture(1000))
        embeddings.put(s, grad.id, PACK, _near(rng, base[5], 0.95))
        return [st.id for st in students]

    return db.transaction(write)


def _sweep(db: Database, home: Path, tmp: Path, name: str, **kw):
    settings = Settings(home=home, id_key="test-key-0123456789abcdef")
    return Sweep(SweepOptions(db_url=db.url, out_dir=tmp / name, workers=1, **kw), settings).run()


def test_sweep_on_each_database(db: Database, store: PhotoStore, home: Path, tmp_path: Path) -> None:
    ids = _fill(db, store)
    first = _sweep(db, home, tmp_path, "r1")
    assert first.mode == "full" and first.counts["same_student_pairs"] == 1
    assert first.counts["pairs"] == 4 and first.counts["groups"] == 2 and first.counts["groups_3plus"] == 1 and first.counts["cases_opened"] == 2
    approx = _sweep(db, home, tmp_path, "r2", full=True, force_approximate=True)
    assert approx.index.startswith("ivf") and approx.counts["pairs"] == 4 and approx.counts["cases_opened"] == 0
    with db.session() as s:
        pair_case = s.scalars(select(ReviewCase).where(ReviewCase.case_type == "duplicate_face", ReviewCase.student_id == ids[0])).one()
    db.transaction(lambda s: cases.start_review(s, pair_case.id, "reviewer"))
    db.transaction(lambda s: cases.resolve(s, pair_case.id, "same_person", "reviewer"))
    third = _sweep(db, home, tmp_path, "r3", full=True)
    assert third.counts["adjudicated_pairs"] == 1 and third.counts["cases_opened"] == 0
    fourth = _sweep(db, home, tmp_path, "r4")
    assert fourth.mode == "incremental" and fourth.counts["new_photos"] == 0
    stricter = _sweep(db, home, tmp_path, "r5", threshold=0.95)
    assert stricter.mode == "incremental" and stricter.threshold_source == "--threshold"
    back = _sweep(db, home, tmp_path, "r6")  # the pack's lower threshold again: old pairs must be searched again
    assert back.mode == "full" and back.why == "threshold lowered since the last sweep" and back.counts["pairs"] == 4


def test_sweep_of_an_empty_store_completes_twice(db: Database, home: Path, tmp_path: Path) -> None:
    first = _sweep(db, home, tmp_path, "e1")
    second = _sweep(db, home, tmp_path, "e2")
    assert first.counts["photos"] == second.counts["photos"] == 0 and second.counts["pairs"] == 0
    assert (tmp_path / "e2" / "report.csv").is_file()
