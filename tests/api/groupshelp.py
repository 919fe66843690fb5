"""A store with one duplicate group spanning two 学院, served by uvicorn on loopback, for the group-case tests.

Students G1..G3 (文学院) are Obama 1, 3 and 6 and are swept first: one group case whose subject pair is
in 文学院. G4 (法学院) is Obama 1 again, framed and lit differently, and joins that case in a second sweep,
as in the issue (a case covering students of several 学院). P1 and P2 (文学院) are Kit Harington 1 and 3:
a pair case wholly inside 文学院. S1 and S2 share their face with nobody.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from apihelp import ID_KEY, SCOPE, make_keys, serve
from imaging import encode_jpeg
from sqlalchemy import select

from verifier.common.settings import Settings
from verifier.demo.cohort import _vary
from verifier.photos.framing import Framing, frame_face
from verifier.store.connect import open_database
from verifier.store.db import Database
from verifier.store.models import ReviewCase, Student
from verifier.store.photos import add_photo
from verifier.store.photostore import PhotoStore
from verifier.store.schema import upgrade
from verifier.sweep.runner import Sweep, SweepOptions

OTHER = "法学院"
ADMISSION, GRADUATION = Framing(295, 413), Framing(480, 640)
# 考生号 → (name, 学院, face-set stem, kind, jitter seed or None, which sweep adds it)
PLAN: dict[str, tuple[str, str, str, str, int | None, int]] = {
    "21110101000001": ("王一", SCOPE, "obama_1", "admission", None, 1),
    "21110101000002": ("王二", SCOPE, "obama_3", "admission", None, 1),
    "21110101000003": ("王三", SCOPE, "obama_6_small", "admission", None, 1),
    "21110101000004": ("王四", OTHER, "obama_1", "graduation", 3, 2),
    "21110101000005": ("李一", SCOPE, "kit_harington_1", "admission", None, 1),
    "21110101000006": ("李二", SCOPE, "kit_harington_3", "admission", None, 1),
    "21110101000007": ("张一", SCOPE, "adams_1", "admission", None, 1),
    "21110101000008": ("张二", OTHER, "biden_1", "admission", None, 1),
}
GROUP = ["21110101000001", "21110101000002", "21110101000003", "21110101000004"]
PAIR = ["21110101000005", "21110101000006"]


def load_sources(pipeline: Any, single_faces: list[Path]) -> dict[str, tuple[Any, Any]]:
    """Decoded face-set photos with their chosen face, by file stem."""
    out = {}
    for path in single_faces:
        a = pipeline.analyze(path)
        if a.face is not None:
            out[path.stem] = (pipeline.decode(path).pixels, a.face)
    return out


def _portrait(sources: dict[str, tuple[Any, Any]], stem: str, kind: str, seed: int | None) -> bytes:
    image, face = sources[stem]
    framing = ADMISSION if kind == "admission" else GRADUATION
    pixels = frame_face(image, face, framing) if seed is None else _vary(image, face, framing, random.Random(seed))
    return encode_jpeg(pixels, 85)


@dataclass
class GroupEnv:
    """The server's client, the store, keys, and the two duplicate cases the sweeps opened."""

    client: httpx.Client
    db: Database
    settings: Settings
    url: str
    keys: dict[str, str]
    scoped: dict[str, str]
    ids: dict[str, int]
    group_case: int
    pair_case: int
    stop: Callable[[], None]
    kind: str = "sqlite"

    def h(self, role: str, scoped: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {(self.scoped if scoped else self.keys)[role]}"}

    def sweep(self, out: Path, **kw: Any) -> Any:
        """Run the real duplicate sweep on this store."""
        return Sweep(SweepOptions(db_url=self.url, out_dir=out, workers=1, **kw), self.settings).run()


def _populate(db: Database, store: PhotoStore, sources: dict[str, tuple[Any, Any]], stage: int) -> dict[str, int]:
    def write(s: Any) -> dict[str, int]:
        ids = {}
        for ksh, (name, college, stem, kind, seed, when) in PLAN.items():
            if when != stage:
                continue
            st = Student(ksh=ksh, name=name, student_no=f"S{ksh[-4:]}", college=college, id_masked=f"1101**********{ksh[-4:]}")
            s.add(st)
            s.flush()
            add_photo(s, store, st, kind, _portrait(sources, stem, kind, seed), source=f"{ksh}.jpg")
            ids[ksh] = st.id
        return ids

    return db.transaction(write)


def open_group_env(home: Path, cache_dir: Path, pipeline: Any, sources: dict[str, tuple[Any, Any]], db_url: str | None = None) -> GroupEnv:
    """Migrate, add students, sweep, add G4, sweep again (the case grows), then serve the app on loopback."""
    from api.app import create_app

    settings = Settings(home=home, cache_dir=cache_dir, id_key=ID_KEY)
    url = db_url or settings.resolve_db_url()
    upgrade(url)
    db = open_database(url)
    plain, scoped = make_keys(db)
    store = PhotoStore.for_home(home)
    ids = _populate(db, store, sources, 1)
    first = Sweep(SweepOptions(db_url=url, out_dir=home / "sweep1", workers=1), settings).run()
    assert first.counts["cases_opened"] == 2, dict(first.counts)
    ids.update(_populate(db, store, sources, 2))
    second = Sweep(SweepOptions(db_url=url, out_dir=home / "sweep2", workers=1), settings).run()
    assert second.counts["cases_grown"] == 1 and second.counts["new_pairs"] == 3, dict(second.counts)
    with db.session() as s:
        by_student = {c.student_id: c.id for c in s.scalars(select(ReviewCase).where(ReviewCase.case_type == "duplicate_face"))}
    client, stop = serve(create_app(settings, url, pipeline=pipeline))
    return GroupEnv(client, db, settings, url, plain, scoped, ids, by_student[ids[GROUP[0]]], by_student[ids[PAIR[0]]], stop,
                    "postgresql" if url.startswith("postgresql") else "sqlite")
