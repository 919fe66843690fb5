"""Sharded duplicate search: the index's rows split into shards, and every shard pair searched once.

Row r of the index (its place in photo-id order) belongs to shard r mod S. A pair of rows (a, b) lies
in one shard or straddles two; the search visits each unordered shard pair {i, j} (i = j included)
exactly once, so every pair of rows is examined by exactly one shard-pair task:

- ``flat`` (exact): within a shard, the upper triangle; across shards i < j, every row of i against
  every row of j. The union is every pair above the threshold, as one flat index finds.
- ``ivf``: the centroids are trained once for all rows (so every shard sees the same lists) and
  each row keeps its `nprobe` probes. One index examines (a, b) when b's own list is among a's
  probes or a's own list among b's. Within a shard the list-major join of `verifier.sweep.index`
  does exactly that; across shards i and j, list c joins j's members of c with i's rows probing c
  *and* i's members of c with j's rows probing c. A straddling pair is therefore examined from both
  ends, exactly as in one index, and the union over shard pairs equals one index's pairs.
- incremental: the new rows (with their widened probes for IVF) go to every shard, and each shard
  searches its own rows against them; the union is "new rows against all", as one index does it.

`plan` deals the shard pairs out round-robin so that each of S workers gets about (S + 1) / 2 of them.
Everything here is pure (numpy and FAISS); `verifier.sweep.ray_search` runs it on Ray actors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verifier.sweep.index import (
    FLAT_BLOCK,
    INCREMENTAL_PROBE_FACTOR,
    LIST_CHUNK,
    FaceIndex,
    PairSet,
    Part,
    _assign,
    _flat_tasks,
    _groups,
    _ivf_tasks,
    _list_groups,
    _merge,
    _range,
)


@dataclass(frozen=True)
class Shard:
    """One shard's rows: their global row numbers (ascending), unit vectors, and IVF probes (None for flat)."""

    rows: np.ndarray
    vectors: np.ndarray
    probes: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Rows in this shard."""
        return int(self.rows.size)

    @property
    def nbytes(self) -> int:
        """Bytes of its arrays (what moves when another worker searches against it)."""
        return int(self.rows.nbytes + self.vectors.nbytes + (self.probes.nbytes if self.probes is not None else 0))


@dataclass(frozen=True)
class NewRows:
    """The rows an incremental sweep searches from: global rows, vectors and (IVF) widened probes."""

    rows: np.ndarray
    vectors: np.ndarray
    probes: np.ndarray | None = None


def list_sizes(probes: np.ndarray, nlist: int) -> tuple[np.ndarray, np.ndarray]:
    """Per IVF list: rows whose own list it is, and rows probing it (a join's work is the sum of their products)."""
    own = np.bincount(probes[:, 0].astype(np.int64), minlength=nlist)
    return own, np.bincount(probes.astype(np.int64).ravel(), minlength=nlist)


def shard_of(rows: np.ndarray, shards: int) -> np.ndarray:
    """The shard of each global row: r mod S (balanced whatever the id order)."""
    return np.asarray(rows, np.int64) % shards


def split(index: FaceIndex, shards: int) -> list[Shard]:
    """Cut an index into `shards` shards (views where numpy allows; probes kept as computed)."""
    out = []
    for i in range(shards):
        rows = np.arange(i, index.n, shards, dtype=np.int64)
        probes = index.probes[rows] if index.probes is not None else None
        out.append(Shard(rows, np.ascontiguousarray(index.vectors[rows]), probes))
    return out


def plan(shards: int) -> list[list[tuple[int, int]]]:
    """For each worker i, the shard pairs (i, j) it searches: every unordered pair once, about (S+1)/2 each."""
    work: list[list[tuple[int, int]]] = [[] for _ in range(shards)]
    for i in range(shards):
        for k in range(shards // 2 + 1):
            j = (i + k) % shards
            if k == 0 or (2 * k < shards) or (2 * k == shards and i < j):
                work[i].append((i, j))
    return work


def with_probes(shard: Shard, centroids: np.ndarray, nprobe: int) -> Shard:
    """The shard with its rows assigned to the (global) centroids: what a worker does when the driver holds no probes."""
    return Shard(shard.rows, shard.vectors, _assign(shard.vectors, centroids, nprobe))


def new_rows(index: FaceIndex, is_new: np.ndarray) -> NewRows:
    """The new rows of an incremental sweep, with INCREMENTAL_PROBE_FACTOR times the probes for IVF."""
    rows = np.flatnonzero(np.asarray(is_new, bool)).astype(np.int64)
    vectors = np.ascontiguousarray(index.vectors[rows])
    probes = None
    if index.params.kind == "ivf":
        assert index.centroids is not None
        k = min(index.params.nlist, INCREMENTAL_PROBE_FACTOR * index.params.nprobe)
        probes = _assign(vectors, index.centroids, k)
    return NewRows(rows, vectors, probes)


def _global(part: Part, rows_q: np.ndarray, rows_m: np.ndarray) -> Part:
    q, m, s = part
    return rows_q[q], rows_m[m], s


def _self(shard: Shard, kind: str, nlist: int, threshold: float) -> list[Part]:
    """A shard against itself: one index's own tasks (`verifier.sweep.index`) over the shard, in global rows."""
    if kind == "flat":
        tasks = _flat_tasks(shard.vectors, threshold, None)
    else:
        assert shard.probes is not None
        tasks = _ivf_tasks(shard.vectors, shard.probes, None, nlist, threshold, None)
    return [_global(task(), shard.rows, shard.rows) for task in tasks]


def _flat_cross(a: Shard, b: Shard, threshold: float) -> list[Part]:
    parts = []
    for i0 in range(0, a.n, FLAT_BLOCK):
        q, m, s = _range(b.vectors, a.vectors[i0 : i0 + FLAT_BLOCK], threshold)
        parts.append(_global((q + i0, m, s), a.rows, b.rows))
    return parts


def _join(qv: np.ndarray, queries: np.ndarray, mv: np.ndarray, members: np.ndarray, threshold: float) -> Part:
    """Rows `queries` of qv against rows `members` of mv: (query row, member row, score) in local numbering."""
    q, m, s = _range(mv[members], qv[queries], threshold)
    return queries[q], members[m], s


def _one_way(q: Shard, m: Shard, nlist: int, threshold: float) -> list[Part]:
    """List by list: m's own members against q's rows probing the list, as (q row, m row, score) in global rows."""
    assert q.probes is not None and m.probes is not None
    own, bounds = _groups(m.probes[:, 0].astype(np.int64), np.arange(m.n), nlist)
    parts = []
    for lo in range(0, nlist, LIST_CHUNK):
        hi = min(lo + LIST_CHUNK, nlist)
        spill, spill_bounds = _list_groups(q.probes, lo, hi)
        for c in range(lo, hi):
            members = own[bounds[c] : bounds[c + 1]]
            probing = spill[spill_bounds[c - lo] : spill_bounds[c - lo + 1]]
            if members.size and probing.size:
                parts.append(_global(_join(q.vectors, probing, m.vectors, members, threshold), q.rows, m.rows))
    return parts


def search_pair(a: Shard, b: Shard, same: bool, kind: str, nlist: int, threshold: float) -> Part:
    """Every pair above the threshold with one row in a and one in b (or both in a when `same`), global rows."""
    if same:
        return _concat(_self(a, kind, nlist, threshold))
    if kind == "flat":
        return _concat(_flat_cross(a, b, threshold))
    return _concat(_one_way(a, b, nlist, threshold) + _one_way(b, a, nlist, threshold))  # a pair is examined from either end


def search_new(shard: Shard, new: NewRows, kind: str, nlist: int, threshold: float) -> Part:
    """The new rows against this shard's rows (flat: all of them; IVF: the lists the new rows probe)."""
    if new.rows.size == 0 or shard.n == 0:
        return _concat([])
    if kind == "flat":
        parts = []
        for i0 in range(0, new.rows.size, FLAT_BLOCK):
            q, m, s = _range(shard.vectors, new.vectors[i0 : i0 + FLAT_BLOCK], threshold)
            parts.append(_global((q + i0, m, s), new.rows, shard.rows))
        return _concat(parts)
    assert shard.probes is not None and new.probes is not None
    own, bounds = _groups(shard.probes[:, 0].astype(np.int64), np.arange(shard.n), nlist)
    k = new.probes.shape[1]
    probe_rows, probe_bounds = _groups(new.probes.astype(np.int64).ravel(), np.repeat(np.arange(new.rows.size), k), nlist)
    parts = []
    for c in range(nlist):
        members = own[bounds[c] : bounds[c + 1]]
        probing = probe_rows[probe_bounds[c] : probe_bounds[c + 1]]
        if members.size and probing.size:
            parts.append(_global(_join(new.vectors, probing, shard.vectors, members, threshold), new.rows, shard.rows))
    return _concat(parts)


def _concat(parts: list[Part]) -> Part:
    if not parts:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.float32)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]))


def sharded_pairs(index: FaceIndex, shards: int, threshold: float, is_new: np.ndarray | None = None) -> PairSet:
    """The sharded search run here, shard pair by shard pair (what the Ray actors do, in one process)."""
    parts_of = split(index, shards)
    nlist = index.params.nlist
    if is_new is not None:
        new = new_rows(index, is_new)
        return _merge([search_new(s, new, index.params.kind, nlist, threshold) for s in parts_of])
    return _merge([search_pair(parts_of[i], parts_of[j], i == j, index.params.kind, nlist, threshold) for work in plan(shards) for i, j in work])
