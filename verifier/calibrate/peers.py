"""The same pairs through other systems: face_recognition (dlib) when installed, an InsightFace pack when given.

Each system embeds every image once; results are summarised alike and printed side by side.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from verifier.core.decode import decode_image
from verifier.core.pipeline import read_image_file
from verifier.common.reasons import VerifierError
from verifier.calibrate.metrics import STANDARD_FMRS, EqualErrorRate, OperatingPoint, equal_error_rate, fnmr_at_fmr, rates_at
from verifier.calibrate.pairs import PairSet, ScoredPairs, scored_from_embeddings
from verifier.calibrate.protocols import FoldAccuracy, default_folds, ten_fold_accuracy

DLIB_TOLERANCE = 0.6  # face_recognition's default: same person when the 128-d distance is <= 0.6
DLIB_MAX_SIDE = 1024


@dataclass(frozen=True)
class SystemResult:
    """One system's figures on the pairs."""

    name: str
    score_kind: str
    scored: ScoredPairs
    eer: EqualErrorRate
    operating_points: list[OperatingPoint]
    seconds_per_image: float
    native_threshold: float | None = None
    native_label: str = ""
    native_rates: tuple[float, float] | None = None  # (FMR, FNMR) at the native threshold
    notes: list[str] = field(default_factory=list)
    ten_fold: FoldAccuracy | None = None
    ten_fold_basis: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score_kind": self.score_kind,
            "images_unusable": self.scored.unusable,
            "pairs_scored": int(self.scored.scores.size),
            "pairs_dropped": self.scored.pairs_dropped,
            "genuine": int(self.scored.same.sum()),
            "impostor": int((~self.scored.same).sum()),
            "eer": self.eer.eer,
            "eer_threshold": self.eer.threshold,
            "operating_points": [{**op.__dict__, "note": op.note} for op in self.operating_points],
            "seconds_per_image": self.seconds_per_image,
            "native_threshold": self.native_threshold,
            "native_label": self.native_label,
            "native_fmr_fnmr": self.native_rates,
            "lowest_genuine": float(self.scored.genuine.min()) if self.scored.same.any() else None,
            "highest_impostor": float(self.scored.impostor.max()) if (~self.scored.same).any() else None,
            "notes": self.notes,
            "ten_fold_accuracy": None if self.ten_fold is None else {**self.ten_fold.to_dict(), "basis": self.ten_fold_basis},
            "tar_at_far": {f"{op.target_fmr:g}": (1 - op.fnmr if op.supported else None) for op in self.operating_points},
        }


def summarize(name: str, scored: ScoredPairs, seconds_per_image: float, score_kind: str = "cosine similarity",
              native_threshold: float | None = None, native_label: str = "", fmrs: Sequence[float] = STANDARD_FMRS,
              notes: Sequence[str] = ()) -> SystemResult:
    """EER, FNMR at the standard FMRs and the rates at the system's own threshold."""
    g, i = scored.genuine, scored.impostor
    ops = [fnmr_at_fmr(g, i, f) for f in fmrs]
    native = rates_at(g, i, native_threshold) if native_threshold is not None else None
    acc, basis = ten_fold_of(scored)
    return SystemResult(name, score_kind, scored, equal_error_rate(g, i), ops, seconds_per_image, native_threshold, native_label, native,
                        list(notes), acc, basis)


BALANCED_MAX = 30_000  # pairs of each kind in the balanced sample that 10-fold accuracy uses when there is no protocol


def ten_fold_of(scored: ScoredPairs, seed: int = 0) -> tuple[FoldAccuracy | None, str]:
    """10-fold accuracy on the protocol's folds; without a protocol, on a balanced random sample (as LFW balances 50/50)."""
    if scored.folds is not None:
        return ten_fold_accuracy(scored.scores, scored.same, scored.folds), "the protocol's folds"
    gen, imp = np.flatnonzero(scored.same), np.flatnonzero(~scored.same)
    n = min(gen.size, imp.size, BALANCED_MAX)
    if n < 10:
        return None, "too few pairs"
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.choice(gen, n, replace=False), rng.choice(imp, n, replace=False)])
    acc = ten_fold_accuracy(scored.scores[pick], scored.same[pick], default_folds(pick.size, seed=seed))
    return acc, f"balanced random sample of {n:,} genuine and {n:,} impostor pairs in 10 random folds (no protocol file)"


def dlib_available() -> bool:
    """True when face_recognition and its models are importable."""
    # face_recognition_models finds its files through pkg_resources (setuptools < 81); without it the import quits the process.
    return all(importlib.util.find_spec(m) is not None for m in ("face_recognition", "face_recognition_models", "dlib", "pkg_resources"))


def _dlib_embed(path: Path, fr: Any) -> tuple[np.ndarray | None, str | None]:
    try:
        pixels = decode_image(read_image_file(path, 50 * 1024 * 1024)).pixels
    except VerifierError as exc:
        return None, exc.reason.code
    import cv2

    h, w = pixels.shape[:2]
    s = min(1.0, DLIB_MAX_SIDE / max(h, w))
    if s < 1:
        pixels = cv2.resize(pixels, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(pixels[:, :, ::-1])
    for upsample in (1, 2):
        boxes = fr.face_locations(rgb, number_of_times_to_upsample=upsample, model="hog")
        if boxes:
            break
    if not boxes:
        return None, "FACE_NOT_FOUND"
    largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    return np.asarray(fr.face_encodings(rgb, [largest])[0], dtype=np.float64), None


def evaluate_dlib(pairs: PairSet, progress: Callable[[int], None] | None = None) -> SystemResult | None:
    """face_recognition (dlib HOG detector + ResNet 128-d): score = minus the Euclidean distance; None when not installed."""
    if not dlib_available():
        return None
    import face_recognition as fr

    t0 = time.perf_counter()
    emb = np.zeros((len(pairs.images), 128))
    ok = np.zeros(len(pairs.images), dtype=bool)
    unusable = {}
    for k, path in enumerate(pairs.images):
        vec, why = _dlib_embed(path, fr)
        if vec is None:
            unusable[path.name] = why or "UNKNOWN"
        else:
            emb[k], ok[k] = vec, True
        if progress is not None:
            progress(1)
    per_image = (time.perf_counter() - t0) / max(1, len(pairs.images))
    scored = scored_from_embeddings(pairs, emb, ok, unusable, similarity=lambda a, b: -np.linalg.norm(a - b, axis=1))
    if scored.scores.size == 0 or not scored.same.any() or scored.same.all():
        return None
    return summarize("face_recognition (dlib)", scored, per_image, "minus Euclidean distance", -DLIB_TOLERANCE,
                     f"distance <= {DLIB_TOLERANCE} (library default)", notes=["HOG detector, largest face; upsampled twice when none is found"])


def evaluate_pack(pairs: PairSet, pack_id: str, model_dir: Path | None, threads: int = 1,
                  progress: Callable[[int], None] | None = None) -> SystemResult:
    """Another verifier pack (e.g. an InsightFace pack from --peer-model-dir) on the same pairs."""
    from verifier.core.pipeline import Pipeline
    from verifier.calibrate.pairs import score_pairs

    pipeline = Pipeline.load(pack_id, model_dir, threads=threads)
    t0 = time.perf_counter()
    analyses = []
    for start in range(0, len(pairs.images), 16):
        chunk = pairs.images[start:start + 16]
        analyses.extend(pipeline.analyze_many(chunk))
        if progress is not None:
            progress(len(chunk))
    per_image = (time.perf_counter() - t0) / max(1, len(pairs.images))
    th = pipeline.thresholds
    return summarize(f"{pack_id} (pack)", score_pairs(pairs, analyses), per_image, "cosine similarity", th.accept, f"pack accept {th.accept}")


def _fmt(x: float | None, pct: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.2%}" if pct else f"{x:.3f}"


def side_by_side(results: Sequence[SystemResult]) -> list[list[str]]:
    """A table (header row first) comparing the systems on the same pairs."""
    fmrs = [op.target_fmr for op in results[0].operating_points] if results else []
    header = ["system", "images unusable", "pairs scored (gen/imp)", "10-fold acc", "EER", *[f"TAR@FAR={f:g}" for f in fmrs],
              "own threshold", "FMR / FNMR there", "lowest genuine", "highest impostor", "s/image"]
    rows = [header]
    for r in results:
        d = r.to_dict()
        ops = [_fmt(1 - op.fnmr) + ("" if op.supported else " (n/s)") for op in r.operating_points]
        acc = "-" if r.ten_fold is None else f"{r.ten_fold.mean:.2%} ± {r.ten_fold.std:.2%}"
        native = "-" if r.native_rates is None else f"{_fmt(r.native_rates[0])} / {_fmt(r.native_rates[1])}"
        dist = r.score_kind.startswith("minus")
        low, high = (f"d={-d[k]:.3f}" if dist and d[k] is not None else _fmt(d[k], False) for k in ("lowest_genuine", "highest_impostor"))
        rows.append([r.name, str(len(r.scored.unusable)), f"{d['genuine']}/{d['impostor']}", acc, _fmt(r.eer.eer), *ops,
                     r.native_label or "-", native, low, high,
                     f"{r.seconds_per_image:.3f}"])
    return rows


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Plain-text columns for the terminal."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows)
