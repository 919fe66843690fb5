"""Face index for the duplicate sweep: all pairs of unit vectors above a cosine threshold, exact or IVF.

Two kinds, chosen by size (`choose_params`):

- ``flat`` (exact): FAISS ``IndexFlatIP`` range search in column blocks over the upper
  triangle, so each pair i < j is computed once. Used up to `EXACT_LIMIT` vectors.
- ``ivf`` (approximate): k-means centroids (FAISS, spherical) and, per vector, its `nprobe`
  nearest centroids. A pair (i, j) is examined when j's own list is among i's probes *or*
  i's own list is among j's, and the search runs list by list: each list's own members go
  into a small ``IndexFlatIP`` and every vector probing that list is range-searched against
  it in one BLAS call. Measured on this 2-core machine, 1M uniform vectors: FAISS's
  ``IndexIVFFlat.range_search`` reached 86% of planted pairs at nprobe 64 and would need
  ~800 s for the self-join, while the list-major join reaches >= 99% (both directions
  count) at BLAS speed. An incremental search probes from the new rows only, with
  `INCREMENTAL_PROBE_FACTOR` times the probes. Scores are exact inner products either way.

Each FAISS call runs on one OpenMP thread and the lists are spread over Python threads
(`set_threads`): on this shared 2-core machine two OpenMP threads per call were 7x slower
than one.

The index persists under ``<home>/index/<name>/`` (meta.json, ids.npy, students.npy,
vectors.npy, and for IVF centroids.npy, probes.npy), written to a temporary folder and
renamed, so a reader sees the old index or the whole new one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from verifier.common.files import ensure_private_dir, open_output, write_output
from verifier.common.settings import cpu_count

EXACT_LIMIT = 120_000
FORMAT = 1
# Probes per vector: recall of pairs at cos >= 0.665 (both directions) depends on nprobe / sqrt(nlist) on
# uniform random vectors, the worst case; measured on 1M vectors (docs/BENCHMARKS.md, duplicate sweep).
NPROBE_FACTOR = 2.9
# Incremental sweeps probe from the new rows only (one direction) with this many times the probes:
# measured on 1M vectors, 4 x 183 of 4,000 lists one way finds about as many pairs (0.997) as 183 both ways.
INCREMENTAL_PROBE_FACTOR = 4
MIN_NPROBE = 8
FLAT_BLOCK = 2048
LIST_CHUNK = 256
_EPS = 1e-6
_THREADS = 1


@dataclass(frozen=True)
class IndexParams:
    """Which index and how it is tuned: kind flat (exact) or ivf with nlist lists and nprobe probes per vector."""

    kind: str
    nlist: int = 0
    nprobe: int = 0

    def describe(self, incremental: bool = False) -> str:
        """Short text for run records and reports."""
        if self.kind == "flat":
            return "flat (exact)"
        if incremental:
            return f"ivf nlist={self.nlist} nprobe={self.nprobe} (approximate; new photos probe {INCREMENTAL_PROBE_FACTOR * self.nprobe} lists)"
        return f"ivf nlist={self.nlist} nprobe={self.nprobe} (approximate, both directions)"


def choose_params(n: int, exact: bool = False, force_approximate: bool = False, exact_limit: int = EXACT_LIMIT) -> IndexParams:
    """Exact up to `exact_limit` vectors (or when asked), else IVF with nlist ~ 4*sqrt(N) and nprobe ~ NPROBE_FACTOR*sqrt(nlist)."""
    if exact or (n <= exact_limit and not force_approximate):
        return IndexParams("flat")
    nlist = max(1, min(round(4 * math.sqrt(max(n, 1))), n // 8))
    nprobe = min(nlist, max(MIN_NPROBE, math.ceil(NPROBE_FACTOR * math.sqrt(nlist))))
    return IndexParams("ivf", nlist, nprobe)


@dataclass
class PairSet:
    """Pairs of row indices (a < b) with their cosine scores."""

    a: np.ndarray
    b: np.ndarray
    score: np.ndarray

    @classmethod
    def empty(cls) -> PairSet:
        """No pairs."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return int(self.a.size)

    def keys(self) -> np.ndarray:
        """One int64 key per pair (a << 32 | b) for set operations."""
        return (self.a.astype(np.int64) << 32) | self.b.astype(np.int64)


def _merge(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> PairSet:
    """Order each pair (a < b), drop self pairs, keep each pair once."""
    if not parts:
        return PairSet.empty()
    a = np.concatenate([p[0] for p in parts]).astype(np.int64)
    b = np.concatenate([p[1] for p in parts]).astype(np.int64)
    s = np.concatenate([p[2] for p in parts]).astype(np.float32)
    keep = a != b
    a, b, s = a[keep], b[keep], s[keep]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keys, first = np.unique((lo << 32) | hi, return_index=True)
    return PairSet(keys >> 32, keys & 0xFFFFFFFF, s[first])


def _range(members: np.ndarray, queries: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Range search: (query row, member row, score) for every score >= threshold (FAISS flat inner product)."""
    if len(members) == 0 or len(queries) == 0:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.float32)
    index = faiss.IndexFlatIP(members.shape[1])
    index.add(np.ascontiguousarray(members, dtype=np.float32))
    lims, dist, found = index.range_search(np.ascontiguousarray(queries, dtype=np.float32), float(threshold) - _EPS)
    q = np.repeat(np.arange(len(queries), dtype=np.int64), np.diff(lims).astype(np.int64))
    keep = dist >= threshold
    return q[keep], found[keep].astype(np.int64), dist[keep]


def set_threads(threads: int | None = None) -> int:
    """Search threads (default: the cores this process may use); each FAISS call itself runs on one OpenMP thread.

    Measured here: one range search of a small list against many rows ran at ~80 GFlop/s on one
    OpenMP thread and ~11 GFlop/s on two (OpenMP barriers on a shared, loaded machine), so the
    parallelism is across lists, in Python threads (FAISS releases the GIL).
    """
    global _THREADS
    _THREADS = max(1, threads or cpu_count())
    faiss.omp_set_num_threads(1)
    return _THREADS


@dataclass
class FaceIndex:
    """Vectors with their photo and student ids, plus the IVF coarse assignment when approximate."""

    params: IndexParams
    ids: np.ndarray
    students: np.ndarray
    vectors: np.ndarray
    centroids: np.ndarray | None = None
    probes: np.ndarray | None = None
    trained_n: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of indexed photos."""
        return int(self.ids.size)

    @classmethod
    def build(cls, ids: np.ndarray, students: np.ndarray, vectors: np.ndarray, params: IndexParams, seed: int = 1234) -> FaceIndex:
        """Index these vectors (rows sorted by photo id); IVF trains its centroids on a sample of them."""
        order = np.argsort(ids, kind="stable")
        vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)
        faiss.normalize_L2(vectors)
        index = cls(params, np.asarray(ids, np.int64)[order], np.asarray(students, np.int64)[order], vectors, trained_n=int(ids.size))
        if params.kind == "ivf":
            index.centroids = _train(vectors, params.nlist, seed)
            index.probes = _assign(vectors, index.centroids, params.nprobe)
        return index

    def needs_rebuild(self, n: int, params: IndexParams) -> bool:
        """True when the kind changed or the set grew or shrank too far from what the IVF lists were trained on."""
        if params.kind != self.params.kind:
            return True
        return params.kind == "ivf" and not (self.trained_n / 2 <= n <= self.trained_n * 2)

    def update(self, keep_ids: np.ndarray, new_ids: np.ndarray, new_students: np.ndarray, new_vectors: np.ndarray) -> np.ndarray:
        """Drop rows whose id is not in keep_ids, add the new rows; return a mask of the new rows in the result."""
        keep = np.isin(self.ids, keep_ids)
        vectors = np.ascontiguousarray(new_vectors, dtype=np.float32).reshape(-1, self.vectors.shape[1] if self.vectors.size else new_vectors.shape[-1])
        faiss.normalize_L2(vectors)
        ids = np.concatenate([self.ids[keep], np.asarray(new_ids, np.int64)])
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order]
        self.students = np.concatenate([self.students[keep], np.asarray(new_students, np.int64)])[order]
        self.vectors = np.ascontiguousarray(np.concatenate([self.vectors[keep], vectors])[order])
        if self.probes is not None and self.centroids is not None:
            self.probes = np.concatenate([self.probes[keep], _assign(vectors, self.centroids, self.params.nprobe)])[order]
        is_new = np.zeros(self.n, bool)
        is_new[np.searchsorted(self.ids, new_ids)] = True
        return is_new

    def all_pairs(self, threshold: float) -> PairSet:
        """Every pair with cosine >= threshold (exact for flat; both-direction IVF probing otherwise)."""
        return self._pairs(threshold, None)

    def pairs_with(self, is_new: np.ndarray, threshold: float) -> PairSet:
        """Pairs >= threshold in which at least one row is new (the incremental sweep)."""
        return self._pairs(threshold, np.asarray(is_new, bool))

    def _pairs(self, threshold: float, is_new: np.ndarray | None) -> PairSet:
        if self.n < 2:
            return PairSet.empty()
        if self.params.kind == "flat":
            return _merge(_run(_flat_tasks(self.vectors, threshold, is_new)))
        assert self.probes is not None and self.centroids is not None
        return _merge(_run(_ivf_tasks(self.vectors, self.probes, self.centroids, self.params.nlist, threshold, is_new)))

    def save(self, folder: Path, meta: dict[str, Any]) -> None:
        """Write the index atomically: a temporary sibling folder renamed over the old one."""
        folder = Path(folder)
        ensure_private_dir(folder.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            arrays = {"ids": self.ids, "students": self.students, "vectors": self.vectors}
            if self.centroids is not None and self.probes is not None:
                arrays.update(centroids=self.centroids, probes=self.probes)
            for name, arr in arrays.items():
                with open_output(tmp / f"{name}.npy", "wb") as fh:
                    np.save(fh, arr)
            body = {**meta, "format": FORMAT, "params": asdict(self.params), "n": self.n, "trained_n": self.trained_n}
            write_output(tmp / "meta.json", json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8"))
            old = None
            if folder.exists():
                old = folder.parent / f".{folder.name}.old.{os.getpid()}"
                os.replace(folder, old)
            os.replace(tmp, folder)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.meta = body

    @classmethod
    def load(cls, folder: Path) -> FaceIndex | None:
        """The saved index, or None when absent, of another format, or damaged."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                return None
            params = IndexParams(**meta["params"])
            arrays = {name: np.load(folder / f"{name}.npy") for name in ("ids", "students", "vectors")}
            extra = {name: np.load(folder / f"{name}.npy") for name in ("centroids", "probes")} if params.kind == "ivf" else {}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        index = cls(params, arrays["ids"], arrays["students"], arrays["vectors"], extra.get("centroids"), extra.get("probes"), int(meta.get("trained_n", 0)), meta)
        if index.vectors.shape[0] != index.n or (params.kind == "ivf" and (index.probes is None or index.probes.shape[0] != index.n)):
            return None
        return index


def _train(vectors: np.ndarray, nlist: int, seed: int) -> np.ndarray:
    """Spherical k-means centroids on a sample of up to 32 points per list."""
    rng = np.random.default_rng(seed)
    sample = vectors if len(vectors) <= nlist * 32 else vectors[np.sort(rng.choice(len(vectors), nlist * 32, replace=False))]
    km = faiss.Kmeans(vectors.shape[1], nlist, niter=10, spherical=True, seed=seed, max_points_per_centroid=32, min_points_per_centroid=1)
    km.train(np.ascontiguousarray(sample))
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def _assign(vectors: np.ndarray, centroids: np.ndarray, nprobe: int, block: int = 65536) -> np.ndarray:
    """Each vector's nprobe nearest centroids, nearest first (column 0 is its own list)."""
    dtype = np.int16 if len(centroids) < 2**15 else np.int32
    out = np.empty((len(vectors), nprobe), dtype)
    quantizer = faiss.IndexFlatIP(centroids.shape[1])
    quantizer.add(centroids)
    for i in range(0, len(vectors), block):
        _, found = quantizer.search(np.ascontiguousarray(vectors[i : i + block]), nprobe)
        out[i : i + block] = found
    return out


Part = tuple[np.ndarray, np.ndarray, np.ndarray]
Task = Callable[[], Part]


def _run(tasks: Iterable[Task]) -> list[Part]:
    """Run range-search tasks on `_THREADS` threads (FAISS releases the GIL; each call stays single-threaded)."""
    if _THREADS <= 1:
        return [task() for task in tasks]
    out: list[Part] = []
    with ThreadPoolExecutor(_THREADS) as pool:
        pending: list[Future] = []
        for task in tasks:
            pending.append(pool.submit(task))
            if len(pending) >= 4 * _THREADS:
                out.append(pending.pop(0).result())
        out.extend(f.result() for f in pending)
    return out


def _flat_tasks(vectors: np.ndarray, threshold: float, is_new: np.ndarray | None) -> Iterator[Task]:
    """Exact: column blocks of the upper triangle (full), or the new rows against everything (incremental)."""
    if is_new is not None:
        new_rows = np.flatnonzero(is_new)
        for i in range(0, len(new_rows), FLAT_BLOCK):
            rows = new_rows[i : i + FLAT_BLOCK]

            def task(rows: np.ndarray = rows) -> Part:
                q, m, s = _range(vectors[rows], vectors, threshold)
                return q, rows[m], s

            yield task
        return
    for j0 in range(0, len(vectors), FLAT_BLOCK):
        j1 = min(j0 + FLAT_BLOCK, len(vectors))

        def task(j0: int = j0, j1: int = j1) -> Part:
            q, m, s = _range(vectors[j0:j1], vectors[:j1], threshold)
            m = m + j0
            upper = q < m
            return q[upper], m[upper], s[upper]

        yield task


def _list_groups(probes: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows probing each list in [lo, hi): rows grouped by list and the group bounds."""
    rows, cols = np.nonzero((probes >= lo) & (probes < hi))
    lists = probes[rows, cols]
    order = np.argsort(lists, kind="stable")
    return rows[order], np.searchsorted(lists[order], np.arange(lo, hi + 1))


def _pair_task(vectors: np.ndarray, members: np.ndarray, queries: np.ndarray, threshold: float) -> Task:
    def task() -> Part:
        q, m, s = _range(vectors[members], vectors[queries], threshold)
        return queries[q], members[m], s

    return task


def _groups(lists: np.ndarray, rows: np.ndarray, nlist: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by list id, with bounds: rows of list c are out[bounds[c]:bounds[c + 1]]."""
    order = np.argsort(lists, kind="stable")
    return rows[order], np.searchsorted(lists[order], np.arange(nlist + 1))


def _ivf_tasks(
    vectors: np.ndarray, probes: np.ndarray, centroids: np.ndarray | None, nlist: int, threshold: float, is_new: np.ndarray | None
) -> Iterator[Task]:
    """List by list, each list's own members against the rows probing it.

    Full sweep: every row probing the list (so a pair is seen from either end). Incremental:
    only the new rows, with INCREMENTAL_PROBE_FACTOR times the probes (one direction), which
    avoids regrouping the whole probe table for a few new rows; only then are the centroids needed.
    """
    own_rows, own_bounds = _groups(probes[:, 0].astype(np.int64), np.arange(len(probes)), nlist)
    if is_new is not None:
        assert centroids is not None
        new_rows = np.flatnonzero(is_new)
        k = min(nlist, INCREMENTAL_PROBE_FACTOR * probes.shape[1])
        ext = _assign(vectors[new_rows], centroids, k).astype(np.int64)
        probe_rows, probe_bounds = _groups(ext.ravel(), np.repeat(new_rows, k), nlist)
        for c in range(nlist):
            members = own_rows[own_bounds[c] : own_bounds[c + 1]]
            probing = probe_rows[probe_bounds[c] : probe_bounds[c + 1]]
            if members.size and probing.size:
                yield _pair_task(vectors, members, probing, threshold)
        return
    for lo in range(0, nlist, LIST_CHUNK):
        hi = min(lo + LIST_CHUNK, nlist)
        spill_rows, spill_bounds = _list_groups(probes, lo, hi)
        for c in range(lo, hi):
            members = own_rows[own_bounds[c] : own_bounds[c + 1]]
            probing = spill_rows[spill_bounds[c - lo] : spill_bounds[c - lo + 1]]
            if members.size and probing.size:
                yield _pair_task(vectors, members, probing, threshold)


def exact_pairs_of(vectors: np.ndarray, rows: np.ndarray, threshold: float) -> PairSet:
    """Exact ground truth for a sample: every pair >= threshold that has one of `rows` as an end (recall checks)."""
    is_new = np.zeros(len(vectors), bool)
    is_new[rows] = True
    return _merge(_run(_flat_tasks(vectors, threshold, is_new)))
