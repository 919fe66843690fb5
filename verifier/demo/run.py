"""`verifier demo` (and `make demo`): the main job — the batch comparison — on a sample cohort.

The cohort (roster, admission and graduation photos) is cut into ./demo-out from the face set
(../shared/faces or VERIFIER_FACES) where present, else from the small demo set the package ships
(verifier/demo/faces, MIT-licensed photos); the store is the embedded SQLite default under
./demo-out/home. Nothing is downloaded; nothing is written elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import replace
from importlib import resources
from pathlib import Path

from verifier.batch.decision import DECISION_ZH, StudentDecision
from verifier.batch.runner import BatchOptions, BatchRunner
from verifier.common.faceset import faces_dir
from verifier.core.pipeline import Pipeline
from verifier.demo.cohort import make_cohort
from verifier.common.settings import Settings
from verifier.store.schema import upgrade

OUT = Path("demo-out")
STUDENTS = 60


def shipped_faces() -> Path:
    """The demo set inside the installed package (ID-size copies; see its SOURCES.md)."""
    return Path(str(resources.files("verifier.demo") / "faces"))


def main(out: Path = OUT) -> int:
    """Make the cohort once, then run the batch comparison on it and print the summary."""
    out = Path(out)
    root = faces_dir()
    if root is None:
        root = shipped_faces()
        print(f"使用随包示例照片 / using the demo photos shipped in the package: {root}")
    os.environ.setdefault("VERIFIER_ID_KEY", "demo-only-key-not-for-production")
    settings = replace(Settings.from_env(), home=out / "home")
    cohort_dir = out / "cohort"
    if not (cohort_dir / "roster.csv").exists():
        print(f"生成示例数据 / making a sample cohort of {STUDENTS} students in {cohort_dir} …")
        make_cohort(Pipeline.load(settings=settings), root, cohort_dir, STUDENTS, seed=7, impostor_rate=0.1, missing_rate=0.05, unusable_rate=0.05)
    state = upgrade(settings.resolve_db_url())
    print(f"数据库 / database: {settings.resolve_db_url()} (schema {state.current})")
    options = BatchOptions(cohort_dir / "roster.csv", cohort_dir / "admission", cohort_dir / "graduation", out_dir=out / "reports")
    summary = BatchRunner(options, settings).run()
    print(f"run {summary.run_id}: {summary.students} students, {summary.processed} processed, {summary.unchanged} unchanged, {summary.seconds:.1f} s")
    for d in StudentDecision:
        print(f"  {DECISION_ZH[d]:<10} {d.value:<15} {summary.decisions.get(d.value, 0)}")
    print("报告 / reports:")
    for p in summary.reports:
        print(f"  {p.resolve()}")
    print("再次运行 make demo 不会重复比对（幂等）/ running make demo again re-uses every result (idempotent).")
    return 0


