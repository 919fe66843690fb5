"""Photo-store writes: `PhotoStore.put` one after another vs `put_many` (parallel fsyncs), per photo.

Run from the repository root (needs the bench_batch cohort, made by `benchmarks/bench_batch.py --students 2000`):

    .venv/bin/python benchmarks/bench_photostore.py [--photos 320] [--group 16]

Writes into a fresh folder under /tmp and removes it; prints wall and CPU ms per photo and the load average.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import load_average  # noqa: E402

from verifier.store.photostore import PhotoStore  # noqa: E402

COHORT = Path("/tmp/verifier-bench-batch/cohort-2000/admission")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=320)
    ap.add_argument("--group", type=int, default=16, help="photos per transaction (the batch commits 8 students = 16 photos)")
    a = ap.parse_args()
    if not COHORT.is_dir():
        sys.exit(f"{COHORT} missing: run benchmarks/bench_batch.py --students 2000 first")
    datas = [p.read_bytes() for p in sorted(COHORT.iterdir())[: a.photos]]
    print(f"load before: {load_average()}")
    ways = {"put, one after another": lambda st, g: [st.put(d) for d in g], "put_many": lambda st, g: st.put_many(g)}
    for name, write in ways.items():
        root = Path(tempfile.mkdtemp(prefix="bench-photostore-"))
        store = PhotoStore(root / "photos")
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(datas), a.group):
            write(store, datas[i : i + a.group])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        shutil.rmtree(root)
        print(f"{name}: {1000 * wall / len(datas):.2f} wall ms/photo, {1000 * cpu / len(datas):.2f} CPU ms/photo")
    print(f"load after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
