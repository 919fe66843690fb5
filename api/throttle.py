"""Refused API keys, limited per client address and per key prefix in a moving window (429 with Retry-After).

Keys are 256-bit random, so guessing one is hopeless anyway; the limit keeps a guessing client from
loading the store, names it in the log (address and the key's public prefix, never the secret) and counts
it in /metrics. While an address or a prefix is over its limit, a key from it is not even looked up.
The windows live in this process (limits' moving-window memory storage): with N server workers a client
gets at most N times the limit, which still bounds it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.metrics import Metrics

log = logging.getLogger("api.auth")


@dataclass(frozen=True)
class Throttled:
    """Which window is full and how many seconds until a slot frees in it."""

    bucket: str
    retry_after_s: int


class AuthThrottle:
    """Counts refused keys by address and by prefix; says when either has reached its limit."""

    def __init__(self, per_address: int, per_prefix: int, window_s: int, metrics: Metrics):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items = {
            "address": RateLimitItemPerSecond(max(1, per_address), max(1, window_s)),
            "prefix": RateLimitItemPerSecond(max(1, per_prefix), max(1, window_s)),
        }
        self.metrics = metrics

    def _buckets(self, address: str, prefix: str | None) -> list[tuple[str, str]]:
        pairs = [("address", address)]
        if prefix:
            pairs.append(("prefix", prefix))
        return pairs

    def check(self, address: str, prefix: str | None) -> Throttled | None:
        """The first full window among this address's and this prefix's, or None when a key may be tried."""
        for bucket, value in self._buckets(address, prefix):
            item = self._items[bucket]
            if not self._limiter.test(item, bucket, value):
                reset = self._limiter.get_window_stats(item, bucket, value).reset_time
                self.metrics.auth_throttled.labels(bucket).inc()
                return Throttled(bucket, max(1, math.ceil(reset - time.time())))
        return None

    def refused(self, address: str, prefix: str | None, code: str) -> None:
        """Record one refused key: both windows, the log line (no secret) and the counter."""
        for bucket, value in self._buckets(address, prefix):
            self._limiter.hit(self._items[bucket], bucket, value)
        self.metrics.auth_failures.labels(code).inc()
        log.warning("API key refused (%s) from %s, key prefix %s", code, address, prefix or "-")
