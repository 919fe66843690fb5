"""Group cases (issue 21, defects 1 and 2): the cost of showing and deciding a whole duplicate group over HTTP.

Run from the repository root:

    .venv/bin/python benchmarks/bench_groupcases.py [--members 36] [--pairs 2502] [--cases 5000] [--repeat 20] [--write]

It builds a fresh SQLite store in a temporary folder. The store holds one duplicate_face case of `--members`
students in five 学院, two photos each, and `--pairs` photo pairs: the size of the largest real group in the issue.
It also holds `--cases` other open cases in 文学院. uvicorn serves the app on loopback (models not loaded: the
case endpoints need only the store), and the benchmark times:

- `GET /cases/{id}`: every member, pair and the score matrix; also reports the response size.
- `GET /cases?limit=50` for an unscoped key and for a 文学院 key (the every-member scope filter).
- `members.adjudicated()`: the sweep's per-pair adjudication query.
- One `POST /cases/{id}/members` giving every member a verdict (the case resolves).

Medians of `--repeat` runs, with the load (`uptime`) before and after.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine_line, write_section  # noqa: E402

SECTION = "## Group cases (issue 21)"
COLLEGES = ["文学院", "法学院", "理学院", "工学院", "医学院"]


def uptime() -> str:
    """The load averages as `uptime` prints them."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def build(home: Path, n_members: int, n_pairs: int, n_cases: int) -> tuple[str, int, dict[str, str]]:
    """A migrated SQLite store with one big group case and many small ones; returns the URL, the case id and keys."""
    from itertools import combinations

    from api.keys import create_key
    from verifier.common.settings import Settings
    from verifier.store import members
    from verifier.store.cases import open_case
    from verifier.store.connect import open_database
    from verifier.store.models import DuplicateCandidate, Photo, Student
    from verifier.store.photos import add_photo
    from verifier.store.photostore import PhotoStore
    from verifier.store.schema import upgrade

    url = Settings(home=home).resolve_db_url()
    upgrade(url)
    db = open_database(url)
    store = PhotoStore.for_home(home)

    def write(s) -> int:
        photos: list[Photo] = []
        for i in range(n_members):
            st = Student(ksh=f"2111{i:010d}", name=f"学生{i}", college=COLLEGES[i % len(COLLEGES)], id_masked=f"1101**********{i:04d}")
            s.add(st)
            s.flush()
            for kind in ("admission", "graduation"):
                photos.append(add_photo(s, store, st, kind, b"\xff\xd8\xff\xe0" + f"photo {i} {kind}".encode() * 40 + b"\xff\xd9"))
        cands = []
        for a, b in combinations(photos, 2):
            if a.student_id != b.student_id and len(cands) < n_pairs:
                cands.append(DuplicateCandidate(photo_a_id=a.id, photo_b_id=b.id, student_a_id=a.student_id, student_b_id=b.student_id,
                                                pack_id="sface-yunet-int8", score=0.7 + 0.3 * ((a.id * 7 + b.id) % 97) / 97))
        s.add_all(cands)
        s.flush()
        case = open_case(s, "duplicate_face", "duplicate", cands[0].id, photos[0].student_id, actor="bench").case
        members.add_pairs(s, case, cands, "bench")
        filler = Student(ksh="21119999999999", name="其他", college=COLLEGES[0])
        s.add(filler)
        s.flush()
        for j in range(n_cases):
            open_case(s, "identity_check", "photo", 10_000_000 + j, filler.id, actor="bench")
        return case.id

    case_id = db.transaction(write)
    keys = {
        "all": db.transaction(lambda s: create_key(s, "reviewer", "bench", actor="bench").secret),
        "scoped": db.transaction(lambda s: create_key(s, "reviewer", "bench-scoped", [COLLEGES[0]], actor="bench").secret),
    }
    db.dispose()
    return url, case_id, keys


def serve(app):
    """uvicorn on 127.0.0.1:<free port> in a thread; returns an httpx client and a stop function."""
    import socket
    import threading

    import httpx
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    while not server.started:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=20)
        client.close()

    return client, stop


def timed(fn, repeat: int) -> float:
    """Median wall time of fn in milliseconds."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=36)
    ap.add_argument("--pairs", type=int, default=2502)
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--write", action="store_true", help="replace this section of docs/BENCHMARKS.md")
    args = ap.parse_args()

    from api.app import create_app
    from verifier.common.settings import Settings
    from verifier.store import members
    from verifier.store.connect import open_database

    before = uptime()
    with tempfile.TemporaryDirectory(prefix="bench-groups-") as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        url, case_id, keys = build(home, args.members, args.pairs, args.cases)
        build_s = time.perf_counter() - t0
        app = create_app(Settings(home=home), url, load=False)
        app.state.verifier.db = open_database(url)  # the case endpoints need the store only, not the models
        client, stop = serve(app)
        try:
            h_all = {"Authorization": f"Bearer {keys['all']}"}
            h_scoped = {"Authorization": f"Bearer {keys['scoped']}"}
            detail = client.get(f"/api/v1/cases/{case_id}", headers=h_all)
            assert detail.status_code == 200, detail.text[:300]
            body = detail.json()
            assert len(body["members"]) == args.members and len(body["pairs"]) == args.pairs
            assert client.get(f"/api/v1/cases/{case_id}", headers=h_scoped).status_code == 404
            rows = [
                ("GET /cases/{id} (whole group)", timed(lambda: client.get(f"/api/v1/cases/{case_id}", headers=h_all), args.repeat)),
                ("GET /cases/{id}, 文学院 key (404)", timed(lambda: client.get(f"/api/v1/cases/{case_id}", headers=h_scoped), args.repeat)),
                ("GET /cases?limit=50, unscoped key", timed(lambda: client.get("/api/v1/cases?limit=50", headers=h_all), args.repeat)),
                ("GET /cases?limit=50, 文学院 key", timed(lambda: client.get("/api/v1/cases?limit=50", headers=h_scoped), args.repeat)),
            ]
            db = open_database(url)
            with db.session() as s:
                rows.append(("members.adjudicated() (sweep)", timed(lambda: members.adjudicated(s), args.repeat)))
            db.dispose()
            verdicts = [{"member_id": m["member_id"], "outcome": "confirmed" if i % 4 else "dismissed"} for i, m in enumerate(body["members"])]
            t0 = time.perf_counter()
            r = client.post(f"/api/v1/cases/{case_id}/members", headers=h_all, json={"verdicts": verdicts, "pairs_seen": args.pairs})
            decide_ms = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200 and r.json()["state"] == "resolved", r.text[:300]
            rows.append((f"POST /cases/{{id}}/members ({args.members} verdicts, resolves; once)", decide_ms))
        finally:
            stop()
    after = uptime()

    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/bench_groupcases.py --members {args.members} --pairs {args.pairs} --cases {args.cases} --repeat {args.repeat} --write`  ",
        f"Machine: {machine_line()}  ",
        f"Load before: `{before}`  ",
        f"Load after: `{after}`",
        "",
        f"Store: SQLite. One duplicate_face case of {args.members} students in {len(COLLEGES)} 学院, with 2 photos each and {args.pairs} photo pairs "
        f"(the largest group in the issue), plus {args.cases} other open cases. Built in {build_s:.1f} s. Served by uvicorn on loopback, "
        f"with client and server on one machine. The whole-group detail response is {len(detail.content) / 1024:.0f} KB. "
        f"Median of {args.repeat} runs.",
        "",
        "The load averages above show how much else was running. On a shared machine every figure is an upper bound: rerun in a quiet window.",
        "",
        "| operation | median ms |",
        "|---|---|",
        *[f"| {name} | {ms:.1f} |" for name, ms in rows],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
