"""Photos with history, the content-addressed file store, embeddings, comparisons and duplicate candidates."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from storehelp import add_students, picture

from verifier.common.reasons import VerifierError
from verifier.store import comparisons, duplicates, embeddings, photos
from verifier.store.audit import events_for
from verifier.store.db import Database
from verifier.store.models import Comparison, Photo
from verifier.store.photostore import PhotoStore


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def test_correction_chain_keeps_history_and_files(db: Database, store: PhotoStore) -> None:
    with db.write_session() as s:
        st = add_students(s, 1)[0]
        v1 = photos.add_photo(s, store, st, "admission", picture(1), source="upload", check_status="fail", check_codes=["SPEC_WIDTH"], width=80, height=120)
        again = photos.add_photo(s, store, st, "admission", picture(1), source="upload again")
        assert again.id == v1.id  # same bytes: no-op
        v2 = photos.add_photo(s, store, st, "admission", picture(2), source="勘误 1", check_status="pass", width=295, height=413)
        v3 = photos.add_photo(s, store, st, "admission", picture(3), source="勘误 2", check_status="pass")
        ids = (v1.id, v2.id, v3.id)
        sid = st.id
    with db.session() as s:
        chain = photos.history(s, sid, "admission")
        assert [p.id for p in chain] == list(ids)
        assert [p.is_current for p in chain] == [False, False, True]
        assert (chain[0].replaces_id, chain[0].replaced_by_id) == (None, ids[1])
        assert (chain[1].replaces_id, chain[1].replaced_by_id) == (ids[0], ids[2])
        assert (chain[2].replaces_id, chain[2].replaced_by_id) == (ids[1], None)
        assert photos.current_photo(s, sid, "admission").id == ids[2]
        assert chain[0].check_codes == ["SPEC_WIDTH"] and chain[0].width == 80
        for p, n in zip(chain, (1, 2, 3)):
            assert photos.read_photo(store, p) == picture(n)  # every version's file is kept
            f = store.root / p.file_path
            assert _mode(f) == 0o600
            assert _mode(f.parent) == 0o700 and _mode(f.parent.parent) == 0o700 and _mode(store.root) == 0o700
        assert s.scalar(select(func.count()).select_from(Photo)) == 3
        assert [e.action for e in events_for(s, "photo", ids[1])] == ["photo.replace"]


def test_one_current_photo_enforced_by_database(db: Database, store: PhotoStore) -> None:
    with db.write_session() as s:
        st = add_students(s, 1)[0]
        photos.add_photo(s, store, st, "admission", picture(1))
        photos.add_photo(s, store, st, "graduation", picture(2))  # another kind is independent
        sid = st.id
    with pytest.raises(IntegrityError), db.write_session() as s:
        s.add(Photo(student_id=sid, kind="admission", sha256="0" * 64, byte_size=1, file_path=None, is_current=True, check_codes=[]))
        s.flush()
    with db.write_session() as s:  # non-current rows for the same student and kind are fine
        s.add(Photo(student_id=sid, kind="admission", sha256="1" * 64, byte_size=1, file_path=None, is_current=False, check_codes=[]))


def test_same_picture_stored_once(db: Database, store: PhotoStore) -> None:
    with db.write_session() as s:
        a, b = add_students(s, 2)
        pa = photos.add_photo(s, store, a, "admission", picture(7))
        pb = photos.add_photo(s, store, b, "admission", picture(7))
        assert pa.id != pb.id and pa.file_path == pb.file_path
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert len(files) == 1
    assert not [p for p in store.root.rglob(".*")]  # no temp files left behind


def test_photostore_detects_corruption(store: PhotoStore) -> None:
    f = store.put(picture(1))
    assert f.created and not store.put(picture(1)).created
    path = store.root / f.rel_path
    os.chmod(path, 0o600)
    path.write_bytes(b"tampered")
    with pytest.raises(VerifierError) as exc:
        store.read(f.sha256)
    assert exc.value.reason.code == "STORE_PHOTO_CHECKSUM_MISMATCH"
    assert store.put(picture(1)).created  # a damaged copy is rewritten
    assert store.read(f.sha256) == picture(1)


def test_invalid_kind_refused(db: Database, store: PhotoStore) -> None:
    with db.write_session() as s:
        st = add_students(s, 1)[0]
        with pytest.raises(VerifierError) as exc:
            photos.add_photo(s, store, st, "selfie", picture(1))
        assert exc.value.reason.code == "STORE_PHOTO_KIND_INVALID"


def test_embeddings_per_pack(db: Database, store: PhotoStore) -> None:
    vec = np.linspace(-1, 1, 128, dtype=np.float32)
    with db.write_session() as s:
        a, b = add_students(s, 2)
        pa = photos.add_photo(s, store, a, "admission", picture(1))
        pb = photos.add_photo(s, store, b, "admission", picture(2))
        assert {p.id for p in embeddings.photos_to_embed(s, "pack-a")} == {pa.id, pb.id}
        embeddings.put(s, pa.id, "pack-a", vec)
        embeddings.put(s, pa.id, "pack-a", vec * 2)  # kept, not duplicated
        embeddings.put(s, pb.id, "pack-a", -vec)
        with pytest.raises(VerifierError):
            embeddings.put(s, pb.id, "pack-b", np.array([np.nan], np.float32))
        ids = (pa.id, pb.id)
    with db.session() as s:
        got = embeddings.get_or_none(s, ids[0], "pack-a")
        assert got is not None and got.dtype == np.float32 and np.array_equal(got, vec)
        assert embeddings.get_or_none(s, ids[0], "pack-b") is None
        assert {p.id for p in embeddings.photos_to_embed(s, "pack-b")} == set(ids)  # a new pack re-embeds
        assert embeddings.photos_to_embed(s, "pack-a") == []
        vs = embeddings.current_vectors(s, "pack-a")
        assert vs.vectors.shape == (2, 128) and list(vs.photo_ids) == list(ids)


def test_comparison_unique_per_pair_and_pack(db: Database, store: PhotoStore) -> None:
    with db.write_session() as s:
        st, other = add_students(s, 2)
        adm = photos.add_photo(s, store, st, "admission", picture(1))
        grad = photos.add_photo(s, store, st, "graduation", picture(2))
        other_grad = photos.add_photo(s, store, other, "graduation", picture(3))
        first = comparisons.record_comparison(s, adm, grad, "pack-a", 0.71, "match", [], None)
        again = comparisons.record_comparison(s, adm, grad, "pack-a", 0.70, "match", [], None)
        other_pack = comparisons.record_comparison(s, adm, grad, "pack-b", 0.2, "mismatch", ["X"], None)
        assert first.created and not again.created and again.comparison.id == first.comparison.id
        assert other_pack.created
        with pytest.raises(VerifierError) as exc:
            comparisons.record_comparison(s, adm, other_grad, "pack-a", 0.1, "mismatch")
        assert exc.value.reason.code == "STORE_COMPARISON_INVALID"
        ids = (adm.id, grad.id, st.id)
    with pytest.raises(IntegrityError), db.write_session() as s:
        s.add(Comparison(student_id=ids[2], admission_photo_id=ids[0], graduation_photo_id=ids[1], pack_id="pack-a", decision="match", reasons=[]))
        s.flush()


def test_duplicate_candidates(db: Database, store: PhotoStore) -> None:
    with db.write_session() as s:
        a, b = add_students(s, 2)
        pa = photos.add_photo(s, store, a, "admission", picture(1))
        pa2 = photos.add_photo(s, store, a, "graduation", picture(3))
        pb = photos.add_photo(s, store, b, "admission", picture(2))
        one = duplicates.record_candidate(s, pb, pa, "pack-a", 0.93, None)
        two = duplicates.record_candidate(s, pa, pb, "pack-a", 0.94, None)
        assert one.created and not two.created
        c = one.candidate
        assert (c.photo_a_id, c.photo_b_id) == (min(pa.id, pb.id), max(pa.id, pb.id))
        with pytest.raises(VerifierError) as exc:
            duplicates.record_candidate(s, pa, pa2, "pack-a", 0.99, None)
        assert exc.value.reason.code == "STORE_DUPLICATE_SAME_STUDENT"
        assert len(duplicates.candidates(s, "pack-a")) == 1


def test_put_many_stores_each_picture_once_privately_and_like_put(store: PhotoStore) -> None:
    kept = store.put(picture(1))
    path = store.root / kept.rel_path
    os.chmod(path, 0o600)
    path.write_bytes(b"tampered")  # a damaged copy is rewritten, as put() does
    batch = [picture(1), picture(2), picture(3), picture(2)]
    out = store.put_many(batch)
    assert [f.sha256 for f in out] == [store.put(b).sha256 for b in batch]
    assert [f.created for f in out] == [True, True, True, True]  # the repeat names the file this call made
    for data, f in zip(batch, out, strict=True):
        assert store.read(f.sha256) == data
        assert _mode(store.root / f.rel_path) == 0o600
        assert _mode((store.root / f.rel_path).parent) == 0o700
    assert not [p for p in store.root.rglob(".*")]  # no temp files left behind
    assert [f.created for f in store.put_many([picture(3), picture(4)])] == [False, True]


def test_add_photo_uses_a_file_put_many_made(db: Database, store: PhotoStore) -> None:
    (f,) = store.put_many([picture(5)])
    with db.write_session() as s:
        st = add_students(s, 1)[0]
        p = photos.add_photo(s, store, st, "admission", picture(5), stored=f)
        assert p.file_path == f.rel_path and p.sha256 == f.sha256
        other = store.put_many([picture(6)])[0]
        q = photos.add_photo(s, store, st, "graduation", picture(7), stored=other)  # a file for other bytes is not trusted
        assert q.sha256 != other.sha256 and store.read(q.sha256) == picture(7)
