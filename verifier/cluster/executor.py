"""Chunk maps on Ray actors (`--ray`): the ordered, bounded, stop-aware map of `common.parallel`, across a cluster.

One actor per worker slot, each running the initializer once, so the models are loaded once per worker
from the package installed on its node; a task carries only its chunk (the function and initializer
travel by name, once, when the actor starts). Each actor holds at most two chunks, the next one queued
behind the one it runs, so it never waits for the driver. A killed actor is restarted (its initializer
runs again) and its chunks are retried there; only the compute moves, the caller still writes every
result. Chunks carry photo bytes, never paths, so the nodes need no shared file system; a pack's
`model_dir`, when one is given, must exist at the same path on every node.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from verifier.cluster.session import import_ray, ray_cluster
from verifier.common.parallel import chunked, start_worker_process
from verifier.common.reasons import VerifierError

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

# A killed or crashed worker is restarted this many times, and a chunk it held retried as often.
RESTARTS = 4
IN_FLIGHT_PER_ACTOR = 2


class ChunkWorker:
    """A Ray actor's body: set the worker up once, then map chunks; a failing set-up is raised by every call."""

    def __init__(self, fn: Callable[[list], list], initializer: Callable[..., None] | None, initargs: tuple[Any, ...]):
        self.fn = fn
        self.error: BaseException | None = None
        try:
            start_worker_process(initializer, *initargs)
        except Exception as exc:  # noqa: BLE001 - kept and raised by each call, so the driver sees the real reason
            self.error = exc

    def ready(self) -> None:
        """Return once set up (raise its error otherwise)."""
        if self.error is not None:
            raise self.error

    def run(self, chunk: list) -> list:
        """One chunk through the function."""
        self.ready()
        return self.fn(chunk)


def ray_map_chunks(
    items: Iterable[T],
    fn: Callable[[list[T]], list[R]],
    workers: int,
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
    chunk_size: int,
    stop: Callable[[], bool],
    address: str,
) -> Iterator[tuple[T, R]]:
    """Yield (item, fn-result) in input order, computed on `workers` Ray actors (<= 0: one per cluster CPU)."""
    ray = import_ray()
    from ray.util import ActorPool

    with ray_cluster(address, cpus=workers if workers > 0 else None) as info:
        n = max(1, min(workers, info.cpus) if workers > 0 else info.cpus)
        if workers > n:
            log.info("ray: %d workers asked, %d CPUs in the cluster: %d actors", workers, info.cpus, n)
        remote = ray.remote(num_cpus=1, max_restarts=RESTARTS, max_task_retries=RESTARTS)(ChunkWorker)
        actors = [remote.remote(fn, initializer, initargs) for _ in range(n)]
        try:
            _get(ray, [a.ready.remote() for a in actors])
            pool = ActorPool(actors * IN_FLIGHT_PER_ACTOR)
            pending: deque[list[T]] = deque()
            for chunk in chunked(items, chunk_size):
                if stop():
                    break
                pool.submit(lambda actor, c: actor.run.remote(c), chunk)
                pending.append(chunk)
                if len(pending) >= IN_FLIGHT_PER_ACTOR * n:
                    yield from zip(pending.popleft(), _get(ray, pool.get_next, call=True))
            while pending:
                yield from zip(pending.popleft(), _get(ray, pool.get_next, call=True))
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)


def _get(ray: Any, what: Any, call: bool = False) -> Any:
    """`ray.get(what)` (or `what()`), with a worker's own exception re-raised as itself and a lost worker as CLUSTER_WORKER_LOST."""
    try:
        return what() if call else ray.get(what)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, Exception):
            raise cause from None
        raise
    except ray.exceptions.RayActorError as exc:
        raise VerifierError("CLUSTER_WORKER_LOST", detail=f"{type(exc).__name__}: {str(exc)[:200]}") from None
