"""The `verifier` command line: parse arguments, call the library, print."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from verifier import __version__
from verifier.common.reasons import VerifierError

EXIT_OK, EXIT_FLAGGED, EXIT_UNUSABLE = 0, 1, 2
FOLLOW_ENV = "VERIFIER_FOLLOW_SYMLINKS"
# Command groups, one module each in verifier.cli; each exposes register(subparsers).
# Order matters: store adds `roster import|graduate` to the group roster creates.
COMMAND_MODULES = ("photos", "roster", "store", "batch", "intake", "calibrate", "sweep", "serve", "demo", "lists", "cases")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _print_reason_error(exc: VerifierError) -> None:
    r = exc.reason
    _err(f"[{r.code}] {r.message_zh} / {r.message_en}" + (f": {exc.detail}" if exc.detail else ""))


def _load_pipeline(args: argparse.Namespace):
    from verifier.core.pipeline import Pipeline

    pipeline = Pipeline.load(args.pack, args.model_dir, threads=args.threads)
    if not pipeline.pack.commercial_use:
        _err(f"注意 / Note: pack '{pipeline.pack.id}' — {pipeline.pack.licence}")
    return pipeline


def cmd_compare(args: argparse.Namespace) -> int:
    if args.pairs:
        return _compare_pairs(args)
    if not (args.a and args.b):
        _err("usage: verifier compare A B [--json]  |  verifier compare --pairs PAIRS.csv")
        return EXIT_UNUSABLE
    pipeline = _load_pipeline(args)
    result = pipeline.compare(Path(args.a), Path(args.b))
    out = result.to_dict()
    out["pack"] = pipeline.pack.id
    out["file_a"], out["file_b"] = args.a, args.b
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for side, fa in (("A", result.a), ("B", result.b)):
            face = fa.face.to_dict() if fa.face else None
            print(f"{side}: {fa.width}x{fa.height}, faces={len(fa.faces)}" + (f", box={face['box']}, det={face['score']}" if face else ""))
        th = result.thresholds
        if result.score is not None:
            print(f"score={result.score:.4f} decision={result.decision.value} (accept>={th.accept}, reject<{th.reject})")
    if result.decision is None:
        r = result.reason
        _err(f"unusable input [{r.code}] {r.message_zh} / {r.message_en}")
        return EXIT_UNUSABLE
    return EXIT_OK if result.decision.value == "match" else EXIT_FLAGGED


def _compare_pairs(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from verifier.core.packs import load_pack
    from verifier.batch.pairs import compare_pairs, read_pairs
    from verifier.common.settings import Settings

    pairs = read_pairs(Path(args.pairs))
    settings = Settings.from_env()
    pack = load_pack(args.pack or settings.pack)
    n_images = len({str(p) for pair in pairs for p in (pair.path_a, pair.path_b)})
    with tqdm(total=n_images, unit="img", file=sys.stderr, disable=None, desc="analyse") as bar:
        counts: dict[str, int] = {}
        for row in compare_pairs(pairs, pack.thresholds, args.workers, pack.id, args.model_dir, bar):
            counts[row["decision"]] = counts.get(row["decision"], 0) + 1
            if args.json:
                print(json.dumps(row, ensure_ascii=False), flush=False)
            else:
                score = "" if row["score"] is None else f"{row['score']:.4f}"
                print(f"{row['file_a']},{row['file_b']},{score},{row['decision']},{row.get('reason') or ''}")
    _err("pairs: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from verifier.core.packs import list_packs, load_pack, verify_pack

    if args.models_cmd == "info":
        return _models_info(args)
    if args.models_cmd == "list":
        for p in list_packs():
            th = p.thresholds
            src = p.thresholds_source.get("method", "")
            print(f"{p.id}\t{p.title}\n  licence: {p.licence}\n  thresholds: accept={th.accept} reject={th.reject} duplicate={th.duplicate} ({src})")
            if p.needs_model_dir:
                print("  files: from --model-dir (not shipped)")
        return EXIT_OK
    packs = [load_pack(args.pack)] if args.pack else [p for p in list_packs() if not p.needs_model_dir or args.model_dir]
    bad = 0
    for p in packs:
        for c in verify_pack(p, args.model_dir):
            bad += not c.ok
            print(f"{'OK ' if c.ok else 'BAD'} {p.id} {c.role} {c.name} {c.message}" + (f" ({c.path})" if c.path else ""))
    return EXIT_OK if bad == 0 else EXIT_FLAGGED


def _models_info(args: argparse.Namespace) -> int:
    from verifier.core.modelinfo import model_info

    info = model_info(args.pack, args.model_dir)
    if args.json:
        print(json.dumps(info.to_dict(), ensure_ascii=False, indent=2))
        return EXIT_OK if info.ok else EXIT_FLAGGED
    print(f"pack: {info.pack}")
    print(f"CPU: {info.cpu_model}; class {info.cpu_class}; flags: {' '.join(info.cpu_flags) or 'none of ' + 'avx2/avx512/amx'}")
    if info.openvino_capabilities is not None:
        print(f"OpenVINO CPU capabilities: {' '.join(info.openvino_capabilities)}")
    print(f"requested: engine={info.requested['engine']} precision={info.requested['precision']}")
    print(f"table row {info.table_row['cpu_class']}: {' > '.join(info.table_row['variants'])}")
    print("pack variants (kept thresholds): " + "; ".join(f"{k}: {v}" for k, v in info.pack_variants.items()))
    if info.choice:
        c = info.choice
        print(f"picked: {c['engine']} {c['precision']} ({c['source']}): {c['why']}")
    else:
        print(f"picked: none — {info.error}")
    print("versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in info.versions.items()))
    for f in info.files:
        print(f"{'OK ' if f['ok'] else 'BAD'} {f['role']} {f['name']} {f['message']}" + (f" sha256={f['actual']}" if f["actual"] else "") + (f" ({f['path']})" if f["path"] else ""))
    return EXIT_OK if info.ok else EXIT_FLAGGED


def cmd_reasons(args: argparse.Namespace) -> int:
    from verifier.common.reasons import REASONS, markdown_table

    if args.markdown:
        sys.stdout.write(markdown_table())
    else:
        for r in REASONS.values():
            print(f"{r.code}\t{r.severity.value}\t{r.zh}\t{r.en}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="verifier", description="照片核验与人脸比对 / photo checks and face comparison")
    p.add_argument("--version", action="version", version=f"verifier {__version__}")
    p.add_argument("--follow-symlinks", action="store_true",
                   help="write an output path that is a symlink through to its target (refused by default)")
    sub = p.add_subparsers(dest="cmd", required=True)

    def model_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--pack", default=None, help="model pack id (default: sface-yunet-int8)")
        sp.add_argument("--model-dir", type=Path, default=None, help="folder with the pack's ONNX files (InsightFace packs)")
        sp.add_argument("--threads", type=int, default=None, help="inference threads for this process")

    c = sub.add_parser("compare", help="compare two photos, or every pair in a CSV")
    c.add_argument("a", nargs="?")
    c.add_argument("b", nargs="?")
    c.add_argument("--pairs", help="CSV with header file_a,file_b (paths relative to the CSV)")
    c.add_argument("--json", action="store_true", help="JSON output (one object per line with --pairs)")
    c.add_argument("--workers", type=int, default=None, help="worker processes for --pairs (default: all cores)")
    model_opts(c)
    c.set_defaults(func=cmd_compare)

    m = sub.add_parser("models", help="show and check model packs")
    msub = m.add_subparsers(dest="models_cmd", required=True)
    for name in ("list", "verify", "info"):
        sp = msub.add_parser(name, help="CPU, inference engine and precision picked and why, versions, model files" if name == "info" else None)
        sp.add_argument("--pack", default=None)
        sp.add_argument("--model-dir", type=Path, default=None)
        if name == "info":
            sp.add_argument("--json", action="store_true", help="one JSON object")
    m.set_defaults(func=cmd_models)

    r = sub.add_parser("reasons", help="list the reason codes")
    r.add_argument("--markdown", action="store_true")
    r.set_defaults(func=cmd_reasons)

    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(f"verifier.cli.{module}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = os.environ.get(FOLLOW_ENV)
    if args.follow_symlinks:
        os.environ[FOLLOW_ENV] = "1"  # Settings.follow_symlinks, seen by every writer and worker of this command
    try:
        return args.func(args)
    except VerifierError as exc:
        _print_reason_error(exc)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    finally:
        if args.follow_symlinks:
            if previous is None:
                os.environ.pop(FOLLOW_ENV, None)
            else:
                os.environ[FOLLOW_ENV] = previous


if __name__ == "__main__":
    sys.exit(main())
