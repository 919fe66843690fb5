"""A 学院's five lists, on real SQLite and PostgreSQL: each student lands on exactly the lists their records call for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from openpyxl import load_workbook
from storehelp import picture

from verifier.cli import main as cli
from verifier.store import cases, comparisons, lists, photos
from verifier.store.db import Database
from verifier.store.models import CaseMember, Student, utcnow
from verifier.store.photostore import PhotoStore

PACK = "sface-yunet-int8"
COLLEGE, OTHER = "文学院", "理学院"


def _student(s, n: int, college: str = COLLEGE, graduated: bool = True) -> Student:
    st = Student(ksh=f"2111010100{n:04d}", name=f"学生{n}", college=college, id_masked="1101**********123X", intake="2021秋")
    if graduated:
        st.status, st.graduated_on = "graduated", dt.date(2025, 7, 1)
    s.add(st)
    s.flush()
    return st


def _complete(s, store: PhotoStore, st: Student, n: int) -> None:
    """Both photos, passing, and compared: the student is on no photo or comparison list."""
    a = photos.add_photo(s, store, st, "admission", picture(n), check_status="pass")
    g = photos.add_photo(s, store, st, "graduation", picture(100 + n), check_status="pass")
    comparisons.record_comparison(s, a, g, PACK, 0.8, "match")


def _population(db: Database, store: PhotoStore) -> None:
    """Students 0..9 of 文学院 (one per situation) and 20 of 理学院 who is in every situation at once."""
    with db.write_session() as s:
        # 0: all done (compared, no case) — on no list
        _complete(s, store, _student(s, 0), 0)
        # 1: no photos at all (graduate): both missing
        _student(s, 1)
        # 2: enrolled, no admission photo: admission missing; graduation not required
        _student(s, 2, graduated=False)
        # 3: admission photo fails the specification; graduate without graduation photo
        st = _student(s, 3)
        photos.add_photo(s, store, st, "admission", picture(3), check_status="fail", check_codes=["SPEC_TOO_SMALL"])
        # 4: both photos, never compared (the one student of 朝阳学习中心)
        st = _student(s, 4)
        st.centre = "朝阳学习中心"
        photos.add_photo(s, store, st, "admission", picture(4), check_status="pass")
        photos.add_photo(s, store, st, "graduation", picture(104), check_status="pass")
        # 5: compared, then a corrected graduation photo: the current pair is not compared
        st = _student(s, 5)
        a = photos.add_photo(s, store, st, "admission", picture(5), check_status="pass")
        g = photos.add_photo(s, store, st, "graduation", picture(105), check_status="pass")
        comparisons.record_comparison(s, a, g, PACK, 0.2, "mismatch")
        photos.add_photo(s, store, st, "graduation", picture(205), check_status="pass")
        # 6: an open case and an in-review case
        st = _student(s, 6)
        _complete(s, store, st, 6)
        cases.open_case(s, "identity_check", "student", st.id, st.id)
        c = cases.open_case(s, "comparison_review", "comparison", 9_006, st.id).case
        cases.start_review(s, c.id, "reviewer-a")
        # 7: impersonation found; 8: resolved same_person (on no case list)
        for n, outcome in ((7, "impersonation"), (8, "same_person")):
            st = _student(s, n)
            _complete(s, store, st, n)
            c = cases.open_case(s, "identity_check", "student", st.id, st.id).case
            cases.start_review(s, c.id, "reviewer-a")
            cases.resolve(s, c.id, outcome, "reviewer-a")
        # 9: a member of a group case that names no single student; and a withdrawn student on no list
        st9 = _student(s, 9)
        _complete(s, store, st9, 9)
        p9 = photos.current_photo(s, st9.id, "admission")
        group = cases.open_case(s, "duplicate_face", "duplicate", 9_009).case
        s.add(CaseMember(case_id=group.id, student_id=st9.id, photo_id=p9.id))
        # 11 and 12: a group case resolved as impersonation in which the reviewer dismissed 12 (not the same person)
        group = cases.open_case(s, "duplicate_face", "duplicate", 9_011).case
        for n, verdict in ((11, "confirmed"), (12, "dismissed")):
            st = _student(s, n)
            _complete(s, store, st, n)
            s.add(CaseMember(case_id=group.id, student_id=st.id, photo_id=photos.current_photo(s, st.id, "admission").id,
                             outcome=verdict, decided_by="reviewer-a", decided_at=utcnow()))
        s.flush()
        cases.start_review(s, group.id, "reviewer-a")
        cases.resolve(s, group.id, "impersonation", "reviewer-a")
        gone = _student(s, 10, graduated=False)
        gone.status = "withdrawn"
        # 20: another college, in every situation
        st = _student(s, 20, college=OTHER)
        photos.add_photo(s, store, st, "admission", picture(20), check_status="fail", check_codes=["SPEC_TOO_SMALL"])
        c = cases.open_case(s, "identity_check", "student", st.id, st.id).case
        cases.start_review(s, c.id, "reviewer-a")
        cases.resolve(s, c.id, "impersonation", "reviewer-a")
        cases.open_case(s, "identity_check", "photo", 9_020, st.id)


def _ksh(item: lists.NamedList) -> list[str]:
    return [row[0] for row in item.rows]


def test_each_student_is_on_the_lists_their_records_call_for(db: Database, store: PhotoStore) -> None:
    _population(db, store)
    with db.session() as s:
        found = {item.kind: item for item in lists.college_lists(s, COLLEGE)}
        assert list(found) == list(lists.LIST_KINDS)
        k = lambda n: f"2111010100{n:04d}"  # noqa: E731
        assert _ksh(found["missing_photo"]) == [k(1), k(2), k(3)]
        assert [row[-1] for row in found["missing_photo"].rows] == ["录取照片、毕业照片", "录取照片", "毕业照片"]
        assert _ksh(found["spec_failed"]) == [k(3)]
        assert found["spec_failed"].rows[0][7:11] == ["录取照片", "不合格", "SPEC_TOO_SMALL", lists._zh("SPEC_TOO_SMALL")]
        assert _ksh(found["in_review"]) == [k(6), k(6), k(9)]
        assert [row[9] for row in found["in_review"].rows] == ["待处理", "复核中", "待处理"]
        assert _ksh(found["impersonation"]) == [k(7), k(11)]
        assert _ksh(found["not_compared"]) == [k(4), k(5)]
        # the ID number only masked
        assert all(row[3] == "1101**********123X" for item in found.values() for row in item.rows)
        other = {item.kind: _ksh(item) for item in lists.college_lists(s, OTHER)}
        assert other == {"missing_photo": [k(20)], "spec_failed": [k(20)], "in_review": [k(20)], "impersonation": [k(20)], "not_compared": []}
        # under a pack no pair was compared with, every graduate with both photos is "not compared"
        assert _ksh(lists.not_compared(s, COLLEGE, "another-pack")) == [k(n) for n in (0, 4, 5, 6, 7, 8, 9, 11, 12)]
        assert lists.has_college(s, COLLEGE) and not lists.has_college(s, "无此学院")
        # a 学习中心-scoped reader sees only that centre's students of the college
        centre = {item.kind: _ksh(item) for item in lists.college_lists(s, COLLEGE, PACK, centres={"朝阳学习中心"})}
        assert centre == {"missing_photo": [], "spec_failed": [], "in_review": [], "impersonation": [], "not_compared": [k(4)]}
        assert lists.has_college(s, COLLEGE, {"朝阳学习中心"}) and not lists.has_college(s, OTHER, {"朝阳学习中心"})


def test_cli_writes_a_sheet_per_list_with_chinese_headers(db: Database, db_url: str, store: PhotoStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _population(db, store)
    out = tmp_path / "lists.xlsx"
    assert cli.main(["lists", "--college", COLLEGE, "--db", db_url, "--out", str(out)]) == 1
    assert out.stat().st_mode & 0o777 == 0o600
    wb = load_workbook(out, read_only=True)
    assert wb.sheetnames == [lists.TITLES_ZH[k] for k in lists.LIST_KINDS]
    rows = {name: list(wb[name].iter_rows(values_only=True)) for name in wb.sheetnames}
    assert rows["缺少照片"][0][:4] == ("考生号", "学号", "姓名", "身份证号（脱敏）")
    assert [r[0] for r in rows["身份复核未通过"][1:]] == ["21110101000007", "21110101000011"]
    assert len(rows["尚未比对"]) == 3
    assert "尚未比对 not_compared: 2" in capsys.readouterr().out

    assert cli.main(["lists", "--college", "无此学院", "--db", db_url]) != 0
    assert "STORE_COLLEGE_UNKNOWN" in capsys.readouterr().err


def test_cli_xlsx_to_standard_output_keeps_messages_off_it(db: Database, db_url: str, store: PhotoStore, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    _population(db, store)
    assert cli.main(["lists", "--college", COLLEGE, "--db", db_url, "--out", "-"]) == 1
    out, err = capfdbinary.readouterr()
    assert out.startswith(b"PK") and "尚未比对 not_compared: 2".encode() in err
