"""Roster bombs through the real server: `verifier serve` in its own process on loopback, its peak RSS read from /proc.

The issue's probe took the server from 1.1 GB to 4.4 GB with a 1.8 MB XLSX and kept a core busy for 100 s
with a 157 KB one; both must now be refused at once, and roster import must queue for an inference slot.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apihelp import ID_KEY, make_keys
from bombs import jpeg_claiming, xlsx_huge_shared_string, xlsx_many_rows

from verifier.common.settings import Settings
from verifier.store.connect import open_database
from verifier.store.schema import upgrade

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
RSS_SLACK_MB = 120
ROSTER = "考生号,姓名,学院\n20210000000001,张三,文学院\n".encode("utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    """VmHWM of a process: the most resident memory it has ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(tmp_path_factory, cache_dir, pipeline) -> Iterator[tuple[httpx.Client, dict[str, str], int]]:
    """`python -m verifier serve` on 127.0.0.1:<free port> over a fresh SQLite store; yields client, admissions key header, pid."""
    home = tmp_path_factory.mktemp("bomb-home")
    settings = Settings(home=home, cache_dir=cache_dir, id_key=ID_KEY)
    url = settings.resolve_db_url()
    upgrade(url)
    db = open_database(url)
    plain, _ = make_keys(db)
    db.dispose()
    port = _free_port()
    env = {**os.environ, "VERIFIER_HOME": str(home), "VERIFIER_CACHE_DIR": str(cache_dir), "VERIFIER_ID_KEY": ID_KEY}
    proc = subprocess.Popen([sys.executable, "-m", "verifier", "serve", "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                break
        except httpx.TransportError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode(errors="replace")) from None
        time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError("server not ready")
    try:
        yield client, {"Authorization": f"Bearer {plain['admissions']}"}, proc.pid
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _post(client: httpx.Client, headers: dict[str, str], name: str, data: bytes) -> tuple[httpx.Response, float]:
    t0 = time.monotonic()
    r = client.post("/api/v1/rosters", headers=headers, files={"file": (name, data, "application/octet-stream")})
    return r, time.monotonic() - t0


def test_roster_bombs_are_refused_at_once_with_bounded_memory(server, tmp_path: Path) -> None:
    client, headers, pid = server
    r, _ = _post(client, headers, "ok.csv", ROSTER)
    assert r.status_code == 200, r.text
    before = _peak_rss_mb(pid)
    cases = (
        ("shared-string.xlsx", xlsx_huge_shared_string(tmp_path / "ss.xlsx", 1800 * MB), 413, "ROSTER_UNZIPPED_TOO_LARGE"),
        ("long-cell.xlsx", xlsx_huge_shared_string(tmp_path / "cell.xlsx", 100 * MB), 422, "ROSTER_CELL_TOO_LONG"),
        ("rows.xlsx", xlsx_many_rows(tmp_path / "rows.xlsx", 2_000_000), 422, "ROSTER_TOO_MANY_ROWS"),
    )
    for name, path, status, code in cases:
        data = path.read_bytes()
        assert len(data) < 2 * MB, (name, len(data))
        r, seconds = _post(client, headers, name, data)
        assert r.status_code == status and r.json()["code"] == code, (name, r.status_code, r.text[:300])
        assert r.json()["message_zh"] and r.json()["message_en"]
        assert seconds < 15, (name, seconds)
    grown = _peak_rss_mb(pid) - before
    assert grown < RSS_SLACK_MB, f"peak RSS grew {grown:.0f} MB"
    r, _ = _post(client, headers, "ok.csv", ROSTER)
    assert r.status_code == 200 and r.json()["counts"]["unchanged"] == 1, r.text


def test_photo_claiming_16_mpx_in_a_few_hundred_bytes_fails_its_check_without_decoding(server) -> None:
    client, headers, pid = server
    before = _peak_rss_mb(pid)
    r = client.post("/api/v1/photos/check", headers=headers, files={"file": ("21110101150001.jpg", jpeg_claiming(4000, 4000), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "fail" and "IMAGE_SIZE_CLAIM_IMPLAUSIBLE" in [x["code"] for x in r.json()["reasons"]], r.text
    assert _peak_rss_mb(pid) - before < 40  # 16 Mpx decoded would be 48 MB of BGR at least


class _HeldPipeline:
    """The real pipeline, but compare holds its inference slot for a while."""

    def __init__(self, pipeline, seconds: float):
        self._pipeline, self.seconds = pipeline, seconds

    def __getattr__(self, name):
        return getattr(self._pipeline, name)

    def compare(self, a, b):
        time.sleep(self.seconds)
        return self._pipeline.compare(a, b)


def test_roster_import_waits_for_an_inference_slot(tmp_path: Path, cache_dir: Path, pipeline, faces: Path) -> None:
    """One slot, no queue: while a comparison holds the slot, a roster upload is refused 503 API_BUSY with Retry-After."""
    import uvicorn

    from api.app import create_app

    settings = Settings(home=tmp_path / "home", cache_dir=cache_dir, id_key=ID_KEY, api_inference_slots=1, api_inference_queue=0)
    url = settings.resolve_db_url()
    upgrade(url)
    db = open_database(url)
    plain, _ = make_keys(db)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, url, pipeline=_HeldPipeline(pipeline, 3.0)), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        photo = next(p for p in sorted(faces.iterdir()) if p.suffix == ".jpg").read_bytes()

        async def both() -> tuple[httpx.Response, httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as ac:
                held = asyncio.ensure_future(ac.post("/api/v1/compare", headers={"Authorization": f"Bearer {plain['academic_affairs']}"},
                                                     files={"a": ("a.jpg", photo), "b": ("b.jpg", photo)}))
                await asyncio.sleep(1.0)
                roster = await ac.post("/api/v1/rosters", headers={"Authorization": f"Bearer {plain['admissions']}"}, files={"file": ("r.csv", ROSTER)})
                return await held, roster

        held, roster = asyncio.run(both())
        assert held.status_code == 200, held.text
        assert roster.status_code == 503 and roster.json()["code"] == "API_BUSY" and roster.headers.get("retry-after"), roster.text
        after = httpx.post(base + "/api/v1/rosters", headers={"Authorization": f"Bearer {plain['admissions']}"}, files={"file": ("r.csv", ROSTER)}, timeout=60)
        assert after.status_code == 200 and after.json()["counts"]["inserted"] == 1, after.text
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        db.dispose()
