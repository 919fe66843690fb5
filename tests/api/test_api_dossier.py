"""The dossier export over HTTP: a resolved case's PDF (and a zip of several), its registration in the student view, scope."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from apihelp import Env

pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 (test extra) reads the dossier text")


def _text(pdf: bytes) -> str:
    doc = pdfium.PdfDocument(pdf)
    return re.sub(r"\s+", "", "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc))))


def _resolve(env: Env, case_id: int, outcome: str) -> None:
    h = env.h("reviewer")
    assert env.client.post(f"/api/v1/cases/{case_id}/claim", headers=h).status_code == 200
    r = env.client.post(f"/api/v1/cases/{case_id}/resolve", headers=h, json={"outcome": outcome, "note": "当面核验"})
    assert r.status_code == 200, r.text


def test_resolved_case_dossier_and_registration(env: Env) -> None:
    ksh, other = env.inside[0], env.inside[1]
    case_id, second = env.new_case(ksh), env.new_case(other)
    _resolve(env, case_id, "impersonation")
    student = env.client.get(f"/api/v1/students/{ksh}", headers=env.h("academic_affairs")).json()
    assert student["registration"] == "blocked"
    r = env.client.get(f"/api/v1/cases/{case_id}/dossier", headers=env.h("academic_affairs", scoped=True))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
    assert f"dossier-case-{case_id}.pdf" in r.headers["content-disposition"]
    text = _text(r.content)
    assert ksh in text and student["name"] in text and "冒名顶替，不予注册" in text and "case.resolve" in text and "当面核验" in text
    if student["id_masked"]:
        assert student["id_masked"].replace(" ", "") in text
    z = env.client.get(f"/api/v1/cases/dossiers?id={case_id}&id={second}", headers=env.h("reviewer", scoped=True))
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.content)) as bundle:
        assert sorted(bundle.namelist()) == sorted([f"dossier-case-{case_id}.pdf", f"dossier-case-{second}.pdf"])


def test_zip_with_one_case_out_of_scope_is_404_and_names_none(env: Env) -> None:
    inside, outside = env.new_case(env.inside[0]), env.new_case(env.outside[0])
    r = env.client.get(f"/api/v1/cases/dossiers?id={inside}&id={outside}", headers=env.h("reviewer", scoped=True))
    assert r.status_code == 404 and r.json()["code"] == "STORE_CASE_UNKNOWN" and str(outside) not in r.text
    assert env.client.get(f"/api/v1/cases/dossiers?id={inside}&id={outside}", headers=env.h("reviewer")).status_code == 200
