"""All configuration in one object, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "verifier"


@dataclass(frozen=True)
class Settings:
    """Process-wide settings; build with `Settings.from_env()`."""

    home: Path = field(default_factory=lambda: Path("verifier-data"))
    cache_dir: Path = field(default_factory=_default_cache)
    model_dir: Path | None = None
    pack: str = "sface-yunet-int8"
    threads: int = 1
    max_pixels: int = 40_000_000
    max_file_bytes: int = 50 * 1024 * 1024

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        """Read VERIFIER_* variables; unset ones keep their defaults."""
        e = os.environ if env is None else env
        kw: dict = {}
        if e.get("VERIFIER_HOME"):
            kw["home"] = Path(e["VERIFIER_HOME"])
        if e.get("VERIFIER_CACHE_DIR"):
            kw["cache_dir"] = Path(e["VERIFIER_CACHE_DIR"])
        if e.get("VERIFIER_MODEL_DIR"):
            kw["model_dir"] = Path(e["VERIFIER_MODEL_DIR"])
        if e.get("VERIFIER_PACK"):
            kw["pack"] = e["VERIFIER_PACK"]
        if e.get("VERIFIER_THREADS"):
            kw["threads"] = max(1, int(e["VERIFIER_THREADS"]))
        if e.get("VERIFIER_MAX_PIXELS"):
            kw["max_pixels"] = int(e["VERIFIER_MAX_PIXELS"])
        return cls(**kw)


def cpu_count() -> int:
    """Cores this process may use (respects affinity masks)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
