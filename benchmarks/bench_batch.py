"""Batch comparison benchmark (issue 5, issue 20): 10,000 synthetic students, two photos each, whole process.

Run from the repository root:

    .venv/bin/python benchmarks/bench_batch.py [--students 10000] [--workers 2] [--no-kill] [--write]

The cohort (cut from ../shared/faces with varied crops, lighting and JPEG
quality; see verifier/demo/cohort.py) is generated once into /tmp and reused.
Measured, each on a fresh SQLite store and as the whole `verifier batch
compare` process a user types: a full run (wall time, students/s, CPU
seconds of the process tree, peak RSS of the tree), a no-op re-run, and a
run killed with SIGKILL at 50% and resumed with the same command.

The baseline (the project before issue 20, commit f9b2b2e) runs on the same
cohort in the same run when its venv exists (`benchmarks/baseline.py`
builds it into .bench-cache/baseline-venv; this script never builds it;
`--baseline-cache DIR` points at another .bench-cache). CPU ms per student
is the figure that survives a busy machine; wall figures need a quiet one.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import REPO, TreeMemory, load_average, machine_line, today, write_section  # noqa: E402

CACHE = Path("/tmp/verifier-bench-batch")
BASELINE_COMMIT = "f9b2b2e"


@dataclass(frozen=True)
class Variant:
    """One installation of the program to time: its interpreter, extra environment and working folder."""

    name: str
    python: str
    env: dict[str, str]
    cwd: Path


def current() -> Variant:
    """This checkout, run by the interpreter running this script."""
    return Variant("this checkout", sys.executable, {}, REPO)


def baseline(cache: Path) -> Variant | None:
    """The f9b2b2e venv under `cache` (.bench-cache), or None when nobody built it."""
    py = cache / "baseline-venv" / "bin" / "python"
    if not py.exists():
        return None
    env = {"VERIFIER_CACHE_DIR": str(cache / "baseline-models")}
    return Variant(f"baseline {BASELINE_COMMIT}", str(py), env, cache)


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


def _env(v: Variant, home: Path) -> dict[str, str]:
    env = {k: val for k, val in os.environ.items() if k != "PYTHONPATH"}
    return {**env, **v.env, "VERIFIER_HOME": str(home), "VERIFIER_ID_KEY": "bench-key-0123456789abcdef"}


def command(v: Variant, c: Path, home: Path, workers: int) -> tuple[list[str], dict[str, str]]:
    args = [v.python, "-m", "verifier", "batch", "compare", "--roster", str(c / "roster.csv")]
    args += ["--admission-dir", str(c / "admission"), "--graduation-dir", str(c / "graduation"), "--out", str(home / "out"), "--workers", str(workers)]
    return args, _env(v, home)


def fresh_home(v: Variant, name: str) -> Path:
    """An empty, migrated home of this benchmark process (two benchmarks at once never share a store)."""
    home = CACHE / f"{name}-{os.getpid()}"
    subprocess.run(["rm", "-rf", str(home)], check=True)
    subprocess.run([v.python, "-m", "verifier", "db", "upgrade"], env=_env(v, home), cwd=v.cwd, check=True, capture_output=True)
    return home


@dataclass(frozen=True)
class Timed:
    """One whole-process run: wall seconds, CPU seconds of the tree (user + system), peak tree RSS, load before."""

    wall: float
    cpu: float
    rss: int
    load: str


def timed(args: list[str], env: dict[str, str], cwd: Path) -> Timed:
    """Run one command to its end and measure it."""
    load = load_average()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with TreeMemory(proc.pid) as mem:
        rc = proc.wait()
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        sys.exit(f"batch command failed with exit {rc}: {' '.join(args)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu, mem.peak, load)


def comparisons(home: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(home / "verifier.db", timeout=30) as con:
            return con.execute("select count(*) from comparisons").fetchone()[0]
    except sqlite3.Error:
        return 0


def killed_and_resumed(v: Variant, c: Path, students: int, workers: int) -> tuple[float, int, Timed]:
    """SIGKILL a run once ~45% is committed, then resume it with the same command."""
    home = fresh_home(v, "killed")
    args, env = command(v, c, home, workers)
    t = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=v.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = int(students * 0.5 * 0.9)
    while proc.poll() is None and comparisons(home) < target:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return time.perf_counter() - t, comparisons(home), timed(args, env, v.cwd)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--baseline-cache", type=Path, default=REPO / ".bench-cache", help="the .bench-cache holding baseline-venv")
    ap.add_argument("--no-kill", action="store_true", help="skip the SIGKILL-and-resume measurement")
    ap.add_argument("--write", action="store_true", help="write the results into docs/BENCHMARKS.md")
    a = ap.parse_args()
    c = cohort(a.students)
    n = a.students
    base = baseline(a.baseline_cache)
    variants = [v for v in (base, current()) if v is not None]
    load_before = load_average()
    results: dict[str, tuple[Timed, Timed]] = {}
    for v in variants:
        home = fresh_home(v, "full")
        args, env = command(v, c, home, a.workers)
        full = timed(args, env, v.cwd)
        results[v.name] = (full, timed(args, env, v.cwd))
        print(f"{v.name}: full {full.wall:.1f} s ({n / full.wall:.1f} students/s, {1000 * full.cpu / n:.1f} CPU ms/student), "
              f"no-op {results[v.name][1].wall:.1f} s", file=sys.stderr)
    kill = None if a.no_kill else killed_and_resumed(current(), c, n, a.workers)
    load_after = load_average()
    for name in ("full", "killed"):
        subprocess.run(["rm", "-rf", str(CACHE / f"{name}-{os.getpid()}")], check=True)

    rows = []
    for v in variants:
        full, noop = results[v.name]
        rows.append(
            f"| {v.name} | {full.wall:.1f} s | {n / full.wall:.1f} ({2 * n / full.wall:.1f}) | {1000 * full.cpu / n:.1f} | "
            f"{full.rss / 2**20:.0f} MB | {noop.wall:.1f} s ({noop.cpu:.1f} CPU s, {noop.rss / 2**20:.0f} MB) | {full.load} → {noop.load} |"
        )
    ratio = ""
    if base is not None:
        b, cur = results[base.name][0], results[current().name][0]
        ratio = f"\nSame-run ratio, this checkout / baseline: **{b.wall / cur.wall:.2f}×** students/s (target ≥ 2×), CPU per student ×{cur.cpu / b.cpu:.2f}.\n"
    else:
        ratio = f"\nBaseline skipped: no {a.baseline_cache / 'baseline-venv'} (build it with `benchmarks/baseline.py`, then re-run).\n"
    kill_line = ""
    if kill is not None:
        after, done, resumed = kill
        kill_line = f"\nSIGKILL after {after:.0f} s ({done} students committed), then resume: {resumed.wall:.1f} s to finish (this checkout).\n"
    body = f"""Command: `.venv/bin/python benchmarks/bench_batch.py --students {n} --workers {a.workers}{' --no-kill' if a.no_kill else ''}{' --write' if a.write else ''}` ({today()}).
Machine: {machine_line()}. Load average before the runs: {load_before}; after: {load_after}.
Cohort: {n} synthetic students (verifier/demo/cohort.py, seed 11: admission 295×413 ≤ 50 KB and graduation 480×640 JPEGs
cut from ../shared/faces with jittered crops, brightness/contrast and JPEG quality 60–95; ~10% impostors, ~3% missing, ~2% group photos).
Every figure is the whole `verifier batch compare` process (start-up, roster import, checks, detect, align, embed, SQLite store,
reports), {a.workers} workers, each on a fresh store; the no-op is the same command again.

| program | full run, wall | students/s (photos/s) | CPU ms/student | peak RSS (tree) | no-op re-run | load before (full → no-op) |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}
{ratio}{kill_line}
Targets (issue 20): ≥ 2× the baseline's students/s, peak RSS < 600 MB, no-op re-run < 10 s at 10,000 students.
"""
    print(body)
    if a.write:
        write_section("## Batch comparison (issue 5)\n\n" + body + "\n" + NOTES)
    return 0


NOTES = """Where the time goes outside the models, and what was done about it (issue 20): see docs/BENCHMARKS.md,
"Batch path outside the models (issue 20)".
"""


if __name__ == "__main__":
    sys.exit(main())
