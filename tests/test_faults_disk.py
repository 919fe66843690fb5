"""Disk full while writing photos and reports, on a real small tmpfs the test mounts (skips when mount is refused).

Nothing partial appears under a final name, the store stays consistent, the error names the path and
OUTPUT_DISK_FULL, and the same command completes once space is freed.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from tests.faultkit import cohort, reference, run_batch  # noqa: F401 - fixtures
from verifier.common.files import write_output
from verifier.common.reasons import VerifierError
from verifier.store.models import Photo
from verifier.store.photostore import PhotoStore


class SmallDisk:
    """A tmpfs mounted at `path`; `fill(free)` leaves about `free` bytes, `free_space()` removes the filler."""

    def __init__(self, path: Path):
        self.path = path
        self.filler = path / "filler"

    def fill(self, free: int) -> None:
        import os

        st = os.statvfs(self.path)
        room = st.f_bavail * st.f_frsize - free
        with open(self.filler, "wb") as fh:
            fh.write(b"\0" * max(0, room))

    def free_space(self) -> None:
        self.filler.unlink()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    mount = tmp_path / "disk"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({res.stderr.strip() or res.returncode}); disk-full tests need it")
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file() and p.name != "filler"}


def test_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(small_disk: SmallDisk):
    target = small_disk.path / "out" / "report.csv"
    write_output(target, b"old")
    small_disk.fill(64 * 1024)
    with pytest.raises(VerifierError) as err:
        write_output(target, b"x" * (1024 * 1024))
    assert err.value.reason.code == "OUTPUT_DISK_FULL" and str(target) in err.value.detail
    assert target.read_bytes() == b"old" and _names(target.parent) == {"report.csv"}
    small_disk.free_space()
    write_output(target, b"x" * (1024 * 1024))
    assert target.stat().st_size == 1024 * 1024


def test_photo_store_on_a_full_disk_puts_nothing_half_written(small_disk: SmallDisk):
    store = PhotoStore(small_disk.path / "photos")
    pictures = [bytes([i]) * (300 * 1024) for i in range(4)]
    small_disk.fill(700 * 1024)
    with pytest.raises(VerifierError) as err:
        store.put_many(pictures)
    assert err.value.reason.code == "OUTPUT_DISK_FULL" and str(small_disk.path / "photos") in err.value.detail
    for path in (small_disk.path / "photos").rglob("*"):
        if path.is_file():
            assert not path.name.endswith(".tmp") and hashlib.sha256(path.read_bytes()).hexdigest() == path.name.split(".")[0]
    small_disk.free_space()
    assert [f.sha256 for f in store.put_many(pictures)] == [hashlib.sha256(p).hexdigest() for p in pictures]


def _store_files_intact(db_url: str, home: Path) -> int:
    """Every photo row's file is present and whole; returns how many rows there are."""
    store = PhotoStore.for_home(home)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(Photo.sha256, Photo.file_path)).all()
    engine.dispose()
    for sha, rel in rows:
        if rel:
            assert store.read(sha)
    return len(rows)


@pytest.mark.parametrize("where", ["photos", "reports"])
def test_batch_on_a_full_disk_stops_with_the_path_then_completes(where, small_disk, cohort, reference, tmp_path, cache_dir):
    """Photos: the home (photo store) is the full disk; reports: --out is. The SQLite store is elsewhere."""
    db_url = f"sqlite:///{tmp_path / 'db' / 'verifier.db'}"
    home = small_disk.path / "home" if where == "photos" else tmp_path / "home"
    out = small_disk.path / "out" if where == "reports" else tmp_path / "out"
    small_disk.fill(48 * 1024)
    proc = run_batch(cohort, home, out, cache_dir, db_url)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "[OUTPUT_DISK_FULL]" in err and str(small_disk.path) in err, err
    assert "Traceback" not in err
    _store_files_intact(db_url, home)
    if where == "reports":
        assert not any(n.endswith(".tmp") for n in _names(out))
        assert not (out / "report.csv").exists() or (out / "report.csv").read_bytes() == reference  # whole or absent
    small_disk.free_space()
    proc = run_batch(cohort, home, out, cache_dir, db_url)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert (out / "report.csv").read_bytes() == reference
    assert _store_files_intact(db_url, home) > 0


def test_face_index_save_on_a_full_disk_keeps_the_old_index(small_disk: SmallDisk):
    import numpy as np

    from verifier.sweep.index import FaceIndex, choose_params

    rng = np.random.default_rng(0)

    def index(n: int) -> FaceIndex:
        v = rng.standard_normal((n, 128)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return FaceIndex.build(np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64), v, choose_params(n))

    folder = small_disk.path / "index" / "pack"
    index(10).save(folder, {"run_id": 1})
    small_disk.fill(64 * 1024)
    with pytest.raises(VerifierError) as err:
        index(2000).save(folder, {"run_id": 2})  # ~1 MB of vectors
    assert err.value.reason.code == "OUTPUT_DISK_FULL" and str(small_disk.path / "index") in err.value.detail
    old = FaceIndex.load(folder)
    assert old is not None and old.n == 10 and old.meta["run_id"] == 1
    assert sorted(p.name for p in folder.parent.iterdir()) == ["pack"], "a temporary index folder was left behind"
    small_disk.free_space()
    index(2000).save(folder, {"run_id": 2})
    assert FaceIndex.load(folder).n == 2000
