"""`verifier calibrate`: evaluate a pack on labelled pairs, recommend thresholds, write plots, reports and metrics.

numpy, scipy, matplotlib and verifier.calibrate are imported by the functions that use them, so that
`verifier --help` does not load them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier.common.files import write_output
from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings, cpu_count

if TYPE_CHECKING:
    from verifier.calibrate.metrics import SortedScores
    from verifier.calibrate.pairs import PairSet
    from verifier.calibrate.peers import SystemResult
    from verifier.calibrate.thresholds import Recommendation
    from verifier.core.packs import Pack


def register(subparsers: Any) -> None:
    """Add the `calibrate` sub-command."""
    c = subparsers.add_parser("calibrate", help="accuracy evaluation and threshold calibration on labelled photos (准确率评估与阈值校准)")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", type=Path, help="CSV with header file_a,file_b,same (1 same person, 0 different); optional id_a,id_b")
    src.add_argument("--identity-folders", type=Path, help="folder of <identity>_<n> images, or one sub-folder per identity")
    c.add_argument("--out", type=Path, required=True, help="output folder: PNG plots, report.html, report.md, metrics.json")
    c.add_argument("--pack", default=None, help="model pack id (default: sface-yunet-int8)")
    c.add_argument("--manifest", type=Path, default=None, help="calibrate (and with --write-pack rewrite) this manifest file instead of the installed one")
    c.add_argument("--model-dir", type=Path, default=None, help="folder with the pack's ONNX files (InsightFace packs)")
    c.add_argument("--target-fmr", type=float, default=1e-3, help="false-match rate the accept threshold aims at (default 1e-3)")
    c.add_argument("--gallery-size", type=int, default=100_000, help="students in one duplicate sweep (default 100000)")
    c.add_argument("--max-false-duplicates", type=float, default=1.0, help="false duplicate pairs allowed per sweep (default 1)")
    c.add_argument("--review-budget", type=float, default=0.02, help="largest share of impostor pairs the review band may take (default 0.02)")
    c.add_argument("--bootstrap", type=int, default=1000, help="identity-bootstrap replicates (default 1000)")
    c.add_argument("--max-impostor-pairs", type=int, default=2_000_000, help="sample impostor pairs down to this many (identity folders)")
    c.add_argument("--quality-study", action="store_true", help="also degrade the photos (blur, size, crop, roll, exposure, JPEG) and study the scores")
    c.add_argument("--write-pack", action="store_true", help="write the recommended thresholds into the pack manifest, with data description and date")
    c.add_argument("--data-description", default=None, help="words for the manifest's source.data (default: describes the input)")
    c.add_argument("--peer-pack", default=None, help="also evaluate this pack (e.g. buffalo_l) on the same pairs")
    c.add_argument("--peer-model-dir", type=Path, default=None, help="model folder for --peer-pack")
    c.add_argument("--no-dlib", action="store_true", help="skip face_recognition (dlib) even when installed")
    c.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    c.set_defaults(func=run)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="img", file=sys.stderr, disable=None, desc=desc)


def _load_pack(args: argparse.Namespace) -> Pack:
    from verifier.core.packs import load_pack, parse_manifest

    if args.manifest is not None:
        try:
            return parse_manifest(json.loads(args.manifest.read_text(encoding="utf-8")), args.manifest)
        except (OSError, json.JSONDecodeError) as exc:
            raise VerifierError("MODEL_PACK_UNKNOWN", detail=f"{args.manifest}: {exc}") from None
    return load_pack(args.pack or Settings.from_env().pack)


def _pairs(args: argparse.Namespace) -> PairSet:
    from verifier.calibrate.pairs import pairs_from_identity_folders, read_pairs_csv

    if args.pairs is not None:
        return read_pairs_csv(args.pairs)
    return pairs_from_identity_folders(args.identity_folders, args.max_impostor_pairs)


def _bootstrap(own: SystemResult, n_boot: int) -> dict:
    import numpy as np

    from verifier.calibrate.metrics import STANDARD_FMRS, identity_bootstrap, standard_statistic
    from verifier.calibrate.thresholds import fit_normal

    s = own.scored
    base = standard_statistic(STANDARD_FMRS)

    def stat(gen: SortedScores, imp: SortedScores) -> dict[str, float]:
        out = base(gen, imp)
        w = np.diff(imp.cumulative)
        out["impostor_mean"] = float(np.average(imp.scores, weights=w))
        out["impostor_sd"] = float(fit_normal(imp.scores, w).sd)
        return out

    ia, ib = s.impostor_identities()
    return identity_bootstrap(s.genuine, s.genuine_identity(), s.impostor, ia, ib, stat, n_boot=n_boot)


def _duplicate_interval(intervals: dict, args: argparse.Namespace, estimate: float) -> None:
    """Bootstrap interval of the normal-model duplicate threshold (from the mean and sd replicates' percentiles)."""
    from scipy import stats

    from verifier.calibrate.metrics import ConfidenceInterval
    from verifier.calibrate.thresholds import pairs_per_sweep

    p = args.max_false_duplicates / pairs_per_sweep(args.gallery_size)
    z = float(stats.norm.isf(p))
    m, sd = intervals["impostor_mean"], intervals["impostor_sd"]
    intervals["duplicate"] = ConfidenceInterval(estimate, m.low + z * sd.low, min(1.0, m.high + z * sd.high), m.level, m.replicates)


def write_manifest_thresholds(path: Path, rec: Recommendation, method: str, data: str, date: str) -> None:
    """Rewrite accept / reject / duplicate and their source in a manifest, keeping every other key and the key order."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    th = doc.setdefault("thresholds", {})
    previous = {k: v for k, v in th.get("source", {}).items() if k != "previous"}
    previous.update({k: th[k] for k in ("accept", "reject", "duplicate") if k in th})
    th["accept"], th["reject"], th["duplicate"] = rec.accept.value, rec.reject.value, rec.duplicate.value
    th["source"] = {"method": method, "data": data, "date": date, "previous": previous}
    write_output(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), 0o644)  # a manifest is a public source file, not personal data


def _method_text(rec: Recommendation, args: argparse.Namespace, previous_method: str) -> str:
    parts = [f"verifier calibrate (target FMR {args.target_fmr:g}, gallery {args.gallery_size:,}, "
             f"<= {args.max_false_duplicates:g} false duplicate pair(s) per sweep, review budget {args.review_budget:.0%})."]
    parts += [f"{c.name} {c.value:.3f} ({c.basis}): {c.why_en}." for c in rec.choices()]
    if any(not c.changed for c in rec.choices()) and previous_method:
        parts.append("Kept values keep the reasons given in source.previous.method.")
    return " ".join(parts)


def _jsonable(x: Any) -> Any:
    import numpy as np

    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


def run(args: argparse.Namespace) -> int:
    """Run the whole calibration and write its outputs."""
    import numpy as np

    from verifier.core.pipeline import Pipeline
    from verifier.calibrate import plots
    from verifier.calibrate.metrics import roc_curve
    from verifier.calibrate.pairs import score_pairs
    from verifier.calibrate.peers import evaluate_dlib, evaluate_pack, format_table, side_by_side, summarize
    from verifier.calibrate.quality_study import ABSORBED_LEVELS, run_quality_study
    from verifier.calibrate.report import CalibrationReport, write_reports
    from verifier.calibrate.thresholds import (
        Recommendation, duplicate_arithmetic, recommend_accept, recommend_duplicate, recommend_reject, tail_models,
    )

    pack = _load_pack(args)
    pairs = _pairs(args)
    if pairs.n_genuine == 0 or pairs.n_impostor == 0:
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"need genuine and impostor pairs; got {pairs.n_genuine} and {pairs.n_impostor}")
    args.out.mkdir(parents=True, exist_ok=True)
    threads = args.threads or cpu_count()
    pipeline = Pipeline.load(pack.id, args.model_dir, threads=threads)
    import time

    t0 = time.perf_counter()
    analyses = []
    with _progress(len(pairs.images), "embed") as bar:
        for start in range(0, len(pairs.images), 16):
            chunk = pairs.images[start:start + 16]
            analyses.extend(pipeline.analyze_many(chunk))
            bar.update(len(chunk))
    per_image = (time.perf_counter() - t0) / max(1, len(pairs.images))
    scored = score_pairs(pairs, analyses)
    if not scored.same.any() or scored.same.all():
        raise VerifierError("PAIRS_FILE_INVALID", detail="after dropping unusable images no genuine or no impostor pair is left")
    current = pack.thresholds
    own = summarize(pack.id, scored, per_image, native_threshold=current.accept, native_label=f"pack accept {current.accept}")
    intervals = _bootstrap(own, args.bootstrap)

    models = tail_models(scored.impostor)
    arith = duplicate_arithmetic(models, args.gallery_size, args.max_false_duplicates, current.duplicate)
    accept = recommend_accept(scored.genuine, scored.impostor, args.target_fmr, current.accept, models)

    study = None
    hard = scored.genuine
    if args.quality_study:
        n_jobs = len(pairs.images) * 21
        with _progress(n_jobs, "quality study") as bar:
            study = run_quality_study(pairs.images, pairs.identities, lambda p: pipeline.decode(p).pixels, pipeline.analyze_many, bar.update)
        ok = np.array([p.score for p in study.pairs if p.level in ABSORBED_LEVELS and not p.below_floor])
        hard = np.concatenate([hard, ok])
    reject = recommend_reject(hard, scored.impostor, current.reject, accept.value, args.review_budget)
    duplicate = recommend_duplicate(arith, accept.value, int((~scored.same).sum()), len(set(pairs.identities)))
    rec = Recommendation(accept, reject, duplicate)
    _duplicate_interval(intervals, args, duplicate.value)

    peers: list[SystemResult] = []
    if not args.no_dlib:
        with _progress(len(pairs.images), "dlib") as bar:
            dl = evaluate_dlib(pairs, bar.update)
        if dl is not None:
            peers.append(dl)
        else:
            _err("face_recognition (dlib) not installed: `pip install dlib-bin face_recognition_models face_recognition` to compare")
    if args.peer_pack:
        with _progress(len(pairs.images), args.peer_pack) as bar:
            peers.append(evaluate_pack(pairs, args.peer_pack, args.peer_model_dir, threads, bar.update))

    out = args.out
    curves = {own.name: roc_curve(scored.genuine, scored.impostor)}
    counts = {own.name: int((~scored.same).sum())}
    for p in peers:
        curves[p.name] = roc_curve(p.scored.genuine, p.scored.impostor)
        counts[p.name] = int((~p.scored.same).sum())
    names = {"roc": "roc.png", "det": "det.png", "hist": "histogram.png"}
    plots.roc_plot(curves, out / names["roc"], counts)
    plots.det_plot(curves, out / names["det"])
    plots.histogram_plot(scored.genuine, scored.impostor, rec.thresholds(), out / names["hist"], f"{pack.id}: scores and recommended thresholds")
    band = band_now = None
    if study is not None:
        names["quality"], names["levels"] = "quality.png", "quality_levels.png"
        plots.quality_plot(study, rec.thresholds(), out / names["quality"])
        plots.level_plot(study, rec.thresholds(), out / names["levels"])
        band, band_now = study.check_band(rec.thresholds()), study.check_band(current)

    date = dt.date.today().isoformat()
    n_id = len(set(pairs.identities))
    data = args.data_description or (f"{pairs.source}: {len(pairs.images)} images of {n_id} people, {scored.same.sum()} genuine and "
                                     f"{(~scored.same).sum()} impostor pairs" + ("; quality study on degraded copies" if study else ""))
    report = CalibrationReport(pack.id, data, date, own, peers, intervals, models, arith, current, rec, args.target_fmr, n_id,
                               len(pairs.images), names, study, band, band_now, pairs.notes)
    write_reports(report, out)
    metrics = {
        "pack": pack.id, "date": date, "data": data, "notes": pairs.notes,
        "current_thresholds": current.to_dict(),
        "recommended": {c.name: {"value": c.value, "basis": c.basis, "why_en": c.why_en, "why_zh": c.why_zh, "estimate": c.estimate} for c in rec.choices()},
        "systems": [own.to_dict(), *[p.to_dict() for p in peers]],
        "intervals": {k: v.to_dict() for k, v in intervals.items()},
        "tail_models": [m.to_dict() for m in models],
        "duplicate_arithmetic": {**arith.__dict__, "lines": arith.lines()},
        "quality_study": study.to_dict() if study else None,
        "band_check": None if band is None else {
            "thresholds": band.thresholds.to_dict(), "levels": band.levels, "match": band.match, "review": band.review,
            "mismatch": band.mismatch, "routed_by_quality": band.routed_by_quality, "absorbed": band.absorbed,
            "impostor_pairs": band.impostor_pairs, "impostor_review": band.impostor_review, "impostor_match": band.impostor_match,
            "failing": [p.__dict__ for p in band.failing]},
        "plots": names,
    }
    write_output(out / "metrics.json", (json.dumps(_jsonable(metrics), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    print(format_table(side_by_side([own, *peers])))
    print()
    for c in rec.choices():
        print(f"{c.name:9s} {c.value:.3f}  ({c.basis}) {c.why_en}")
    print("\n".join(arith.lines()))
    if band is not None:
        print(f"quality study: mild/moderate genuine pairs -> match {band.match}, review {band.review}, below reject {band.mismatch} "
              f"({band.routed_by_quality} of them below the quality floor, routed to review)")
    print(f"written: {out / 'report.html'}, {out / 'report.md'}, {out / 'metrics.json'}, " + ", ".join(str(out / n) for n in names.values()))
    if args.write_pack:
        if pack.path is None:
            raise VerifierError("MODEL_PACK_UNKNOWN", detail="the pack has no manifest file to write")
        write_manifest_thresholds(pack.path, rec, _method_text(rec, args, str(pack.thresholds_source.get("method", ""))), data, date)
        print(f"thresholds written to {pack.path}")
    return 0
