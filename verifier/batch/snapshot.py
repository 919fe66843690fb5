"""Bulk reads of the store for a block of students: a handful of queries per block instead of ~10 per student.

The batch runner plans work and writes reports block by block (a few
hundred students at a time), so memory stays bounded by the block size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from verifier.store.embeddings import to_vector
from verifier.store.models import Comparison, Embedding, Photo, Student

BLOCK = 500


@dataclass
class Snapshot:
    """Students, their current photos, those photos' embeddings and comparisons under one pack."""

    students: dict[str, Student] = field(default_factory=dict)
    photos: dict[tuple[int, str], Photo] = field(default_factory=dict)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    compared: dict[tuple[int, int], Comparison] = field(default_factory=dict)

    def photo(self, student: Student | None, kind: str) -> Photo | None:
        return None if student is None else self.photos.get((student.id, kind))

    def vector(self, photo: Photo | None) -> np.ndarray | None:
        return None if photo is None else self.vectors.get(photo.id)

    def comparison(self, adm: Photo | None, grad: Photo | None) -> Comparison | None:
        return None if adm is None or grad is None else self.compared.get((adm.id, grad.id))


def load_snapshot(session: Session, kshs: Iterable[str], pack_id: str) -> Snapshot:
    """Everything the runner needs about these students, in four queries."""
    snap = Snapshot()
    kshs = list(kshs)
    snap.students = {s.ksh: s for s in session.scalars(select(Student).where(Student.ksh.in_(kshs)))}
    ids = [s.id for s in snap.students.values()]
    if not ids:
        return snap
    current = session.scalars(select(Photo).where(Photo.student_id.in_(ids), Photo.is_current.is_(True)))
    snap.photos = {(p.student_id, p.kind): p for p in current}
    photo_ids = [p.id for p in snap.photos.values()]
    if photo_ids:
        rows = session.scalars(select(Embedding).where(Embedding.photo_id.in_(photo_ids), Embedding.pack_id == pack_id))
        snap.vectors = {e.photo_id: to_vector(e) for e in rows}
        pairs = [(a.id, g.id) for (sid, kind), a in snap.photos.items() if kind == "admission" and (g := snap.photos.get((sid, "graduation")))]
        if pairs:
            q = select(Comparison).where(
                tuple_(Comparison.admission_photo_id, Comparison.graduation_photo_id).in_(pairs), Comparison.pack_id == pack_id
            )
            snap.compared = {(c.admission_photo_id, c.graduation_photo_id): c for c in session.scalars(q)}
    return snap
