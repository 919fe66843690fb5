"""Helpers shared by the store tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from verifier.photos.roster import Student as RosterStudent
from verifier.store.models import Student

ID_KEY = b"test-id-key-0123456789abcdef"


def picture(n: int) -> bytes:
    """Distinct stand-in photo bytes (the store never decodes them)."""
    return b"\xff\xd8\xff\xe0" + f"test picture {n}".encode() * 20 + b"\xff\xd9"


def ksh(n: int) -> str:
    return f"2111010100{n:04d}"


def add_students(session: Session, n: int, **kw: object) -> list[Student]:
    """n students with 考生号 ksh(0..n-1)."""
    rows = [Student(ksh=ksh(i), name=f"学生{i}", college=str(kw.get("college", "文学院")), intake=str(kw.get("intake", "2021秋"))) for i in range(n)]
    session.add_all(rows)
    session.flush()
    return rows


@dataclass
class FakeRoster:
    """A RosterLoad-like object for tests that do not go through a file."""

    students: dict[str, RosterStudent]
    rejected: list = field(default_factory=list)
    path: None = None


def concurrent_writer(url: str, store_root: str, worker: int, n: int, start_at: float) -> list[str]:
    """One writer of the concurrency test: adds the same photos, comparisons, embeddings and cases as its rival.

    Each worker also files its own correction for students n..n+4, so both corrections must land in one chain.
    Returns the errors it saw (expected: none).
    """
    import time

    import numpy as np

    from verifier.store import cases, comparisons, embeddings, photos
    from verifier.store.connect import open_database
    from verifier.store.photostore import PhotoStore
    from verifier.store.students import get_student

    db = open_database(url)
    store = PhotoStore(store_root)
    errors: list[str] = []
    time.sleep(max(0.0, start_at - time.time()))
    for i in range(n):
        try:
            def unit(s: Session, i: int = i) -> None:
                st = get_student(s, ksh(i))
                assert st is not None
                adm = photos.add_photo(s, store, st, "admission", picture(i), source=f"w{worker}")
                grad = photos.add_photo(s, store, st, "graduation", picture(10_000 + i), source=f"w{worker}")
                embeddings.put(s, adm.id, "pack", np.full(16, i, np.float32))
                cmp = comparisons.record_comparison(s, adm, grad, "pack", 0.1, "mismatch", ["X"]).comparison
                cases.open_case(s, "comparison_failed", "comparison", cmp.id, st.id, actor=f"w{worker}")

            db.transaction(unit)
            if i < 5:
                db.transaction(
                    lambda s, i=i: photos.add_photo(s, store, get_student(s, ksh(n + i)), "admission", picture(20_000 + 100 * worker + i))  # type: ignore[arg-type]
                )
        except Exception as exc:  # noqa: BLE001 - the test asserts there are none
            errors.append(f"{type(exc).__name__}: {exc}")
    db.dispose()
    return errors
