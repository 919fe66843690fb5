"""`verifier photos ...`: the photo command group, and `photos check` itself.

`register(subparsers)` adds the `photos` group and returns its subparsers so
other commands (`photos fix`, roster options) join the same group.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from verifier.photos.checks import CheckResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STATUS_LABEL = {"pass": "通过 PASS", "warn": "警告 WARN", "fail": "不通过 FAIL"}


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _roster_ksh(path: str | None) -> set[str] | None:
    """考生号 on the roster file, or None without --roster."""
    if path is None:
        return None
    from verifier.photos.roster import load_roster

    return set(load_roster(Path(path)).students)


def _line(result: CheckResult) -> str:
    """One human-readable line: status, file, then each reason with measured and limit."""
    parts = [f"{STATUS_LABEL[result.status]}  {result.file}"]
    for r in result.reasons:
        extra = ""
        if r.measured is not None or r.limit is not None:
            extra = f" (测量 measured={json.dumps(r.measured, ensure_ascii=False)}, 限值 limit={json.dumps(r.limit, ensure_ascii=False)})"
        parts.append(f"    [{r.code}] {r.message_zh} / {r.message_en}{extra}")
    return "\n".join(parts)


def _progress(paths: list[str], results: Iterator[CheckResult]) -> Iterator[CheckResult]:
    """Wrap results in a tqdm bar on stderr when a folder is checked and stderr is a terminal."""
    if not (sys.stderr.isatty() and any(Path(p).is_dir() for p in paths)):
        yield from results
        return
    from tqdm import tqdm

    from verifier.photos.checks import iter_photo_paths

    total = sum(1 for _ in iter_photo_paths(paths))
    with tqdm(total=total, unit="photo", file=sys.stderr, desc="检查 check") as bar:
        for r in results:
            bar.update(1)
            yield r


def cmd_check(args: argparse.Namespace) -> int:
    """Check photos against a profile; exit 0 when none fails, 1 otherwise."""
    from verifier.photos.checks import check_paths
    from verifier.photos.profiles import load_profile

    profile = load_profile(args.profile)
    roster = _roster_ksh(args.roster)
    pipeline = None
    if not args.spec_only:
        from verifier.core.pipeline import Pipeline

        pipeline = Pipeline.load(args.pack, args.model_dir, threads=args.threads)
    writer = None
    if args.out:
        from verifier.photos.report import ReportWriter

        writer = ReportWriter(Path(args.out))
    counts = {"pass": 0, "warn": 0, "fail": 0}
    try:
        for result in _progress(args.paths, check_paths(args.paths, profile, pipeline, roster, args.workers)):
            counts[result.status] += 1
            if writer is not None:
                writer.add(result)
            if args.json:
                print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
            elif not args.quiet or result.status == "fail":
                print(_line(result), flush=True)
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    if writer is not None:
        written = writer.close()
        if not args.quiet:
            _err("报告 reports: " + ", ".join(str(p) for p in written))
    if not args.quiet:
        total = sum(counts.values())
        _err(
            f"共 {total} 张：通过 {counts['pass']}，警告 {counts['warn']}，不通过 {counts['fail']}"
            f" / {total} photos: pass={counts['pass']} warn={counts['warn']} fail={counts['fail']}"
            f" (profile {profile.name} {profile.version}{', spec only' if args.spec_only else ''})"
        )
    return EXIT_FAILED if counts["fail"] else EXIT_OK


def add_check(photos_subparsers: Any) -> argparse.ArgumentParser:
    """Add `check` to the `verifier photos` subcommands."""
    c = photos_subparsers.add_parser(
        "check",
        help="check photos against a specification profile (spec and quality)",
        description="照片检查：规格（大小、格式、尺寸、文件名）与质量（单人脸、位置、姿态、清晰度、曝光、色彩、背景）。",
    )
    c.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders (searched recursively)")
    c.add_argument("--roster", default=None, help="roster CSV/XLSX: every 考生号 must be on it")
    c.add_argument("--profile", default="admission", help="built-in profile (admission, graduation, id_card) or a JSON/TOML file")
    c.add_argument("--json", action="store_true", help="one JSON object per photo on stdout")
    c.add_argument("--out", default=None, help="folder for report.csv, report.xlsx and results.jsonl")
    c.add_argument("--quiet", action="store_true", help="print failures only, no summary")
    c.add_argument("--spec-only", action="store_true", help="specification checks only (no model, fast)")
    c.add_argument("--workers", type=int, default=None, help="worker processes for full checks (default: all cores)")
    c.add_argument("--pack", default=None, help="model pack id (default: sface-yunet-int8)")
    c.add_argument("--model-dir", type=Path, default=None, help="folder with the pack's ONNX files (InsightFace packs)")
    c.add_argument("--threads", type=int, default=None, help="inference threads for this process")
    c.set_defaults(func=cmd_check)
    return c


def register(subparsers: Any) -> Any:
    """Add the `photos` group with `check`; return the group's subparsers for further commands."""
    photos = subparsers.add_parser("photos", help="photo checks and fixes (照片检查与修复)")
    photos_sub = photos.add_subparsers(dest="photos_cmd", required=True)
    add_check(photos_sub)
    from verifier.cli.fix import register as add_fix

    add_fix(photos_sub)
    return photos_sub
