"""Retention purge (dry run lists, real run deletes files and embeddings, audit left) and CSV/XLSX exports."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from storehelp import add_students, picture

from verifier.cli import main as cli
from verifier.common.reasons import VerifierError
from verifier.store import cases, comparisons, embeddings, photos, schema
from verifier.store.db import Database
from verifier.store.models import AuditEvent, Embedding, Photo
from verifier.store.photostore import PhotoStore
from verifier.store.purge import run_purge

PACK = "sface-yunet-int8"


def _population(db: Database, store: PhotoStore) -> dict[str, int]:
    """Student 0 graduated 2020 (2019秋), 1 graduated 2024 (2019秋), 2 enrolled (2023秋) sharing a picture with 0."""
    with db.write_session() as s:
        st = add_students(s, 3)
        st[0].status, st[0].graduated_on, st[0].intake = "graduated", dt.date(2020, 7, 1), "2019秋"
        st[1].status, st[1].graduated_on, st[1].intake = "graduated", dt.date(2024, 7, 1), "2019秋"
        st[2].intake = "2023秋"
        p0a = photos.add_photo(s, store, st[0], "admission", picture(1))
        photos.add_photo(s, store, st[0], "admission", picture(2))  # a correction: both versions go
        p0g = photos.add_photo(s, store, st[0], "graduation", picture(3))
        photos.add_photo(s, store, st[1], "admission", picture(4))
        p2 = photos.add_photo(s, store, st[2], "admission", picture(3))  # same bytes as student 0's graduation photo
        for p in s.scalars(select(Photo)):
            embeddings.put(s, p.id, PACK, np.ones(8, np.float32) * p.id)
        comparisons.record_comparison(s, photos.current_photo(s, st[0].id, "admission"), p0g, PACK, 0.8, "match")
        return {"s0": st[0].id, "p0a": p0a.id, "p2": p2.id}


def test_purge_dry_run_then_real(db: Database, store: PhotoStore) -> None:
    ids = _population(db, store)
    files_before = sorted(p for p in store.root.rglob("*") if p.is_file())
    assert len(files_before) == 4

    dry = run_purge(db, store, graduated_before=dt.date(2023, 1, 1), dry_run=True, actor="records-office")
    assert [i.ksh for i in dry.items] == ["21110101000000"]
    assert (dry.photos, dry.embeddings) == (3, 3)
    assert sorted(p for p in store.root.rglob("*") if p.is_file()) == files_before
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Embedding)) == 5

    real = run_purge(db, store, graduated_before=dt.date(2023, 1, 1), dry_run=False, actor="records-office")
    assert (real.photos, real.embeddings, real.files_deleted, real.files_kept_shared) == (3, 3, 2, 1)
    assert not store.exists(photos.sha256_hex(picture(1))) and not store.exists(photos.sha256_hex(picture(2)))
    assert store.exists(photos.sha256_hex(picture(3)))  # still used by student 2
    with db.session() as s:
        gone = list(s.scalars(select(Photo).where(Photo.student_id == ids["s0"])))
        assert len(gone) == 3 and all(p.file_path is None and p.purged_at is not None and p.sha256 for p in gone)
        assert s.scalar(select(func.count()).select_from(Embedding)) == 2
        assert embeddings.get_or_none(s, ids["p0a"], PACK) is None and embeddings.get_or_none(s, ids["p2"], PACK) is not None
        with pytest.raises(VerifierError) as exc:
            photos.read_photo(store, gone[0])
        assert exc.value.reason.code == "STORE_PHOTO_PURGED"
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action.in_(["purge", "purge.files"]))))
        assert [e.actor for e in events] == ["records-office", "records-office"]
        assert events[0].summary["after"]["photos"] == 3 and events[1].summary["after"]["files_deleted"] == 2
        assert events[0].summary["criteria"]["graduated_before"] == "2023-01-01"
    again = run_purge(db, store, graduated_before=dt.date(2023, 1, 1), dry_run=False)
    assert again.items == []


def test_purge_by_intake_cli(db_url: str, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VERIFIER_HOME", str(home))
    schema.upgrade(db_url)
    from verifier.store.connect import open_database

    db = open_database(db_url)
    _population(db, PhotoStore.for_home(home))
    db.dispose()
    assert cli.main(["purge", "--intake", "2019秋", "--dry-run", "--json", "--db", db_url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] and [i["ksh"] for i in out["items"]] == ["21110101000000", "21110101000001"]
    assert cli.main(["purge", "--intake", "2019秋", "--db", db_url]) == 0
    assert "photos=4" in capsys.readouterr().out
    assert cli.main(["purge", "--db", db_url]) == 2
    assert "STORE_PURGE_NO_CRITERIA" in capsys.readouterr().err
    assert cli.main(["purge", "--graduated-before", "2023-13-01", "--db", db_url]) == 2


def test_exports(db: Database, store: PhotoStore, tmp_path: Path) -> None:
    from verifier.store import export

    with db.write_session() as s:
        a, b = add_students(s, 2)
        a.name, a.id_masked, b.college = "=HYPERLINK(\"x\")", "1101**********002X", "理学院"
        adm = photos.add_photo(s, store, a, "admission", picture(1), check_status="pass")
        grad = photos.add_photo(s, store, a, "graduation", picture(2))
        cmp = comparisons.record_comparison(s, adm, grad, PACK, 0.12345, "mismatch", ["FACE_NOT_FOUND"]).comparison
        c1 = cases.open_case(s, "comparison_failed", "comparison", cmp.id, a.id).case
        cases.open_case(s, "identity_check", "student", b.id, b.id)
        cases.start_review(s, c1.id, "r1", note="pasted from a form\x01\x0b with control characters")

    with db.session() as s:
        out = tmp_path / "students.csv"
        assert export.export(s, "students", "csv", out) == 2
        raw = out.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
        assert rows[0][:3] == ["考生号", "学号", "姓名"]
        assert rows[1][2].startswith("'=")  # formula neutralised
        assert rows[1][3] == "1101**********002X" and rows[1][9] == "合格"
        assert (out.stat().st_mode & 0o777) == 0o600
        assert export.export(s, "students", "csv", out, college="理学院") == 1

        x = tmp_path / "cases.xlsx"
        assert export.export(s, "cases", "xlsx", x, state="in_review") == 1
        ws = load_workbook(x).active
        values = list(ws.iter_rows(values_only=True))
        assert values[0][:4] == ("案件编号", "类型", "状态", "结论") and values[1][1:3] == ("比对未通过", "复核中")
        assert export.export(s, "cases", "xlsx", x) == 2

        y = tmp_path / "cmp.xlsx"
        assert export.export(s, "comparisons", "xlsx", y, state="mismatch", college="文学院") == 1
        row = list(load_workbook(y).active.iter_rows(values_only=True))[1]
        assert row[8] == 0.1235 and row[9] == "不一致" and row[10] == "FACE_NOT_FOUND"


def test_cli_export(db_url: str, tmp_path: Path) -> None:
    schema.upgrade(db_url)
    out = tmp_path / "c.csv"
    assert cli.main(["export", "comparisons", "--format", "csv", "--out", str(out), "--db", db_url]) == 0
    assert out.read_text(encoding="utf-8-sig").startswith("考生号,")
