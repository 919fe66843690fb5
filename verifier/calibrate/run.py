"""`verifier calibrate` at work: read the pairs, embed each image once, score, recommend thresholds, write the outputs.

The command line (verifier.cli.calibrate) only parses the arguments; this module does the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from verifier.common.files import open_output, write_output
from verifier.core.packs import Pack, load_pack, parse_manifest
from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings, cpu_count
from verifier.calibrate.metrics import STANDARD_FMRS, SortedScores, identity_bootstrap, roc_curve, standard_statistic
from verifier.calibrate.pairs import PairSet, ScoredPairs, all_pairs, read_pairs_csv, scan_identity_folders, score_pairs, scored_from_embeddings
from verifier.calibrate.protocols import AlignedPairs, pairset_of, read_bin, read_lfw_pairs
from verifier.calibrate.peers import SystemResult, evaluate_dlib, evaluate_pack, format_table, side_by_side, summarize
from verifier.calibrate.id_card import score_at_id_card_size
from verifier.calibrate.quality_study import ABSORBED_LEVELS, run_quality_study
from verifier.calibrate.report import CalibrationReport, write_reports
from verifier.calibrate.thresholds import (
    Recommendation,
    duplicate_arithmetic,
    fit_normal,
    gpd_duplicate_intervals,
    recommend_accept,
    recommend_duplicate,
    recommend_reject_fnmr,
    review_band,
    tail_models,
)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="img", file=sys.stderr, disable=None, desc=desc)


def _load_pack(args: argparse.Namespace) -> Pack:
    if args.manifest is not None:
        try:
            return parse_manifest(json.loads(args.manifest.read_text(encoding="utf-8")), args.manifest)
        except (OSError, json.JSONDecodeError) as exc:
            raise VerifierError("MODEL_PACK_UNKNOWN", detail=f"{args.manifest}: {exc}") from None
    return load_pack(args.pack or Settings.from_env().pack)


def _excluded(path: Path | None) -> set[str]:
    if path is None:
        return set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"{path}: {exc}") from None
    return {ln.split("#", 1)[0].strip() for ln in lines} - {""}


def _pairs(args: argparse.Namespace) -> tuple[PairSet, AlignedPairs | None]:
    """The labelled pairs of the chosen source (and, for a .bin set, its aligned faces)."""
    if args.bin is not None:
        aligned = read_bin(args.bin)
        return pairset_of(aligned), aligned
    if args.lfw_pairs is not None:
        if args.images is None:
            raise VerifierError("PAIRS_FILE_INVALID", detail="--lfw-pairs needs --images (the folder its names refer to)")
        return read_lfw_pairs(args.lfw_pairs, args.images), None
    if args.pairs is not None:
        return read_pairs_csv(args.pairs), None
    images, identities, notes = scan_identity_folders(args.identity_folders)
    drop = _excluded(args.exclude)
    if drop:
        kept = [(p, i) for p, i in zip(images, identities, strict=True) if p.name not in drop]
        notes.append(f"{len(images) - len(kept)} images left out as known label errors ({args.exclude.name})")
        images, identities = [p for p, _ in kept], [i for _, i in kept]
    if getattr(args, "max_images", None):
        images, identities = subset_by_identity(images, identities, args.max_images)
        notes.append(f"subset: whole identities in SHA-256 order of their names, {len(images)} images of {len(set(identities))} people (--max-images {args.max_images})")
    return all_pairs(images, identities, f"identity folders {args.identity_folders.name}", notes, args.max_impostor_pairs), None


def subset_by_identity(images: list[Path], identities: list[str], limit: int) -> tuple[list[Path], list[str]]:
    """Whole identities, taken in the order of their names' SHA-256 (neither alphabetical nor by size), up to `limit` images."""
    import hashlib

    by_id: dict[str, list[Path]] = {}
    for path, ident in zip(images, identities, strict=True):
        by_id.setdefault(ident, []).append(path)
    kept: list[tuple[Path, str]] = []
    for ident in sorted(by_id, key=lambda x: hashlib.sha256(x.encode("utf-8")).hexdigest()):
        if len(kept) + len(by_id[ident]) > limit:
            continue
        kept += [(p, ident) for p in by_id[ident]]
    kept.sort(key=lambda pi: str(pi[0]))
    return [p for p, _ in kept], [i for _, i in kept]


def _embed(pipeline: Any, pairs: PairSet, aligned: AlignedPairs | None) -> tuple[ScoredPairs, float]:
    """Every image embedded once (aligned faces straight into the recognizer); the pairs scored; seconds per image."""
    import time

    t0 = time.perf_counter()
    if aligned is not None:
        with _progress(len(aligned.faces), "embed (aligned)") as bar:
            parts = []
            for start in range(0, len(aligned.faces), 64):
                parts.append(pipeline.embedder.embed(aligned.faces[start:start + 64]))
                bar.update(len(parts[-1]))
        emb = np.concatenate(parts)
        scored = scored_from_embeddings(pairs, emb, np.ones(len(emb), bool), {})
        return scored, (time.perf_counter() - t0) / max(1, len(emb))
    analyses = []
    with _progress(len(pairs.images), "embed") as bar:
        for start in range(0, len(pairs.images), 16):
            chunk = pairs.images[start:start + 16]
            analyses.extend(pipeline.analyze_many(chunk))
            bar.update(len(chunk))
    return score_pairs(pairs, analyses), (time.perf_counter() - t0) / max(1, len(pairs.images))


def _bootstrap(own: SystemResult, n_boot: int, target_fnmr: float) -> dict:
    s = own.scored
    base = standard_statistic(STANDARD_FMRS)

    def stat(gen: SortedScores, imp: SortedScores) -> dict[str, float]:
        out = base(gen, imp)
        # reject: the score below which `target_fnmr` of the (weighted) genuine pairs lie
        k = min(int(np.searchsorted(gen.cumulative, target_fnmr * gen.total, side="right")), gen.scores.size - 1)
        out["reject"] = float(gen.scores[k])
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


def write_manifest_thresholds(path: Path, rec: Recommendation, method: str, data: str, date: str, figures: dict | None = None) -> None:
    """Rewrite accept / reject / duplicate and their source (method, data, date, figures) in a manifest, keeping every other key."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    th = doc.setdefault("thresholds", {})
    previous = {k: v for k, v in th.get("source", {}).items() if k != "previous"}
    previous.update({k: th[k] for k in ("accept", "reject", "duplicate") if k in th})
    th["accept"], th["reject"], th["duplicate"] = rec.accept.value, rec.reject.value, rec.duplicate.value
    th["source"] = {"method": method, "data": data, "date": date, **({"figures": figures} if figures else {}), "previous": previous}
    write_output(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), 0o644)  # a manifest is a public source file, not personal data


def write_manifest_probe_thresholds(path: Path, kind: str, rec: Recommendation, method: str, data: str, date: str, figures: dict) -> None:
    """Write thresholds.<kind> (accept, reject and their source) for another probe photo, keeping every other key."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    th = doc.setdefault("thresholds", {})
    previous = {k: v for k, v in th.get(kind, {}).items() if k != "source"}
    th[kind] = {"accept": rec.accept.value, "reject": rec.reject.value,
                "source": {"method": method, "data": data, "date": date, "figures": figures, **({"previous": previous} if previous else {})}}
    write_output(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), 0o644)  # a public source file


def id_card_figures(own: SystemResult, full_size: SystemResult) -> dict[str, Any]:
    """TAR at each FAR and EER at ID-card size beside the same pairs at full size (what the small photo costs)."""
    a, b = own.to_dict(), full_size.to_dict()
    r = lambda v: None if v is None else round(v, 5)  # noqa: E731
    return {"tar_at_far": {k: r(v) for k, v in a["tar_at_far"].items()}, "full_size_tar_at_far": {k: r(v) for k, v in b["tar_at_far"].items()},
            "eer": round(own.eer.eer, 5), "full_size_eer": round(full_size.eer.eer, 5)}


def _method_text(rec: Recommendation, args: argparse.Namespace, previous_method: str) -> str:
    parts = [f"verifier calibrate (accept at FMR <= {args.target_fmr:g}, reject at FNMR <= {args.target_fnmr:g}, gallery {args.gallery_size:,}, "
             f"<= {args.max_false_duplicates:g} false duplicate pair(s) per sweep)."]
    parts += [f"{c.name} {c.value:.3f} ({c.basis}): {c.why_en}." for c in rec.choices()]
    if any(not c.changed for c in rec.choices()) and previous_method:
        parts.append("Kept values keep the reasons given in source.previous.method.")
    return " ".join(parts)


def _figures(own: SystemResult, workload: Any, arith: Any) -> dict[str, Any]:
    """The figures the manifest keeps beside its thresholds (what they were chosen from)."""
    d = own.to_dict()
    return {
        "pairs": {"genuine": d["genuine"], "impostor": d["impostor"]},
        "ten_fold_accuracy": None if own.ten_fold is None else round(own.ten_fold.mean, 5),
        "eer": round(own.eer.eer, 5),
        "tar_at_far": {k: (None if v is None else round(v, 5)) for k, v in d["tar_at_far"].items()},
        "review_band": {k: round(v, 5) for k, v in workload.to_dict().items()},
        "duplicate_by_gallery": {str(r["gallery_size"]): r["threshold"] for r in arith.table},
    }


def _jsonable(x: Any) -> Any:
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
    from verifier.core.pipeline import Pipeline
    from verifier.calibrate import plots

    pack = _load_pack(args)
    pairs, aligned = _pairs(args)
    if pairs.n_genuine == 0 or pairs.n_impostor == 0:
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"need genuine and impostor pairs; got {pairs.n_genuine} and {pairs.n_impostor}")
    args.out.mkdir(parents=True, exist_ok=True)
    threads = args.threads or cpu_count()
    pipeline = Pipeline.load(pack.id, args.model_dir, threads=threads)
    id_card = getattr(args, "id_card", False)
    if id_card and aligned is not None:
        raise VerifierError("PAIRS_FILE_INVALID", detail="--id-card needs photos (identity folders, a pairs CSV or LFW pairs), not aligned faces")
    full_size = None
    if id_card:
        with _progress(len(pairs.images), "ID-card size") as bar:
            both = score_at_id_card_size(pipeline, pairs, bar.update)
        scored, per_image = both.id_card, both.seconds_per_image
        full_size = summarize(f"{pack.id} admission vs original", both.full_size, per_image)
    else:
        scored, per_image = _embed(pipeline, pairs, aligned)
    if not scored.same.any() or scored.same.all():
        raise VerifierError("PAIRS_FILE_INVALID", detail="after dropping unusable images no genuine or no impostor pair is left")
    current = pack.probe_thresholds.get("id_card", pack.thresholds) if id_card else pack.thresholds
    name = f"{pack.id} admission vs ID card" if id_card else pack.id
    own = summarize(name, scored, per_image, native_threshold=current.accept, native_label=f"pack accept {current.accept}")
    intervals = _bootstrap(own, args.bootstrap, args.target_fnmr)

    models = tail_models(scored.impostor)
    arith = duplicate_arithmetic(models, args.gallery_size, args.max_false_duplicates, current.duplicate)
    tail_ci = gpd_duplicate_intervals(scored.impostor, args.max_false_duplicates, n_boot=args.tail_bootstrap)
    for row in arith.table:
        if tail_ci and row["gallery_size"] in tail_ci:
            row["gpd_low"], row["gpd_high"] = tail_ci[row["gallery_size"]]
    accept = recommend_accept(scored.genuine, scored.impostor, args.target_fmr, current.accept, models)

    study = None
    hard = scored.genuine
    if args.quality_study and aligned is None:
        n_jobs = len(pairs.images) * 21
        with _progress(n_jobs, "quality study") as bar:
            study = run_quality_study(pairs.images, pairs.identities, lambda p: pipeline.decode(p).pixels, pipeline.analyze_many, bar.update)
        ok = np.array([p.score for p in study.pairs if p.level in ABSORBED_LEVELS and not p.below_floor])
        hard = np.concatenate([hard, ok])
    reject = recommend_reject_fnmr(hard, args.target_fnmr, accept.value)
    duplicate = recommend_duplicate(arith, accept.value, int((~scored.same).sum()), len(set(pairs.identities)))
    rec = Recommendation(accept, reject, duplicate)
    _duplicate_interval(intervals, args, duplicate.value)
    workload, workload_now = review_band(scored.genuine, scored.impostor, rec.thresholds()), review_band(scored.genuine, scored.impostor, current)

    peers: list[SystemResult] = []
    if not args.no_dlib and aligned is None and not id_card:
        with _progress(len(pairs.images), "dlib") as bar:
            dl = evaluate_dlib(pairs, bar.update)
        if dl is not None:
            peers.append(dl)
        else:
            _err("face_recognition (dlib) not installed: `pip install dlib-bin face_recognition_models face_recognition` to compare")
    if args.peer_pack and aligned is None and not id_card:
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
                                     f"{(~scored.same).sum()} impostor pairs" + ("; quality study on degraded copies" if study else "")
                                     + ("; each pair as a 295x413 admission photo vs a 102x126 ID-card BMP cut from the two images" if id_card else ""))
    report = CalibrationReport(pack.id, data, date, own, peers, intervals, models, arith, current, rec, args.target_fmr, n_id,
                               len(pairs.images), names, study, band, band_now, pairs.notes, args.target_fnmr, workload, workload_now)
    write_reports(report, out)
    metrics = {
        "pack": pack.id, "date": date, "data": data, "notes": pairs.notes,
        "current_thresholds": current.to_dict(),
        "recommended": {c.name: {"value": c.value, "basis": c.basis, "why_en": c.why_en, "why_zh": c.why_zh, "estimate": c.estimate} for c in rec.choices()},
        "systems": [own.to_dict(), *[p.to_dict() for p in peers]],
        "intervals": {k: v.to_dict() for k, v in intervals.items()},
        "tail_models": [m.to_dict() for m in models],
        "duplicate_arithmetic": {**arith.__dict__, "lines": arith.lines()},
        "targets": {"fmr": args.target_fmr, "fnmr": args.target_fnmr},
        "review_band": {"recommended": workload.to_dict(), "current": workload_now.to_dict()},
        "quality_study": study.to_dict() if study else None,
        "band_check": None if band is None else {
            "thresholds": band.thresholds.to_dict(), "levels": band.levels, "match": band.match, "review": band.review,
            "mismatch": band.mismatch, "routed_by_quality": band.routed_by_quality, "absorbed": band.absorbed,
            "impostor_pairs": band.impostor_pairs, "impostor_review": band.impostor_review, "impostor_match": band.impostor_match,
            "failing": [p.__dict__ for p in band.failing]},
        "plots": names,
        "id_card": None if full_size is None else id_card_figures(own, full_size),
    }
    write_output(out / "metrics.json", (json.dumps(_jsonable(metrics), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    with open_output(out / "scores.npz", "wb") as fh:  # every system's scores, for figures across data sets
        np.savez_compressed(fh, **{f"{r.name}__{kind}": getattr(r.scored, kind).astype(np.float32)
                                   for r in (own, *peers) for kind in ("genuine", "impostor")})

    print(format_table(side_by_side([own, *peers])))
    print()
    for c in rec.choices():
        print(f"{c.name:9s} {c.value:.3f}  ({c.basis}) {c.why_en}")
    print("\n".join(arith.lines()))
    if band is not None:
        print(f"quality study: mild/moderate genuine pairs -> match {band.match}, review {band.review}, below reject {band.mismatch} "
              f"({band.routed_by_quality} of them below the quality floor, routed to review)")
    print(f"written: {out / 'report.html'}, {out / 'report.md'}, {out / 'metrics.json'}, " + ", ".join(str(out / n) for n in names.values()))
    if full_size is not None:
        fig = id_card_figures(own, full_size)
        for far, tar in fig["tar_at_far"].items():
            print(f"TAR at FAR {far}: ID card {tar} vs full size {fig['full_size_tar_at_far'][far]}")
    if args.write_pack and id_card:
        if pack.path is None:
            raise VerifierError("MODEL_PACK_UNKNOWN", detail="the pack has no manifest file to write")
        write_manifest_probe_thresholds(pack.path, "id_card", rec, _method_text(rec, args, ""), data, date,
                                        _jsonable({**_figures(own, workload, arith), **id_card_figures(own, full_size)}))
        print(f"thresholds.id_card written to {pack.path}")
    elif args.write_pack:
        if pack.path is None:
            raise VerifierError("MODEL_PACK_UNKNOWN", detail="the pack has no manifest file to write")
        write_manifest_thresholds(pack.path, rec, _method_text(rec, args, str(pack.thresholds_source.get("method", ""))), data, date,
                                  _jsonable(_figures(own, workload, arith)))
        print(f"thresholds written to {pack.path}")
    return 0
