"""Atomic, private file writes (temp file, fsync, rename; mode 0600)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def ensure_private_dir(path: Path) -> Path:
    """Create a folder (and parents) readable only by the owner."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextmanager
def atomic_open(path: Path, mode: str = "wb", perms: int = 0o600, **kw: Any) -> Iterator[IO]:
    """Open a temp file beside `path`; on success fsync and rename it into place, on error remove it.

    Readers see the old file or the whole new one, never half of it.
    """
    path = Path(path)
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, perms)
        with os.fdopen(fd, mode, **kw) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write bytes atomically (see atomic_open)."""
    with atomic_open(path, "wb", mode) as fh:
        fh.write(data)


def writable_dir(path: Path, reason_code: str) -> Path:
    """Create a private output folder and prove it is writable, or raise VerifierError(reason_code)."""
    from .reasons import VerifierError

    try:
        ensure_private_dir(path)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise VerifierError(reason_code, detail=f"{path}: {exc.strerror}") from None
    return path
