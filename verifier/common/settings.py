"""All configuration in one object, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from verifier.common.choices import ENGINE_CHOICES, PRECISION_CHOICES


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
    # Recognizer engine and precision (core.engines): "auto" picks by CPU class from the measured table.
    engine: str = "auto"
    precision: str = "auto"
    max_pixels: int = 40_000_000
    max_file_bytes: int = 50 * 1024 * 1024
    db_url: str | None = None
    id_key: str | None = field(default=None, repr=False)
    # Outputs that are symlinks are refused unless this is set (--follow-symlinks, VERIFIER_FOLLOW_SYMLINKS=1).
    follow_symlinks: bool = False
    # Two-pass detection of ID photos (small whole-image pass, then a full-resolution crop around the face):
    # None follows the pack's `detector.refine` block; True/False overrides it (VERIFIER_DETECT_REFINE=1/0).
    detect_refine: bool | None = None
    # HTTP API (`verifier serve`): request body cap, pixel cap for uploads, per-request timeout,
    # inference slots (0 = one per core) and how many requests may wait for one before a 503.
    api_max_body_bytes: int = 2 * 1024 * 1024
    api_max_pixels: int = 16_000_000
    api_timeout_s: float = 30.0
    api_inference_slots: int = 0
    api_inference_queue: int = 2
    api_retry_after_s: int = 1
    api_files_root: Path | None = None
    api_job_workers: int = 1
    # ID-number mismatches one key may learn of per window on roster import (the rest are refused alike).
    api_id_mismatch_limit: int = 5
    api_id_mismatch_window_s: int = 3600
    # uvicorn (`verifier serve`): open connections before a 503, listen backlog, idle keep-alive,
    # largest request head (h11), seconds a client may take to send its request head.
    api_limit_concurrency: int = 64
    api_backlog: int = 128
    api_keep_alive_s: int = 5
    api_max_header_bytes: int = 16 * 1024
    api_header_timeout_s: float = 10.0
    # Seconds a client may take to send a request body once its head is in (a trickling upload gets 408).
    api_body_timeout_s: float = 20.0
    # Refused API keys allowed per client address and per key prefix in a moving window, then 429 for the
    # window's rest; a verified key is trusted from memory for api_key_cache_s only, so a revocation or
    # expiry made anywhere (CLI, another worker) takes hold within that time.
    api_auth_fail_per_address: int = 30
    api_auth_fail_per_prefix: int = 10
    api_auth_fail_window_s: int = 60
    api_key_cache_s: float = 0.5
    # Rosters (CSV and XLSX, CLI and API alike): file size, XLSX bytes once unzipped, shared strings,
    # rows, columns and characters per cell; a roster over any of them is refused before it is parsed.
    roster_max_file_bytes: int = 64 * 1024 * 1024
    roster_max_unzipped_bytes: int = 128 * 1024 * 1024
    roster_max_strings: int = 1_000_000
    roster_max_rows: int = 200_000
    roster_max_columns: int = 256
    roster_max_cell_chars: int = 1_000
    # Store (store.db.Database.transaction): how long a write keeps retrying while the database server is
    # away (restart, terminated connection), and the first backoff step (doubled each retry, capped at 2 s).
    db_retry_s: float = 30.0
    db_retry_base_s: float = 0.1
    # An API request waits this long for an away database before answering 503 with Retry-After (api_retry_after_s).
    api_db_retry_s: float = 2.0

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
        for var, name, allowed in (("VERIFIER_ENGINE", "engine", ENGINE_CHOICES), ("VERIFIER_PRECISION", "precision", PRECISION_CHOICES)):
            if e.get(var):
                kw[name] = _choice(var, e[var], allowed)
        if e.get("VERIFIER_MAX_PIXELS"):
            kw["max_pixels"] = int(e["VERIFIER_MAX_PIXELS"])
        if e.get("VERIFIER_DB"):
            kw["db_url"] = e["VERIFIER_DB"]
        if e.get("VERIFIER_ID_KEY"):
            kw["id_key"] = e["VERIFIER_ID_KEY"]
        if e.get("VERIFIER_FOLLOW_SYMLINKS"):
            kw["follow_symlinks"] = e["VERIFIER_FOLLOW_SYMLINKS"].strip().lower() in ("1", "true", "yes")
        if e.get("VERIFIER_DETECT_REFINE"):
            kw["detect_refine"] = e["VERIFIER_DETECT_REFINE"].strip().lower() in ("1", "true", "yes")
        for var, name, kind in _TYPED_ENV:
            if e.get(var):
                kw[name] = kind(e[var])
        return cls(**kw)

    @property
    def config_file(self) -> Path:
        """Optional TOML config (`db_url = "..."`) read after the environment."""
        return self.home / "config.toml"

    def resolve_db_url(self, cli_url: str | None = None) -> str:
        """Database URL: --db, then VERIFIER_DB, then config.toml's db_url, then SQLite under home."""
        if cli_url:
            return cli_url
        if self.db_url:
            return self.db_url
        if self.config_file.is_file():
            import tomllib

            with self.config_file.open("rb") as fh:
                configured = tomllib.load(fh).get("db_url")
            if configured:
                return str(configured)
        return f"sqlite:///{(self.home / 'verifier.db').resolve()}"

    def id_key_bytes(self) -> bytes:
        """Key for the 身份证号 HMAC: VERIFIER_ID_KEY, else `<home>/id.key` (created 0600 on first use)."""
        from verifier.common.reasons import VerifierError

        if self.id_key is not None:
            if len(self.id_key) < 16:
                raise VerifierError("STORE_ID_KEY_INVALID", detail="VERIFIER_ID_KEY is shorter than 16 characters")
            return self.id_key.encode("utf-8")
        path = self.home / "id.key"
        if not path.exists():
            import secrets

            from verifier.common.files import create_exclusive

            create_exclusive(path, (secrets.token_hex(32) + "\n").encode("ascii"))  # another process's key wins
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 16:
            raise VerifierError("STORE_ID_KEY_INVALID", detail=f"{path} holds fewer than 16 characters")
        return key.encode("ascii")


def _choice(var: str, value: str, allowed: tuple[str, ...]) -> str:
    """A setting that must be one of `allowed` (case-insensitive); ENGINE_SETTING_INVALID otherwise."""
    v = value.strip().lower()
    if v not in allowed:
        from verifier.common.reasons import VerifierError

        raise VerifierError("ENGINE_SETTING_INVALID", detail=f"{var}={value!r}; allowed: {', '.join(allowed)}")
    return v


_TYPED_ENV: tuple[tuple[str, str, type], ...] = (
    ("VERIFIER_DB_RETRY_S", "db_retry_s", float),
    ("VERIFIER_DB_RETRY_BASE_S", "db_retry_base_s", float),
    ("VERIFIER_API_DB_RETRY_S", "api_db_retry_s", float),
    ("VERIFIER_API_MAX_BODY", "api_max_body_bytes", int),
    ("VERIFIER_API_MAX_PIXELS", "api_max_pixels", int),
    ("VERIFIER_API_TIMEOUT", "api_timeout_s", float),
    ("VERIFIER_API_SLOTS", "api_inference_slots", int),
    ("VERIFIER_API_QUEUE", "api_inference_queue", int),
    ("VERIFIER_API_FILES_ROOT", "api_files_root", Path),
    ("VERIFIER_API_JOB_WORKERS", "api_job_workers", int),
    ("VERIFIER_API_ID_MISMATCH_LIMIT", "api_id_mismatch_limit", int),
    ("VERIFIER_API_ID_MISMATCH_WINDOW", "api_id_mismatch_window_s", int),
    ("VERIFIER_API_CONNECTIONS", "api_limit_concurrency", int),
    ("VERIFIER_API_BACKLOG", "api_backlog", int),
    ("VERIFIER_API_KEEP_ALIVE", "api_keep_alive_s", int),
    ("VERIFIER_API_MAX_HEADER", "api_max_header_bytes", int),
    ("VERIFIER_API_HEADER_TIMEOUT", "api_header_timeout_s", float),
    ("VERIFIER_API_BODY_TIMEOUT", "api_body_timeout_s", float),
    ("VERIFIER_API_AUTH_FAIL_PER_ADDRESS", "api_auth_fail_per_address", int),
    ("VERIFIER_API_AUTH_FAIL_PER_PREFIX", "api_auth_fail_per_prefix", int),
    ("VERIFIER_API_AUTH_FAIL_WINDOW", "api_auth_fail_window_s", int),
    ("VERIFIER_API_KEY_CACHE", "api_key_cache_s", float),
    ("VERIFIER_ROSTER_MAX_BYTES", "roster_max_file_bytes", int),
    ("VERIFIER_ROSTER_MAX_UNZIPPED", "roster_max_unzipped_bytes", int),
    ("VERIFIER_ROSTER_MAX_STRINGS", "roster_max_strings", int),
    ("VERIFIER_ROSTER_MAX_ROWS", "roster_max_rows", int),
    ("VERIFIER_ROSTER_MAX_COLUMNS", "roster_max_columns", int),
    ("VERIFIER_ROSTER_MAX_CELL", "roster_max_cell_chars", int),
)


def cpu_count() -> int:
    """Cores this process may use (respects affinity masks)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
