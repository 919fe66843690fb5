"""ID-card photos through the API: chip-photo and card-scan uploads, fetch, the student view, intake cases, dossier, scope.

Real models and real face-set photos; the card scans are drawn at test time around a student's own portrait.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from apihelp import Env, open_env
from idcardhelp import PORTRAIT_BOX, TEXT_RIGHT, card_scan, chip_photo, correlation, encode, inside, intake_case
from store.conftest import pg_schema, pg_server  # noqa: F401  (the store tests' PostgreSQL fixtures)

from verifier.core.results import Thresholds
from verifier.photos.idcard import crop_portrait
from verifier.store.models import Photo
from verifier.store.photos import current_photo
from verifier.store.students import get_student


def _put(env: Env, ksh: str, data: bytes, name: str, role: str = "admissions", scoped: bool = False, **params: Any) -> Any:
    return env.client.put(f"/api/v1/students/{ksh}/photos/id_card", params=params, headers=env.h(role, scoped), files={"file": (name, data, "application/octet-stream")})


def _admission(env: Env, ksh: str) -> Path:
    return Path(env.cohort.admission_dir) / f"{ksh}.jpg"


def _chip(env: Env, pipeline: Any, ksh: str) -> bytes:
    """The student's chip photo as a card reader exports it: 102x126 BMP cut from the admission photo."""
    return encode(chip_photo(pipeline, _admission(env, ksh)), ".bmp")


def _scan(env: Env, ksh: str) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A PNG scan of the card's front with the student's portrait pasted at the right; the scan and the portrait pixels."""
    portrait = cv2.imread(str(_admission(env, ksh)))
    scan = card_scan([portrait])
    return encode(scan, ".png"), scan, portrait


def _codes(r: Any) -> list[str]:
    return [x["code"] for x in r.json().get("reasons", [])]


def test_chip_photo_bmp_upload_fetch_and_student_view(env: Env, pipeline: Any) -> None:
    ksh = env.inside[0]
    data = _chip(env, pipeline, ksh)
    r = _put(env, ksh, data, f"{ksh}.bmp")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["kind"] == "id_card" and body["check_status"] != "fail" and "IDCARD_SCAN_CROPPED" not in _codes(r)
    got = env.client.get(f"/api/v1/students/{ksh}/photos/id_card", headers=env.h("admissions"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/bmp" and got.content == data
    detail = env.client.get(f"/api/v1/students/{ksh}", headers=env.h("academic_affairs")).json()
    assert set(detail["photos"]) == {"admission", "graduation", "id_card"}
    assert [p["photo_id"] for p in detail["photos"]["id_card"]] == [body["photo_id"]]
    assert detail["photos"]["id_card"][0]["width"] == 102 and detail["photos"]["id_card"][0]["height"] == 126
    assert detail["photos"]["admission"] and detail["photos"]["graduation"]


def test_card_scan_upload_stores_only_the_portrait(env: Env, pipeline: Any) -> None:
    ksh = env.inside[1]
    data, scan, portrait = _scan(env, ksh)
    r = _put(env, ksh, data, f"{ksh}.png")
    assert r.status_code == 201, r.text
    assert "IDCARD_SCAN_CROPPED" in _codes(r) and r.json()["check_status"] != "fail"
    got = env.client.get(f"/api/v1/students/{ksh}/photos/id_card", headers=env.h("academic_affairs"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/png" and got.content != data
    stored = cv2.imdecode(np.frombuffer(got.content, np.uint8), cv2.IMREAD_COLOR)
    h, w = stored.shape[:2]
    assert 102 <= w <= 480 and abs(h / w - 126 / 102) < 0.02 and w < scan.shape[1] // 2
    _, box, why = crop_portrait(scan, pipeline.detector.detect(scan))
    assert why is None and box is not None
    assert inside(box, PORTRAIT_BOX, int(0.1 * PORTRAIT_BOX[2])) and box[0] > TEXT_RIGHT, box
    x, y, pw, ph = PORTRAIT_BOX
    pasted = cv2.resize(portrait, (pw, ph), interpolation=cv2.INTER_AREA)
    bx, by, bw, bh = box
    assert correlation(stored, pasted[max(by - y, 0) : by - y + bh, max(bx - x, 0) : bx - x + bw]) > 0.9
    assert correlation(stored, scan[:, :TEXT_RIGHT]) < 0.5  # not the text side of the card
    with env.db.session() as s:
        photo = current_photo(s, get_student(s, ksh).id, "id_card")
        assert photo.origin_sha256 == hashlib.sha256(data).hexdigest() and photo.sha256 == hashlib.sha256(got.content).hexdigest()
    assert not list(Path(env.settings.home).rglob(f"*{hashlib.sha256(data).hexdigest()}*")), "the scan itself was stored"


def test_scan_without_a_face_is_refused_and_keeps_no_pixel(env: Env) -> None:
    ksh = env.inside[2] if len(env.inside) > 2 else env.outside[1]
    blank = encode(card_scan([np.full((10, 10, 3), 200, np.uint8)]), ".jpg")
    before = env.client.get(f"/api/v1/students/{ksh}", headers=env.h("admissions")).json()["photos"]["id_card"]
    r = _put(env, ksh, blank, f"{ksh}.jpg")
    assert r.status_code == 422 and r.json()["code"] == "IDCARD_SCAN_NO_PORTRAIT", r.text
    assert env.client.get(f"/api/v1/students/{ksh}", headers=env.h("admissions")).json()["photos"]["id_card"] == before
    assert env.client.get(f"/api/v1/students/{ksh}/photos/id_card", headers=env.h("admissions")).status_code == 404
    kept = _put(env, ksh, blank, f"{ksh}.jpg", keep_failing="true")
    assert kept.status_code == 201 and kept.json()["check_status"] == "fail" and _codes(kept) == ["IDCARD_SCAN_NO_PORTRAIT"]
    with env.db.session() as s:
        row = s.get(Photo, kept.json()["photo_id"])
        assert row.file_path is None and row.byte_size == 0 and row.origin_sha256 == hashlib.sha256(blank).hexdigest()
    gone = env.client.get(f"/api/v1/students/{ksh}/photos/id_card", headers=env.h("admissions"))
    assert gone.status_code == 410 and gone.json()["code"] == "STORE_PHOTO_NOT_KEPT"


def test_id_card_upload_and_fetch_respect_college_scope(env: Env, pipeline: Any) -> None:
    mine, theirs = env.inside[0], env.outside[0]
    data = _chip(env, pipeline, theirs)
    r = _put(env, theirs, data, f"{theirs}.bmp", scoped=True)
    assert r.status_code == 404 and r.json()["code"] == "STORE_STUDENT_UNKNOWN"
    for role in ("admissions", "academic_affairs"):
        r = env.client.get(f"/api/v1/students/{theirs}/photos/id_card", headers=env.h(role, True))
        assert r.status_code == 404 and r.json()["code"] == "STORE_STUDENT_UNKNOWN"
    for role in ("reviewer", "academic_affairs"):
        assert _put(env, mine, data, f"{mine}.bmp", role=role).status_code == 403
    ok = _put(env, mine, _chip(env, pipeline, mine), f"{mine}.bmp", scoped=True)
    assert ok.status_code == 201, ok.text
    assert env.client.get(f"/api/v1/students/{mine}/photos/id_card", headers=env.h("academic_affairs", True)).status_code == 200


def test_intake_case_shows_id_card_against_admission(env: Env, pipeline: Any) -> None:
    ksh, other = env.inside[0], env.outside[0]
    assert _put(env, ksh, _chip(env, pipeline, ksh), f"{ksh}.bmp").status_code == 201
    assert _put(env, other, _chip(env, pipeline, other), f"{other}.bmp").status_code == 201
    case_id, foreign = intake_case(env.db, pipeline.pack.id, ksh), intake_case(env.db, pipeline.pack.id, other)
    listed = env.client.get("/api/v1/cases", params={"type": "intake_mismatch", "limit": 500}, headers=env.h("reviewer")).json()
    assert {case_id, foreign} <= {c["id"] for c in listed["items"]} and all(c["case_type"] == "intake_mismatch" for c in listed["items"])
    r = env.client.get(f"/api/v1/cases/{case_id}", headers=env.h("reviewer", True))
    assert r.status_code == 200, r.text
    case = r.json()
    assert case["case_type"] == "intake_mismatch"
    assert case["photos"]["a"]["label"] == "admission" and case["photos"]["b"]["label"] == "id_card"
    assert [v["kind"] for v in case["views"]] == ["id_card", "admission", "graduation"]
    assert [v["compared"] for v in case["views"]] == [True, True, False]
    assert [v["label_zh"] for v in case["views"]] == ["身份证照片", "录取照片", "毕业照片"]
    assert all(v["url"] for v in case["views"])
    for side, media in (("b", "image/bmp"), ("id_card", "image/bmp"), ("a", "image/jpeg"), ("graduation", "image/jpeg")):
        got = env.client.get(f"/api/v1/cases/{case_id}/photos/{side}", headers=env.h("reviewer", True))
        assert got.status_code == 200 and got.headers["content-type"] == media, (side, got.status_code)
    for path in (f"/api/v1/cases/{foreign}", f"/api/v1/cases/{foreign}/photos/id_card", f"/api/v1/cases/{foreign}/photos/b"):
        r = env.client.get(path, headers=env.h("reviewer", True))
        assert r.status_code == 404 and r.json()["code"] == "STORE_CASE_UNKNOWN" and str(other) not in r.text
    assert env.client.get(f"/api/v1/cases/{case_id}/photos/id_card", headers=env.h("admissions")).status_code == 403


def _pdf_text(pdf: bytes) -> str:
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 (test extra) reads the dossier text")
    doc = pdfium.PdfDocument(pdf)
    return re.sub(r"\s+", "", "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc))))


@pytest.mark.parametrize("has_thresholds", [True, False], ids=["id_card_thresholds", "no_id_card_thresholds"])
def test_intake_dossier_labels_by_kind_and_uses_id_card_thresholds(env: Env, pipeline: Any, monkeypatch: pytest.MonkeyPatch, has_thresholds: bool) -> None:
    import verifier.store.dossier as dossier

    ksh = env.inside[1]
    assert _put(env, ksh, _chip(env, pipeline, ksh), f"{ksh}.bmp").status_code in (200, 201)
    case_id = intake_case(env.db, pipeline.pack.id, ksh)
    real = dossier.load_pack
    # Thresholds no calibration would give, so the text can only carry them if the dossier used the ID-card entry.
    probe = {"id_card": Thresholds(0.87, 0.13, 0.99)} if has_thresholds else {}
    monkeypatch.setattr(dossier, "load_pack", lambda pack_id: dataclasses.replace(real(pack_id), probe_thresholds=probe))
    r = env.client.get(f"/api/v1/cases/{case_id}/dossier", headers=env.h("reviewer", True))
    assert r.status_code == 200, r.text
    text = _pdf_text(r.content)
    assert "身份证照片" in text and "录取照片" in text and "毕业照片" not in text
    if has_thresholds:
        assert "accept0.87" in text and "reject0.13" in text
    else:
        assert "通过阈值" not in text and "相似度" in text


@pytest.fixture
def pg_env(pg_server: str, tmp_path: Path, cache_dir: Path, pipeline: Any, api_cohort: Any) -> Iterator[Env]:  # noqa: F811
    """An app over a fresh PostgreSQL schema with the cohort's roster and admission photos."""
    with pg_schema(pg_server) as url:
        env, client = open_env(tmp_path / "home", cache_dir, pipeline, db_url=url)
        env.cohort = api_cohort
        try:
            r = env.client.post("/api/v1/rosters", headers=env.h("admissions"), files={"file": ("roster.csv", api_cohort.roster.read_bytes(), "text/csv")})
            assert r.status_code == 200, r.text
            import csv

            with open(api_cohort.roster, encoding="utf-8-sig", newline="") as fh:
                for row in csv.DictReader(fh):
                    (env.inside if row["学院"] == "文学院" else env.outside).append(row["考生号"])
            for ksh in env.inside[:2] + env.outside[:1]:
                path = _admission(env, ksh)
                r = env.client.put(f"/api/v1/students/{ksh}/photos/admission", headers=env.h("admissions"), files={"file": (path.name, path.read_bytes(), "image/jpeg")})
                assert r.status_code == 201, r.text
            yield env
        finally:
            client.__exit__(None, None, None)
            env.db.dispose()


def test_id_card_on_postgresql(pg_env: Env, pipeline: Any) -> None:
    env = pg_env
    assert env.db.dialect == "postgresql"
    ksh = env.inside[0]
    chip = _chip(env, pipeline, ksh)
    assert _put(env, ksh, chip, f"{ksh}.bmp").status_code == 201
    data, _, _ = _scan(env, env.inside[1])
    r = _put(env, env.inside[1], data, f"{env.inside[1]}.png")
    assert r.status_code == 201 and "IDCARD_SCAN_CROPPED" in _codes(r), r.text
    got = env.client.get(f"/api/v1/students/{env.inside[1]}/photos/id_card", headers=env.h("admissions"))
    assert got.headers["content-type"] == "image/png" and got.content != data
    assert _put(env, env.outside[0], chip, "x.bmp", scoped=True).status_code == 404
    case_id = intake_case(env.db, pipeline.pack.id, ksh)
    case = env.client.get(f"/api/v1/cases/{case_id}", headers=env.h("reviewer", True)).json()
    assert case["photos"]["b"]["label"] == "id_card" and [v["url"] is not None for v in case["views"]] == [True, True, False]
    assert env.client.get(f"/api/v1/cases/{case_id}/photos/id_card", headers=env.h("reviewer")).headers["content-type"] == "image/bmp"
    assert env.client.get(f"/api/v1/cases/{case_id}/photos/graduation", headers=env.h("reviewer")).status_code == 404
    assert chip == env.client.get(f"/api/v1/cases/{case_id}/photos/b", headers=env.h("reviewer")).content
