"""A resolved case's outcome moves its student's registration (学位注册) in the same transaction, audited."""

from __future__ import annotations

import pytest
from storehelp import add_students

from verifier.store import audit, cases
from verifier.store.db import Database
from verifier.store.models import Student


def _resolve(db: Database, student_id: int, outcome: str, case_type: str = "identity_check") -> int:
    with db.write_session() as s:
        case_id = cases.open_case(s, case_type, "student", student_id, student_id, actor="office").case.id
    with db.write_session() as s:
        cases.start_review(s, case_id, "reviewer1")
        cases.resolve(s, case_id, outcome, "reviewer1")
    return case_id


@pytest.mark.parametrize("outcome, registration", [("same_person", "cleared"), ("photo_replaced", "cleared"), ("impersonation", "blocked"), ("dismissed", "pending")])
def test_outcome_sets_registration(db: Database, outcome: str, registration: str) -> None:
    with db.write_session() as s:
        st = add_students(s, 1)[0]
        assert st.registration == "pending"
    case_id = _resolve(db, st.id, outcome)
    with db.session() as s:
        assert s.get(Student, st.id).registration == registration
        events = audit.events_for(s, "student", st.id)
        moves = [e for e in events if e.action == "student.registration"]
        assert len(moves) == (0 if outcome == "dismissed" else 1)
        if moves:
            assert moves[0].actor == "reviewer1" and moves[0].summary["after"] == {"registration": registration}
            assert moves[0].summary["case"] == case_id


@pytest.mark.parametrize("outcome, registration", [("same_person", "pending"), ("photo_replaced", "pending"), ("impersonation", "blocked"), ("dismissed", "pending")])
def test_an_intake_case_only_blocks(db: Database, outcome: str, registration: str) -> None:
    """Confirming a student at intake (ID card vs admission) does not clear the degree; finding an impersonator blocks it."""
    with db.write_session() as s:
        st = add_students(s, 1)[0]
    _resolve(db, st.id, outcome, "intake_mismatch")
    with db.session() as s:
        assert s.get(Student, st.id).registration == registration


def test_new_case_reopens_cleared_but_not_blocked(db: Database) -> None:
    with db.write_session() as s:
        a, b = add_students(s, 2)
    _resolve(db, a.id, "same_person")
    _resolve(db, b.id, "impersonation")
    with db.write_session() as s:
        cases.open_case(s, "comparison_review", "student", a.id, a.id, actor="batch")
        cases.open_case(s, "comparison_review", "student", b.id, b.id, actor="batch")
    with db.session() as s:
        assert s.get(Student, a.id).registration == "pending"  # cleared again only by the new case's outcome
        assert s.get(Student, b.id).registration == "blocked"  # a block is lifted only by an outcome


def test_failed_resolve_leaves_registration(db: Database) -> None:
    with db.write_session() as s:
        st = add_students(s, 1)[0]
        case_id = cases.open_case(s, "identity_check", "student", st.id, st.id).case.id
    with pytest.raises(Exception), db.write_session() as s:
        cases.resolve(s, case_id, "same_person", "r1")  # open → resolved is refused: nothing moves
    with db.session() as s:
        assert s.get(Student, st.id).registration == "pending"


def test_exports_and_report_show_registration(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from verifier.batch.decision import StudentDecision
    from verifier.batch.report import BatchRow, write_reports
    from verifier.store import export

    with db.write_session() as s:
        a, b = add_students(s, 2)
    _resolve(db, a.id, "same_person")
    case_b = _resolve(db, b.id, "impersonation")
    with db.session() as s:
        t = export.table(s, "students")
        col = t.headers.index("学位注册")
        by_ksh = {r[0]: r[col] for r in t.rows}
        assert by_ksh == {a.ksh: "准予注册", b.ksh: "不予注册"}
        t = export.table(s, "cases")
        col = t.headers.index("学位注册")
        assert {r[0]: r[col] for r in t.rows}[case_b] == "不予注册"
    rows = [BatchRow(b.ksh, "", "学生1", "文学院", "", StudentDecision.FAIL, 0.1, registration="blocked")]
    write_reports(rows, tmp_path, lambda sha: None)
    csv_text = (tmp_path / "report.csv").read_text(encoding="utf-8-sig")
    header, line = csv_text.splitlines()[:2]
    assert header.split(",")[-1] == "registration" and line.split(",")[-1] == "blocked"
    assert "学位注册 不予注册" in (tmp_path / "report.html").read_text(encoding="utf-8")
