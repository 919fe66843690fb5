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
from verifier.calibrate.metrics import fnmr_at_fmr, needed_impostor_pairs

GPD_TAIL_FRACTION = 0.10  # the upper 10 % of impostor scores feed the Generalised Pareto fit ...
GPD_MAX_EXCEEDANCES = 50_000  # ... but at most the highest 50,000 (tens of thousands is what the tail needs)
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


def fit_gpd(impostor: np.ndarray, tail_fraction: float = GPD_TAIL_FRACTION, min_exceedances: int = GPD_MIN_EXCEEDANCES,
            max_exceedances: int = GPD_MAX_EXCEEDANCES) -> TailModel | None:
    """Generalised Pareto model of the upper impostor tail, or None when too few scores exceed the tail threshold.

    The tail is the upper `tail_fraction` of the scores, capped at the highest `max_exceedances`.
    """
    x = np.asarray(impostor, np.float64)
    k = min(int(x.size * tail_fraction), max_exceedances)
    if k < min_exceedances:
        return None
    top = np.sort(np.partition(x, x.size - k - 1)[x.size - k - 1:])
    u = float(top[0])
    y = top[1:] - u
    y = y[y > 0]
    if y.size < min_exceedances:
        return None
    shape, _, scale = stats.genpareto.fit(y, floc=0.0)
    return TailModel("gpd", int(x.size), u=u, p_u=y.size / x.size, shape=float(shape), scale=float(scale))


def gpd_duplicate_intervals(impostor: np.ndarray, max_false_duplicates: float, sizes: Sequence[int] = GALLERY_SIZES,
                            n_boot: int = 200, level: float = 0.95, seed: int = 0) -> dict[int, tuple[float, float]] | None:
    """Bootstrap intervals of the GPD duplicate threshold per gallery size (the tail's exceedances resampled and refitted)."""
    model = fit_gpd(impostor)
    if model is None:
        return None
    x = np.asarray(impostor, np.float64)
    k = round(model.p_u * model.n)
    top = np.sort(np.partition(x, x.size - k)[x.size - k:])
    rng = np.random.default_rng(seed)
    reps = {n: [] for n in sizes}
    for _ in range(n_boot):
        y = rng.choice(top, size=top.size, replace=True) - model.u
        y = y[y > 0]
        if y.size < GPD_MIN_EXCEEDANCES:
            continue
        shape, _, scale = stats.genpareto.fit(y, floc=0.0)
        m = TailModel("gpd", model.n, u=model.u, p_u=y.size / model.n, shape=float(shape), scale=float(scale))
        for n in sizes:
            reps[n].append(m.isf(max_false_duplicates / pairs_per_sweep(n)))
    a = (1 - level) / 2
    return {n: (float(np.nanquantile(v, a)), float(np.nanquantile(v, 1 - a))) for n, v in reps.items() if v}


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
    """Measured threshold at the target FMR when the impostor count supports it.

    Otherwise the threshold measured at the lowest FMR the data support (3 / impostor pairs), or the tail
    model's estimate at the target, whichever is stricter; the words say which and why.
    """
    op = fnmr_at_fmr(genuine, impostor, target_fmr)
    estimates = [m.isf(target_fmr) for m in models if math.isfinite(m.isf(target_fmr))]
    model_t = max(estimates) if estimates else math.nan
    if op.supported:
        value = _ceil3(op.threshold)
        return ThresholdChoice("accept", value, "measured",
                               f"smallest threshold with FMR <= {target_fmr:g} on {op.n_impostor:,} impostor pairs (FNMR there {op.fnmr:.2%})",
                               f"在 {op.n_impostor:,} 个异人对上，使误识率不超过 {target_fmr:g} 的最小阈值（此时拒真率 {op.fnmr:.2%}）", model_t)
    lowest = needed_fmr = 3.0 / max(op.n_impostor, 1)
    at_lowest = fnmr_at_fmr(genuine, impostor, lowest)
    measured = _ceil3(at_lowest.threshold)
    value = max(measured, _ceil3(model_t)) if math.isfinite(model_t) else measured
    which_en = "the tail model's estimate at the target" if value > measured else f"the threshold measured at FMR {needed_fmr:.1e}"
    which_zh = "尾部模型在目标误识率处的估计" if value > measured else f"在误识率 {needed_fmr:.1e} 处实测的阈值"
    return ThresholdChoice("accept", value, "lowest-supported",
                           f"{op.n_impostor:,} impostor pairs cannot measure an FMR of {target_fmr:g} (about {op.needed_impostor:,} needed); "
                           f"the lowest FMR they support is {needed_fmr:.1e} (threshold {measured:.3f}); the tail model puts FMR {target_fmr:g} at "
                           f"{model_t:.3f}; the stricter is used: {which_en}",
                           f"{op.n_impostor:,} 个异人对不足以测量 {target_fmr:g} 的误识率（约需 {op.needed_impostor:,} 个）；数据可支持的最低误识率为 "
                           f"{needed_fmr:.1e}（阈值 {measured:.3f}）；尾部模型估计 {target_fmr:g} 处为 {model_t:.3f}；取较严者：{which_zh}", model_t)


def recommend_reject_fnmr(genuine: np.ndarray, target_fnmr: float, accept: float) -> ThresholdChoice:
    """The highest threshold (floored to 0.001) that sends at most `target_fnmr` of genuine pairs below it; never above accept.

    With fewer genuine pairs than 3 / target, the lowest FNMR they support (3 / genuine pairs) is used, and said.
    """
    g = np.sort(np.asarray(genuine, np.float64))
    n = g.size
    need = needed_impostor_pairs(target_fnmr)
    rate = target_fnmr if n >= need else 3.0 / max(n, 1)
    k = int(math.floor(rate * n))
    t = float(g[min(k, n - 1)])
    value = min(accept, math.floor(t * 1000 + 1e-9) / 1000)
    below = float(np.mean(g < value)) if n else math.nan
    if n >= need:
        return ThresholdChoice("reject", value, "measured",
                               f"highest threshold with FNMR <= {target_fnmr:g} on {n:,} genuine pairs ({below:.3%} of them fall below it)",
                               f"在 {n:,} 个同人对上，使拒真率不超过 {target_fnmr:g} 的最高阈值（{below:.3%} 的同人对低于此值）", t)
    return ThresholdChoice("reject", value, "lowest-supported",
                           f"{n:,} genuine pairs cannot measure an FNMR of {target_fnmr:g} (about {need:,} needed); set at the lowest FNMR they "
                           f"support, {rate:.1e} ({below:.2%} of them below it)",
                           f"{n:,} 个同人对不足以测量 {target_fnmr:g} 的拒真率（约需 {need:,} 个）；按数据可支持的最低拒真率 {rate:.1e} 设定"
                           f"（{below:.2%} 的同人对低于此值）", t)


@dataclass(frozen=True)
class ReviewBand:
    """Where pairs land under a set of thresholds, and the reviewers' workload per thousand comparisons."""

    genuine_match: float
    genuine_review: float
    genuine_mismatch: float
    impostor_match: float
    impostor_review: float
    impostor_mismatch: float

    @property
    def reviews_per_1000_graduates(self) -> float:
        """Graduates are almost all genuine: the genuine share in the band, per thousand."""
        return 1000 * self.genuine_review

    def to_dict(self) -> dict[str, float]:
        return {**self.__dict__, "reviews_per_1000_graduates": self.reviews_per_1000_graduates}


def review_band(genuine: np.ndarray, impostor: np.ndarray, thresholds: Thresholds) -> ReviewBand:
    """Shares of genuine and impostor pairs decided match (>= accept), review, mismatch (< reject)."""
    def shares(x: np.ndarray) -> tuple[float, float, float]:
        x = np.asarray(x, np.float64)
        m = float(np.mean(x >= thresholds.accept)) if x.size else math.nan
        r = float(np.mean(x < thresholds.reject)) if x.size else math.nan
        return m, 1 - m - r, r

    return ReviewBand(*shares(genuine), *shares(impostor))


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
