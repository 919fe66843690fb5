"""Batch comparison benchmark (issue 5): 10,000 synthetic students, two photos each.

Run from the repository root:

    .venv/bin/python benchmarks/bench_batch.py [--students 10000] [--workers 2] [--write]

The cohort (cut from ../shared/faces with varied crops, lighting and JPEG
quality; see verifier/demo/cohort.py) is generated once into /tmp and reused.
Measured, each on a fresh SQLite store: a full run (wall time, students/s,
peak RSS of the whole process tree), a no-op re-run, and a run killed with
SIGKILL at 50% and resumed with the same command.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import TreeMemory, load_average, machine_line, today, write_section  # noqa: E402

CACHE = Path("/tmp/verifier-bench-batch")


def cohort(students: int) -> Path:
    """The generated cohort folder (made on first use)."""
    from verifier.common.faceset import faces_dir
    from verifier.core.pipeline import Pipeline
    from verifier.demo.cohort import make_cohort

    out = CACHE / f"cohort-{students}"
    if not (out / "done").exists():
        root = faces_dir()
        if root is None:
            sys.exit("face set ../shared/faces not found (set VERIFIER_FACES)")
        t = time.perf_counter()
        make_cohort(Pipeline.load(), root, out, students, seed=11)
        (out / "done").write_text("ok")
        print(f"cohort of {students} made in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return out


def command(c: Path, home: Path, workers: int) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "VERIFIER_HOME": str(home), "VERIFIER_ID_KEY": "bench-key-0123456789abcdef"}
    args = [sys.executable, "-m", "verifier", "batch", "compare", "--roster", str(c / "roster.csv")]
    args += ["--admission-dir", str(c / "admission"), "--graduation-dir", str(c / "graduation"), "--out", str(home / "out"), "--workers", str(workers)]
    return args, env


def fresh_home(name: str) -> Path:
    home = CACHE / name
    subprocess.run(["rm", "-rf", str(home)], check=True)
    env = {**os.environ, "VERIFIER_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "verifier", "db", "upgrade"], env=env, check=True, capture_output=True)
    return home


def timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak tree RSS (bytes) of one command."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with TreeMemory(proc.pid) as mem:
        rc = proc.wait()
    if rc != 0:
        sys.exit(f"batch command failed with exit {rc}")
    return time.perf_counter() - t, mem.peak


def comparisons(home: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(home / "verifier.db", timeout=30) as con:
            return con.execute("select count(*) from comparisons").fetchone()[0]
    except sqlite3.Error:
        return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--students", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--write", action="store_true", help="write the results into docs/BENCHMARKS.md")
    a = ap.parse_args()
    c = cohort(a.students)
    load_before = load_average()

    home = fresh_home("full")
    full_s, full_rss = timed(*command(c, home, a.workers))
    noop_s, noop_rss = timed(*command(c, home, a.workers))

    home = fresh_home("killed")
    args, env = command(c, home, a.workers)
    t = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = int(a.students * 0.5 * 0.9)
    while proc.poll() is None and comparisons(home) < target:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_after = time.perf_counter() - t
    done_at_kill = comparisons(home)
    resume_s, resume_rss = timed(args, env)

    rate = a.students / full_s
    body = f"""Command: `.venv/bin/python benchmarks/bench_batch.py --students {a.students} --workers {a.workers}{' --write' if a.write else ''}` ({today()}).
Machine: {machine_line()}. Load average before the run: {load_before}; after: {load_average()}.
Cohort: {a.students} synthetic students (verifier/demo/cohort.py, seed 11: admission 295×413 ≤ 50 KB and graduation 480×640 JPEGs
cut from ../shared/faces with jittered crops, brightness/contrast and JPEG quality 60–95; ~10% impostors, ~3% missing, ~2% group photos).
Every figure is the whole `verifier batch compare` process (roster import, checks, detect, align, embed, SQLite store, reports), {a.workers} workers.

| measurement | result | target |
|---|---|---|
| full run, wall time | {full_s:.1f} s | |
| full run, students/s (photos/s) | {rate:.1f} ({2 * rate:.1f}) | ≥ 50 students/s |
| full run, peak RSS of the process tree | {full_rss / 2**20:.0f} MB | < 600 MB |
| no-op re-run, wall time | {noop_s:.1f} s (peak RSS {noop_rss / 2**20:.0f} MB) | < 30 s |
| SIGKILL after {killed_after:.0f} s ({done_at_kill} students committed), then resume | {resume_s:.1f} s to finish | |

Where the time goes (cProfile of 300 students on one thread, 2026-11-28): the run is CPU-bound at about 57 ms of
CPU per student — embedding ~26 ms (two SFace runs), detection ~11 ms (the 480×640 graduation photo is detected at
full size: a smaller detection input made the roll estimate of the quality check unreliable), quality metrics ~4 ms,
decode/align ~3 ms, store writes ~7 ms (SHA-256, two fsynced photo files, ORM rows, audit). Two cores give at most
~35 students/s at that cost, so the 50 students/s target needs a faster recognizer (e.g. an int8 SFace that keeps
accuracy), not plumbing. Done to get here: inference on threads sharing one pipeline (half the memory of one process
per core), bulk store reads per block of 500 students, 8 students per transaction (no-op re-run 37 s → 15 s).
"""
    print(body)
    if a.write:
        write_section("## Batch comparison (issue 5)\n\n" + body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
