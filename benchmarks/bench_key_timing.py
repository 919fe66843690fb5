"""Does a wrong API key's verification time depend on how much of it is right?

    python benchmarks/bench_key_timing.py [DB_URL]      # default: a fresh SQLite file

Three kinds of wrong key, interleaved in shuffled order on one session: random; the right prefix with a random
secret; the right key with its last character changed. Each through `api.keys.authenticate` (the row found by
the whole key's SHA-256) and through the peer it replaced (the row found by the public prefix, then the digest
compared). Prints each kind's median in µs and the slowest/fastest ratio (1.0 = no signal).
"""

from __future__ import annotations

import hmac
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from api.keys import authenticate, create_key, hash_key
from verifier.common.reasons import VerifierError
from verifier.store.connect import open_database
from verifier.store.models import ApiKey
from verifier.store.schema import upgrade

ROUNDS = 600


def by_prefix(session: Any, presented: str) -> None:
    """The peer: look the row up by the key's prefix, then compare digests in constant time."""
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == presented.split("_", 2)[1]))
    if row is None or not hmac.compare_digest(row.secret_hash, hash_key(presented)):
        raise VerifierError("API_KEY_INVALID")


def medians(db: Any, check: Callable[[Any, str], None], kinds: dict[str, Callable[[], str]]) -> dict[str, float]:
    """Median µs per kind of wrong key."""
    times: dict[str, list[int]] = {k: [] for k in kinds}
    with db.session() as s:
        for _ in range(ROUNDS):
            order = list(kinds)
            random.shuffle(order)
            for k in order:
                key = kinds[k]()
                t0 = time.perf_counter_ns()
                try:
                    check(s, key)
                except VerifierError:
                    pass
                times[k].append(time.perf_counter_ns() - t0)
    return {k: statistics.median(v) / 1000 for k, v in times.items()}


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp()}/keys.db"
    upgrade(url)
    db = open_database(url)
    secret = db.transaction(lambda s: create_key(s, "reviewer", "timing")).secret
    prefix = secret.split("_")[1]
    kinds = {
        "random": lambda: f"vfk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}",
        "right prefix": lambda: f"vfk_{prefix}_{secrets.token_urlsafe(32)}",
        "all but last": lambda: secret[:-1] + ("A" if secret[-1] != "A" else "B"),
    }
    print(f"{db.engine.dialect.name}, {ROUNDS} rounds")
    for name, check in (("by digest (ours)", authenticate), ("by prefix (peer)", by_prefix)):
        m = medians(db, check, kinds)
        print(f"{name}: " + ", ".join(f"{k} {v:.1f} µs" for k, v in m.items()) + f"; slowest/fastest {max(m.values()) / min(m.values()):.3f}")
    db.dispose()


if __name__ == "__main__":
    main()
