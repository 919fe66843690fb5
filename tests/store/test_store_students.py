"""Roster import: idempotent upsert by 考生号 from a GBK CSV, rejected rows with reasons, no 身份证号 in clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from storehelp import ID_KEY, FakeRoster

from verifier.cli import main as cli
from verifier.photos.roster import Student as RosterStudent
from verifier.photos.roster import load_roster
from verifier.store import audit, schema
from verifier.store.db import Database
from verifier.store.models import Student
from verifier.store.students import import_roster, mark_graduated

ID_A = "11010519491231002X"
ID_B = "440524188001010014"
ID_C = "110101199003070011"

HEADER = "考生号,学号,姓名,身份证号,学院,学习中心,入学批次\n"


def write_gbk(path: Path, rows: list[str]) -> Path:
    path.write_bytes((HEADER + "\n".join(rows) + "\n").encode("gbk"))
    return path


def _roster_v1(tmp_path: Path) -> Path:
    return write_gbk(
        tmp_path / "名单.csv",
        [
            f"21110101000001,2021001,张三,{ID_A},文学院,北京学习中心,2021秋",
            f"21110101000002,2021002,李四,{ID_B},理学院,上海学习中心,2021秋",
            "21110101000003,2021003,王五,,理学院,上海学习中心,2021秋",
            "123,2021004,赵六,,理学院,上海学习中心,2021秋",  # bad 考生号
            "21110101000005,2021005,,,理学院,上海学习中心,2021秋",  # no name
        ],
    )


def test_gbk_roster_import_is_idempotent(db: Database, tmp_path: Path) -> None:
    path = _roster_v1(tmp_path)
    roster = load_roster(path)
    assert roster.encoding == "gb18030"
    r1 = db.transaction(lambda s: import_roster(s, roster, ID_KEY, "admissions"))
    assert r1.counts() == {"inserted": 3, "updated": 0, "unchanged": 0, "rejected": 2}
    assert {r.code for r in r1.rejected} == {"ROSTER_KSH_INVALID", "ROSTER_ROW_MISSING_NAME"}
    r2 = db.transaction(lambda s: import_roster(s, load_roster(path), ID_KEY, "admissions"))
    assert r2.counts() == {"inserted": 0, "updated": 0, "unchanged": 3, "rejected": 2}

    v2 = write_gbk(
        tmp_path / "名单2.csv",
        [
            f"21110101000001,2021001,张三,{ID_A},文学院,北京学习中心,2021秋",
            f"21110101000002,2021002,李四,{ID_C},理学院,上海学习中心,2021秋",  # ID changed: refused
            f"21110101000003,2021003,王五,{ID_C},数学学院,,2021秋",  # college changed, ID added, centre blank kept
            "21110101000006,2021006,孙七,,理学院,上海学习中心,2022春",
        ],
    )
    r3 = db.transaction(lambda s: import_roster(s, load_roster(v2), ID_KEY, "admissions"))
    assert r3.counts() == {"inserted": 1, "updated": 1, "unchanged": 1, "rejected": 1}
    assert r3.rejected[0].code == "STORE_IMPORT_ID_CHANGED" and r3.rejected[0].ksh == "21110101000002"
    with db.session() as s:
        wang = s.scalar(select(Student).where(Student.ksh == "21110101000003"))
        assert (wang.college, wang.centre, wang.id_masked) == ("数学学院", "上海学习中心", "1101**********0011")
        li = s.scalar(select(Student).where(Student.ksh == "21110101000002"))
        assert li.id_masked == "4405**********0014"
        ev = audit.events_for(s, "student", wang.id)[-1]
        assert ev.action == "student.update" and ev.summary["before"]["college"] == "理学院"
        assert "id_hash" not in json.dumps(ev.summary)


def test_no_id_number_in_clear_anywhere(db: Database, tmp_path: Path) -> None:
    roster = load_roster(_roster_v1(tmp_path))
    db.transaction(lambda s: import_roster(s, roster, ID_KEY))
    roster2 = FakeRoster({"21110101000002": RosterStudent("21110101000002", "李四", id_number=ID_C)})
    db.transaction(lambda s: import_roster(s, roster2, ID_KEY))  # refused change: masked forms only in the report
    dump: list[str] = []
    with db.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                dump.append(repr(tuple(row)))
    blob = "\n".join(dump)
    for number in (ID_A, ID_B, ID_C):
        assert number not in blob and number[:-1] not in blob and number.lower() not in blob
    assert "1101**********002X" in blob
    if db.dialect == "sqlite":
        db.dispose()
        raw = b"".join(p.read_bytes() for p in Path(db.engine.url.database).parent.glob("verifier.db*"))
        assert not any(n.encode() in raw for n in (ID_A, ID_B, ID_C))


def test_import_with_roster_like_objects(db: Database) -> None:
    rows = {k: RosterStudent(k, f"学生{k[-2:]}", college="文学院") for k in ("21110101000010", "21110101000011")}
    assert db.transaction(lambda s: import_roster(s, FakeRoster(rows), ID_KEY)).counts()["inserted"] == 2
    assert db.transaction(lambda s: import_roster(s, FakeRoster(rows), ID_KEY)).counts()["unchanged"] == 2


def test_mark_graduated(db: Database) -> None:
    import datetime as dt

    rows = {"21110101000010": RosterStudent("21110101000010", "甲")}
    db.transaction(lambda s: import_roster(s, FakeRoster(rows), ID_KEY))
    marked, unknown = db.transaction(lambda s: mark_graduated(s, ["21110101000010", "21110101009999"], dt.date(2024, 7, 1)))
    assert marked == ["21110101000010"] and unknown == ["21110101009999"]
    with db.session() as s:
        st = s.scalar(select(Student))
        assert st.status == "graduated" and st.graduated_on == dt.date(2024, 7, 1)


def test_cli_roster_import(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "cli-home"
    monkeypatch.setenv("VERIFIER_HOME", str(home))
    monkeypatch.delenv("VERIFIER_ID_KEY", raising=False)
    schema.upgrade(db_url)
    path = _roster_v1(tmp_path)
    assert cli.main(["roster", "import", str(path), "--db", db_url, "--json"]) == 1  # rows were rejected
    out = json.loads(capsys.readouterr().out)
    assert out["counts"] == {"inserted": 3, "updated": 0, "unchanged": 0, "rejected": 2}
    assert ((home / "id.key").stat().st_mode & 0o777) == 0o600
    assert cli.main(["roster", "import", str(path), "--db", db_url]) == 1
    assert "未变 unchanged: 3" in capsys.readouterr().out
