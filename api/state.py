"""Everything the app holds for its lifetime: settings, database, photo store, pipeline, limiter, metrics, jobs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from sqlalchemy import text

from verifier.common.choices import PHOTO_KINDS
from verifier.photos.profiles import Profile, load_profile
from verifier.common.settings import Settings, cpu_count
from verifier.store.db import Database
from verifier.store.photostore import PhotoStore

from api.limits import InferenceLimiter
from api.metrics import Metrics
from api.throttle import AuthThrottle
from api.problems import ApiProblem

if TYPE_CHECKING:
    from verifier.core.pipeline import Pipeline

    from api.jobs import JobManager
    from api.keys import Principal


@dataclass
class AppState:
    """The one object routers reach through `get_state`."""

    settings: Settings
    db_url: str
    metrics: Metrics
    limiter: InferenceLimiter
    throttle: AuthThrottle
    db: Database | None = None
    pipeline: Pipeline | None = None
    jobs: JobManager | None = None
    profiles: dict[str, Profile] = field(default_factory=lambda: {n: load_profile(n) for n in PHOTO_KINDS})
    started_at: float = field(default_factory=time.time)
    _keys: dict[str, tuple[float, Principal]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: Settings, db_url: str) -> AppState:
        """State with the limiter sized from the settings (slots 0 = one per core)."""
        metrics = Metrics()
        slots = settings.api_inference_slots or cpu_count()
        limiter = InferenceLimiter(slots, settings.api_inference_queue, settings.api_retry_after_s, metrics.limiter_changed)
        throttle = AuthThrottle(settings.api_auth_fail_per_address, settings.api_auth_fail_per_prefix, settings.api_auth_fail_window_s, metrics)
        return cls(settings, db_url, metrics, limiter, throttle)

    @property
    def store(self) -> PhotoStore:
        return PhotoStore.for_home(self.settings.home)

    def database(self) -> Database:
        """The open database, or 503 API_NOT_READY while it is not."""
        if self.db is None:
            raise ApiProblem("API_NOT_READY", "database not open", headers={"Retry-After": "5"})
        return self.db

    def require_pipeline(self) -> Pipeline:
        """The loaded pipeline, or 503 API_NOT_READY while models load."""
        if self.pipeline is None:
            raise ApiProblem("API_NOT_READY", "models are loading", headers={"Retry-After": "5"})
        return self.pipeline

    def readiness(self) -> dict[str, Any]:
        """Whether the database answers and the models are loaded."""
        db_ok = False
        if self.db is not None:
            try:
                with self.db.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                db_ok = True
            except Exception:  # noqa: BLE001 - any failure means not ready
                db_ok = False
        models = self.pipeline is not None
        ready = db_ok and models
        self.metrics.ready.set(1 if ready else 0)
        return {"ready": ready, "database": db_ok, "models": models, "pack": self.pipeline.pack.id if models else None}

    def cached_principal(self, digest: str) -> Principal | None:
        """A key verified less than settings.api_key_cache_s ago (saves a database read per request under load)."""
        with self._lock:
            hit = self._keys.get(digest)
            if hit is None or time.monotonic() - hit[0] > self.settings.api_key_cache_s:
                self._keys.pop(digest, None)
                return None
            return hit[1]

    def remember_principal(self, digest: str, principal: Principal) -> None:
        with self._lock:
            if len(self._keys) > 1000:
                self._keys.clear()
            self._keys[digest] = (time.monotonic(), principal)

    def forget_keys(self) -> None:
        """Drop the cache (after a revocation through the API)."""
        with self._lock:
            self._keys.clear()


def get_state(request: Request) -> AppState:
    """Dependency: the app's state."""
    return request.app.state.verifier
