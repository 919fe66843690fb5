"""`verifier intake check` end to end: real models, real SQLite store, ID-card photos and card scans made from the face set."""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import undefer

from tests.intakehelp import PORTRAIT_BOX, make_intake_cohort
from verifier.batch.pairing import INTAKE
from verifier.batch.runner import BatchOptions, BatchRunner
from verifier.cli.main import main
from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings
from verifier.core.packs import load_pack
from verifier.store.connect import open_database
from verifier.store.models import Comparison, Photo, ReviewCase
from verifier.store.photostore import PhotoStore
from verifier.store.schema import upgrade

EXPECTED = {
    "genuine": {"pass", "review"},
    "genuine_scan": {"pass", "review"},
    "impostor": {"fail", "review"},
    "missing": {"missing_photo"},
    "faceless_scan": {"photo_unusable"},
}


@pytest.fixture(scope="module")
def cohort(pipeline, faces, tmp_path_factory):
    return make_intake_cohort(pipeline, faces, tmp_path_factory.mktemp("intake"))


def _settings(tmp: Path, cache_dir: Path) -> Settings:
    settings = Settings(home=tmp / "home", cache_dir=cache_dir, id_key="test-key-0123456789abcdef")
    upgrade(settings.resolve_db_url())
    return settings


def _options(cohort, out: Path, **kw) -> BatchOptions:
    return BatchOptions(cohort.roster, cohort.admission_dir, cohort.id_card_dir, out_dir=out, workers=2, pairing=INTAKE, actor="intake", **kw)


def _rows(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return {r["ksh"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def first(cohort, tmp_path_factory, cache_dir):
    tmp = tmp_path_factory.mktemp("intake-run")
    settings = _settings(tmp, cache_dir)
    summary = BatchRunner(_options(cohort, tmp / "out1"), settings).run()
    return settings, summary, tmp


def test_every_student_gets_the_expected_decision(cohort, first):
    _, summary, tmp = first
    rows = _rows(tmp / "out1" / "report.csv")
    assert set(rows) == set(cohort.expected)
    wrong = {k: (cohort.expected[k], r["decision"]) for k, r in rows.items() if r["decision"] not in EXPECTED[cohort.expected[k]]}
    assert wrong == {}
    genuine = [k for k, v in cohort.expected.items() if v.startswith("genuine")]
    assert sum(rows[k]["decision"] == "pass" for k in genuine) >= len(genuine) // 2, [(rows[k]["decision"], rows[k]["score"]) for k in genuine]
    assert not any(rows[k]["decision"] == "pass" for k, v in cohort.expected.items() if v == "impostor")
    by_kind = {v: rows[k] for k, v in cohort.expected.items()}
    assert by_kind["missing"]["reasons"] == "BATCH_MISSING_ID_CARD"
    assert by_kind["faceless_scan"]["reasons"] == "IDCARD_SCAN_NO_PORTRAIT"
    thresholds = load_pack("sface-yunet-int8").thresholds_for("id_card")
    for k, r in rows.items():
        if r["decision"] == "pass":
            assert float(r["score"]) >= thresholds.accept
        if r["decision"] == "fail":
            assert float(r["score"]) < thresholds.reject


def test_flagged_pairs_open_intake_cases_only(cohort, first):
    settings, _, tmp = first
    rows = _rows(tmp / "out1" / "report.csv")
    db = open_database(None, settings=settings)
    try:
        with db.session() as s:
            cases = s.scalars(select(ReviewCase)).all()
            assert {c.case_type for c in cases} == {"intake_mismatch"}
            cmp_ids = {c.subject_id for c in cases}
            flagged = {k for k, r in rows.items() if r["decision"] in ("fail", "review")}
            kshs = {s.get(Comparison, i).student_id for i in cmp_ids}
            assert len(kshs) == len(flagged) == len(cases)
            for c in s.scalars(select(Comparison)):
                assert s.get(Photo, c.graduation_photo_id).kind == "id_card"
                assert s.get(Photo, c.admission_photo_id).kind == "admission"
    finally:
        db.dispose()


def test_a_card_scan_keeps_only_its_portrait(cohort, first):
    """The stored ID-card photo of a scanned card is the portrait (PNG, chip proportions); the scan is nowhere."""
    settings, _, _ = first
    store = PhotoStore.for_home(settings.home)
    db = open_database(None, settings=settings)
    try:
        with db.session() as s:
            photos = {p.sha256: p for p in s.scalars(select(Photo).options(undefer(Photo.origin_sha256)).where(Photo.kind == "id_card"))}
    finally:
        db.dispose()
    scan_digests = {hashlib.sha256(b).hexdigest(): ksh for ksh, b in cohort.scans.items()}
    cropped = [p for p in photos.values() if p.origin_sha256 in scan_digests and p.file_path]
    assert len(cropped) == sum(v == "genuine_scan" for v in cohort.expected.values())
    for p in cropped:
        data = store.read(p.sha256)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert abs(img.shape[0] / img.shape[1] - 126 / 102) < 0.02
        _, _, pw, ph = PORTRAIT_BOX
        assert img.shape[1] <= pw * 1.1  # no wider than the portrait on the card: the text beside it is not in it
        assert "IDCARD_SCAN_CROPPED" in p.check_codes
    refused = [p for p in photos.values() if p.sha256 in scan_digests and p.file_path is None]
    assert len(refused) == 1 and refused[0].check_codes == ["IDCARD_SCAN_NO_PORTRAIT"] and refused[0].byte_size == 0
    stored_files = [f for f in (settings.home).rglob("*") if f.is_file()]
    for f in stored_files:
        assert hashlib.sha256(f.read_bytes()).hexdigest() not in scan_digests, f"a card scan was stored at {f}"


def test_reports_name_the_id_card_photo(cohort, first):
    _, summary, tmp = first
    out = tmp / "out1"
    assert {p.name for p in summary.reports} == {"report.csv", "report.xlsx", "report.html"}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "身份证照片" in page and "ID-card vs admission" in page and "毕业照片" not in page
    wb = load_workbook(out / "report.xlsx", read_only=True)
    assert {"汇总", "需处理"} <= set(wb.sheetnames)
    header = next(wb[wb.sheetnames[0]].iter_rows(max_row=1, values_only=True))
    assert header[:3] == ("考生号", "学号", "姓名")
    for p in summary.reports:
        assert os.stat(p).st_mode & 0o777 == 0o600


def test_a_second_run_does_nothing_and_reports_the_same(cohort, first, tmp_path):
    settings, _, tmp = first
    again = BatchRunner(_options(cohort, tmp_path / "out2"), settings).run()
    assert again.processed == 0 and again.unchanged == len(cohort.expected)
    assert (tmp_path / "out2" / "report.csv").read_bytes() == (tmp / "out1" / "report.csv").read_bytes()


def test_intake_and_graduation_comparisons_do_not_mix(cohort, first, tmp_path):
    """A graduation batch on the same store still finds no graduation photo: intake comparisons are not graduation ones."""
    settings, _, _ = first
    grad_dir = tmp_path / "graduation"
    grad_dir.mkdir()
    summary = BatchRunner(BatchOptions(cohort.roster, cohort.admission_dir, grad_dir, out_dir=tmp_path / "g", workers=1), settings).run()
    rows = _rows(tmp_path / "g" / "report.csv")
    assert {r["decision"] for r in rows.values()} == {"missing_photo"}
    assert {r["reasons"] for r in rows.values()} == {"BATCH_MISSING_GRADUATION"}
    assert summary.processed == 0  # the admission photos were already checked and embedded by the intake run


def test_the_cli_runs_and_resumes(cohort, tmp_path, cache_dir, monkeypatch, capsys):
    monkeypatch.setenv("VERIFIER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("VERIFIER_ID_KEY", "test-key-0123456789abcdef")
    argv = ["intake", "check", "--roster", str(cohort.roster), "--id-card-dir", str(cohort.id_card_dir),
            "--admission-dir", str(cohort.admission_dir), "--out", str(tmp_path / "r"), "--workers", "1"]
    assert main(argv) == 0
    first_out = capsys.readouterr().out
    assert f"{len(cohort.expected)} students, {len(cohort.expected)} processed" in first_out
    assert main(argv) == 0
    assert f"0 processed, {len(cohort.expected)} unchanged" in capsys.readouterr().out


def test_a_pack_without_id_card_thresholds_refuses(cohort, tmp_path, cache_dir):
    settings = Settings(home=tmp_path / "home", cache_dir=cache_dir, id_key="test-key-0123456789abcdef")
    uncalibrated = [p for p in ("buffalo_l", "buffalo_s", "antelopev2") if "id_card" not in load_pack(p).probe_thresholds]
    assert uncalibrated, "every pack has ID-card thresholds: pick another to test the refusal"
    with pytest.raises(VerifierError) as err:
        BatchRunner(_options(cohort, tmp_path / "o", pack_id=uncalibrated[0]), settings)
    assert err.value.reason.code == "MODEL_PACK_NO_THRESHOLDS"
