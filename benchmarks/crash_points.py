"""Crash points at scale: SIGKILL a `verifier batch compare` at N random moments, resume each, compare the reports.

Each kill point is its own fresh SQLite store: the batch is killed after a random fraction of an undisturbed
run's time, the same command is run to the end, and its report.csv must equal the undisturbed one. Prints the
count tried, how many landed while the batch ran, and any mismatch (exit 1 when there is one).

    VERIFIER_FACES=/work/shared/faces PYTHONPATH=$PWD python benchmarks/crash_points.py --points 40
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faultkit import crash_and_resume, run_batch  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=40)
    ap.add_argument("--students", type=int, default=28)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    from verifier.common.faceset import faces_dir
    from verifier.core.pipeline import Pipeline
    from verifier.demo.cohort import make_cohort

    root = Path(tempfile.mkdtemp(prefix="crash-points-"))
    cache = root / "cache"
    cohort = make_cohort(Pipeline.load(), faces_dir(), root / "cohort", args.students, seed=3, impostor_rate=0.2, missing_rate=0.08, unusable_rate=0.08)
    t0 = time.monotonic()
    proc = run_batch(cohort, root / "ref" / "home", root / "ref" / "out", cache, f"sqlite:///{root / 'ref' / 'home' / 'verifier.db'}")
    proc.communicate()
    full_s = time.monotonic() - t0
    reference = (root / "ref" / "out" / "report.csv").read_bytes()
    rng = random.Random(args.seed)
    landed = bad = 0
    for i in range(args.points):
        at = rng.uniform(0.1, full_s)
        hit, report = crash_and_resume(cohort, root / f"k{i}", cache, at)
        landed += hit
        if report != reference:
            bad += 1
            print(f"MISMATCH at kill point {i}: {at:.2f} s", flush=True)
    print(f"crash points: {args.points} tried over a {full_s:.1f} s run ({args.students} students), {landed} landed mid-run, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
