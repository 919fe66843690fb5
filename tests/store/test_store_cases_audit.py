"""Review-case transitions (valid and refused), one open case per subject, and the append-only audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from storehelp import add_students

from verifier.common.reasons import VerifierError
from verifier.store import audit, cases
from verifier.store.db import Database
from verifier.store.models import AuditEvent, ReviewCase


def test_case_lifecycle(db: Database) -> None:
    with db.write_session() as s:
        st = add_students(s, 1)[0]
        opened = cases.open_case(s, "identity_check", "student", st.id, st.id, actor="admissions", note="平台身份核验未通过")
        assert opened.created and opened.case.state == "open"
        assert not cases.open_case(s, "identity_check", "student", st.id, st.id).created  # no duplicate open case
        case_id = opened.case.id
    with db.write_session() as s:
        c = cases.start_review(s, case_id, assignee="reviewer1")
        assert c.state == "in_review" and c.review_started_at is not None
        c = cases.release(s, case_id, actor="reviewer1", note="换人处理")
        assert c.state == "open" and c.assignee is None
        cases.start_review(s, case_id, assignee="reviewer2")
        cases.add_note(s, case_id, "reviewer2", "与身份证照片比对一致")
        c = cases.resolve(s, case_id, "same_person", actor="reviewer2")
        assert c.state == "resolved" and c.outcome == "same_person" and c.resolved_by == "reviewer2" and c.resolved_at
        texts = [(n.author, n.text) for n in c.notes]
        assert ("reviewer2", "与身份证照片比对一致") in texts and any("平台身份核验未通过" in t for _a, t in texts)
    with db.session() as s:
        actions = [e.action for e in audit.events_for(s, "case", case_id)]
        assert actions == ["case.open", "case.start_review", "case.release", "case.start_review", "case.note", "case.resolve"]
        assert audit.events_for(s, "case", case_id)[-1].actor == "reviewer2"
    with db.write_session() as s:  # resolved: a new case may be opened for the same subject
        assert cases.open_case(s, "identity_check", "student", st.id, st.id).created


@pytest.mark.parametrize(
    "steps, bad",
    [
        ([], ("resolve", "same_person")),  # open → resolved skips review
        ([], ("release", None)),  # open → open
        ([("start", None)], ("start", None)),  # in_review → in_review
        ([("start", None), ("resolve", "dismissed")], ("start", None)),  # resolved is final
        ([("start", None), ("resolve", "dismissed")], ("resolve", "impersonation")),
        ([("start", None), ("resolve", "dismissed")], ("note", None)),
    ],
)
def test_invalid_transitions_refused(db: Database, steps: list, bad: tuple) -> None:
    def do(s, case_id: int, step: tuple) -> None:  # type: ignore[no-untyped-def]
        verb, arg = step
        if verb == "start":
            cases.start_review(s, case_id, "r1")
        elif verb == "resolve":
            cases.resolve(s, case_id, arg, "r1")
        elif verb == "release":
            cases.release(s, case_id, "r1")
        else:
            cases.add_note(s, case_id, "r1", "late note")

    with db.write_session() as s:
        st = add_students(s, 1)[0]
        case_id = cases.open_case(s, "comparison_failed", "comparison", 17, st.id).case.id
        for step in steps:
            do(s, case_id, step)
        state_before = s.get(ReviewCase, case_id).state
        with pytest.raises(VerifierError) as exc:
            do(s, case_id, bad)
        assert exc.value.reason.code == "STORE_CASE_TRANSITION_INVALID"
        assert s.get(ReviewCase, case_id).state == state_before


def test_bad_outcome_type_and_unknown_case(db: Database) -> None:
    with db.write_session() as s:
        st = add_students(s, 1)[0]
        cid = cases.open_case(s, "duplicate_face", "duplicate", 3, st.id).case.id
        cases.start_review(s, cid, "r1")
        with pytest.raises(VerifierError) as exc:
            cases.resolve(s, cid, "probably_fine", "r1")
        assert exc.value.reason.code == "STORE_CASE_OUTCOME_INVALID"
        with pytest.raises(VerifierError) as exc:
            cases.open_case(s, "gut_feeling", "student", st.id)
        assert exc.value.reason.code == "STORE_CASE_TYPE_INVALID"
        with pytest.raises(VerifierError) as exc:
            cases.start_review(s, 999_999, "r1")
        assert exc.value.reason.code == "STORE_CASE_UNKNOWN"


def test_one_open_case_enforced_by_database(db: Database) -> None:
    with db.write_session() as s:
        cases.open_case(s, "photo_correction", "photo", 5)
    with pytest.raises(IntegrityError), db.write_session() as s:
        s.add(ReviewCase(case_type="photo_correction", subject_type="photo", subject_id=5, state="open", opened_by="x"))
        s.flush()


def _one_event(db: Database) -> int:
    with db.write_session() as s:
        return audit.record(s, "tester", "test.event", "thing", 1, before={"a": 1}, after={"a": 2}).id


def test_audit_rejects_sql_update_and_delete(db: Database) -> None:
    eid = _one_event(db)
    for sql in (
        f"UPDATE audit_events SET actor = 'mallory' WHERE id = {eid}",
        f"DELETE FROM audit_events WHERE id = {eid}",
        "DELETE FROM audit_events",
    ):
        with pytest.raises(DBAPIError) as exc, db.engine.begin() as conn:
            conn.execute(text(sql))
        assert "append-only" in str(exc.value)
    if db.dialect == "postgresql":
        with pytest.raises(DBAPIError), db.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_events"))
    with db.session() as s:
        ev = s.get(AuditEvent, eid)
        assert ev is not None and ev.actor == "tester"


def test_audit_rejects_orm_update_and_delete(db: Database) -> None:
    eid = _one_event(db)
    with pytest.raises(VerifierError) as exc, db.write_session() as s:
        s.get(AuditEvent, eid).actor = "mallory"
        s.flush()
    assert exc.value.reason.code == "STORE_AUDIT_IMMUTABLE"
    with pytest.raises(VerifierError), db.write_session() as s:
        s.delete(s.get(AuditEvent, eid))
        s.flush()
    with pytest.raises(VerifierError), db.write_session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == eid).values(actor="mallory"))
    with pytest.raises(VerifierError), db.write_session() as s:
        s.execute(delete(AuditEvent))
    with db.session() as s:  # below the ORM guard, the database trigger still refuses
        with pytest.raises(DBAPIError):
            s.connection().execute(update(AuditEvent.__table__).values(actor="mallory"))
        s.rollback()
        assert s.scalar(select(AuditEvent.actor).where(AuditEvent.id == eid)) == "tester"
