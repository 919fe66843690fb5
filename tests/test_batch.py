"""The batch comparison end to end: real models, real SQLite store, generated cohort."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from verifier.batch.runner import BatchOptions, BatchRunner
from verifier.demo.cohort import make_cohort
from verifier.common.settings import Settings
from verifier.store.connect import open_database
from verifier.store.models import Comparison, Photo, ReviewCase
from verifier.store.schema import upgrade

EXPECTED_DECISIONS = {
    "genuine": {"pass"},
    "impostor": {"fail", "review"},
    "missing": {"missing_photo"},
    "unusable": {"photo_unusable"},
}


@pytest.fixture(scope="module")
def cohort(pipeline, faces, tmp_path_factory):
    c = make_cohort(pipeline, faces, tmp_path_factory.mktemp("cohort"), 28, seed=3, impostor_rate=0.2, missing_rate=0.08, unusable_rate=0.08)
    assert set(c.expected.values()) == set(EXPECTED_DECISIONS), c.expected
    return c


def _home(tmp_path: Path, cache_dir: Path) -> Settings:
    settings = Settings(home=tmp_path / "home", cache_dir=cache_dir, id_key="test-key-0123456789abcdef")
    upgrade(settings.resolve_db_url())
    return settings


def _run(cohort, settings: Settings, out: Path, workers: int = 1):
    options = BatchOptions(cohort.roster, cohort.admission_dir, cohort.graduation_dir, out_dir=out, workers=workers)
    return BatchRunner(options, settings).run()


def _rows(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return {r["ksh"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def first_run(cohort, tmp_path_factory, cache_dir):
    tmp = tmp_path_factory.mktemp("batch")
    settings = _home(tmp, cache_dir)
    summary = _run(cohort, settings, tmp / "out1")
    return settings, summary, tmp


def test_every_student_gets_the_expected_decision(cohort, first_run):
    settings, summary, tmp = first_run
    rows = _rows(tmp / "out1" / "report.csv")
    assert set(rows) == set(cohort.expected)
    wrong = {k: (cohort.expected[k], r["decision"]) for k, r in rows.items() if r["decision"] not in EXPECTED_DECISIONS[cohort.expected[k]]}
    # A genuine pair goes to review, saying why, when a photo is below the quality limits or its score lies in the
    # review band below accept (accept is set at FMR 1e-5); it never fails, and most genuine pairs pass.
    reviews = {k for k, (exp, got) in wrong.items() if exp == "genuine" and got == "review"
               and rows[k]["reasons"].startswith(("COMPARE_LOW_QUALITY_REVIEW", "COMPARE_REVIEW_BAND"))}
    genuine = [k for k, v in cohort.expected.items() if v == "genuine"]
    assert len(reviews) <= 0.35 * len(genuine), sorted((rows[k]["score"], rows[k]["reasons"]) for k in reviews)
    assert {k: v for k, v in wrong.items() if k not in reviews} == {}
    for k, r in rows.items():
        if r["decision"] == "missing_photo":
            assert r["reasons"] == "BATCH_MISSING_GRADUATION"
        if r["decision"] == "photo_unusable":
            assert r["reasons"] in ("FACE_MULTIPLE", "FACE_NOT_FOUND"), r
        if r["decision"] in ("pass", "fail", "review"):
            assert r["score"] != ""
    assert summary.processed == len(cohort.expected) and not summary.interrupted


def test_failed_and_review_pairs_open_one_case_each(first_run):
    settings, summary, _ = first_run
    db = open_database(settings.resolve_db_url(), settings=settings)
    with db.session() as s:
        cases = s.scalars(select(ReviewCase)).all()
        flagged = summary.decisions.get("fail", 0) + summary.decisions.get("review", 0)
        assert len(cases) == flagged > 0
        assert {c.case_type for c in cases} <= {"comparison_failed", "comparison_review"}
    db.dispose()


def test_rerun_is_a_no_op_with_the_same_report(cohort, first_run):
    settings, _, tmp = first_run
    again = _run(cohort, settings, tmp / "out2")
    assert again.processed == 0 and again.unchanged == len(cohort.expected)
    assert (tmp / "out1" / "report.csv").read_bytes() == (tmp / "out2" / "report.csv").read_bytes()
    db = open_database(settings.resolve_db_url(), settings=settings)
    with db.session() as s:
        n_cmp = s.scalar(select(func.count()).select_from(Comparison))
        n_cases = s.scalar(select(func.count()).select_from(ReviewCase))
    db.dispose()
    assert n_cmp == sum(1 for v in cohort.expected.values() if v != "missing")
    assert n_cases == again.decisions.get("fail", 0) + again.decisions.get("review", 0)


def test_reports_in_chinese(first_run):
    _, _, tmp = first_run
    wb = load_workbook(tmp / "out1" / "report.xlsx", read_only=True)
    assert wb.sheetnames == ["比对结果", "汇总", "需处理"]
    header = next(wb["比对结果"].iter_rows(values_only=True))
    assert list(header) == ["考生号", "学号", "姓名", "学院", "学习中心", "结论", "相似度", "原因", "照片问题", "学位注册"]
    decisions = {row[5] for row in wb["比对结果"].iter_rows(min_row=2, values_only=True)}
    assert "通过" in decisions and "不通过（身份复核）" in decisions
    summary_rows = list(wb["汇总"].iter_rows(values_only=True))
    assert summary_rows[-1][0] == "合计"
    page = (tmp / "out1" / "report.html").read_text(encoding="utf-8")
    assert "需处理名单" in page and "data:image/jpeg;base64," in page and "计算机学院" in page
    assert oct((tmp / "out1" / "report.csv").stat().st_mode & 0o777) == "0o600"


def test_corrected_graduation_photo_is_compared_again(cohort, tmp_path, cache_dir):
    settings = _home(tmp_path, cache_dir)
    _run(cohort, settings, tmp_path / "a")
    impostor = next(k for k, v in cohort.expected.items() if v == "impostor")
    original = (cohort.graduation_dir / f"{impostor}.jpg").read_bytes()
    genuine_source = cohort.admission_dir / f"{impostor}.jpg"
    try:
        (cohort.graduation_dir / f"{impostor}.jpg").write_bytes(genuine_source.read_bytes())
        again = _run(cohort, settings, tmp_path / "b")
    finally:
        (cohort.graduation_dir / f"{impostor}.jpg").write_bytes(original)
    assert again.processed == 1
    assert _rows(tmp_path / "b" / "report.csv")[impostor]["decision"] == "pass"
    db = open_database(settings.resolve_db_url(), settings=settings)
    with db.session() as s:
        grads = s.scalars(select(Photo).where(Photo.kind == "graduation", Photo.source.like(f"%{impostor}%"))).all()
        assert len(grads) == 2 and sum(p.is_current for p in grads) == 1
    db.dispose()


def _cli(cohort, home: Path, out: Path, cache_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "VERIFIER_HOME": str(home), "VERIFIER_CACHE_DIR": str(cache_dir), "VERIFIER_ID_KEY": "test-key-0123456789abcdef"}
    args = ["batch", "compare", "--roster", str(cohort.roster), "--admission-dir", str(cohort.admission_dir)]
    args += ["--graduation-dir", str(cohort.graduation_dir), "--out", str(out), "--workers", "2"]
    return subprocess.Popen([sys.executable, "-m", "verifier", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_then_resume_gives_the_uninterrupted_report(cohort, tmp_path, cache_dir, first_run):
    settings = _home(tmp_path, cache_dir)
    proc = _cli(cohort, settings.home, tmp_path / "killed", cache_dir)
    db = open_database(settings.resolve_db_url(), settings=settings)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        with db.session() as s:
            if s.scalar(select(func.count()).select_from(Comparison)) >= 6:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = _cli(cohort, settings.home, tmp_path / "resumed", cache_dir)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert "(resumed)" in out
    _, _, reference = first_run
    assert (tmp_path / "resumed" / "report.csv").read_bytes() == (reference / "out1" / "report.csv").read_bytes()
    with db.session() as s:
        pairs = s.execute(select(Comparison.admission_photo_id, Comparison.graduation_photo_id)).all()
    db.dispose()
    assert len(pairs) == len(set(pairs)) == sum(1 for v in cohort.expected.values() if v != "missing")
    names = [r["name"] for r in _rows(tmp_path / "resumed" / "report.csv").values()]
    assert not any(n in out + err for n in names), "personal data on the console"
    assert not any(k in out + err for k in cohort.expected), "考生号 on the console"


def test_bad_roster_is_a_usage_error(tmp_path, cache_dir, cohort):
    (tmp_path / "r.csv").write_bytes(b"\xff\xfe\x00garbage")
    env = {**os.environ, "VERIFIER_HOME": str(tmp_path / "h"), "VERIFIER_CACHE_DIR": str(cache_dir)}
    res = subprocess.run(
        [sys.executable, "-m", "verifier", "batch", "compare", "--roster", str(tmp_path / "r.csv"), "--admission-dir", str(cohort.admission_dir), "--graduation-dir", str(cohort.graduation_dir)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 2 and "ROSTER_" in res.stderr


def test_ctrl_c_stops_after_work_in_flight_and_says_how_to_resume(cohort, tmp_path, cache_dir, first_run):
    settings = _home(tmp_path, cache_dir)
    proc = _cli(cohort, settings.home, tmp_path / "int", cache_dir)
    db = open_database(settings.resolve_db_url(), settings=settings)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        with db.session() as s:
            if s.scalar(select(func.count()).select_from(Comparison)) >= 4:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    with db.session() as s:
        from verifier.store.models import Run

        assert s.scalars(select(Run.status)).all() == ["interrupted"]
    resumed = _cli(cohort, settings.home, tmp_path / "int2", cache_dir)
    out, err = resumed.communicate(timeout=600)
    db.dispose()
    assert resumed.returncode == 0 and "(resumed)" in out, err
    _, _, reference = first_run
    assert (tmp_path / "int2" / "report.csv").read_bytes() == (reference / "out1" / "report.csv").read_bytes()
