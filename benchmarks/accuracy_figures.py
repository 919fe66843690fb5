"""ROC and DET of every data set (and peer) on one figure each, from the scores.npz of several `verifier calibrate` runs.

    .venv/bin/python benchmarks/accuracy_figures.py --set lfw-gray=/tmp/acc-run/lfw --set face-set=/tmp/acc-run/faces --out docs/accuracy

Writes roc-all.png and det-all.png (curve label = data set: system).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from verifier.calibrate.metrics import roc_curve
from verifier.calibrate.plots import det_plot, roc_plot


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", required=True, metavar="NAME=DIR", help="a data set's name and its calibrate --out folder")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    curves, counts = {}, {}
    for item in args.set:
        name, _, folder = item.partition("=")
        scores = np.load(Path(folder) / "scores.npz")
        systems = sorted({k.rsplit("__", 1)[0] for k in scores.files})
        for system in systems:
            label = f"{name}: {system}"
            curves[label] = roc_curve(scores[f"{system}__genuine"], scores[f"{system}__impostor"])
            counts[label] = int(scores[f"{system}__impostor"].size)
    args.out.mkdir(parents=True, exist_ok=True)
    roc_plot(curves, args.out / "roc-all.png", counts)
    det_plot(curves, args.out / "det-all.png")
    print(f"written: {args.out / 'roc-all.png'}, {args.out / 'det-all.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
