"""Roster/photo reconciliation on real face photos: missing, extra, several files, same picture under two 考生号."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from openpyxl import load_workbook

from verifier.cli.main import main
from verifier.common.faceset import identity_of
from verifier.photos.reconcile import CATEGORIES, HEADERS, iter_photo_files, near_pairs, reconcile, write_reconciliation
from verifier.photos.roster import load_roster


def ksh(n: int) -> str:
    return f"2021010100{n:04d}"


def small_jpeg(src: Path, dst: Path, width: int = 300, quality: int = 85) -> Path:
    """A small JPEG of a face-set photo (made in a temp dir; the face set is never copied into the repo)."""
    image = cv2.imread(str(src), cv2.IMREAD_COLOR)
    assert image is not None
    height = round(image.shape[0] * width / image.shape[1])
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(buf.tobytes())
    return dst


@pytest.fixture()
def people(single_faces: list[Path]) -> list[Path]:
    """One full-size photo per identity (distinct people), JPEG sources only."""
    firsts: dict[str, Path] = {}
    for p in single_faces:
        if p.suffix.lower() == ".jpg" and "_" in p.stem and p.stem.split("_")[-1].isdigit():
            firsts.setdefault(identity_of(p), p)
    chosen = list(firsts.values())
    if len(chosen) < 7:
        pytest.skip("face set has fewer than 7 identities")
    return chosen


@pytest.fixture()
def scene(people: list[Path], tmp_path: Path) -> dict:
    """Two photo folders and a roster with one case of each finding."""
    a, b = tmp_path / "photos" / "中心A", tmp_path / "photos" / "centre_b"
    small_jpeg(people[0], a / f"{ksh(1)}.jpg")  # fine
    # ksh(2): on the roster, no photo
    small_jpeg(people[1], a / f"{ksh(3)}.jpg")  # two files for one student: other folder, other case
    small_jpeg(people[1], b / f"{ksh(3)}.JPG", quality=75)
    same = small_jpeg(people[2], a / f"{ksh(4)}.jpg")  # the same bytes under ksh(4) and ksh(5)
    (b / f"{ksh(5)}.jpg").write_bytes(same.read_bytes())
    small_jpeg(people[3], a / f"{ksh(6)}.jpg", width=320, quality=92)  # same picture, re-encoded smaller
    small_jpeg(people[3], b / f"{ksh(7)}.jpeg", width=200, quality=45)
    small_jpeg(people[4], a / f"{ksh(8)}.jpg")  # different people: never flagged
    small_jpeg(people[5], b / f"{ksh(9)}.jpg")
    small_jpeg(people[6], b / f"{ksh(99)}.jpg")  # photo with no student
    (a / f"{ksh(10)}.jpg").write_bytes(b"GIF89a" + b"\x00" * 64)  # not a JPEG
    (b / "说明.jpg").write_bytes(b"")  # not a 考生号, and empty
    (b / "notes.txt").write_text("not a photo")
    roster = tmp_path / "roster.csv"
    rows = ["考生号,姓名,学院,学习中心"] + [f"{ksh(n)},学生{n},计算机学院,北京学习中心" for n in range(1, 11)]
    roster.write_bytes("\r\n".join(rows).encode("gbk"))
    return {"roster": roster, "dirs": [a, b], "tmp": tmp_path}


def test_reconcile_finds_each_case(scene: dict) -> None:
    roster = load_roster(scene["roster"])
    rec = reconcile(roster, iter_photo_files(scene["dirs"]))
    assert rec.photos_seen == 12  # notes.txt is not a photo name

    assert [s.ksh for s in rec.missing_photo] == [ksh(2)]
    assert {(p.ksh, p.path.name) for p in rec.not_on_roster} == {(None, "说明.jpg"), (ksh(99), f"{ksh(99)}.jpg")}
    assert set(rec.multiple_files) == {ksh(3)}
    assert sorted(p.path.name for p in rec.multiple_files[ksh(3)]) == [f"{ksh(3)}.JPG", f"{ksh(3)}.jpg"]

    groups = {g.kshs: g for g in rec.same_picture}
    assert set(groups) == {(ksh(4), ksh(5)), (ksh(6), ksh(7))}
    assert groups[(ksh(4), ksh(5))].kind == "same_bytes"
    near = groups[(ksh(6), ksh(7))]
    assert near.kind == "same_picture" and 0 <= near.max_distance <= rec.fine_max_distance

    assert {(p.path.name, p.problem.code) for p in rec.unreadable if p.problem} == {
        (f"{ksh(10)}.jpg", "IMAGE_FORMAT_UNSUPPORTED"),
        ("说明.jpg", "FILE_EMPTY"),
    }
    counts = rec.counts()
    assert counts["students_with_photo"] == 9 and counts["same_bytes"] == 1 and counts["same_picture"] == 1

    flagged = {r.ksh for r in rec.rows() if r.category in ("same_bytes", "same_picture")}
    assert flagged == {ksh(4), ksh(5), ksh(6), ksh(7)}  # ksh(1), (3), (8), (9), (99): different people


def test_report_rows_name_the_student(scene: dict) -> None:
    rec = reconcile(load_roster(scene["roster"]), iter_photo_files(scene["dirs"]), workers=1)
    rows = rec.rows()
    missing = [r for r in rows if r.category == "missing_photo"]
    assert [(r.ksh, r.name, r.college, r.centre, r.code) for r in missing] == [(ksh(2), "学生2", "计算机学院", "北京学习中心", "RECON_NO_PHOTO")]
    same = [r for r in rows if r.category == "same_bytes"]
    assert {r.group for r in same} == {1} and all(ksh(5) in r.note or r.ksh == ksh(5) for r in same)
    assert all(r.code for r in rows)


def test_write_reconciliation(scene: dict) -> None:
    roster_file = scene["roster"]
    roster_file.write_bytes(roster_file.read_bytes() + "\r\n=HYPERLINK(1),坏行,计算机学院,北京学习中心\r\n".encode("gbk"))
    rec = reconcile(load_roster(roster_file), iter_photo_files(scene["dirs"]))
    out = scene["tmp"] / "out"
    paths = write_reconciliation(rec, out)

    raw = paths["csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert tuple(table[0]) == HEADERS and tuple(table[0][:7]) == ("类别", "考生号", "姓名", "学院", "学习中心", "文件", "说明")
    assert len(table) - 1 == len(rec.rows())
    bad_line = [r for r in table if r[7] == "ROSTER_KSH_INVALID"]
    assert bad_line and bad_line[0][1] == "'=HYPERLINK(1)" and bad_line[0][5].endswith(":12")

    wb = load_workbook(paths["xlsx"])
    assert wb.sheetnames == ["汇总"] + [title for title, _ in CATEGORIES.values()]
    missing = list(wb["缺少照片"].iter_rows(values_only=True))
    assert missing[0][:7] == ("类别", "考生号", "姓名", "学院", "学习中心", "文件", "说明")
    assert missing[1][1:5] == (ksh(2), "学生2", "计算机学院", "北京学习中心")
    roster_rows = list(wb["名单问题行"].iter_rows(values_only=False))
    cell = roster_rows[1][1]
    assert cell.value == "=HYPERLINK(1)" and cell.data_type == "s"  # text, never a formula
    summary = dict(wb["汇总"].iter_rows(values_only=True))
    assert summary["缺少照片"] == 1 and summary["名单人数"] == 10


def test_cli_reconcile(scene: dict, capsys: pytest.CaptureFixture[str]) -> None:
    out = scene["tmp"] / "cli-out"
    argv = ["roster", "reconcile", "--roster", str(scene["roster"]), *map(str, scene["dirs"]), "--out", str(out), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["missing_photo"] == 1 and doc["counts"]["same_picture"] == 1
    assert (out / "reconciliation.xlsx").exists() and (out / "reconciliation.csv").exists()
    assert main(["roster", "reconcile", "--roster", str(scene["roster"]), *map(str, scene["dirs"])]) == 0
    text = capsys.readouterr().out
    assert "缺少照片" in text and "学生" not in text  # counts only, no names

    bad = scene["tmp"] / "bad.csv"
    bad.write_text("学院\n计算机学院\n", encoding="utf-8")
    assert main(["roster", "reconcile", "--roster", str(bad), str(scene["dirs"][0])]) == 2
    assert "ROSTER_MISSING_COLUMN" in capsys.readouterr().err
    assert main(["roster", "reconcile", "--roster", str(scene["tmp"] / "none.xlsx"), str(scene["dirs"][0])]) == 2


def test_near_pairs_matches_brute_force() -> None:
    rng = random.Random(7)
    hashes = [rng.getrandbits(64) for _ in range(3000)]
    for _ in range(200):  # plant near copies at distance 0..8
        base = rng.choice(hashes)
        for bit in rng.sample(range(64), rng.randint(0, 8)):
            base ^= 1 << bit
        hashes.append(base)
    for limit in (0, 3, 6):
        got = {(i, j): d for i, j, d in near_pairs(hashes, limit)}
        arr = np.array(hashes, dtype=np.uint64)
        want = {}
        for i in range(len(hashes)):
            dist = np.unpackbits((arr[i + 1 :] ^ arr[i]).view(np.uint8)).reshape(-1, 64).sum(axis=1)
            for j in np.flatnonzero(dist <= limit):
                want[(i, i + 1 + int(j))] = int(dist[j])
        assert got == want


def test_thousands_of_photos_stream_without_false_matches(tmp_path: Path) -> None:
    """1,500 distinct synthetic pictures: every one fingerprinted, none flagged as the same picture."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "many"
    folder.mkdir()
    n = 1500
    for i in range(n):
        img = cv2.resize(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8), (60, 80), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"{ksh(i)}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    roster = tmp_path / "r.csv"
    roster.write_text("ksh,name\n" + "".join(f"{ksh(i)},S{i}\n" for i in range(n)), encoding="utf-8")
    ticks = []
    rec = reconcile(load_roster(roster), iter_photo_files([folder]), progress=lambda: ticks.append(1))
    assert len(ticks) == n and rec.photos_seen == n
    assert rec.missing_photo == [] and rec.unreadable == [] and rec.not_on_roster == []
    assert rec.same_picture == []


def test_custom_ksh_of(scene: dict) -> None:
    roster = load_roster(scene["roster"])
    rec = reconcile(roster, iter_photo_files(scene["dirs"]), ksh_of=lambda p: None)
    assert len(rec.missing_photo) == 10 and rec.same_picture == [] and rec.multiple_files == {}
