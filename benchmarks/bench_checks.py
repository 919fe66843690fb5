"""Throughput of `verifier photos check` (issue 3): spec-only and full checks, photos per second.

Run from the repository root:

    .venv/bin/python benchmarks/bench_checks.py [--photos 200] [--repeat 3] [--write]

It makes ~200 ID photos (295x413 JPEG <= 50 KB) in a temporary folder the
way the tests do (detect the face in a face-set photo, frame it, encode),
with variants (mirror, slight brightness changes) to reach the count, names
them by 14-digit 考生号, then times `check_paths` over the folder: spec only
(no model, header only), and full checks on one process and on all cores.
The best of `--repeat` runs is reported; model loading is not counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import machine_line, write_section  # noqa: E402

from verifier.photos.checks import check_paths  # noqa: E402
from verifier.common.faceset import faces_dir, single_face_images  # noqa: E402
from verifier.photos.framing import frame_face  # noqa: E402
from verifier.core.pipeline import Pipeline  # noqa: E402
from verifier.photos.profiles import admission  # noqa: E402
from verifier.common.settings import cpu_count  # noqa: E402

DOC = REPO / "docs" / "BENCHMARKS.md"
SECTION = "## Photo checks (issue 3)"


def make_id_photos(pipeline: Pipeline, dst: Path, count: int) -> int:
    """Frame every face-set photo as a 295x413 ID photo and write `count` variants under 考生号 names."""
    root = faces_dir()
    if root is None:
        sys.exit("face set ../shared/faces not found (set VERIFIER_FACES)")
    portraits = []
    for src in single_face_images(root):
        analysis = pipeline.analyze(src)
        if analysis.face is not None:
            portraits.append(frame_face(pipeline.decode(src).pixels, analysis.face))
    n = 0
    variant = 0
    while n < count:
        for base in portraits:
            if n >= count:
                break
            img = cv2.flip(base, 1) if variant % 2 else base
            img = cv2.convertScaleAbs(img, alpha=1.0, beta=(variant // 2) * 4 - 6)
            for q in (90, 80, 70, 60, 50):
                ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
                if len(buf) <= admission.max_bytes:
                    break
            (dst / f"2021{n:010d}.jpg").write_bytes(buf.tobytes())
            n += 1
        variant += 1
    return n


def best_rate(run, repeat: int) -> tuple[float, int, dict[str, int]]:
    """Best photos/s over `repeat` runs of `run()`, which returns the results."""
    best, counts, total = 0.0, {}, 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        results = list(run())
        rate = len(results) / (time.perf_counter() - t0)
        if rate > best:
            best, total = rate, len(results)
            counts = {s: sum(r.status == s for r in results) for s in ("pass", "warn", "fail")}
    return best, total, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help=f"write the '{SECTION}' section of docs/BENCHMARKS.md")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    pipeline = Pipeline.load(threads=1)
    cores = cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        n = make_id_photos(pipeline, folder, args.photos)
        rows = [
            ("spec only (no model)", *best_rate(lambda: check_paths([folder], admission), args.repeat)),
            ("full, 1 process, 1 thread", *best_rate(lambda: check_paths([folder], admission, pipeline, workers=1), args.repeat)),
            (f"full, {cores} threads sharing the pipeline", *best_rate(lambda: check_paths([folder], admission, pipeline, workers=cores), args.repeat)),
        ]
    load = os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/bench_checks.py --photos {args.photos} --repeat {args.repeat} --write`  ",
        f"Machine: {machine_line()}  ",
        f"Date: {dt.date.today().isoformat()}; 1-minute load average after the runs: {load:.1f} (other work on the machine slows every number)",
        "",
        f"Input: {n} ID photos, 295x413 JPEG <= 50 KB, cut from the face set's one-person photos as the tests do "
        "(mirrored and brightness variants to reach the count), in a temporary folder. "
        "Spec only: read the file, parse the JPEG header (EXIF orientation), check name, size, format and dimensions. "
        "Full: also decode, detect faces (YuNet) and compute every quality metric. Best of the runs; the model is loaded "
        "once, before timing, and shared by the threads.",
        "",
        "| configuration | photos | photos/s | pass / warn / fail |",
        "|---|---|---|---|",
    ]
    for label, rate, total, c in rows:
        lines.append(f"| {label} | {total} | {rate:,.1f} | {c['pass']} / {c['warn']} / {c['fail']} |")
    lines += ["", "Target: spec only >= 1,000 photos/s. Warnings are mostly `QUALITY_BACKGROUND_NOT_PLAIN` (the face set's photos are not shot against a plain wall).", ""]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(section)


if __name__ == "__main__":
    main()
