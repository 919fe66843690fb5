"""A 学院's lists through the API on a seeded store with real photos: what lands where, XLSX sheets, and scope."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from apihelp import SCOPE, Env
from openpyxl import load_workbook
from PIL import Image

from api.keys import create_key
from verifier.store import cases
from verifier.store.lists import LIST_KINDS, TITLES_ZH
from verifier.store.students import get_student, mark_graduated

NEWCOMER = "21110101999901"


def _ksh_by_list(body: dict) -> dict[str, list[str]]:
    return {item["kind"]: [row[0] for row in item["rows"]] for item in body["lists"]}


@pytest.fixture(scope="module")
def lists_env(env: Env) -> Env:
    """文学院's students graduated; one gets a failing admission photo; a newcomer with no photos is impersonation-resolved."""
    env.db.transaction(lambda s: mark_graduated(s, env.inside, dt.date(2026, 7, 1), "test"))
    small = io.BytesIO()
    Image.new("RGB", (60, 80), (200, 180, 160)).save(small, "JPEG")
    r = env.client.put(f"/api/v1/students/{env.inside[0]}/photos/admission", params={"keep_failing": "true"}, headers=env.h("admissions"),
                       files={"file": (f"{env.inside[0]}.jpg", small.getvalue(), "image/jpeg")})
    assert r.status_code == 201 and r.json()["check_status"] == "fail", r.text
    roster = f"考生号,姓名,学号,身份证号,学院,学习中心,入学批次\n{NEWCOMER},新同学,S999901,,{SCOPE},深圳学习中心,2026秋\n"
    r = env.client.post("/api/v1/rosters", headers=env.h("admissions"), files={"file": ("roster.csv", roster.encode(), "text/csv")})
    assert r.status_code == 200, r.text

    def impersonation(s) -> None:  # type: ignore[no-untyped-def]
        st = get_student(s, NEWCOMER)
        case = cases.open_case(s, "identity_check", "student", st.id, st.id).case
        cases.start_review(s, case.id, "reviewer-a")
        cases.resolve(s, case.id, "impersonation", "reviewer-a")

    env.db.transaction(impersonation)
    env.new_case(NEWCOMER)
    return env


def test_the_lists_show_what_the_store_holds(lists_env: Env) -> None:
    env = lists_env
    body = env.client.get(f"/api/v1/lists/{SCOPE}", headers=env.h("academic_affairs", scoped=True)).json()
    assert body["college"] == SCOPE and [item["kind"] for item in body["lists"]] == list(LIST_KINDS)
    found = _ksh_by_list(body)
    assert found["missing_photo"] == [NEWCOMER]
    assert env.inside[0] in found["spec_failed"]
    spec = next(item for item in body["lists"] if item["kind"] == "spec_failed")
    row = next(r for r in spec["rows"] if r[0] == env.inside[0])
    assert row[7] == "录取照片" and "SPEC_" in row[9]
    assert found["not_compared"] == [env.inside[0]]  # its new admission photo has not been compared with the graduation photo
    assert found["impersonation"] == [NEWCOMER]
    assert NEWCOMER in found["in_review"]
    assert not set(env.outside) & {k for rows in found.values() for k in rows}

    r = env.client.post(f"/api/v1/students/{env.inside[0]}/compare", headers=env.h("academic_affairs"))
    assert r.status_code == 200, r.text
    again = _ksh_by_list(env.client.get(f"/api/v1/lists/{SCOPE}", headers=env.h("reviewer", scoped=True)).json())
    assert again["not_compared"] == []


def test_xlsx_has_a_sheet_per_list_and_is_audited(lists_env: Env) -> None:
    env = lists_env
    r = env.client.get(f"/api/v1/lists/{SCOPE}/xlsx", headers=env.h("admin"))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    wb = load_workbook(io.BytesIO(r.content), read_only=True)
    assert wb.sheetnames == [TITLES_ZH[k] for k in LIST_KINDS]
    missing = list(wb["缺少照片"].iter_rows(values_only=True))
    assert missing[0][:3] == ("考生号", "学号", "姓名") and missing[1][0] == NEWCOMER
    assert [row[0] for row in list(wb["身份复核未通过"].iter_rows(values_only=True))[1:]] == [NEWCOMER]


def test_scope_decides_which_college_a_key_may_list(lists_env: Env) -> None:
    env = lists_env
    outside = env.client.get("/api/v1/students/" + env.outside[0], headers=env.h("academic_affairs")).json()["college"]
    for role in ("admissions", "academic_affairs", "reviewer", "admin"):
        for path in (f"/api/v1/lists/{outside}", f"/api/v1/lists/{outside}/xlsx"):
            r = env.client.get(path, headers=env.h(role, scoped=True))
            assert r.status_code == 404 and r.json()["code"] == "STORE_COLLEGE_UNKNOWN", (role, path)
            assert env.outside[0] not in r.text
        assert env.client.get(f"/api/v1/lists/{outside}", headers=env.h(role)).status_code == 200
    centre = env.db.transaction(lambda s: create_key(s, "reviewer", "深圳中心", ["学习中心:深圳学习中心"], actor="test").secret)
    seen = _ksh_by_list(env.client.get(f"/api/v1/lists/{SCOPE}", headers={"Authorization": f"Bearer {centre}"}).json())
    assert {k for rows in seen.values() for k in rows} == {NEWCOMER}
    r = env.client.get(f"/api/v1/lists/{outside}", headers={"Authorization": f"Bearer {centre}"})
    assert r.status_code == 404 and r.json()["code"] == "STORE_COLLEGE_UNKNOWN"
