"""The sharded search (verifier.sweep.shards) finds exactly the pairs one index finds, without Ray.

Why it must: every unordered shard pair is searched once, a pair straddling shards i and j is found by
the (i, j) task from both ends (IVF: list c joins j's members with i's probing rows and the reverse),
and the centroids are the same for every shard. These tests check the plan, the straddling pair, and
the full and incremental equality on flat and IVF indexes.
"""

from __future__ import annotations

import numpy as np
import pytest

from verifier.sweep.index import FaceIndex, choose_params
from verifier.sweep.shards import new_rows, plan, search_new, search_pair, shard_of, sharded_pairs, split

THRESHOLD = 0.6


def _vectors(n: int, planted: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for _ in range(planted):
        a, b = rng.integers(0, n, 2)
        x[b] = 0.8 * x[a] + 0.45 * x[b]
        x[b] /= np.linalg.norm(x[b])
    return x, rng.permutation(n).astype(np.int64) + 1


@pytest.mark.parametrize("shards", range(1, 9))
def test_the_plan_searches_every_shard_pair_exactly_once_and_spreads_them_evenly(shards: int):
    work = plan(shards)
    pairs = [tuple(sorted(p)) for w in work for p in w]
    assert sorted(pairs) == [(i, j) for i in range(shards) for j in range(i, shards)]
    assert all(w and w[0] == (i, i) for i, w in enumerate(work))  # each worker searches its own shard
    assert max(map(len, work)) - min(map(len, work)) <= 1


@pytest.mark.parametrize("force_approximate", [False, True], ids=["flat", "ivf"])
def test_a_pair_straddling_two_shards_is_found_by_their_cross_task_only(force_approximate: bool):
    x, ids = _vectors(3000, 0, seed=11)
    x[1] = 0.9 * x[0] + 0.436 * x[1]  # rows 0 and 1 (after the id sort below) are one face
    x[1] /= np.linalg.norm(x[1])
    ids = np.arange(1, 3001, dtype=np.int64)  # row r is photo r + 1, so rows 0 and 1 land in shards 0 and 1
    index = FaceIndex.build(ids, ids, x, choose_params(3000, force_approximate=force_approximate))
    assert shard_of(np.array([0, 1]), 3).tolist() == [0, 1]
    parts = split(index, 3)
    kind, nlist = index.params.kind, index.params.nlist
    cross = search_pair(parts[0], parts[1], False, kind, nlist, THRESHOLD)
    found = {(int(a), int(b)) for a, b in zip(cross[0], cross[1], strict=True)}
    assert (0, 1) in found or (1, 0) in found
    for i in range(3):
        q, m, _ = search_pair(parts[i], parts[i], True, kind, nlist, THRESHOLD)
        assert {0, 1} not in [{int(a), int(b)} for a, b in zip(q, m, strict=True)]
    whole = sharded_pairs(index, 3, THRESHOLD)
    assert (0, 1) in set(zip(whole.a.tolist(), whole.b.tolist(), strict=True))


@pytest.mark.parametrize("force_approximate", [False, True], ids=["flat", "ivf"])
def test_sharded_search_equals_one_index_full_and_incremental(force_approximate: bool):
    x, ids = _vectors(6000, 150, seed=3)
    index = FaceIndex.build(ids, ids, x, choose_params(6000, force_approximate=force_approximate))
    assert index.params.kind == ("ivf" if force_approximate else "flat")
    one = index.all_pairs(THRESHOLD)
    is_new = np.zeros(index.n, bool)
    is_new[np.random.default_rng(4).choice(index.n, 300, replace=False)] = True
    one_new = index.pairs_with(is_new, THRESHOLD)
    assert len(one) >= 100 and len(one_new) >= 5
    for shards in (1, 2, 3, 5):
        got = sharded_pairs(index, shards, THRESHOLD)
        assert got.keys().tolist() == one.keys().tolist()
        assert np.allclose(got.score, one.score, atol=1e-5)
        assert sharded_pairs(index, shards, THRESHOLD, is_new).keys().tolist() == one_new.keys().tolist()


def test_incremental_rows_go_to_every_shard_and_each_returns_only_pairs_with_a_new_row():
    x, ids = _vectors(4000, 100, seed=8)
    index = FaceIndex.build(ids, ids, x, choose_params(4000, force_approximate=True))
    is_new = np.zeros(index.n, bool)
    is_new[-200:] = True
    new = new_rows(index, is_new)
    assert new.probes is not None and new.probes.shape[1] > index.params.nprobe  # widened probes, one direction
    for shard in split(index, 4):
        q, m, _ = search_new(shard, new, "ivf", index.params.nlist, THRESHOLD)
        assert np.isin(q, new.rows).all() and np.isin(m, shard.rows).all()
