"""Recommended accept / reject / duplicate thresholds, the impostor tail models and the duplicate-sweep arithmetic."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from verifier.core.results import Decision, Thresholds
from verifier.core.score import decide
from verifier.calibrate.metrics import SortedScores, fnmr_at_fmr, operating_point_sorted

GPD_TAIL_FRACTION = 0.10  # the upper 10 % of impostor scores feed the Generalised Pareto fit
GPD_MIN_EXCEEDANCES = 100  # fewer exceedances than this: no GPD fit, the normal model alone
GALLERY_SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)


@dataclass(frozen=True)
class TailModel:
    """A model of P(impostor score >= t) for t beyond what the sample reaches."""

    kind: str  # "normal" | "gpd"
    n: int
    mean: float = math.nan
    sd: float = math.nan
    u: float = math.nan  # GPD: threshold of the tail
    p_u: float = math.nan  # GPD: share of impostor scores above u
    shape: float = math.nan  # GPD xi
    scale: float = math.nan  # GPD sigma

    def sf(self, t: float) -> float:
        """P(impostor score >= t) under the model."""
        if self.kind == "normal":
            return float(stats.norm.sf(t, self.mean, self.sd))
        if t <= self.u:
            return math.nan
        return float(self.p_u * stats.genpareto.sf(t - self.u, self.shape, 0.0, self.scale))

    def isf(self, p: float) -> float:
        """The score t with P(impostor score >= t) = p (capped at 1.0, the largest cosine)."""
        if self.kind == "normal":
            return float(min(1.0, stats.norm.isf(p, self.mean, self.sd)))
        if p >= self.p_u:
            return math.nan
        return float(min(1.0, self.u + stats.genpareto.isf(p / self.p_u, self.shape, 0.0, self.scale)))

    def describe(self) -> str:
        """The fitted parameters in one line."""
        if self.kind == "normal":
            return f"normal fit to all {self.n} impostor scores: mean {self.mean:.4f}, sd {self.sd:.4f}"
        return (f"Generalised Pareto fit to the {round(self.p_u * self.n)} impostor scores above u = {self.u:.4f} "
                f"(top {self.p_u:.1%} of {self.n}): shape {self.shape:.3f}, scale {self.scale:.4f}")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not (isinstance(v, float) and math.isnan(v))}


def fit_normal(impostor: np.ndarray, weights: np.ndarray | None = None) -> TailModel:
    """Normal model of all impostor scores (optionally weighted)."""
    x = np.asarray(impostor, np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, np.float64)
    mean = float(np.average(x, weights=w))
    sd = float(math.sqrt(np.average((x - mean) ** 2, weights=w) * w.sum() / max(w.sum() - 1, 1)))
    return TailModel("normal", int(x.size), mean=mean, sd=sd)


def fit_gpd(impostor: np.ndarray, tail_fraction: float = GPD_TAIL_FRACTION, min_exceedances: int = GPD_MIN_EXCEEDANCES) -> TailModel | None:
    """Generalised Pareto model of the upper impostor tail, or None when too few scores exceed the tail threshold."""
    x = np.sort(np.asarray(impostor, np.float64))
    u = float(np.quantile(x, 1 - tail_fraction))
    y = x[x > u] - u
    if y.size < min_exceedances:
        return None
    shape, _, scale = stats.genpareto.fit(y, floc=0.0)
    return TailModel("gpd", int(x.size), u=u, p_u=y.size / x.size, shape=float(shape), scale=float(scale))


def tail_models(impostor: np.ndarray) -> list[TailModel]:
    """The normal model, and the GPD model when the tail is large enough to fit."""
    models = [fit_normal(impostor)]
    gpd = fit_gpd(impostor)
    if gpd is not None:
        models.append(gpd)
    return models


def pairs_per_sweep(gallery_size: int) -> int:
    """Distinct pairs a duplicate sweep over N people compares: N(N-1)/2."""
    return gallery_size * (gallery_size - 1) // 2


@dataclass(frozen=True)
class DuplicateArithmetic:
    """Duplicate threshold from the impostor tail: expected false pairs = N(N-1)/2 * P(impostor >= t) <= allowed."""

    gallery_size: int
    pairs: int
    max_false_duplicates: float
    per_pair_fmr: float
    threshold: float
    model: str
    per_model: dict[str, float]
    current: float
    expected_at_current: float
    expected_at_threshold: float
    table: list[dict[str, float]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The arithmetic written out, one step a line."""
        return [
            f"N = {self.gallery_size:,} people; a sweep compares N(N-1)/2 = {self.pairs:,} pairs",
            f"allowed false duplicate pairs per sweep: {self.max_false_duplicates:g}",
            f"per-pair false-match rate needed: {self.max_false_duplicates:g} / {self.pairs:,} = {self.per_pair_fmr:.3e}",
            "score t with P(impostor >= t) = that rate: " + ", ".join(f"{k} {v:.4f}" for k, v in self.per_model.items())
            + f" -> duplicate = {self.threshold:.3f} ({self.model})",
            f"check: {self.pairs:,} x P(impostor >= {self.threshold:.3f}) = {self.expected_at_threshold:.3g} expected false pairs",
            f"at the current duplicate {self.current:.3f}: {self.pairs:,} x P(impostor >= {self.current:.3f}) = {self.expected_at_current:.3g} expected false pairs",
        ]


def _ceil3(x: float) -> float:
    return math.ceil(x * 1000 - 1e-9) / 1000


def duplicate_arithmetic(models: Sequence[TailModel], gallery_size: int, max_false_duplicates: float, current: float) -> DuplicateArithmetic:
    """The smallest threshold (rounded up to 0.001) every tail model agrees keeps false duplicates within the allowance."""
    pairs = pairs_per_sweep(gallery_size)
    p = max_false_duplicates / pairs
    per_model = {m.kind: m.isf(p) for m in models}
    valid = {k: v for k, v in per_model.items() if math.isfinite(v)}
    kind = max(valid, key=valid.get)
    t = _ceil3(valid[kind])
    worst = max(models, key=lambda m: m.sf(t) if math.isfinite(m.sf(t)) else -1)
    table = []
    for n in GALLERY_SIZES:
        pn = pairs_per_sweep(n)
        tn = max(v for v in (m.isf(max_false_duplicates / pn) for m in models) if math.isfinite(v))
        table.append({"gallery_size": n, "pairs": pn, "per_pair_fmr": max_false_duplicates / pn, "threshold": _ceil3(tn),
                      "expected_at_current": pn * _sf_max(models, current)})
    return DuplicateArithmetic(gallery_size, pairs, max_false_duplicates, p, t, kind, per_model, current,
                               pairs * _sf_max(models, current), pairs * worst.sf(t), table)


def _sf_max(models: Sequence[TailModel], t: float) -> float:
    vals = [m.sf(t) for m in models]
    return max(v for v in vals if math.isfinite(v)) if any(math.isfinite(v) for v in vals) else math.nan


def quality_aware_decision(score: float, thresholds: Thresholds, quality_ok: bool) -> Decision:
    """The pipeline's decision rule (verifier.score.decide), named for the quality study."""
    return decide(score, thresholds, quality_ok)


@dataclass(frozen=True)
class ThresholdChoice:
    """One recommended threshold, where it came from, and the data-derived estimate beside it."""

    name: str
    value: float
    basis: str  # "measured" | "kept" | "lowered" | "tail-model"
    why_en: str
    why_zh: str
    estimate: float | None = None

    @property
    def changed(self) -> bool:
        return self.basis != "kept"


@dataclass(frozen=True)
class Recommendation:
    """Accept, reject and duplicate with their reasons."""

    accept: ThresholdChoice
    reject: ThresholdChoice
    duplicate: ThresholdChoice

    def thresholds(self) -> Thresholds:
        return Thresholds(self.accept.value, self.reject.value, self.duplicate.value)

    def choices(self) -> list[ThresholdChoice]:
        return [self.accept, self.reject, self.duplicate]


def recommend_accept(genuine: np.ndarray, impostor: np.ndarray, target_fmr: float, current: float, models: Sequence[TailModel]) -> ThresholdChoice:
    """Measured threshold at the target FMR when the impostor count supports it; else keep the current value."""
    op = fnmr_at_fmr(genuine, impostor, target_fmr)
    model_t = max(m.isf(target_fmr) for m in models if math.isfinite(m.isf(target_fmr)))
    if op.supported:
        value = _ceil3(op.threshold)
        return ThresholdChoice("accept", value, "measured",
                               f"smallest threshold with FMR <= {target_fmr:g} on {op.n_impostor:,} impostor pairs (FNMR there {op.fnmr:.2%})",
                               f"在 {op.n_impostor:,} 个冒认对上，使误识率不超过 {target_fmr:g} 的最小阈值（此时拒真率 {op.fnmr:.2%}）", model_t)
    return ThresholdChoice("accept", current, "kept",
                           f"{op.n_impostor:,} impostor pairs cannot measure an FMR of {target_fmr:g} (about {op.needed_impostor:,} needed); "
                           f"the current value stays (tail-model estimate {model_t:.3f}, highest impostor seen {float(np.max(impostor)):.3f})",
                           f"{op.n_impostor:,} 个冒认对不足以测量 {target_fmr:g} 的误识率（约需 {op.needed_impostor:,} 个），保留现值"
                           f"（尾部模型估计 {model_t:.3f}，样本中最高冒认分 {float(np.max(impostor)):.3f}）", model_t)


def recommend_reject(genuine_hard: np.ndarray, impostor: np.ndarray, current: float, accept: float, review_budget: float = 0.02) -> ThresholdChoice:
    """Keep the current reject unless hard genuine pairs (age gap, low quality above the floor) fall below it.

    Then lower it to just under the lowest of them, but not so far that more than
    `review_budget` of impostor pairs would land in review.
    """
    imp = SortedScores.of(impostor)
    floor = operating_point_sorted(SortedScores.of(np.zeros(1)), imp, review_budget).threshold
    lowest = float(np.min(genuine_hard)) if np.size(genuine_hard) else math.inf
    need = math.floor(lowest * 1000) / 1000
    share_now = float(imp.share_at_or_above(current))
    if need >= current:
        return ThresholdChoice("reject", min(current, accept), "kept",
                               f"every hard genuine pair (lowest {lowest:.3f}) already scores at or above the current reject; "
                               f"{share_now:.1%} of impostor pairs fall in the review band",
                               f"所有困难真匹配对（最低 {lowest:.3f}）均不低于现有拒绝阈值；{share_now:.1%} 的冒认对落入复核区间", need)
    value = min(accept, max(need, _ceil3(floor)))
    share = float(imp.share_at_or_above(value))
    if value >= current:
        return ThresholdChoice("reject", current, "kept",
                               f"hard genuine pairs reach down to {lowest:.3f}, but lowering reject below {current:.3f} would send more than "
                               f"{review_budget:.0%} of impostor pairs to review; those pairs need quality routing or re-collection",
                               f"困难真匹配对低至 {lowest:.3f}，但拒绝阈值若低于 {current:.3f}，超过 {review_budget:.0%} 的冒认对会进入复核；"
                               f"这些照片应按质量转复核或重新采集", need)
    return ThresholdChoice("reject", value, "lowered",
                           f"lowered so hard genuine pairs down to {lowest:.3f} go to review; {share:.1%} of impostor pairs then fall in the review band "
                           f"(budget {review_budget:.0%})",
                           f"下调后低至 {lowest:.3f} 的困难真匹配对进入复核；此时 {share:.1%} 的冒认对落入复核区间（上限 {review_budget:.0%}）", need)


def recommend_duplicate(arith: DuplicateArithmetic, accept: float, n_impostor: int, n_identities: int) -> ThresholdChoice:
    """The tail-model duplicate threshold (never below accept), with a warning when the fit rests on little data."""
    value = max(arith.threshold, accept)
    weak = n_impostor < 1000 or n_identities < 30
    caveat_en = (f"; the fit rests on only {n_impostor:,} impostor pairs of {n_identities} people, so treat it as provisional" if weak else "")
    caveat_zh = (f"；拟合仅基于 {n_identities} 人的 {n_impostor:,} 个冒认对，只能作为临时值" if weak else "")
    return ThresholdChoice(
        "duplicate", value, "tail-model",
        f"{arith.model} tail model: N = {arith.gallery_size:,} gives {arith.pairs:,} pairs per sweep; at {value:.3f} the expected false "
        f"duplicate pairs are {arith.expected_at_threshold:.2g} (allowed {arith.max_false_duplicates:g}), at the current "
        f"{arith.current:.3f} they would be {arith.expected_at_current:.3g}{caveat_en}",
        f"{arith.model} 尾部模型：N = {arith.gallery_size:,} 人，每次排查比较 {arith.pairs:,} 对；阈值 {value:.3f} 时预计误报 "
        f"{arith.expected_at_threshold:.2g} 对（允许 {arith.max_false_duplicates:g} 对），现值 {arith.current:.3f} 时约 "
        f"{arith.expected_at_current:.3g} 对{caveat_zh}",
        arith.threshold,
    )
