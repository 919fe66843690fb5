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
