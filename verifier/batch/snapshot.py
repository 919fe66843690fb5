"""Bulk reads of the store for a block of students: a handful of queries per block instead of ~10 per student.

The batch runner plans work and writes reports block by block (a few
hundred students at a time), so memory stays bounded by the block size.
The rows are read-only column tuples (named like the models' attributes),
not ORM objects: the runner only reads them, twice per run (plan and
report), and building ORM instances was most of a no-op re-run's store time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Row, select, tuple_
from sqlalchemy.orm import Session

from verifier.store.embeddings import to_vector
from verifier.store.models import Comparison, Embedding, Photo, Student

BLOCK = 500


@dataclass
class Snapshot:
    """Students (id, ksh), their current photos (PHOTO_COLUMNS), those photos' embeddings and compared pairs under one pack."""

    students: dict[str, Row[Any]] = field(default_factory=dict)
    photos: dict[tuple[int, str], Row[Any]] = field(default_factory=dict)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    compared: set[tuple[int, int]] = field(default_factory=set)

    def photo(self, student: Row[Any] | None, kind: str) -> Row[Any] | None:
        return None if student is None else self.photos.get((student.id, kind))

    def vector(self, photo: Row[Any] | None) -> np.ndarray | None:
        return None if photo is None else self.vectors.get(photo.id)

    def compared_pair(self, adm: Row[Any] | None, grad: Row[Any] | None) -> bool:
        return adm is not None and grad is not None and (adm.id, grad.id) in self.compared


# What the runner reads of a photo: its check (decision), its bytes' digest (skip unchanged work), whether purged.
PHOTO_COLUMNS = (Photo.id, Photo.student_id, Photo.kind, Photo.sha256, Photo.origin_sha256, Photo.check_status, Photo.check_codes, Photo.file_path)


def load_snapshot(session: Session, kshs: Iterable[str], pack_id: str, probe: str = "graduation") -> Snapshot:
    """Everything the runner needs about these students, in four queries; `probe` is the kind compared with admission."""
    snap = Snapshot()
    kshs = list(kshs)
    snap.students = {s.ksh: s for s in session.execute(select(Student.id, Student.ksh, Student.registration).where(Student.ksh.in_(kshs)))}
    ids = [s.id for s in snap.students.values()]
    if not ids:
        return snap
    current = session.execute(select(*PHOTO_COLUMNS).where(Photo.student_id.in_(ids), Photo.is_current.is_(True)))
    snap.photos = {(p.student_id, p.kind): p for p in current}
    photo_ids = [p.id for p in snap.photos.values()]
    if photo_ids:
        q = select(Embedding.photo_id, Embedding.dim, Embedding.vector).where(Embedding.photo_id.in_(photo_ids), Embedding.pack_id == pack_id)
        snap.vectors = {e.photo_id: to_vector(e) for e in session.execute(q)}
        pairs = [(a.id, g.id) for (sid, kind), a in snap.photos.items() if kind == "admission" and (g := snap.photos.get((sid, probe)))]
        if pairs:
            q = select(Comparison.admission_photo_id, Comparison.graduation_photo_id).where(
                tuple_(Comparison.admission_photo_id, Comparison.graduation_photo_id).in_(pairs), Comparison.pack_id == pack_id
            )
            snap.compared = {(c.admission_photo_id, c.graduation_photo_id) for c in session.execute(q)}
    return snap
