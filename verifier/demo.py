"""`make demo`: the main job — the batch comparison — on a sample cohort.

The cohort (roster, admission and graduation photos) is cut from the face
set ../shared/faces into ./demo-out; the store is the embedded SQLite
default under ./demo-out/home. Nothing is downloaded; nothing is written
elsewhere.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from .batch.decision import DECISION_ZH, StudentDecision
from .batch.runner import BatchOptions, BatchRunner
from .faceset import faces_dir
from .pipeline import Pipeline
from .samples import make_cohort
from .settings import Settings
from .store.schema import upgrade

OUT = Path("demo-out")
STUDENTS = 60


def main() -> int:
    root = faces_dir()
    if root is None:
        print("demo needs the face set: ../shared/faces (or set VERIFIER_FACES)", file=sys.stderr)
        return 2
    os.environ.setdefault("VERIFIER_ID_KEY", "demo-only-key-not-for-production")
    settings = replace(Settings.from_env(), home=OUT / "home")
    cohort_dir = OUT / "cohort"
    if not (cohort_dir / "roster.csv").exists():
        print(f"生成示例数据 / making a sample cohort of {STUDENTS} students in {cohort_dir} …")
        make_cohort(Pipeline.load(settings=settings), root, cohort_dir, STUDENTS, seed=7, impostor_rate=0.1, missing_rate=0.05, unusable_rate=0.05)
    state = upgrade(settings.resolve_db_url())
    print(f"数据库 / database: {settings.resolve_db_url()} (schema {state.current})")
    options = BatchOptions(cohort_dir / "roster.csv", cohort_dir / "admission", cohort_dir / "graduation", out_dir=OUT / "reports")
    summary = BatchRunner(options, settings).run()
    print(f"run {summary.run_id}: {summary.students} students, {summary.processed} processed, {summary.unchanged} unchanged, {summary.seconds:.1f} s")
    for d in StudentDecision:
        print(f"  {DECISION_ZH[d]:<10} {d.value:<15} {summary.decisions.get(d.value, 0)}")
    print("报告 / reports:")
    for p in summary.reports:
        print(f"  {p.resolve()}")
    print("再次运行 make demo 不会重复比对（幂等）/ running make demo again re-uses every result (idempotent).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
