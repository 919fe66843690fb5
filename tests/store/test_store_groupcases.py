"""Group cases on both databases: members and pairs stored, verdicts per member, and the sweep adjudicating per pair.

Stored vectors stand in for faces (no models): students 0, 1 (文学院) and 2 (法学院) share one face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, select
from storehelp import add_students, picture

from api.keys import create_key
from verifier.common.settings import Settings
from verifier.store import audit, cases, embeddings, members, schema
from verifier.store.connect import open_database
from verifier.store.duplicates import record_candidate
from verifier.store.models import CaseMember, ReviewCase, Student, UTCDateTime, utcnow
from verifier.store.photos import add_photo
from verifier.store.photostore import PhotoStore
from verifier.sweep.runner import Sweep, SweepOptions

PACK = "sface-yunet-int8"
# review_cases as revision 0002 has it (the ORM model follows the newest schema)
OLD_CASES = Table(
    "review_cases", MetaData(), Column("id", Integer, primary_key=True),
    *(Column(c, String) for c in ("case_type", "subject_type", "state", "outcome", "assignee", "opened_by", "resolved_by")),
    Column("subject_id", Integer), Column("student_id", Integer), Column("notes", Text),
    *(Column(c, UTCDateTime()) for c in ("created_at", "updated_at", "review_started_at", "resolved_at")),
)


def _face(n: int) -> np.ndarray:
    """Three vectors a little apart around one face (pairwise about 0.9), and 7 unrelated ones."""
    rng = np.random.default_rng(11)
    base = rng.standard_normal((10, 128)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    for i in (1, 2):
        noise = rng.standard_normal(128).astype(np.float32)
        noise -= (noise @ base[0]) * base[0]
        base[i] = 0.95 * base[0] + np.sqrt(1 - 0.95**2) * noise / np.linalg.norm(noise)
    return base[n]


def _fill(db, store: PhotoStore) -> tuple[list[int], list]:
    def write(s):
        students = add_students(s, 10)
        students[2].college = "法学院"
        photos = []
        for i, st in enumerate(students):
            p = add_photo(s, store, st, "admission", picture(i))
            embeddings.put(s, p.id, PACK, _face(i))
            photos.append(p)
        return [st.id for st in students], [p.id for p in photos]

    return db.transaction(write)


def _sweep(url: str, home: Path, out: Path, **kw):
    return Sweep(SweepOptions(db_url=url, out_dir=out, workers=1, **kw), Settings(home=home, id_key="test-key-0123456789abcdef")).run()


def test_case_resolved_by_a_scoped_key_before_0003_adjudicates_only_what_it_saw(db_url: str, home: Path, tmp_path: Path) -> None:
    """Defect 1 on a store written by the old code: a 文学院 key dismissed a group with a 法学院 member; after the
    upgrade the dismissal covers only the pair it could see, and the next sweep raises the other two again."""
    schema.upgrade(db_url, "0002")
    db = open_database(db_url, check=False)
    store = PhotoStore.for_home(home)
    try:
        ids, photos = _fill(db, store)
        scoped = db.transaction(lambda s: create_key(s, "reviewer", "文学院复核", ["文学院"], actor="test").key.id)

        def old_sweep(s) -> int:
            """What the old sweep and a scoped key's dismissal left: three pairs, one resolved case, its members in the audit log."""
            from verifier.store.models import Photo

            found = [record_candidate(s, s.get(Photo, photos[a]), s.get(Photo, photos[b]), PACK, 0.9, None).candidate.id for a, b in ((0, 1), (0, 2), (1, 2))]
            who, now = f"key:{scoped}:文学院复核", utcnow()
            row = {"case_type": "duplicate_face", "subject_type": "duplicate", "subject_id": found[0], "student_id": ids[0], "state": "resolved",
                   "outcome": "dismissed", "assignee": who, "notes": "", "opened_by": "sweep", "resolved_by": who,
                   "created_at": now, "updated_at": now, "review_started_at": now, "resolved_at": now}
            case_id = s.execute(insert(OLD_CASES).values(row).returning(OLD_CASES.c.id)).scalar_one()
            audit.record(s, "sweep", "duplicate.members", "case", case_id, after={"candidates": found, "students": 3})
            return case_id

        case_id = db.transaction(old_sweep)
    finally:
        db.dispose()

    schema.upgrade(db_url)
    db = open_database(db_url)
    try:
        with db.session() as s:
            verdicts = {m.student_id: m.outcome for m in members.members_of(s, case_id)}
            assert verdicts == {ids[0]: "dismissed", ids[1]: "dismissed", ids[2]: None}
            assert len(members.pairs_of(s, case_id)) == 3
        summary = _sweep(db_url, home, tmp_path / "r1", full=True)
        assert summary.counts["pairs"] == 3 and summary.counts["adjudicated_pairs"] == 1 and summary.counts["cases_opened"] == 1
        with db.session() as s:
            again = s.scalars(select(ReviewCase).where(ReviewCase.case_type == "duplicate_face", ReviewCase.state == "open")).one()
            assert {m.student_id for m in members.members_of(s, again.id)} == {ids[0], ids[1], ids[2]}
            assert len(members.pairs_of(s, again.id)) == 2
    finally:
        db.dispose()


def test_member_verdicts_adjudicate_per_pair_and_a_new_pair_reopens_them(db, store: PhotoStore, home: Path, tmp_path: Path) -> None:
    ids, _ = _fill(db, store)
    first = _sweep(db.url, home, tmp_path / "r1")
    assert first.counts["cases_opened"] == 1 and first.counts["pairs"] == 3
    with db.session() as s:
        case = s.scalars(select(ReviewCase).where(ReviewCase.case_type == "duplicate_face")).one()
        by_student = {m.student_id: m.id for m in members.members_of(s, case.id)}
    assert set(by_student) == {ids[0], ids[1], ids[2]}
    db.transaction(lambda s: cases.start_review(s, case.id, "reviewer"))
    db.transaction(lambda s: members.decide(s, case.id, {by_student[ids[0]]: "confirmed", by_student[ids[1]]: "confirmed"}, "reviewer"))
    with db.session() as s:
        assert not members.all_decided(s, case.id)
        assert len(members.adjudicated(s)) == 1  # 0~1 only; both pairs with student 2 wait for its verdict
        events = [e for e in audit.events_for(s, "case", case.id) if e.action == "case.member_decide"]
        assert len(events) == 2 and all(e.actor == "reviewer" for e in events)

    # Student 2 gets a new photo of the same face while the case is in review: its new pairs join the case and
    # students 0 and 1, already confirmed, get their verdicts reopened (nobody has seen the new pairs yet).
    def new_photo(s) -> None:
        p = add_photo(s, store, s.get(Student, ids[2]), "graduation", picture(99))
        embeddings.put(s, p.id, PACK, _face(2))

    db.transaction(new_photo)
    grown = _sweep(db.url, home, tmp_path / "r2")
    assert grown.counts["cases_grown"] == 1 and grown.counts["verdicts_reopened"] == 2 and grown.counts["cases_opened"] == 0
    with db.session() as s:
        assert members.adjudicated(s) == set()
        assert len(members.pairs_of(s, case.id)) == 5
    verdicts = {by_student[ids[0]]: "confirmed", by_student[ids[1]]: "confirmed", by_student[ids[2]]: "dismissed"}
    db.transaction(lambda s: members.decide(s, case.id, verdicts, "reviewer"))
    with db.session() as s:
        assert members.all_decided(s, case.id)
        assert members.group_outcome(members.members_of(s, case.id)) == "same_person"
        assert len(members.adjudicated(s)) == 5
        assert s.scalars(select(CaseMember.outcome).where(CaseMember.case_id == case.id)).all().count("confirmed") == 2
