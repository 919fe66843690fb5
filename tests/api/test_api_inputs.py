"""Uploads and limits: every bad-input kind is a 4xx with its reason code, body cap, busy 503, timeout, history, exports, jobs."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from apihelp import Env, open_env
from openpyxl import load_workbook
from test_bad_input import FULL_ONLY, KINDS, _make

from verifier.store.audit import events_for
from tests.intakehelp import make_intake_cohort
from verifier.store.models import AuditEvent, Photo, ReviewCase
from verifier.store.photos import history
from verifier.store.students import get_student

# Kinds that exist only on a file system, or names a multipart header cannot carry (clients escape
# control characters and must send UTF-8): no HTTP upload can reproduce them. Unsafe names are covered
# by test_unsafe_upload_name_is_refused instead.
FS_ONLY = {"directory_named_jpg", "fifo", "dangling_symlink", "gbk_name", "control_char_name"}


@pytest.fixture(scope="module")
def corpus(id_photos, tmp_path_factory) -> dict[str, tuple[str, bytes]]:
    """kind -> (file name, bytes), built with the photo-checks corpus builders."""
    folder = tmp_path_factory.mktemp("api-bad-input")
    good = (id_photos.get("obama_1") or next(iter(id_photos.values()))).read_bytes()
    pixels = cv2.imdecode(np.frombuffer(good, np.uint8), cv2.IMREAD_COLOR)
    out = {}
    for kind, (name, _code) in (KINDS | FULL_ONLY).items():
        if kind in FS_ONLY or kind == "too_large_to_read":
            continue
        _make(kind, folder, good, pixels)
        out[kind] = (name, (folder / name).read_bytes())
    out["too_large_to_read"] = ("20210101000019.jpg", good + bytes(3 * 1024 * 1024))
    return out


@pytest.mark.parametrize("kind", sorted(set(KINDS | FULL_ONLY) - FS_ONLY))
def test_bad_upload_is_4xx_with_its_code(env: Env, corpus, kind: str) -> None:
    name, data = corpus[kind]
    expected = "API_BODY_TOO_LARGE" if kind == "too_large_to_read" else (KINDS | FULL_ONLY)[kind][1]
    ksh = env.inside[0]
    name = re.sub(r"^\d{14}", ksh, name)  # the corpus's 考生号 are nobody's; a photo must carry its student's (FILE_NAME_OTHER_STUDENT)
    r = env.client.put(f"/api/v1/students/{ksh}/photos/admission", headers=env.h("admissions"), files={"file": (name, data, "image/jpeg")})
    if expected is None or expected == "SPEC_SIZE_NOT_RECOMMENDED":
        assert r.status_code == 201, (kind, r.text[:300])
        if expected:
            assert expected in [x["code"] for x in r.json()["reasons"]]
        return
    assert 400 <= r.status_code < 500, (kind, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    codes = [body["code"]] + [x["code"] for x in body.get("reasons", [])]
    assert expected in codes, (kind, codes)
    assert body["message_zh"] and body["message_en"]


@pytest.mark.parametrize("name", ["../../etc/20210101000001.jpg", "..\\..\\20210101000001.jpg"])
def test_unsafe_upload_name_is_refused(env: Env, corpus, name: str) -> None:
    _, data = corpus["progressive_jpeg"]
    r = env.client.put(f"/api/v1/students/{env.inside[0]}/photos/admission", headers=env.h("admissions"), files={"file": (name, data, "image/jpeg")})
    assert r.status_code == 422 and r.json()["code"] == "FILE_NAME_UNSAFE", r.text[:300]


@pytest.mark.parametrize("kind", ["zero_bytes", "text_file", "gif_named_jpg", "jpeg_bomb", "truncated_header", "corrupt_header"])
def test_bad_photo_in_compare_is_422(env: Env, corpus, kind: str) -> None:
    name, data = corpus[kind]
    good = (env.cohort.admission_dir / f"{env.inside[0]}.jpg").read_bytes()
    r = env.client.post("/api/v1/compare", headers=env.h("academic_affairs"), files={"a": ("a.jpg", good, "image/jpeg"), "b": (name, data, "image/jpeg")})
    assert r.status_code == 422, r.text[:300]
    assert r.json()["code"] == (KINDS | FULL_ONLY)[kind][1] and r.json()["side"] == "b"


def test_check_reports_every_reason(env: Env, corpus) -> None:
    name, data = corpus["landscape"]
    r = env.client.post("/api/v1/photos/check", headers=env.h("admissions"), files={"file": (name, data, "image/jpeg")}, data={"profile": "admission"})
    assert r.status_code == 200 and r.json()["status"] == "fail"
    assert "SPEC_LANDSCAPE" in [x["code"] for x in r.json()["reasons"]]
    bad = env.client.post("/api/v1/photos/check", headers=env.h("admissions"), files={"file": (name, data, "image/jpeg")}, data={"profile": "nope"})
    assert bad.status_code == 422 and bad.json()["code"] == "API_REQUEST_INVALID"


def test_compare_same_and_different_person(env: Env) -> None:
    exp = env.cohort.expected
    genuine = next(k for k, v in exp.items() if v == "genuine")
    impostor = next(k for k, v in exp.items() if v == "impostor")

    def cmp(k: str) -> dict:
        files = {"a": ("a.jpg", (env.cohort.admission_dir / f"{k}.jpg").read_bytes(), "image/jpeg"),
                 "b": ("b.jpg", (env.cohort.graduation_dir / f"{k}.jpg").read_bytes(), "image/jpeg")}
        r = env.client.post("/api/v1/compare", headers=env.h("academic_affairs"), files=files)
        assert r.status_code == 200, r.text
        return r.json()

    assert cmp(genuine)["decision"] == "match"
    assert cmp(impostor)["decision"] in ("mismatch", "review")


def test_replacement_keeps_history_and_audits_the_key(env: Env) -> None:
    ksh = env.inside[1]
    other = env.cohort.admission_dir / f"{env.inside[0]}.jpg"
    r = env.client.put(f"/api/v1/students/{ksh}/photos/admission", headers=env.h("admissions"), files={"file": (f"{ksh}.jpg", other.read_bytes(), "image/jpeg")})
    assert r.status_code == 201, r.text
    new_id, old_id = r.json()["photo_id"], r.json()["replaced_photo_id"]
    assert old_id is not None
    with env.db.session() as s:
        st = get_student(s, ksh)
        chain = history(s, st.id, "admission")
        assert [p.id for p in chain][-2:] == [old_id, new_id] and not chain[-2].is_current and chain[-1].replaces_id == old_id
        ev = [e for e in events_for(s, "photo", new_id) if e.action == "photo.replace"]
        assert ev and ev[0].actor.startswith("key:") and ev[0].actor.endswith(":test-admissions")
    old = env.client.get(f"/api/v1/students/{ksh}/photos/admission", params={"photo_id": old_id}, headers=env.h("academic_affairs"))
    assert old.status_code == 200 and old.headers["content-type"] == "image/jpeg"
    with env.db.session() as s:
        assert any(e.action == "photo.view" and "test-academic_affairs" in e.actor for e in events_for(s, "photo", old_id))
    detail = env.client.get(f"/api/v1/students/{ksh}", headers=env.h("admissions")).json()
    assert len(detail["photos"]["admission"]) >= 2 and "*" in detail["id_masked"]


def test_exports_csv_and_xlsx(env: Env) -> None:
    r = env.client.get("/api/v1/exports/cases", params={"format": "csv"}, headers=env.h("academic_affairs"))
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode()) and "案件编号" in r.content.decode("utf-8-sig")
    x = env.client.get("/api/v1/exports/students", params={"format": "xlsx"}, headers=env.h("academic_affairs", scoped=True))
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "考生号" and {r[4] for r in rows[1:]} == {"文学院"} and len(rows) - 1 == len(env.inside)


def test_body_cap_is_413(env: Env) -> None:
    big = b"\xff\xd8\xff" + bytes(env.settings.api_max_body_bytes + 10)
    r = env.client.post("/api/v1/photos/check", headers=env.h("admissions"), files={"file": ("x.jpg", big, "image/jpeg")})
    assert r.status_code == 413 and r.json()["code"] == "API_BODY_TOO_LARGE"

    def chunks():
        yield b"x" * (env.settings.api_max_body_bytes // 2)
        yield b"x" * (env.settings.api_max_body_bytes // 2 + 100)

    r = env.client.post("/api/v1/photos/check", headers={**env.h("admissions"), "Content-Type": "multipart/form-data; boundary=zz"}, content=chunks())
    assert r.status_code == 413 and r.json()["code"] == "API_BODY_TOO_LARGE"


def test_health_ready_and_unknown_route(env: Env) -> None:
    assert env.client.get("/healthz").json() == {"status": "ok"}
    assert env.client.get("/readyz").json()["ready"] is True
    r = env.client.get("/api/v1/nothing-here", headers=env.h("admin"))
    assert r.status_code == 404 and r.json()["code"] == "API_NOT_FOUND"
    m = env.client.get("/metrics", headers=env.h("admin")).text
    for name in ("verifier_http_requests_total", "verifier_http_request_seconds", "verifier_inference_seconds", "verifier_inference_queue_depth", "verifier_decisions_total"):
        assert name in m
    assert 'route="/api/v1/students/{ksh}/photos/{kind}"' in m and env.inside[0] not in m


def test_saturated_inference_is_503_with_retry_after() -> None:
    """With every slot and queue place taken, the next request is refused at once, and the slots come back."""
    from api.limits import InferenceLimiter
    from api.problems import ApiProblem

    limiter = InferenceLimiter(slots=2, queue=1, retry_after_s=2)

    async def scenario() -> tuple[int, str, int]:
        gate = asyncio.Event()
        loop = asyncio.get_running_loop()

        def block() -> None:
            asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(timeout=10)

        held = [asyncio.ensure_future(limiter.run(block)) for _ in range(limiter.slots + limiter.queue)]
        await asyncio.sleep(0.2)
        assert (limiter.running, limiter.waiting) == (2, 1)
        try:
            await limiter.run(lambda: None)
            result = (200, "")
        except ApiProblem as exc:
            result = (exc.status, exc.headers["Retry-After"])
        gate.set()
        await asyncio.gather(*held)
        await limiter.run(lambda: None)
        return (*result, limiter.running)

    status, retry, running = asyncio.run(scenario())
    assert status == 503 and retry == "2" and running == 0


class SlowPipeline:
    """The real pipeline, with every compare held 0.5 s first: makes "slower than the timeout" independent of the machine."""

    def __init__(self, pipeline) -> None:
        self._pipeline = pipeline

    def __getattr__(self, name: str):
        return getattr(self._pipeline, name)

    def compare(self, a, b):
        time.sleep(0.5)
        return self._pipeline.compare(a, b)


def test_busy_and_timeout_through_http(tmp_path: Path, cache_dir: Path, pipeline, api_cohort) -> None:
    """A server with one slot, no queue and a 0.2 s timeout: the request holding the slot (0.5 s) gets 504, the others 503 + Retry-After."""
    import httpx

    env, client = open_env(tmp_path / "home", cache_dir, SlowPipeline(pipeline), api_inference_slots=1, api_inference_queue=0, api_timeout_s=0.2)
    try:
        photo = (api_cohort.admission_dir / sorted(os.listdir(api_cohort.admission_dir))[0]).read_bytes()

        async def burst() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:
                reqs = [ac.post("/api/v1/compare", headers=env.h("academic_affairs"), files={"a": ("a.jpg", photo), "b": ("b.jpg", photo)}) for _ in range(6)]
                return await asyncio.gather(*reqs)

        responses = asyncio.run(burst())
        codes = [r.status_code for r in responses]
        assert codes.count(504) == 1 and codes.count(503) == 5, codes
        assert all(r.headers.get("retry-after") for r in responses if r.status_code == 503)
        time.sleep(1)
    finally:
        client.__exit__(None, None, None)
        env.db.dispose()


def _wait_job(env: Env, job: str, timeout_s: float = 240) -> dict:
    """Poll a background job until it leaves starting/running/cancelling (or the timeout passes); its last state."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = env.client.get(f"/api/v1/jobs/{job}", headers=env.h("academic_affairs")).json()
        if st["state"] not in ("starting", "running", "cancelling") or time.monotonic() > deadline:
            return st
        time.sleep(0.3)


def test_batch_job_runs_reports_progress_and_can_be_cancelled(env: Env, api_cohort) -> None:
    root = env.settings.home / "incoming"
    shutil.copytree(api_cohort.admission_dir, root / "adm", dirs_exist_ok=True)
    shutil.copytree(api_cohort.graduation_dir, root / "grad", dirs_exist_ok=True)
    shutil.copy(api_cohort.roster, root / "roster.csv")
    body = {"roster": "roster.csv", "admission_dir": "adm", "graduation_dir": "grad"}
    outside = env.client.post("/api/v1/jobs/batch-compare", headers=env.h("academic_affairs"), json={**body, "roster": "../x.csv"})
    assert outside.status_code == 422 and outside.json()["code"] == "API_PATH_OUTSIDE_ROOT"
    r = env.client.post("/api/v1/jobs/batch-compare", headers=env.h("academic_affairs"), json=body)
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    again = env.client.post("/api/v1/jobs/batch-compare", headers=env.h("academic_affairs"), json=body)
    assert again.status_code == 409 and again.json()["code"] == "API_JOB_BUSY"
    st = _wait_job(env, job)
    assert st["state"] == "completed", st
    assert st["progress"]["done"] == st["progress"]["total"] == 8 and st["run"]["status"] == "completed"
    assert sum(v for k, v in st["run"]["counts"].items() if k.startswith("decision_")) == 8
    cancel_done = env.client.post(f"/api/v1/jobs/{job}/cancel", headers=env.h("academic_affairs"))
    assert cancel_done.status_code == 409 and cancel_done.json()["code"] == "API_JOB_FINISHED"
    with env.db.session() as s:
        actions = {e.action for e in s.query(AuditEvent).filter(AuditEvent.object_type.in_(["job", "run"]))}
        assert {"job.start", "run.start", "run.finish"} <= actions
    r = env.client.post("/api/v1/jobs/batch-compare", headers=env.h("academic_affairs"), json=body)
    job2 = r.json()["id"]
    c = env.client.post(f"/api/v1/jobs/{job2}/cancel", headers=env.h("academic_affairs"))
    assert c.status_code == 202 and c.json()["state"] in ("cancelling", "cancelled")
    st = _wait_job(env, job2, 120)
    assert st["state"] in ("cancelled", "completed"), (st["state"], st["error"])
    with env.db.session() as s:
        assert any(e.action == "job.cancel" and "test-academic_affairs" in e.actor for e in events_for(s, "job", job2))
        assert s.query(Photo).count() > 0


def test_intake_job_runs_to_the_cli_result(env: Env, pipeline, faces, tmp_path) -> None:
    """POST /jobs/intake-check runs the intake check in the background: every student decided, intake cases opened."""
    cohort = make_intake_cohort(pipeline, faces, tmp_path / "cohort")
    root = env.settings.home / "incoming"
    shutil.copytree(cohort.admission_dir, root / "adm", dirs_exist_ok=True)
    shutil.copytree(cohort.id_card_dir, root / "cards", dirs_exist_ok=True)
    shutil.copy(cohort.roster, root / "intake.csv")
    body = {"roster": "intake.csv", "admission_dir": "adm", "id_card_dir": "cards"}
    missing = env.client.post("/api/v1/jobs/intake-check", headers=env.h("admissions"), json={**body, "id_card_dir": "nowhere"})
    assert missing.status_code == 422 and missing.json()["code"] == "BATCH_FOLDER_MISSING"
    r = env.client.post("/api/v1/jobs/intake-check", headers=env.h("admissions"), json=body)
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    st = _wait_job(env, job)
    assert st["state"] == "completed", st
    n = len(cohort.expected)
    assert st["kind"] == "intake_check" and st["progress"]["total"] == n and st["run"]["status"] == "completed"
    assert sum(v for k, v in st["run"]["counts"].items() if k.startswith("decision_")) == n
    with env.db.session() as s:
        flagged = st["run"]["counts"].get("decision_fail", 0) + st["run"]["counts"].get("decision_review", 0)
        assert flagged > 0 and s.query(ReviewCase).filter(ReviewCase.case_type == "intake_mismatch").count() == flagged
        assert s.query(Photo).filter(Photo.kind == "id_card").count() == n - 1  # one student has no ID-card photo


def test_duplicate_sweep_job(env: Env) -> None:
    """The sweep runs as a background job when it is part of the build (501 API_SWEEP_UNAVAILABLE otherwise)."""
    from api.jobs import sweep_function

    r = env.client.post("/api/v1/jobs/duplicate-sweep", headers=env.h("academic_affairs"), json={"full": True})
    if sweep_function() is None:
        assert r.status_code == 501 and r.json()["code"] == "API_SWEEP_UNAVAILABLE"
        return
    if r.status_code == 409:
        job = env.client.get("/api/v1/jobs", headers=env.h("academic_affairs")).json()["items"][0]["id"]
    else:
        assert r.status_code == 202, r.text
        job = r.json()["id"]
    st = _wait_job(env, job)
    assert st["state"] == "completed", (st["state"], st["error"])
    assert st["run"]["status"] == "completed" and st["kind"] == "duplicate_sweep"
