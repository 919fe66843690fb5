"""Province scale: the sharded duplicate search on a local Ray cluster, against one index in the same run.

    .venv/bin/python benchmarks/bench_scale.py --n 200000 1000000 --n-sampled 10000000 --json /tmp/bench-scale.json
    .venv/bin/python benchmarks/bench_scale.py --from-json /tmp/bench-scale.json --write

Data: bench_sweep's worst-case generator (uniform 128-d unit vectors, two photos per student, N/1000
planted cross-student pairs at cos uniform in [threshold, 0.95]), no store: this measures the search.

- Full points (--n): one index (`FaceIndex.all_pairs`, the single-machine sweep, 2 threads) and the
  sharded search (`verifier.sweep.ray_search.ray_pairs`, --shards actors on a loopback cluster of this
  machine's cores) over the same index; the pair sets must be equal, recall is on the planted pairs.
- Sampled point (--n-sampled): the vectors are put into the object store shard by shard, centroids are
  trained once (as one index would), a Ray task per shard assigns its rows to them, and a sample of the
  shard-pair tasks (--sample-tasks self and cross tasks) is run and timed; the whole search is projected
  from the work per task (dot products). Recall is exact without searching: a planted pair is found
  iff one end's own list is among the other's probes (scores are exact once a pair is examined), and
  the sampled tasks check that prediction pair for pair.
- Cost model: dot products examined = sum over lists of (members x rows probing it), the same for one
  index and for the shards (the shard pairs partition it); rate = dot products per core-second measured
  at the smallest full point; projected time = examined / (rate x cores x nodes) + assignment; bytes
  moved = every shard once to its actor, plus shard j to actor i for each cross pair (i, j). The
  projection is checked against the measured larger full points.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sweep import Dataset  # noqa: E402
from common import cores, load_average, machine_line, write_section  # noqa: E402

from verifier.cluster.session import ray_cluster  # noqa: E402
from verifier.core.packs import load_pack  # noqa: E402
from verifier.sweep.index import FaceIndex, _assign, _train, choose_params, set_threads  # noqa: E402
from verifier.sweep.ray_search import ShardedSearch, ShardWorker, ray_pairs  # noqa: E402
from verifier.sweep.shards import Shard, list_sizes, plan, with_probes  # noqa: E402

DIM = 128
SECTION = "## Province scale: sharded sweep on Ray (issue 17)"


def examined(probes: np.ndarray, nlist: int) -> int:
    """Dot products the list-major join computes: sum over lists of own members x rows probing the list."""
    own, probing = list_sizes(probes, nlist)
    return int(own.astype(np.float64) @ probing.astype(np.float64))


def _planted_arrays(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    pairs = sorted(data.planted)
    return np.array([a - 1 for a, _ in pairs], np.int64), np.array([b - 1 for _, b in pairs], np.int64)


def _recall(found_keys: set[tuple[int, int]], data: Dataset) -> dict:
    hit = sum((a - 1, b - 1) in found_keys for a, b in data.planted)
    return {"planted": len(data.planted), "found": hit, "recall": round(hit / len(data.planted), 4)}


def full_point(n: int, shards: int, threshold: float) -> dict:
    """One index and the sharded search over the same index: times, equality, recall, memory, cost."""
    data = Dataset(n, threshold, np.zeros((0, DIM), np.float32))
    ids = np.arange(1, n + 1, dtype=np.int64)
    t = time.monotonic()
    index = FaceIndex.build(ids, data.student_of, data.vectors, choose_params(n))
    build_s = time.monotonic() - t
    del data.vectors
    gc.collect()
    set_threads(cores())
    load_before = os.getloadavg()[0]
    t = time.monotonic()
    one = index.all_pairs(threshold)
    one_s = time.monotonic() - t
    report = ShardedSearch(shards)
    t = time.monotonic()
    got = ray_pairs(index, shards, threshold, report=report)
    ray_s = time.monotonic() - t
    keys = set(zip(got.a.tolist(), got.b.tolist(), strict=True))
    work = examined(index.probes, index.params.nlist) if index.probes is not None else n * (n - 1) // 2
    return {
        "n": n, "index": index.params.describe(), "nlist": index.params.nlist, "nprobe": index.params.nprobe, "shards": shards,
        "build_s": round(build_s, 1), "one_index_s": round(one_s, 1), "sharded_s": round(ray_s, 1), "ratio": round(one_s / ray_s, 3),
        "equal": bool(np.array_equal(got.keys(), one.keys())), "pairs": len(got), "recall": _recall(keys, data),
        "tasks": report.tasks, "bytes_moved": report.bytes_moved, "examined": work,
        "worker_peak_rss_mb": [round(w["peak_rss"] / 2**20) for w in report.workers],
        "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
    }


def sampled_point(n: int, shards: int, threshold: float, sample_tasks: int, seed: int = 3) -> dict:
    """The sampled large point: shards in the object store, assigned by Ray tasks, then a sample of shard-pair tasks."""
    import ray

    t0 = time.monotonic()
    data = Dataset(n, threshold, np.zeros((0, DIM), np.float32))
    params = choose_params(n)
    gen_s = time.monotonic() - t0
    t = time.monotonic()
    centroids = _train(data.vectors, params.nlist, 1234)
    train_s = time.monotonic() - t
    src, dst = _planted_arrays(data)
    ends = np.unique(np.concatenate([src, dst]))
    end_probes = dict(zip(ends.tolist(), _assign(np.ascontiguousarray(data.vectors[ends]), centroids, params.nprobe), strict=True))
    meet = np.array([end_probes[b][0] in end_probes[a] or end_probes[a][0] in end_probes[b] for a, b in zip(src, dst, strict=True)])
    assign = ray.remote(num_cpus=1)(with_probes)
    t = time.monotonic()
    held = []
    for i in range(shards):  # each shard goes to the store once; a worker task assigns its rows (one shard in flight per CPU)
        rows = np.arange(i, n, shards, dtype=np.int64)
        held.append(assign.remote(Shard(rows, np.ascontiguousarray(data.vectors[rows])), centroids, params.nprobe))
        if i >= 2 * cores():
            ray.wait(held, num_returns=i - 2 * cores() + 1, fetch_local=False)
    shard_bytes = n * DIM * 4 // shards
    del data.vectors
    gc.collect()
    ray.wait(held, num_returns=len(held), fetch_local=False)
    assign_s = time.monotonic() - t
    actor_cls = ray.remote(num_cpus=0, max_restarts=1, max_task_retries=1)(ShardWorker)
    actors = [actor_cls.remote(i, held[i], "ivf", params.nlist, threshold) for i in range(shards)]
    workers = ray.get([a.process.remote() for a in actors])
    rng = np.random.default_rng(seed)
    tasks = [p for w in plan(shards) for p in w]
    selfs = [p for p in tasks if p[0] == p[1]]
    cross = [p for p in tasks if p[0] != p[1]]
    chosen = [selfs[i] for i in rng.choice(len(selfs), sample_tasks, replace=False)] + [cross[i] for i in rng.choice(len(cross), sample_tasks, replace=False)]
    load_before = os.getloadavg()[0]
    t = time.monotonic()
    futures = {actors[a].pair.remote(held[b] if a != b else None): (a, b) for a, b in chosen}
    timed: dict[tuple[int, int], float] = {}
    results = {}
    waiting = list(futures)
    while waiting:
        done, waiting = ray.wait(waiting, num_returns=1)
        for ref in done:
            timed[futures[ref]] = time.monotonic() - t
            results[futures[ref]] = ray.get(ref)
    sample_s = time.monotonic() - t
    load_after = os.getloadavg()[0]
    workers_after = ray.get([a.process.remote() for a in actors])
    sizes = ray.get([a.list_sizes.remote() for a in actors])
    for a in actors:
        ray.kill(a)
    shard_no = np.arange(n) % shards
    checked = agree = 0
    for (a, b), (q, m, _s) in results.items():
        found = set(zip(np.minimum(q, m).tolist(), np.maximum(q, m).tolist(), strict=True))
        inside = [(int(x), int(y), bool(mt)) for x, y, mt in zip(src, dst, meet, strict=True) if {shard_no[x], shard_no[y]} == {a, b}]
        for x, y, mt in inside:
            checked += 1
            agree += ((min(x, y), max(x, y)) in found) == mt
    total_tasks = len(tasks)
    own = [o.astype(np.float64) for o, _ in sizes]
    probing = [p.astype(np.float64) for _, p in sizes]
    work = {(a, b): own[a] @ probing[a] if a == b else own[b] @ probing[a] + own[a] @ probing[b] for a, b in tasks}
    sampled_work = sum(work[p] for p in chosen)
    total_work = float(sum(own) @ sum(probing))
    rate = sampled_work / (sample_s * cores())
    return {
        "n": n, "nlist": params.nlist, "nprobe": params.nprobe, "shards": shards, "tasks": total_tasks, "sampled_tasks": [list(p) for p in chosen],
        "generate_s": round(gen_s, 1), "train_s": round(train_s, 1), "assign_s": round(assign_s, 1), "sample_s": round(sample_s, 1),
        "examined_sampled": float(sampled_work), "examined_total": total_work, "rate_dot_products_per_core_s": round(rate),
        "projected_search_s": round(total_work / (rate * cores()), 1),
        "recall_predicted": {"planted": int(meet.size), "found": int(meet.sum()), "recall": round(float(meet.mean()), 4)},
        "prediction_checked": {"planted_pairs_in_sampled_tasks": checked, "agree": agree},
        "shard_mb": round(shard_bytes / 2**20), "probes_mb_per_shard": round(n / shards * params.nprobe * 2 / 2**20),
        "worker_peak_rss_mb": [round(w["peak_rss"] / 2**20) for w in workers_after],
        "worker_rss_at_start_mb": [round(w["peak_rss"] / 2**20) for w in workers],
        "load_before": round(load_before, 2), "load_after": round(load_after, 2),
    }


def model(results: dict, cores_per_node: int) -> dict:
    """Dot products per core-second at the smallest full point; projections for the larger points, 10M and 50M."""
    full = sorted(results["full"], key=lambda r: r["n"])
    base = full[0]
    rate = base["examined"] / (base["sharded_s"] * cores_per_node)

    def ivf_work(n: int) -> tuple[int, int, float]:
        p = choose_params(n)
        ideal = n * n * p.nprobe / p.nlist  # uniform lists: N/nlist members x N*nprobe/nlist probing, nlist times
        return p.nlist, p.nprobe, ideal

    skew = np.mean([r["examined"] / ivf_work(r["n"])[2] for r in full])
    checks = []
    for r in full[1:]:
        predicted = r["examined"] / (rate * cores_per_node)
        checks.append({"n": r["n"], "predicted_s": round(predicted, 1), "measured_s": r["sharded_s"], "ratio": round(r["sharded_s"] / predicted, 3)})
    projections = []
    for n in (10_000_000, 50_000_000):
        nlist, nprobe, ideal = ivf_work(n)
        work = ideal * skew
        assign_flops = 2.0 * n * nlist * DIM
        for nodes in (1, 4, 16, 64):
            shards = max(16, 4 * nodes * cores_per_node)
            cpus = nodes * cores_per_node
            search_s = work / (rate * cpus)
            vectors = n * (DIM * 4 + nprobe * 2)
            # Every shard goes to the store once; a node then pulls each other shard its actors pair with, once (Ray keeps a
            # pulled object in that node's store): about half of all shards per node, the other node's all when there are two.
            moved = vectors + nodes * min(1 - 1 / nodes, 0.5) * vectors
            projections.append({"n": n, "nodes": nodes, "cpus": cpus, "shards": shards, "nlist": nlist, "nprobe": nprobe,
                                "dot_products": float(work), "search_h": round(search_s / 3600, 2),
                                "assign_h": round(assign_flops / (rate * 2 * DIM) / cpus / 3600, 2),
                                "bytes_moved_gb": round(moved / 1e9, 1), "memory_per_node_gb": round(vectors / nodes / 1e9, 2),
                                "task_working_set_gb": round(2 * vectors / shards / 1e9, 2)})
    return {"rate_dot_products_per_core_s": round(rate), "skew": round(float(skew), 3), "checks": checks, "projections": projections}


def section(results: dict) -> str:
    lines = [SECTION, "", f"Command: `{results['command']}`, then `--from-json … --write` for this section (one run).  ",
             f"Machine: {results['machine']}; load 1/5/15 before {results['load_start']}, after {results['load_end']}.  ",
             f"Cluster: `ray.init` on 127.0.0.1 with {results['ray_cpus']} CPUs (ray {results['ray_version']}); every shard actor runs its FAISS calls on one thread.", ""]
    lines += ["| N | index | shards / tasks | one index (s) | sharded on Ray (s) | one / sharded | pairs equal | recall planted | peak RSS per worker (MB) | bytes moved | load before → after |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["full"]:
        rec = r["recall"]
        lines.append(f"| {r['n']:,} | {r['index']} | {r['shards']} / {r['tasks']} | {r['one_index_s']} | **{r['sharded_s']}** | {r['ratio']}× | "
                     f"{'yes' if r['equal'] else '**no**'} ({r['pairs']:,}) | {rec['found']}/{rec['planted']} = **{rec['recall']}** | "
                     f"{min(r['worker_peak_rss_mb'])}–{max(r['worker_peak_rss_mb'])} | {r['bytes_moved'] / 2**20:,.0f} MiB | {r['load_before']} → {r['load_after']} |")
    s = results.get("sampled")
    if s:
        rec, chk = s["recall_predicted"], s["prediction_checked"]
        lines += ["", f"Sampled point, N = {s['n']:,} (nlist {s['nlist']}, nprobe {s['nprobe']}, {s['shards']} shards, {s['tasks']} shard-pair tasks): "
                  f"generate {s['generate_s']} s, train {s['train_s']} s, assignment by Ray tasks {s['assign_s']} s; "
                  f"{len(s['sampled_tasks'])} sampled tasks ({', '.join(f'{a}-{b}' for a, b in s['sampled_tasks'])}) in {s['sample_s']} s "
                  f"(load {s['load_before']} → {s['load_after']}). Shard {s['shard_mb']} MiB of vectors + {s['probes_mb_per_shard']} MiB of probes; "
                  f"peak RSS per worker {min(s['worker_peak_rss_mb'])}–{max(s['worker_peak_rss_mb'])} MB (object-store pages it maps included). "
                  f"Recall on the planted pairs (lists meet; exact scores): {rec['found']}/{rec['planted']} = **{rec['recall']}**; "
                  f"the sampled tasks found exactly the predicted planted pairs for {chk['agree']}/{chk['planted_pairs_in_sampled_tasks']}. "
                  f"The sampled tasks ran at {s['rate_dot_products_per_core_s']:,} dot products per core-second; the whole search "
                  f"({s['examined_total']:.2e} dot products) is projected at **{s['projected_search_s'] / 3600:.2f} h** on this machine."]
    m = results["model"]
    lines += ["", f"Cost model: {m['rate_dot_products_per_core_s']:,} dot products (128-d) per core-second, measured on the sharded search at the smallest full point; "
              f"work at scale = N²·nprobe/nlist × {m['skew']} (list-size skew measured at the full points)."]
    for c in m["checks"]:
        lines.append(f"- check at N = {c['n']:,}: predicted {c['predicted_s']} s, measured {c['measured_s']} s (measured/predicted {c['ratio']})")
    lines += ["", "| N | nodes (cores) | shards | dot products | search (h) | assignment (h) | bytes moved (GB) | vectors + probes per node (GB) | one task's two shards (GB) |", "|---|---|---|---|---|---|---|---|---|"]
    for p in m["projections"]:
        lines.append(f"| {p['n']:,} | {p['nodes']} ({p['cpus']}) | {p['shards']} | {p['dot_products']:.2e} | {p['search_h']} | {p['assign_h']} | {p['bytes_moved_gb']} | {p['memory_per_node_gb']} | {p['task_working_set_gb']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="*", default=[200_000, 1_000_000])
    ap.add_argument("--n-sampled", type=int, default=0, help="the large point, sampled (0: skip)")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--sampled-shards", type=int, default=16)
    ap.add_argument("--sample-tasks", type=int, default=2, help="self tasks and cross tasks each, at the sampled point")
    ap.add_argument("--object-store-gb", type=int, default=14, help="the local cluster's object store (the sampled point's shards live there)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--from-json", type=Path, default=None)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        import ray

        threshold = float(load_pack("sface-yunet-int8").thresholds.duplicate)
        results = {"command": "benchmarks/bench_scale.py " + " ".join(sys.argv[1:]), "machine": machine_line(), "load_start": load_average(), "full": []}
        with ray_cluster("local", cores(), object_store_bytes=args.object_store_gb * 2**30) as info:
            results["ray_cpus"], results["ray_version"] = info.cpus, ray.__version__
            for n in args.n:
                results["full"].append(full_point(n, args.shards, threshold))
                print(json.dumps(results["full"][-1]), flush=True)
            if args.n_sampled:
                results["sampled"] = sampled_point(args.n_sampled, args.sampled_shards, threshold, args.sample_tasks)
                print(json.dumps(results["sampled"]), flush=True)
        results["load_end"] = load_average()
        results["model"] = model(results, cores())
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    text = section(results)
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
