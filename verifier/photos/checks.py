"""Check photos against a profile: one CheckResult per input, whatever the input is.

Spec checks always run; with a pipeline, the photo is also decoded, its
faces detected and its quality judged. Bad input (unreadable, empty, not an
image, hostile names) becomes a reason code, never an exception, so a batch
always runs to its end.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from verifier.core.decode import decode_image
from verifier.common.parallel import map_chunks
from verifier.photos.profiles import Profile
from verifier.photos.quality import check_quality
from verifier.common.reasons import Reason, Severity, VerifierError, reason
from verifier.core.results import Face
from verifier.common.settings import Settings, cpu_count
from verifier.photos.spec import DEFAULT_MAX_PIXELS, check_spec, display_name, ksh_from_name, name_reasons

if TYPE_CHECKING:
    from verifier.core.pipeline import Pipeline

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_MAX_FILE_BYTES = Settings().max_file_bytes
# Reasons after which the bytes are not worth decoding.
_UNDECODABLE = frozenset({"FILE_EMPTY", "IMAGE_NOT_IMAGE", "IMAGE_FORMAT_UNSUPPORTED", "IMAGE_CORRUPT", "IMAGE_TOO_MANY_PIXELS"})


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one photo: status, every reason, and what was measured."""

    file: str
    ksh: str | None
    profile: str
    status: str  # pass | warn | fail
    reasons: list[Reason] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "ksh": self.ksh,
            "profile": self.profile,
            "status": self.status,
            "reasons": [r.to_dict() for r in self.reasons],
            "metrics": self.metrics,
        }


def status_of(reasons: Iterable[Reason]) -> str:
    """fail if any reason fails, warn if any warns, else pass."""
    severities = {r.severity for r in reasons}
    if Severity.FAIL in severities:
        return "fail"
    return "warn" if Severity.WARN in severities else "pass"


def read_photo(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """Read a regular file without blocking on FIFOs or devices; map problems to reason codes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise VerifierError("FILE_NOT_FOUND", detail=display_name(path.name)) from None
    except IsADirectoryError:
        raise VerifierError("FILE_IS_DIRECTORY", detail=display_name(path.name)) from None
    except OSError as exc:
        raise VerifierError("FILE_UNREADABLE", detail=exc.strerror or type(exc).__name__, measured=exc.strerror) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise VerifierError("FILE_IS_DIRECTORY", detail=display_name(path.name))
        if not stat.S_ISREG(st.st_mode):
            raise VerifierError("FILE_UNREADABLE", detail="not a regular file", measured="not a regular file")
        if st.st_size > max_bytes:
            raise VerifierError("FILE_TOO_LARGE_TO_READ", measured=st.st_size, limit=max_bytes)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise VerifierError("FILE_TOO_LARGE_TO_READ", measured=total, limit=max_bytes)
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise VerifierError("FILE_UNREADABLE", detail=exc.strerror or type(exc).__name__, measured=exc.strerror) from None
    finally:
        os.close(fd)


def _add(reasons: list[Reason], new: Reason) -> None:
    """Append a reason unless its code is already there."""
    if all(r.code != new.code for r in reasons):
        reasons.append(new)


def _quality(data: bytes, pipeline: "Pipeline", profile: Profile, reasons: list[Reason], metrics: dict[str, Any]) -> tuple[np.ndarray | None, list[Face]]:
    """Decode, detect and judge quality, adding to reasons and metrics; return the pixels and faces."""
    try:
        decoded = decode_image(data, pipeline.settings.max_pixels)
    except VerifierError as exc:
        _add(reasons, exc.reason)
        return None, []
    metrics.update(source_mode=decoded.source_mode, decoded_size=[decoded.width, decoded.height])
    faces = pipeline.detector.detect(decoded.pixels)
    found, measured = check_quality(decoded.pixels, faces, profile)
    for r in found:
        _add(reasons, r)
    metrics.update(measured)
    return decoded.pixels, faces


@dataclass(frozen=True)
class Assessment:
    """A check result plus what the full check already computed (for embedding without re-detecting)."""

    result: CheckResult
    pixels: np.ndarray | None = None
    faces: list[Face] = field(default_factory=list)


def assess_bytes(
    data: bytes, name: str, shown: str, profile: Profile, pipeline: "Pipeline | None" = None, roster_ksh: set[str] | None = None
) -> Assessment:
    """Spec (and, with a pipeline, quality) checks of bytes already read; never raises."""
    max_pixels = pipeline.settings.max_pixels if pipeline is not None else DEFAULT_MAX_PIXELS
    reasons: list[Reason] = []
    metrics: dict[str, Any] = {}
    pixels, faces = None, []
    try:
        reasons, metrics = check_spec(data, name, profile, roster_ksh, max_pixels)
        if pipeline is not None and not any(r.code in _UNDECODABLE for r in reasons):
            pixels, faces = _quality(data, pipeline, profile, reasons, metrics)
    except Exception as exc:  # a bug must not stop a batch; it is reported on this photo
        reasons.append(reason("CHECK_INTERNAL_ERROR", measured=f"{type(exc).__name__}: {str(exc)[:200]}"))
    result = CheckResult(shown, ksh_from_name(name, profile), profile.name, status_of(reasons), reasons, metrics)
    return Assessment(result, pixels, faces)


def check_photo(
    source: Path | bytes,
    profile: Profile,
    pipeline: "Pipeline | None" = None,
    roster_ksh: set[str] | None = None,
    file_name: str | None = None,
) -> CheckResult:
    """Check one photo (a path, or bytes with a file name); never raises for bad input."""
    path = None if isinstance(source, (bytes, bytearray)) else Path(source)
    name = file_name if file_name is not None else (path.name if path is not None else "")
    shown = display_name(str(path)) if path is not None else display_name(name)
    if path is None:
        return assess_bytes(bytes(source), name, shown, profile, pipeline, roster_ksh).result
    try:
        data = read_photo(path, pipeline.settings.max_file_bytes if pipeline is not None else DEFAULT_MAX_FILE_BYTES)
    except VerifierError as exc:
        return CheckResult(shown, None, profile.name, "fail", name_reasons(name) + [exc.reason], {})
    return assess_bytes(data, name, shown, profile, pipeline, roster_ksh).result


def iter_photo_paths(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Files under the given paths, recursively and sorted, streamed.

    Every entry is yielded (non-images too: they get their own reason), except
    that a folder is entered only when named like a folder: a directory named
    `x.jpg` is yielded itself, to be reported as FILE_IS_DIRECTORY.
    """
    for p in paths:
        p = Path(p)
        if p.is_dir() and not p.is_symlink():
            yield from _walk(p)
        else:
            yield p


def _walk(folder: Path) -> Iterator[Path]:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        yield folder
        return
    for entry in entries:
        child = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir and not entry.name.lower().endswith(PHOTO_SUFFIXES):
            yield from _walk(child)
        else:
            yield child


def check_paths(
    paths: Iterable[Path | str],
    profile: Profile,
    pipeline: "Pipeline | None" = None,
    roster_ksh: set[str] | None = None,
    workers: int | None = None,
    chunk_size: int = 8,
) -> Iterator[CheckResult]:
    """Check every file under the paths, in order, streaming; full checks share the pipeline across `workers` threads."""
    files = iter_photo_paths(paths)
    workers = workers or cpu_count()
    if pipeline is None or workers <= 1:
        for p in files:
            yield check_photo(p, profile, pipeline, roster_ksh)
        return

    def check_chunk(chunk: list[Path]) -> list[CheckResult]:
        return [check_photo(p, profile, pipeline, roster_ksh) for p in chunk]

    for _, result in map_chunks(files, check_chunk, workers, chunk_size=chunk_size):
        yield result
