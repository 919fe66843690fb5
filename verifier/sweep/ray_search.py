"""The sharded duplicate search on Ray: one actor per shard holds it, and the shard pairs are dealt out to them.

Each shard is put in Ray's object store once; its actor is created with it (so a restarted actor gets
it back from the store) and searches the shard pairs `shards.plan` gives it. For a pair (i, j) with
i != j, actor i receives shard j as an argument (on one node a zero-copy view of the store, across
nodes one transfer of shard j's bytes). An incremental sweep sends only the new rows, once to every
actor. Actors restart and their tasks are retried on a lost worker (`retries` times); a task that
still fails is recorded, and once every task has ended the search raises SWEEP_SHARDS_FAILED naming
the failed shards, before the sweep writes anything.
"""

from __future__ import annotations

import logging
import os
import resource
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verifier.cluster.session import import_ray
from verifier.common.reasons import VerifierError
from verifier.sweep.index import FaceIndex, PairSet, Part, _merge, set_threads
from verifier.sweep.shards import NewRows, Shard, list_sizes, new_rows, plan, search_new, search_pair, split

log = logging.getLogger(__name__)

RETRIES = 3


class ShardWorker:
    """Holds one shard and searches it against itself, another shard, or the new rows (one FAISS thread)."""

    def __init__(self, shard_no: int, shard: Shard, kind: str, nlist: int, threshold: float):
        set_threads(1)
        self.shard_no, self.shard, self.kind, self.nlist, self.threshold = shard_no, shard, kind, nlist, threshold

    def pair(self, other: Shard | None) -> Part:
        """Pairs of this shard with itself (other None) or with `other`."""
        return search_pair(self.shard, other if other is not None else self.shard, other is None, self.kind, self.nlist, self.threshold)

    def new(self, rows: NewRows) -> Part:
        """Pairs of the new rows with this shard's rows."""
        return search_new(self.shard, rows, self.kind, self.nlist, self.threshold)

    def list_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per IVF list: this shard's own members and its rows probing it (the work of a task is their products)."""
        assert self.shard.probes is not None
        return list_sizes(self.shard.probes, self.nlist)

    def process(self) -> dict[str, int]:
        """This worker's pid and peak resident memory (bytes), for tests and the scale benchmark."""
        return {"pid": os.getpid(), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "rows": self.shard.n}


@dataclass
class ShardedSearch:
    """What a sharded search did: shards, tasks, bytes sent to workers, and per-worker processes."""

    shards: int
    tasks: int = 0
    bytes_moved: int = 0
    workers: list[dict[str, int]] = field(default_factory=list)


def ray_pairs(index: FaceIndex, shards: int, threshold: float, is_new: np.ndarray | None = None,
              retries: int | None = None, report: ShardedSearch | None = None) -> PairSet:
    """The index's pairs (all, or those with a new row) searched by `shards` Ray actors; the caller holds the cluster.

    `retries` (default RETRIES) is how often a lost actor is restarted and its tasks re-run.
    """
    ray = import_ray()
    retries = RETRIES if retries is None else retries
    report = report if report is not None else ShardedSearch(shards)
    report.shards = shards
    actor_cls = ray.remote(num_cpus=0, max_restarts=retries, max_task_retries=retries)(ShardWorker)
    pieces = split(index, shards)
    refs = [ray.put(p) for p in pieces]
    actors = [actor_cls.remote(i, refs[i], index.params.kind, index.params.nlist, threshold) for i in range(shards)]
    pending: dict[Any, tuple[int, int]] = {}
    report.bytes_moved = sum(p.nbytes for p in pieces)
    if is_new is not None:
        new = ray.put(new_rows(index, is_new))
        for i, actor in enumerate(actors):
            pending[actor.new.remote(new)] = (i, i)
        report.bytes_moved += shards * int(np.flatnonzero(is_new).size) * index.vectors.shape[1] * 4
    else:
        for i, work in enumerate(plan(shards)):
            for a, b in work:
                pending[actors[i].pair.remote(refs[b] if b != a else None)] = (a, b)
                report.bytes_moved += pieces[b].nbytes if b != a else 0
    report.tasks = len(pending)
    try:
        parts, failed = _gather(ray, pending)
        if failed:
            names = sorted({s for pair in failed for s in pair})
            detail = "shards " + ", ".join(map(str, names)) + "; pairs " + " ".join(f"{a}-{b}" for a, b in sorted(failed)) + f": {failed[min(failed)]}"
            raise VerifierError("SWEEP_SHARDS_FAILED", detail=detail[:500])
        report.workers = ray.get([a.process.remote() for a in actors])
    finally:
        for actor in actors:
            ray.kill(actor)
    return _merge(parts)


def _gather(ray: Any, pending: dict[Any, tuple[int, int]]) -> tuple[list[Part], dict[tuple[int, int], str]]:
    """Every task's result as it ends; failures by shard pair (after Ray's retries), with the error's first line."""
    parts: list[Part] = []
    failed: dict[tuple[int, int], str] = {}
    waiting = list(pending)
    while waiting:
        done, waiting = ray.wait(waiting, num_returns=1)
        for ref in done:
            try:
                parts.append(ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - RayActorError, RayTaskError, ObjectLostError...: the shard pair failed
                failed[pending[ref]] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''}"
                log.warning("shard pair %s failed: %s", pending[ref], failed[pending[ref]])
    return parts, failed
