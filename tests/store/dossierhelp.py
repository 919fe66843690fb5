"""A resolved re-review case with two real photos, for the dossier tests (store, CLI, API)."""

from __future__ import annotations

from pathlib import Path

from storehelp import ID_KEY, FakeRoster

from verifier.photos.roster import Student as RosterStudent
from verifier.store import cases
from verifier.store.comparisons import record_comparison
from verifier.store.db import Database
from verifier.store.models import Student
from verifier.store.photos import add_photo
from verifier.store.photostore import PhotoStore
from verifier.store.students import import_roster

FULL_ID = "110101199003071234"
KSH = "21110101009001"


def resolved_case(db: Database, store: PhotoStore, faces: Path, college: str = "文学院", ksh: str = KSH, outcome: str = "same_person") -> int:
    """Import 张三 (full 身份证号), store two photos of one person, a review comparison, and resolve its case."""
    roster = FakeRoster({ksh: RosterStudent(ksh=ksh, name="张三", student_no="S2021001", id_number=FULL_ID, college=college, centre="本部")})
    with db.write_session() as s:
        import_roster(s, roster, ID_KEY, "office")
        st = s.query(Student).filter_by(ksh=ksh).one()
        adm = add_photo(s, store, st, "admission", (faces / "biden_1.jpg").read_bytes(), source="录取系统 admissions export", check_status="pass")
        grad = add_photo(s, store, st, "graduation", (faces / "biden_2.jpg").read_bytes(), source="毕业拍摄 photo studio", check_status="pass")
        cmp = record_comparison(s, adm, grad, "buffalo_l", 0.33, "review", ["COMPARE_REVIEW_BAND"]).comparison
        case_id = cases.open_case(s, "comparison_review", "comparison", cmp.id, st.id, actor="batch").case.id
    with db.write_session() as s:
        cases.start_review(s, case_id, "王老师")
        cases.add_note(s, case_id, "王老师", "与本人当面核对一致")
        cases.resolve(s, case_id, outcome, "王老师")
    return case_id
