"""`verifier photos fix SRC OUT`: the photo fixer on the command line (registered into the `photos` group)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from verifier.common.reasons import VerifierError

EXIT_OK, EXIT_NOT_FIXED, EXIT_USAGE = 0, 1, 2


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _usage_error(exc: VerifierError) -> int:
    r = exc.reason
    _err(f"[{r.code}] {r.message_zh} / {r.message_en}" + (f": {exc.detail}" if exc.detail else ""))
    return EXIT_USAGE


def cmd_fix(args: argparse.Namespace) -> int:
    """Run the fixer; exit 0 when every source became an upload-ready photo, 1 otherwise, 2 on usage errors."""
    from tqdm import tqdm

    from verifier.photos.fixer import check_folders, fix_folder, list_sources
    from verifier.core.pipeline import Pipeline
    from verifier.photos.profiles import load_profile
    from verifier.common.settings import Settings, cpu_count

    try:
        src, _ = check_folders(Path(args.src), Path(args.out))
        profile = load_profile(args.profile)
        roster = None
        if args.roster:
            from verifier.photos.roster import load_roster

            pattern = profile.name_pattern
            roster = load_roster(Path(args.roster), pattern) if pattern else load_roster(Path(args.roster))
    except VerifierError as exc:
        return _usage_error(exc)
    settings = Settings.from_env()
    if args.model_dir:
        settings = dataclasses.replace(settings, model_dir=args.model_dir)
    pipeline = Pipeline.load(args.pack, threads=args.threads, settings=settings)
    total = len(list_sources(src))
    with tqdm(total=total, unit="photo", file=sys.stderr, disable=None, desc="fix") as bar:

        def show(result: Any) -> None:
            bar.update(1)
            if args.json:
                print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
            elif not result.uploadable:
                why = "; ".join(f"{r.code} {r.message_zh}" for r in result.reasons)
                bar.write(f"{result.source}: {result.status} — {why}", file=sys.stdout)

        workers = args.workers or cpu_count()
        report = fix_folder(Path(args.src), Path(args.out), pipeline, profile, roster, progress=show, workers=workers)
    c = report.counts
    summary = (
        f"修复 fixed={c['fixed']} 未通过检查 check_failed={c['check_failed']} 未修复 not_fixed={c['not_fixed']}"
        f" / {len(report.results)} sources; upload.zip: {len(report.zipped)} photos; report: {report.csv_path}"
    )
    _err(summary)
    return EXIT_OK if report.all_fixed else EXIT_NOT_FIXED


def register(photos_subparsers: Any) -> argparse.ArgumentParser:
    """Add `fix` to the `verifier photos` subcommands."""
    f = photos_subparsers.add_parser(
        "fix",
        help="make upload-ready ID photos (295x413 JPEG <= 50 KB, named <考生号>.jpg) from source photos",
        description="照片修复（补传、勘误）：从源照片裁出证件照，输出照片、修复报告（CSV/XLSX）与 upload.zip。源文件只读。",
    )
    f.add_argument("src", help="folder of source photos (read only; searched recursively)")
    f.add_argument("out", help="output folder (must not be inside SRC, nor contain it)")
    f.add_argument("--roster", default=None, help="roster CSV/XLSX: maps 学号-named files to 考生号 and checks 考生号")
    f.add_argument("--profile", default="admission", help="built-in profile name or a JSON/TOML profile file (default: admission)")
    f.add_argument("--json", action="store_true", help="one JSON object per source on stdout")
    f.add_argument("--pack", default=None, help="model pack id (default: sface-yunet-int8)")
    f.add_argument("--model-dir", type=Path, default=None, help="folder with the pack's ONNX files (InsightFace packs)")
    f.add_argument("--threads", type=int, default=None, help="inference threads for this process")
    f.add_argument("--workers", type=int, default=None, help="worker threads sharing the pipeline (default: all cores)")
    f.set_defaults(func=cmd_fix)
    return f
