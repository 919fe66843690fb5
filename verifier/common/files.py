"""The one way the program writes a file: look at the target first, then write it safely.

A missing or regular target is written atomically (temporary file beside it, fsync, rename; mode 0600), so
readers see the old file or the whole new one. A character device or FIFO (`/dev/null`, a pipe) is opened
and written in place and never replaced. A symlink is refused unless following is asked for (then its
target is written and the link kept); a folder, a socket or a block device is refused. `-` is standard output.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

STDOUT = "-"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """True for "no space left on device" and "disk quota exceeded"."""
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


def short_write_on_full_disk(exc: BaseException, folder: Path) -> bool:
    """True for an OSError without errno (numpy's "N requested and M written") where the folder's disk has no room left."""
    if not isinstance(exc, OSError) or exc.errno is not None:
        return False
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def disk_full_error(path: Path, exc: OSError) -> Exception:
    """The VerifierError OUTPUT_DISK_FULL naming the path a write to it failed for."""
    from verifier.common.reasons import VerifierError

    return VerifierError("OUTPUT_DISK_FULL", detail=f"{path}: {exc.strerror or os.strerror(errno.ENOSPC)}")


def ensure_private_dir(path: Path) -> Path:
    """Create a folder and every missing parent readable only by the owner (0700)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)  # raises the precise error (a file in the way, ...)
    return path


def private_folder(path: Path) -> Path:
    """A folder of the program's own under home (reports, index): created 0700, or tightened to 0700 when found looser.

    An operator's `mkdir -p` or an older version may have left it 0755; what it holds (embeddings, names,
    photos in reports) is for the owner only. A folder owned by someone else is left as it is.
    """
    path = ensure_private_dir(Path(path))
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
    return path


def follow_symlinks_default() -> bool:
    """Whether outputs may be written through symlinks: `--follow-symlinks` / VERIFIER_FOLLOW_SYMLINKS=1."""
    from verifier.common.settings import Settings

    return Settings.from_env().follow_symlinks


def output_target(path: Path, follow_symlinks: bool | None = None) -> tuple[Path, bool]:
    """Where a write to `path` goes and whether it is a stream (device/FIFO) written in place.

    Raises VerifierError with OUTPUT_IS_SYMLINK, OUTPUT_IS_DIRECTORY or OUTPUT_NOT_A_FILE.
    """
    from verifier.common.reasons import VerifierError

    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path, False
    except OSError as exc:
        raise VerifierError("OUTPUT_NOT_WRITABLE", detail=f"{path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        if not (follow_symlinks_default() if follow_symlinks is None else follow_symlinks):
            raise VerifierError("OUTPUT_IS_SYMLINK", detail=f"{path} -> {os.readlink(path)} (--follow-symlinks writes its target)")
        real = Path(os.path.realpath(path))
        if os.path.lexists(real) and stat.S_ISLNK(os.lstat(real).st_mode):  # a loop realpath gave up on
            raise VerifierError("OUTPUT_IS_SYMLINK", detail=f"{path}: the link does not end in a file")
        return output_target(real, False)
    if stat.S_ISDIR(st.st_mode):
        raise VerifierError("OUTPUT_IS_DIRECTORY", detail=str(path))
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return path, True
    if stat.S_ISREG(st.st_mode):
        return path, False
    raise VerifierError("OUTPUT_NOT_A_FILE", detail=f"{path} is a {'socket' if stat.S_ISSOCK(st.st_mode) else 'block device'}")


class OutputFile:
    """One file being written to its target; `commit()` puts it in place, `discard()` drops it.

    For streaming writers (reports written row by row): nothing appears under the final name of a regular
    file until commit, and a device or FIFO is written as the rows come.
    """

    def __init__(self, path: Path | str, mode: str = "wb", perms: int = 0o600, *, follow_symlinks: bool | None = None, **kw: Any):
        self.path = Path(path)
        self.target, self.stream = output_target(self.path, follow_symlinks)
        self._tmp: str | None = None
        if self.stream:
            self.fh: IO = open(self.target, mode, **kw)  # noqa: SIM115 - closed by commit/discard
            return
        ensure_private_dir(self.target.parent)
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(self.path, exc) from None
            raise
        try:
            os.fchmod(fd, perms)
            self.fh = os.fdopen(fd, mode, **kw)
        except BaseException:
            os.close(fd)
            os.unlink(self._tmp)
            raise

    def write(self, data: bytes | str) -> None:
        """Write to the file; a full disk drops the temporary file and raises OUTPUT_DISK_FULL naming the path."""
        try:
            self.fh.write(data)
        except OSError as exc:
            self.discard()
            if is_disk_full(exc):
                raise disk_full_error(self.path, exc) from None
            raise

    def commit(self) -> Path:
        """Flush and, for a regular target, fsync and rename the temporary file over it.

        A full disk found by the flush or fsync drops the temporary file and raises OUTPUT_DISK_FULL.
        """
        try:
            self.fh.flush()
            if self._tmp is not None:
                os.fsync(self.fh.fileno())
        except OSError as exc:
            self.discard()
            if is_disk_full(exc):
                raise disk_full_error(self.path, exc) from None
            raise
        self.fh.close()
        if self._tmp is not None:
            os.replace(self._tmp, self.target)
            self._tmp = None
        return self.path

    def discard(self) -> None:
        """Close and remove the temporary file (after an error); a stream target is left as it is."""
        try:
            self.fh.close()
        except OSError:
            pass  # a close that flushes onto a full disk: the file is being dropped anyway
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None


@contextmanager
def open_output(path: Path | str, mode: str = "wb", perms: int = 0o600, *, follow_symlinks: bool | None = None, **kw: Any) -> Iterator[IO]:
    """Open `path` for writing as the module doc says; on success it is in place, on error nothing changed.

    `-` is standard output (text or binary as `mode` says), flushed and left open.
    """
    if str(path) == STDOUT:
        fh: IO = sys.stdout.buffer if "b" in mode else sys.stdout
        yield fh
        fh.flush()
        return
    out = OutputFile(path, mode, perms, follow_symlinks=follow_symlinks, **kw)
    try:
        yield out.fh
    except BaseException as exc:
        full = is_disk_full(exc) or short_write_on_full_disk(exc, out.target.parent)
        out.discard()
        if full:
            raise disk_full_error(out.path, exc) from None  # type: ignore[arg-type]
        raise
    out.commit()


def write_output(path: Path | str, data: bytes, mode: int = 0o600, *, follow_symlinks: bool | None = None) -> None:
    """Write bytes to `path` through open_output."""
    with open_output(path, "wb", mode, follow_symlinks=follow_symlinks) as fh:
        fh.write(data)


def create_exclusive(path: Path, data: bytes, perms: int = 0o600) -> bool:
    """Write a new file that must not replace anything (a key): whole or not at all; False when one exists.

    The data go to a temporary file that is hard-linked to `path`; the link fails if anything is there.
    """
    path = Path(path)
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, perms)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def writable_dir(path: Path, reason_code: str) -> Path:
    """Create a private output folder and prove it is writable, or raise VerifierError(reason_code)."""
    from verifier.common.reasons import VerifierError

    try:
        ensure_private_dir(path)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise VerifierError(reason_code, detail=f"{path}: {exc.strerror}") from None
    return path


def run_report_dir(home: Path, out_dir: Path | None, prefix: str, reason_code: str) -> Path:
    """A run's report folder: `out_dir` when given, else a new `<home>/reports/<prefix>-<time>` (0700 all the way)."""
    from datetime import datetime

    from verifier.common.reasons import VerifierError

    if out_dir is not None:
        return writable_dir(out_dir, reason_code)
    try:
        reports = private_folder(home / "reports")
    except OSError as exc:
        raise VerifierError(reason_code, detail=f"{home / 'reports'}: {exc.strerror}") from None
    return writable_dir(reports / f"{prefix}-{datetime.now():%Y%m%d-%H%M%S}", reason_code)
