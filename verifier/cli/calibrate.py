"""`verifier calibrate`: evaluate a pack on labelled pairs, recommend thresholds, write plots, reports and metrics.

Only the arguments live here; numpy, scipy, matplotlib and the run itself (verifier.calibrate.run) are imported
when the command runs, so that `verifier --help` does not load them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from verifier.common.choices import DEFAULT_TARGET_FMR, DEFAULT_TARGET_FNMR


def register(subparsers: Any) -> None:
    """Add the `calibrate` sub-command."""
    c = subparsers.add_parser("calibrate", help="accuracy evaluation and threshold calibration on labelled photos (准确率评估与阈值校准)")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", type=Path, help="CSV with header file_a,file_b,same (1 same person, 0 different); optional id_a,id_b")
    src.add_argument("--identity-folders", type=Path, help="folder of <identity>_<n> images, or one sub-folder per identity")
    src.add_argument("--lfw-pairs", type=Path, help="LFW-style pairs.txt (name n1 n2 / name1 n1 name2 n2) over the --images folder")
    src.add_argument("--bin", type=Path, help="packed verification set (lfw.bin, cfp_fp.bin, agedb_30.bin, ...): aligned 112x112 pairs, recognizer only")
    c.add_argument("--images", type=Path, default=None, help="image folder for --lfw-pairs")
    c.add_argument("--exclude", type=Path, default=None, help="text file of image file names to leave out (one per line, # comments): known label errors")
    c.add_argument("--out", type=Path, required=True, help="output folder: PNG plots, report.html, report.md, metrics.json")
    c.add_argument("--pack", default=None, help="model pack id (default: sface-yunet-int8)")
    c.add_argument("--manifest", type=Path, default=None, help="calibrate (and with --write-pack rewrite) this manifest file instead of the installed one")
    c.add_argument("--model-dir", type=Path, default=None, help="folder with the pack's ONNX files (InsightFace packs)")
    c.add_argument("--target-fmr", type=float, default=DEFAULT_TARGET_FMR, help="false-match rate the accept threshold aims at (default 1e-5)")
    c.add_argument("--target-fnmr", type=float, default=DEFAULT_TARGET_FNMR, help="false-non-match rate the reject threshold allows (default 1e-3)")
    c.add_argument("--gallery-size", type=int, default=100_000, help="students in one duplicate sweep (default 100000)")
    c.add_argument("--max-false-duplicates", type=float, default=1.0, help="false duplicate pairs allowed per sweep (default 1)")
    c.add_argument("--bootstrap", type=int, default=1000, help="identity-bootstrap replicates (default 1000)")
    c.add_argument("--tail-bootstrap", type=int, default=200, help="bootstrap refits of the impostor tail for the duplicate intervals (default 200)")
    c.add_argument("--max-impostor-pairs", type=int, default=30_000_000, help="sample impostor pairs down to this many (identity folders)")
    c.add_argument("--quality-study", action="store_true", help="also degrade the photos (blur, size, crop, roll, exposure, JPEG) and study the scores")
    c.add_argument("--write-pack", action="store_true", help="write the recommended thresholds into the pack manifest, with data description and date")
    c.add_argument("--id-card", action="store_true",
                   help="calibrate the intake check: admission photo (295x413) vs ID-card photo (102x126) of each pair; --write-pack writes thresholds.id_card")
    c.add_argument("--max-images", type=int, default=None,
                   help="identity folders: keep whole identities, in the order of their names' SHA-256, up to this many images (a reproducible subset)")
    c.add_argument("--data-description", default=None, help="words for the manifest's source.data (default: describes the input)")
    c.add_argument("--peer-pack", default=None, help="also evaluate this pack (e.g. buffalo_l) on the same pairs")
    c.add_argument("--peer-model-dir", type=Path, default=None, help="model folder for --peer-pack")
    c.add_argument("--no-dlib", action="store_true", help="skip face_recognition (dlib) even when installed")
    c.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the calibration (verifier.calibrate.run)."""
    from verifier.calibrate.run import run as calibrate

    return calibrate(args)
