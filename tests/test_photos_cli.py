"""`verifier photos check` end to end: output modes, exit codes, reports."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from verifier.cli.main import main

KSH = "20210101000001"


@pytest.fixture()
def photo_dir(tmp_path, id_photos) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    paths = list(id_photos.values())
    shutil.copy(paths[0], folder / f"{KSH}.jpg")
    shutil.copy(paths[1], folder / "sub" / "20210101000002.jpg")
    return folder


def test_all_pass_exits_0_with_json_lines(photo_dir, capsys):
    assert main(["photos", "check", str(photo_dir), "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 2
    assert {r["ksh"] for r in rows} == {KSH, "20210101000002"}
    assert all(r["status"] in ("pass", "warn") and r["profile"] == "admission" for r in rows)


def test_a_failure_exits_1(photo_dir, capsys):
    (photo_dir / "notes.txt").write_text("hello", encoding="utf-8")
    assert main(["photos", "check", str(photo_dir), "--spec-only"]) == 1
    out = capsys.readouterr().out
    assert "IMAGE_NOT_IMAGE" in out and "不通过" in out


def test_usage_errors_exit_2(photo_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["photos", "check"])
    assert exc.value.code == 2
    assert main(["photos", "check", str(photo_dir), "--profile", "passport"]) == 2
    assert "PROFILE_INVALID" in capsys.readouterr().err


def test_reports_are_written(photo_dir, tmp_path, capsys):
    from openpyxl import load_workbook

    (photo_dir / "zhangsan.jpg").write_bytes((photo_dir / f"{KSH}.jpg").read_bytes())
    out = tmp_path / "out"
    assert main(["photos", "check", str(photo_dir), "--out", str(out), "--quiet"]) == 1
    raw = (out / "report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][:8] == ["文件", "考生号", "规格", "结论", "原因代码", "原因", "测量值", "限值"]
    assert len(rows) == 4
    bad = [r for r in rows[1:] if r[0].endswith("zhangsan.jpg")][0]
    assert bad[3] == "不通过" and "SPEC_NAME_PATTERN" in bad[4] and "zhangsan" in bad[6]
    sheet = load_workbook(out / "report.xlsx").active
    values = list(sheet.values)
    assert list(values[0][:4]) == ["文件", "考生号", "规格", "结论"] and len(values) == 4
    jsonl = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(jsonl) == 3 and sum(r["status"] == "fail" for r in jsonl) == 1
    printed = capsys.readouterr().out
    assert "zhangsan.jpg" in printed and KSH not in printed


def test_graduation_profile_and_workers(photo_dir, capsys):
    assert main(["photos", "check", str(photo_dir), "--profile", "graduation", "--json", "--workers", "2"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2
    for r in rows:
        codes = {x["code"] for x in r["reasons"]}
        assert {"SPEC_WIDTH", "SPEC_HEIGHT"} <= codes
        assert "face_count" in r["metrics"]


def test_roster_membership(photo_dir, tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text(f"考生号,姓名\n{KSH},张三\n", encoding="utf-8")
    assert main(["photos", "check", str(photo_dir), "--roster", str(roster), "--spec-only", "--json"]) == 1
    rows = {r["ksh"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows[KSH]["status"] in ("pass", "warn")
    assert [x["code"] for x in rows["20210101000002"]["reasons"]] == ["SPEC_KSH_NOT_ON_ROSTER"]
