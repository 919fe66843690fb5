"""Verification metrics in pure numpy: ROC, DET, EER, FNMR at fixed FMR, identity-bootstrap intervals.

Convention: a pair is accepted when its score is >= the threshold (higher = more alike).
FMR = share of impostor pairs accepted; FNMR = share of genuine pairs rejected.
Every function takes optional per-pair weights (the identity bootstrap uses them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SUPPORT_FACTOR = 3.0  # an FMR of p needs about 3/p impostor pairs (rule of three) before it is measured at all
STANDARD_FMRS = (1e-2, 1e-3, 1e-4, 1e-5)


@dataclass(frozen=True)
class RocCurve:
    """Error rates at every candidate threshold (ascending)."""

    thresholds: np.ndarray
    fmr: np.ndarray
    fnmr: np.ndarray


@dataclass(frozen=True)
class EqualErrorRate:
    """Where FMR and FNMR meet (linear interpolation between neighbouring thresholds)."""

    eer: float
    threshold: float


@dataclass(frozen=True)
class OperatingPoint:
    """FNMR at the smallest threshold whose FMR is at most the target."""

    target_fmr: float
    threshold: float
    fmr: float
    fnmr: float
    n_impostor: int
    needed_impostor: int
    supported: bool

    @property
    def note(self) -> str:
        """Plain words on whether the impostor sample can measure this FMR."""
        if self.supported:
            return f"measured on {self.n_impostor} impostor pairs (>= {self.needed_impostor} needed)"
        return (f"not supported: {self.n_impostor} impostor pairs, about {self.needed_impostor} needed "
                f"(3/FMR) to observe an FMR of {self.target_fmr:g}")


@dataclass(frozen=True)
class ConfidenceInterval:
    """Percentile bootstrap interval of one statistic."""

    estimate: float
    low: float
    high: float
    level: float
    replicates: int

    def to_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level, "replicates": self.replicates}


@dataclass(frozen=True)
class SortedScores:
    """Scores sorted ascending with their weights' cumulative sums (fast repeated rate queries)."""

    scores: np.ndarray
    cumulative: np.ndarray  # cumulative[k] = weight of the k lowest scores; cumulative[-1] = total

    @classmethod
    def of(cls, scores: np.ndarray, weights: np.ndarray | None = None) -> "SortedScores":
        """Sort scores (and weights alongside)."""
        s = np.asarray(scores, dtype=np.float64)
        w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64)
        order = np.argsort(s, kind="stable")
        return cls.presorted(s[order], w[order])

    @classmethod
    def presorted(cls, scores: np.ndarray, weights: np.ndarray) -> "SortedScores":
        """From scores already sorted ascending."""
        return cls(scores, np.concatenate([[0.0], np.cumsum(weights, dtype=np.float64)]))

    @property
    def total(self) -> float:
        return float(self.cumulative[-1])

    def share_below(self, thresholds: np.ndarray | float) -> np.ndarray:
        """Weighted share of scores < t."""
        k = np.searchsorted(self.scores, thresholds, side="left")
        return self.cumulative[k] / self.total if self.total > 0 else np.full(np.shape(thresholds), np.nan)

    def share_at_or_above(self, thresholds: np.ndarray | float) -> np.ndarray:
        """Weighted share of scores >= t."""
        return 1.0 - self.share_below(thresholds)


def needed_impostor_pairs(target_fmr: float, factor: float = SUPPORT_FACTOR) -> int:
    """Impostor pairs needed before an FMR this small is measured rather than extrapolated."""
    return int(math.ceil(factor / target_fmr - 1e-9))


def _candidates(*samples: SortedScores) -> np.ndarray:
    """Every distinct score, plus one just above the highest (where nothing is accepted)."""
    allv = np.unique(np.concatenate([s.scores for s in samples]))
    top = allv[-1] if allv.size else 0.0
    return np.append(allv, np.nextafter(top, np.inf))


def roc_sorted(gen: SortedScores, imp: SortedScores) -> RocCurve:
    """ROC of pre-sorted samples."""
    t = _candidates(gen, imp)
    return RocCurve(t, imp.share_at_or_above(t), gen.share_below(t))


def roc_curve(genuine: np.ndarray, impostor: np.ndarray, genuine_weights: np.ndarray | None = None,
              impostor_weights: np.ndarray | None = None) -> RocCurve:
    """FMR and FNMR at every distinct score (ascending thresholds)."""
    return roc_sorted(SortedScores.of(genuine, genuine_weights), SortedScores.of(impostor, impostor_weights))


_CANDIDATES: list = []  # one cached (gen scores, imp scores, candidates): bootstrap replicates share the scores


def _shared_candidates(gen: SortedScores, imp: SortedScores) -> np.ndarray:
    """_candidates for these two score arrays, computed once however many weightings ask."""
    if _CANDIDATES and _CANDIDATES[0] is gen.scores and _CANDIDATES[1] is imp.scores:
        return _CANDIDATES[2]
    t = _candidates(gen, imp)
    _CANDIDATES[:] = [gen.scores, imp.scores, t]
    return t


def eer_sorted(gen: SortedScores, imp: SortedScores) -> EqualErrorRate:
    """EER of pre-sorted samples.

    FNMR - FMR rises with the threshold, so the first candidate where it turns non-negative is found by
    bisection; the EER interpolates linearly between it and the candidate before.
    """
    t = _shared_candidates(gen, imp)

    def d(k: int) -> float:
        return float(gen.share_below(t[k]) - imp.share_at_or_above(t[k]))

    lo, hi = 0, t.size - 1  # d(t[-1]) = FNMR - 0 >= 0 always
    while lo < hi:
        mid = (lo + hi) // 2
        if d(mid) >= 0:
            hi = mid
        else:
            lo = mid + 1
    k = lo

    def fmr(i: int) -> float:
        return float(imp.share_at_or_above(t[i]))

    if k == 0:
        return EqualErrorRate(fmr(0), float(t[0]))
    dk, dprev = d(k), d(k - 1)
    if dk == 0:
        return EqualErrorRate(fmr(k), float((t[k - 1] + t[k]) / 2))
    alpha = -dprev / (dk - dprev)
    return EqualErrorRate(fmr(k - 1) + alpha * (fmr(k) - fmr(k - 1)), float(t[k - 1] + alpha * (t[k] - t[k - 1])))


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray, genuine_weights: np.ndarray | None = None,
                     impostor_weights: np.ndarray | None = None) -> EqualErrorRate:
    """The error rate where FMR = FNMR, and the threshold there."""
    return eer_sorted(SortedScores.of(genuine, genuine_weights), SortedScores.of(impostor, impostor_weights))


def _smallest_threshold_at(imp: SortedScores, target_fmr: float) -> tuple[float, float]:
    """The smallest candidate threshold (a distinct impostor score, or just above the highest) with FMR <= target.

    FMR falls as the threshold rises, so the answer sits where the cumulative weight first reaches
    (1 - target) of the total: found by bisection instead of evaluating FMR at every candidate.
    """
    s = imp.scores
    if s.size == 0:
        return 0.0, 0.0
    top = float(np.nextafter(s[-1], np.inf))
    j0 = int(np.searchsorted(imp.cumulative, (1.0 - target_fmr) * imp.total, side="left"))
    if j0 <= 0:
        t = float(s[0])
    else:
        nxt = int(np.searchsorted(s, s[j0 - 1], side="right"))
        t = float(s[nxt]) if nxt < s.size else top
    # Guard the float edge: step to the neighbouring distinct scores until the condition holds exactly as stated.
    while float(imp.share_at_or_above(t)) > target_fmr and t < top:
        k = int(np.searchsorted(s, t, side="right"))
        t = float(s[k]) if k < s.size else top
    while True:
        k = int(np.searchsorted(s, t, side="left"))
        if k == 0:
            break
        prev = float(s[k - 1])
        if float(imp.share_at_or_above(prev)) > target_fmr:
            break
        t = prev
    return t, float(imp.share_at_or_above(t))


def operating_point_sorted(gen: SortedScores, imp: SortedScores, target_fmr: float, n_impostor: int | None = None) -> OperatingPoint:
    """FNMR@FMR of pre-sorted samples."""
    t, fmr = _smallest_threshold_at(imp, target_fmr)
    n = int(imp.scores.size if n_impostor is None else n_impostor)
    need = needed_impostor_pairs(target_fmr)
    return OperatingPoint(target_fmr, t, fmr, float(gen.share_below(t)), n, need, n >= need)


def fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, target_fmr: float, genuine_weights: np.ndarray | None = None,
                impostor_weights: np.ndarray | None = None) -> OperatingPoint:
    """The smallest threshold with FMR <= target, the FNMR there, and whether the impostor count supports it."""
    return operating_point_sorted(SortedScores.of(genuine, genuine_weights), SortedScores.of(impostor, impostor_weights), target_fmr)


def rates_at(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at one threshold."""
    g, i = SortedScores.of(genuine), SortedScores.of(impostor)
    return float(i.share_at_or_above(threshold)), float(g.share_below(threshold))


_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)


def probit(p: np.ndarray | float) -> np.ndarray:
    """Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9); the DET axis."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-300, 1 - 1e-16)
    out = np.empty_like(p)
    lo, hi = p < 0.02425, p > 1 - 0.02425
    mid = ~(lo | hi)
    q = p[mid] - 0.5
    r = q * q
    out[mid] = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q / (
        ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1)
    for mask, sign in ((lo, 1.0), (hi, -1.0)):
        pp = p[mask] if sign > 0 else 1 - p[mask]
        q = np.sqrt(-2 * np.log(pp))
        out[mask] = sign * (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / (
            (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1)
    return out


def normal_cdf(x: np.ndarray | float) -> np.ndarray:
    """Standard normal CDF."""
    return 0.5 * np.vectorize(math.erfc, otypes=[float])(-np.asarray(x, dtype=np.float64) / math.sqrt(2))


def det_curve(roc: RocCurve) -> tuple[np.ndarray, np.ndarray]:
    """DET coordinates: probit(FMR), probit(FNMR), for the points where both rates are strictly between 0 and 1."""
    keep = (roc.fmr > 0) & (roc.fmr < 1) & (roc.fnmr > 0) & (roc.fnmr < 1)
    return probit(roc.fmr[keep]), probit(roc.fnmr[keep])


Statistic = Callable[[SortedScores, SortedScores], dict[str, float]]


def identity_bootstrap(
    genuine: np.ndarray,
    genuine_identity: np.ndarray,
    impostor: np.ndarray,
    impostor_identity_a: np.ndarray,
    impostor_identity_b: np.ndarray,
    statistic: Statistic,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, ConfidenceInterval]:
    """Percentile intervals from resampling identities (not pairs) with replacement.

    An identity drawn k times weighs its genuine pairs k and an impostor pair between
    identities drawn k and m times weighs k*m, so pairs that share a person move together.
    """
    g_order = np.argsort(genuine, kind="stable")
    i_order = np.argsort(impostor, kind="stable")
    gs, gid = np.asarray(genuine, np.float64)[g_order], np.asarray(genuine_identity)[g_order]
    is_, ia, ib = np.asarray(impostor, np.float64)[i_order], np.asarray(impostor_identity_a)[i_order], np.asarray(impostor_identity_b)[i_order]
    n_id = int(max(gid.max(initial=-1), ia.max(initial=-1), ib.max(initial=-1)) + 1)
    point = statistic(SortedScores.presorted(gs, np.ones_like(gs)), SortedScores.presorted(is_, np.ones_like(is_)))
    rng = np.random.default_rng(seed)
    reps: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(n_boot):
        k = np.bincount(rng.integers(0, n_id, n_id), minlength=n_id).astype(np.float64)
        gw, iw = k[gid], k[ia] * k[ib]
        if gw.sum() == 0 or iw.sum() == 0:
            continue
        for name, value in statistic(SortedScores.presorted(gs, gw), SortedScores.presorted(is_, iw)).items():
            reps[name].append(value)
    alpha = (1 - level) / 2
    out = {}
    for name, est in point.items():
        v = np.asarray([x for x in reps[name] if np.isfinite(x)])
        low, high = (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))) if v.size else (math.nan, math.nan)
        out[name] = ConfidenceInterval(float(est), low, high, level, int(v.size))
    return out


def standard_statistic(target_fmrs: Sequence[float] = STANDARD_FMRS) -> Statistic:
    """EER, its threshold, and FNMR / threshold at each target FMR."""

    def stat(gen: SortedScores, imp: SortedScores) -> dict[str, float]:
        e = eer_sorted(gen, imp)
        out = {"eer": e.eer, "eer_threshold": e.threshold}
        for f in target_fmrs:
            op = operating_point_sorted(gen, imp, f)
            out[f"fnmr@{f:g}"] = op.fnmr
            out[f"threshold@{f:g}"] = op.threshold
        return out

    return stat
