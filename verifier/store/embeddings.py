"""Face embeddings per photo and model pack, stored as float32 bytes; vectors of different packs never mix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from verifier.common.reasons import VerifierError
from verifier.store.models import Embedding, Photo


def _to_bytes(vector: np.ndarray) -> tuple[bytes, int]:
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise VerifierError("STORE_EMBEDDING_INVALID", measured=int(v.size))
    return v.astype("<f4").tobytes(), int(v.size)


def to_vector(row: Embedding) -> np.ndarray:
    """The stored vector as a float32 array."""
    return np.frombuffer(row.vector, dtype="<f4", count=row.dim).astype(np.float32)


def put(session: Session, photo_id: int, pack_id: str, vector: np.ndarray) -> Embedding:
    """Store a photo's embedding for a pack; an existing one is kept (same photo + pack = same vector)."""
    data, dim = _to_bytes(vector)
    existing = session.scalar(select(Embedding).where(Embedding.photo_id == photo_id, Embedding.pack_id == pack_id))
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            row = Embedding(photo_id=photo_id, pack_id=pack_id, dim=dim, vector=data)
            session.add(row)
            session.flush()
        return row
    except IntegrityError:
        again = session.scalar(select(Embedding).where(Embedding.photo_id == photo_id, Embedding.pack_id == pack_id))
        if again is None:
            raise
        return again


def get_or_none(session: Session, photo_id: int, pack_id: str) -> np.ndarray | None:
    """The photo's vector under this pack, or None when it has not been embedded with it."""
    row = session.scalar(select(Embedding).where(Embedding.photo_id == photo_id, Embedding.pack_id == pack_id))
    return None if row is None else to_vector(row)


def photos_to_embed(session: Session, pack_id: str, kind: str | None = None, limit: int | None = None) -> list[Photo]:
    """Current, unpurged photos with no embedding under this pack (new photos, or everything after a pack change)."""
    done = select(Embedding.photo_id).where(Embedding.pack_id == pack_id)
    q = select(Photo).where(Photo.is_current.is_(True), Photo.file_path.is_not(None), Photo.id.not_in(done)).order_by(Photo.id)
    if kind:
        q = q.where(Photo.kind == kind)
    if limit:
        q = q.limit(limit)
    return list(session.scalars(q))


@dataclass(frozen=True)
class VectorSet:
    """Current photos' vectors under one pack, row i belonging to photo_ids[i] and student_ids[i]."""

    pack_id: str
    photo_ids: np.ndarray
    student_ids: np.ndarray
    vectors: np.ndarray


def current_vectors(session: Session, pack_id: str, kind: str | None = None) -> VectorSet:
    """Every current photo's vector for one pack, as one matrix (input for the duplicate sweep's index)."""
    q = (
        select(Embedding.photo_id, Photo.student_id, Embedding.dim, Embedding.vector)
        .join(Photo, Photo.id == Embedding.photo_id)
        .where(Embedding.pack_id == pack_id, Photo.is_current.is_(True), Photo.file_path.is_not(None))
        .order_by(Embedding.photo_id)
    )
    if kind:
        q = q.where(Photo.kind == kind)
    photo_ids: list[int] = []
    student_ids: list[int] = []
    chunks: list[np.ndarray] = []
    dim = 0
    for pid, sid, d, blob in session.execute(q).yield_per(2000):
        if dim and d != dim:
            raise VerifierError("STORE_EMBEDDING_INVALID", detail=f"mixed dimensions under pack {pack_id}", measured=d, limit=dim)
        dim = d
        photo_ids.append(pid)
        student_ids.append(sid)
        chunks.append(np.frombuffer(blob, dtype="<f4", count=d))
    matrix = np.vstack(chunks).astype(np.float32) if chunks else np.zeros((0, dim), np.float32)
    return VectorSet(pack_id, np.asarray(photo_ids, np.int64), np.asarray(student_ids, np.int64), matrix)
