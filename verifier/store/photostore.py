"""Content-addressed photo files under `<home>/photos/ab/cd/<sha256>`: written atomically, private, stored once."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from verifier.common.files import OutputFile, write_output
from verifier.common.reasons import VerifierError

_SHA = re.compile(r"^[0-9a-f]{64}$")
# fsyncs issued together: the filesystem journal commits them as one (measured ~15x cheaper per file on ext4).
SYNC_THREADS = 16


@dataclass(frozen=True)
class StoredFile:
    """Where a picture lives in the store: its SHA-256, path relative to the store root, and size."""

    sha256: str
    rel_path: str
    byte_size: int
    created: bool


def sha256_hex(data: bytes) -> str:
    """SHA-256 of bytes as lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def _private_dirs(root: Path, parts: tuple[str, ...]) -> Path:
    """Create root and each sub-folder with mode 0700 (mkdir(parents=True) would ignore the mode for parents)."""
    path = root
    for part in (None, *parts):
        if part is not None:
            path = path / part
        try:
            path.mkdir(mode=0o700, parents=part is None)
        except FileExistsError:
            continue
        os.chmod(path, 0o700)
    return path


_POOL: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def _sync_pool() -> ThreadPoolExecutor:
    """The process's fsync threads (started once; idle ones cost nothing)."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="verifier-fsync"))
        return _POOL[0]


def _fsync_dir(path: Path) -> None:
    """Make the renames into a folder durable."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class PhotoStore:
    """Files named by their SHA-256; the same bytes are written once however many rows point at them."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self._made: set[str] = set()  # ab/cd folders this instance already created or found

    @classmethod
    def for_home(cls, home: Path) -> PhotoStore:
        """The store inside a verifier home folder (`<home>/photos`)."""
        return cls(Path(home) / "photos")

    @staticmethod
    def rel_path(sha256: str) -> str:
        """`ab/cd/<sha256>` for a hex digest."""
        if not _SHA.match(sha256):
            raise ValueError("not a lower-case SHA-256 hex digest")
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def path(self, sha256: str) -> Path:
        """Absolute path of a stored picture (it may not exist)."""
        return self.root / self.rel_path(sha256)

    def put(self, data: bytes) -> StoredFile:
        """Store bytes (temp file, fsync, rename; 0600 in 0700 folders) unless an intact copy is already there."""
        sha = sha256_hex(data)
        target = self.path(sha)
        if self._intact(sha, len(data)):
            return StoredFile(sha, self.rel_path(sha), len(data), created=False)
        _private_dirs(self.root, (sha[:2], sha[2:4]))
        write_output(target, data, mode=0o600)
        _fsync_dir(target.parent)
        return StoredFile(sha, self.rel_path(sha), len(data), created=True)

    def _intact(self, sha: str, size: int) -> bool:
        target = self.path(sha)
        return target.is_file() and target.stat().st_size == size and sha256_hex(target.read_bytes()) == sha

    def put_many(self, items: Sequence[bytes]) -> list[StoredFile]:
        """put() for several pictures at once, their fsyncs issued in parallel so the journal commits them together.

        Every file is durable (file and folder fsynced) when this returns, as after put(); nothing is renamed
        into place before its own fsync.
        """
        out: dict[str, StoredFile] = {}
        pending: list[OutputFile] = []
        shas = [sha256_hex(data) for data in items]
        for sha, data in zip(shas, items, strict=True):
            if sha in out:
                continue
            if self._intact(sha, len(data)):
                out[sha] = StoredFile(sha, self.rel_path(sha), len(data), created=False)
                continue
            if sha[:4] not in self._made:
                _private_dirs(self.root, (sha[:2], sha[2:4]))
                self._made.add(sha[:4])
            try:
                f = OutputFile(self.path(sha), "wb", 0o600)
                pending.append(f)
                f.write(data)
            except BaseException:
                for g in pending:
                    g.discard()
                raise
            out[sha] = StoredFile(sha, self.rel_path(sha), len(data), created=True)
        if pending:
            pool = _sync_pool()
            try:
                list(pool.map(OutputFile.commit, pending))
            except BaseException:
                for g in pending:
                    g.discard()  # a committed file is whole and stays; the rest are dropped
                raise
            list(pool.map(_fsync_dir, {f.target.parent for f in pending}))
        return [out[sha] for sha in shas]

    def read(self, sha256: str) -> bytes:
        """The stored bytes, verified against their name (STORE_PHOTO_FILE_MISSING / _CHECKSUM_MISMATCH)."""
        target = self.path(sha256)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise VerifierError("STORE_PHOTO_FILE_MISSING", detail=self.rel_path(sha256)) from None
        if sha256_hex(data) != sha256:
            raise VerifierError("STORE_PHOTO_CHECKSUM_MISMATCH", detail=self.rel_path(sha256))
        return data

    def exists(self, sha256: str) -> bool:
        """Whether a file for this digest is present."""
        return self.path(sha256).is_file()

    def delete(self, sha256: str) -> bool:
        """Remove a stored file; True when something was deleted. Callers check no live row still points at it."""
        try:
            self.path(sha256).unlink()
            return True
        except FileNotFoundError:
            return False
