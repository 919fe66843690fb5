"""Load test of the HTTP API (issue 7): 16 async clients posting compare requests on loopback, then a burst.

Run from the repository root (the server is started here, as a subprocess, on a random port):

    .venv/bin/python benchmarks/bench_api.py [--clients 16] [--seconds 60] [--burst 48] [--write]

It makes ID photos (295x413 JPEG <= 50 KB) from the face set in a temporary folder, creates a fresh
SQLite home with an `academic_affairs` key, starts `verifier serve` (default limits: one inference
slot per core, 2 waiting, then 503 + Retry-After), and runs:

1. **sustained**: `--clients` concurrent clients (httpx.AsyncClient), each posting `/api/v1/compare`
   with two ID photos back to back for `--seconds`; a 503 is counted and the client waits Retry-After.
2. **burst**: `--burst` requests at the same instant, beyond the concurrency bound: how many are
   served, how many get a deliberate 503, how fast the refusals come back.

Reported: throughput (compares/s and photos/s), p50/p95/p99 latency of served requests, errors (any
status other than 200 and the deliberate 503s), 503s, peak server RSS (psutil, sampled every 0.2 s),
and the machine's load (`uptime`) before and after. The reference for the throughput target is the
CLI measured in this same run on the same photos: `verifier compare --pairs` as a whole process (start-up and model
loading included; every photo once in the pairs file), and the library call `analyze_files` (2 workers, warm-up
excluded) beside it. Targets (issue 20): API photos/s >= 80% of the CLI's, p99 < 250 ms at 16 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import httpx  # noqa: E402
import psutil  # noqa: E402
from common import machine_line, write_section  # noqa: E402

DOC = REPO / "docs" / "BENCHMARKS.md"
SECTION = "## HTTP API (issue 7)"
VERIFIER = [sys.executable, "-m", "verifier"]  # this checkout's code (PYTHONPATH below), whichever venv runs the script
TARGET_SHARE, TARGET_P99_MS = 0.80, 250.0


def uptime() -> str:
    """The load averages as `uptime` prints them."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_photos(folder: Path, count: int) -> list[bytes]:
    """ID photos cut from the face set (the photo-checks benchmark's builder)."""
    from bench_checks import make_id_photos

    from verifier.core.pipeline import Pipeline

    make_id_photos(Pipeline.load(threads=1), folder, count)
    return [p.read_bytes() for p in sorted(folder.glob("*.jpg"))]


def cli_whole_process(folder: Path, env: dict[str, str], workers: int = 2) -> tuple[float, float]:
    """Photos/s and wall seconds of `verifier compare --pairs` over the photos (each once), as a user runs it."""
    paths = sorted(folder.glob("*.jpg"))
    csv_path = folder.parent / "pairs.csv"
    rows = ["file_a,file_b"] + [f"photos/{a.name},photos/{b.name}" for a, b in zip(paths[0::2], paths[1::2])]
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    n = 2 * (len(rows) - 1)
    t0 = time.perf_counter()
    subprocess.run([*VERIFIER, "compare", "--pairs", str(csv_path), "--workers", str(workers)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - t0
    return n / took, took


def cli_reference(folder: Path, workers: int = 2) -> float:
    """Photos/s of the CLI pipeline (analyze_files over worker threads) on the same photos, pool start excluded."""
    from verifier.core.workers import analyze_files

    paths = [str(p) for p in sorted(folder.glob("*.jpg"))]
    warm = 4 * workers
    t0, n = None, 0
    for i, _ in enumerate(analyze_files(paths + paths, workers=workers, chunk_size=4)):
        if i == warm:
            t0 = time.perf_counter()
        elif i > warm:
            n += 1
    return n / (time.perf_counter() - t0)


class RssSampler(threading.Thread):
    """Peak RSS of the server process, sampled every 0.2 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.2)


async def sustained(base: str, key: str, photos: list[bytes], clients: int, seconds: float) -> dict:
    """Clients post compares back to back; 503s wait Retry-After."""
    lat: list[float] = []
    counts = {"ok": 0, "busy": 0, "errors": 0}
    errors: dict[str, int] = {}
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=limits) as client:

        async def worker(i: int) -> None:
            rng = random.Random(i)
            while time.monotonic() < end:
                a, b = rng.sample(photos, 2)
                t0 = time.perf_counter()
                try:
                    r = await client.post("/api/v1/compare", files={"a": ("a.jpg", a, "image/jpeg"), "b": ("b.jpg", b, "image/jpeg")})
                except httpx.HTTPError as exc:
                    counts["errors"] += 1
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                took = time.perf_counter() - t0
                if r.status_code == 200:
                    counts["ok"] += 1
                    lat.append(took)
                elif r.status_code == 503 and r.headers.get("retry-after"):
                    counts["busy"] += 1
                    await asyncio.sleep(float(r.headers["retry-after"]))
                else:
                    counts["errors"] += 1
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        wall = time.monotonic() - t0
    return {**counts, "error_kinds": errors, "wall": wall, "lat": lat}


async def burst(base: str, key: str, photos: list[bytes], n: int) -> dict:
    """n compares at the same instant."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=limits) as client:
        await client.get("/api/v1/me")

        async def one(i: int) -> tuple[int, float, str | None]:
            t0 = time.perf_counter()
            r = await client.post("/api/v1/compare", files={"a": ("a.jpg", photos[i % len(photos)]), "b": ("b.jpg", photos[(i + 1) % len(photos)])})
            return r.status_code, time.perf_counter() - t0, r.headers.get("retry-after")

        results = await asyncio.gather(*(one(i) for i in range(n)))
    busy = [t for s, t, ra in results if s == 503 and ra]
    return {
        "ok": sum(1 for s, _, _ in results if s == 200),
        "busy": len(busy),
        "errors": sum(1 for s, _, ra in results if s != 200 and not (s == 503 and ra)),
        "busy_p50_ms": statistics.median(busy) * 1000 if busy else None,
    }


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--burst", type=int, default=48)
    ap.add_argument("--photos", type=int, default=300, help="ID photos (the CLI reference analyses each once)")
    ap.add_argument("--write", action="store_true", help=f"write the '{SECTION}' section of docs/BENCHMARKS.md")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        photos = make_photos(root / "photos", args.photos)
        ref = cli_reference(root / "photos")
        env = {**os.environ, "VERIFIER_HOME": str(root / "home"), "VERIFIER_ID_KEY": "bench-id-key-0123456789", "PYTHONPATH": str(REPO)}
        cli_load_before = uptime()
        cli_rate, cli_s = cli_whole_process(root / "photos", env)
        cli_load_after = uptime()
        db = f"sqlite:///{root / 'home' / 'verifier.db'}"
        subprocess.run([*VERIFIER, "db", "upgrade", "--db", db], env=env, check=True, capture_output=True)
        key = subprocess.run([*VERIFIER, "keys", "create", "--role", "academic_affairs", "--name", "bench", "--db", db], env=env, check=True,
                             capture_output=True, text=True).stdout.strip()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([*VERIFIER, "serve", "--port", str(port), "--db", db, "--log-level", "warning"], env=env)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            sampler = RssSampler(server.pid)
            sampler.start()
            load_before = uptime()
            cpu0 = psutil.cpu_times()
            s = asyncio.run(sustained(base, key, photos, args.clients, args.seconds))
            cpu1 = psutil.cpu_times()
            b = asyncio.run(burst(base, key, photos, args.burst))
            load_after = uptime()
            metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {key}"}).text
            sampler.stop.set()
        finally:
            server.terminate()
            server.wait(timeout=30)
    busy_cpu = sum(getattr(cpu1, f) - getattr(cpu0, f) for f in ("user", "system", "nice")) / s["wall"]
    cps = s["ok"] / s["wall"]
    lat = s["lat"]
    p50, p95, p99 = (pct(lat, q) for q in (50, 95, 99)) if lat else (float("nan"),) * 3
    rss = sampler.peak / 2**20
    infer = [line for line in metrics.splitlines() if line.startswith("verifier_inference_seconds_sum") or line.startswith("verifier_inference_seconds_count")]
    section = f"""{SECTION}

Command: `.venv/bin/python benchmarks/bench_api.py --clients {args.clients} --seconds {args.seconds:g} --burst {args.burst} --write`  
Machine: {machine_line()}; date {dt.datetime.now():%Y-%m-%d %H:%M}  
Load before: `{load_before}`  
Load after: `{load_after}`  
Whole machine busy during the sustained phase: {busy_cpu:.2f} of {os.cpu_count()} cores (server, clients and everyone else).

Server: `verifier serve` (uvicorn, one process), default limits: {os.cpu_count()} inference slots (one per core, one ONNX Runtime thread each), 2 waiting, then 503 with `Retry-After: 1`; clients on the same machine (loopback). Inputs: {len(photos)} ID photos (295x413 JPEG <= 50 KB) cut from the face set; each request compares two different ones.

| Phase | Served | Throughput | p50 / p95 / p99 latency (served) | Errors | 503 (deliberate) |
|---|---|---|---|---|---|
| {args.clients} clients, {s['wall']:.0f} s | {s['ok']} | {cps:.1f} compares/s = **{2 * cps:.1f} photos/s** | {p50:.0f} / {p95:.0f} / **{p99:.0f} ms** | {s['errors']} {s['error_kinds'] or ''} | {s['busy']} |
| burst of {args.burst} at once | {b['ok']} | – | – | {b['errors']} | {b['busy']} (median answer {b['busy_p50_ms'] or 0:.0f} ms) |

Peak server RSS: **{rss:.0f} MB**. The CLI on the same {len(photos)} photos in the same run: `verifier compare --pairs` as a whole process,
{cli_rate:.1f} photos/s ({cli_s:.1f} s; load before `{cli_load_before}`, after `{cli_load_after}`); the library call alone
(`analyze_files`, 2 threads sharing one pipeline, warm-up excluded): {ref:.1f} photos/s.
Inference time from the server's `/metrics`: {'; '.join(infer) or '-'}.

Targets:

- 0 errors other than deliberate 503s: {s['errors'] + b['errors']} → **{'met' if s['errors'] + b['errors'] == 0 else 'missed'}**
- p99 < {TARGET_P99_MS:.0f} ms at {args.clients} clients (issue 20): {p99:.0f} ms → **{'met' if p99 < TARGET_P99_MS else 'missed'}**
- throughput >= {100 * TARGET_SHARE:.0f}% of the CLI's (`compare --pairs`, whole process) photos/s: {2 * cps:.1f} vs {cli_rate:.1f} ({100 * 2 * cps / cli_rate:.0f}%) → **{'met' if 2 * cps >= TARGET_SHARE * cli_rate else 'missed'}**
- the same against the library call alone: {2 * cps:.1f} vs {ref:.1f} ({100 * 2 * cps / ref:.0f}%)
- server RSS < 500 MB: {rss:.0f} MB → **{'met' if rss < 500 else 'missed'}**
"""
    print(section)
    if args.write:
        write_section(section)


if __name__ == "__main__":
    main()
