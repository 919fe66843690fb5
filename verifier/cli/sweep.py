"""`verifier sweep`, `verifier runs last` and `verifier photos import`: thin CLI over the sweep and the import."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from verifier.cli.ray_option import add_ray_option
from verifier.common.choices import PHOTO_KINDS, SWEEP_KINDS

EXIT_OK, EXIT_FLAGGED, EXIT_UNUSABLE = 0, 1, 2


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in PHOTO_KINDS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"kinds must be a comma-separated subset of {','.join(PHOTO_KINDS)}")
    return kinds


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the duplicate sweep and print its summary."""
    from verifier.sweep.runner import Sweep, SweepOptions

    options = SweepOptions(
        db_url=args.db, kinds=args.kinds, threshold=args.threshold, full=args.full, exact=args.exact,
        out_dir=args.out, pack_id=args.pack, workers=args.workers, ray=args.ray, shards=args.shards,
    )
    summary = Sweep(options).run()
    c = summary.counts
    if args.json:
        print(json.dumps({"run_id": summary.run_id, "mode": summary.mode, "why": summary.why, "index": summary.index,
                          "threshold": summary.threshold, "threshold_source": summary.threshold_source,
                          "counts": dict(c), "seconds": round(summary.seconds, 2), "reports": [str(p) for p in summary.reports]}, ensure_ascii=False))
        return EXIT_OK
    print(f"sweep run {summary.run_id}: {summary.mode} ({summary.why}), index {summary.index}, "
          f"threshold {summary.threshold} ({summary.threshold_source}), {summary.seconds:.1f} s")
    print(f"照片 photos {c['photos']}，新照片 new {c['new_photos']}，嵌入 embedded {c['embed_embedded']}；"
          f"相似对 pairs {c['pairs']}（新 new {c['new_pairs']}，已裁定 adjudicated {c['adjudicated_pairs']}），"
          f"组 groups {c['groups']}（3 人及以上 3+ students {c['groups_3plus']}），新案件 cases opened {c['cases_opened']}")
    print(f"报告 reports: {summary.out_dir}")
    return EXIT_OK


def cmd_runs_last(args: argparse.Namespace) -> int:
    """Print the most recent run record (optionally of one kind) as JSON."""
    from verifier.common.settings import Settings
    from verifier.store.connect import open_database
    from verifier.store.runs import latest_runs

    db = open_database(args.db, settings=Settings.from_env())
    try:
        with db.session() as s:
            runs = latest_runs(s, args.kind, limit=args.n)
            out = [
                {"id": r.id, "kind": r.kind, "status": r.status, "actor": r.actor,
                 "started_at": r.started_at.isoformat(), "ended_at": r.ended_at.isoformat() if r.ended_at else None,
                 "parameters": r.parameters, "counts": r.counts}
                for r in runs
            ]
    finally:
        db.dispose()
    if not out:
        _err("没有运行记录 / no runs recorded" + (f" of kind {args.kind}" if args.kind else ""))
        return EXIT_FLAGGED
    for run in out:
        print(json.dumps(run, ensure_ascii=False, indent=None if args.n > 1 else 1))
    return EXIT_OK if out[0]["status"] == "completed" else EXIT_FLAGGED


def cmd_photos_import(args: argparse.Namespace) -> int:
    """Check, store and embed a folder of photos; exit 1 when a file could not be stored."""
    from verifier.sweep.photo_import import ImportOptions, import_photos

    summary = import_photos(ImportOptions(args.folder, args.kind, args.roster, args.db, args.workers, args.pack, ray_address=args.ray))
    for name, code in summary.rejected:
        from verifier.common.reasons import REASONS

        r = REASONS[code]
        print(f"  {name} [{code}] {r.zh} / {r.en}")
    c = summary.counts
    print(f"新增 added {c['added']}，替换 replaced {c['replaced']}，重新检查 rechecked {c['rechecked']}，未变 unchanged {c['unchanged']}，"
          f"未入库 rejected {len(summary.rejected)}；检查 checks: pass {c['check_pass']} warn {c['check_warn']} fail {c['check_fail']}；"
          f"嵌入 embedded {c['embedded']}，不可比对 not comparable {c['not_embeddable']}")
    return EXIT_FLAGGED if summary.rejected else EXIT_OK


def register(subparsers: Any) -> None:
    """Add `sweep`, `runs last` and `photos import` (into the existing photos group)."""
    from verifier.cli.store import command_group

    s = subparsers.add_parser(
        "sweep",
        help="重复人脸筛查 / nightly duplicate-face sweep",
        description="在全部录取/毕业照片中查找同一人脸出现在不同学生下的情况，生成复核案件与报告。",
    )
    s.add_argument("--db", default=None, help="database URL (default: VERIFIER_DB, config, or SQLite under VERIFIER_HOME)")
    s.add_argument("--kinds", type=_kinds, default=SWEEP_KINDS, help="photo kinds to sweep (default: admission,graduation; id_card may be added)")
    s.add_argument("--threshold", type=float, default=None, help="cosine threshold (default: the pack's thresholds.duplicate)")
    s.add_argument("--full", action="store_true", help="re-check every photo, not only those new since the last sweep")
    s.add_argument("--exact", action="store_true", help="exact search whatever the size")
    s.add_argument("--out", type=Path, default=None, help="report folder (default: <home>/reports/sweep-<date>)")
    s.add_argument("--pack", default=None, help="model pack id")
    s.add_argument("--workers", type=int, default=None, help="processes for embedding and threads for search (default: all cores)")
    add_ray_option(s)
    s.add_argument("--shards", type=_positive, default=None, help="with --ray: shards of the index (default: one per cluster CPU)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.set_defaults(func=cmd_sweep)

    runs = command_group(subparsers, "runs", "运行记录 / run records")
    last = runs.add_parser("last", help="show the last run record (e.g. --kind sweep)")
    last.add_argument("--kind", default=None, help="run kind: sweep, batch_compare …")
    last.add_argument("-n", type=int, default=1, help="how many recent runs (one JSON object per line)")
    last.add_argument("--db", default=None, help="database URL")
    last.set_defaults(func=cmd_runs_last)

    photos = command_group(subparsers, "photos", "photo checks and fixes (照片检查与修复)")
    imp = photos.add_parser(
        "import",
        help="检查、入库并提取特征 / check, store and embed a folder of photos",
        description="照片入库：按规格检查，保存为学生当前照片（旧照片保留），并提取人脸特征。重复运行不会重复处理。",
    )
    imp.add_argument("folder", type=Path, help="folder of photos named <考生号>.jpg (searched recursively)")
    imp.add_argument("--kind", choices=PHOTO_KINDS, required=True)
    imp.add_argument("--roster", type=Path, default=None, help="roster CSV/XLSX: imported first; files not on it are rejected")
    imp.add_argument("--db", default=None, help="database URL")
    imp.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    imp.add_argument("--pack", default=None, help="model pack id")
    add_ray_option(imp)
    imp.set_defaults(func=cmd_photos_import)
