"""Plots (matplotlib, Agg backend): ROC, DET, score histograms with the thresholds, score against quality.

Labels are bilingual; Chinese is set in the Noto Sans SC font the package depends on (verifier.fonts), so
it renders on machines that carry no CJK font.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from verifier.common.fonts import use_cjk_font_in_matplotlib  # noqa: E402
from verifier.common.files import open_output  # noqa: E402
from verifier.core.results import Thresholds  # noqa: E402
from verifier.calibrate.metrics import RocCurve, det_curve, probit  # noqa: E402
from verifier.calibrate.quality_study import DEGRADATIONS, QualityStudy  # noqa: E402

use_cjk_font_in_matplotlib()
DPI = 90
SIZE = (6.4, 4.2)
LINES = {"accept": ("tab:green", "-"), "reject": ("tab:red", "-"), "duplicate": ("tab:purple", "--")}


def _save(fig: plt.Figure, path: Path, dpi: int = DPI) -> Path:
    fig.tight_layout()
    with open_output(path, "wb") as fh:
        fig.savefig(fh, dpi=dpi, format="png")
    plt.close(fig)
    return path


MAX_CURVE_POINTS = 4_000


def thinned(roc: RocCurve, points: int = MAX_CURVE_POINTS) -> RocCurve:
    """At most about `points` thresholds, spread evenly in log FMR and in FNMR (a plot of 24M steps shows nothing more)."""
    n = roc.thresholds.size
    if n <= points:
        return roc
    fmr_grid = np.logspace(-8, 0, points // 2)
    idx = np.searchsorted(-roc.fmr, -fmr_grid)  # fmr falls along the thresholds
    idx = np.concatenate([idx, np.searchsorted(roc.fnmr, np.linspace(0, 1, points // 2)), [0, n - 1]])
    keep = np.unique(np.clip(idx, 0, n - 1))
    return RocCurve(roc.thresholds[keep], roc.fmr[keep], roc.fnmr[keep])


def roc_plot(curves: Mapping[str, RocCurve], path: Path, n_impostor: Mapping[str, int]) -> Path:
    """True-match rate against FMR on a log axis; FMR = 0 is drawn at half of one impostor pair."""
    fig, ax = plt.subplots(figsize=SIZE)
    lo = 1.0
    for name, roc in curves.items():
        roc = thinned(roc)
        floor = 0.5 / max(n_impostor.get(name, 1), 1)
        lo = min(lo, floor)
        ax.step(np.maximum(roc.fmr, floor), 1 - roc.fnmr, where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlim(lo, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("误识率 FMR (false match rate)")
    ax.set_ylabel("通过率 TMR = 1 - FNMR")
    ax.set_title("ROC 曲线")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def det_plot(curves: Mapping[str, RocCurve], path: Path) -> Path:
    """FNMR against FMR, both on normal-deviate axes; only points where both rates are non-zero can be drawn."""
    fig, ax = plt.subplots(figsize=SIZE)
    ticks = np.array([1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 0.8])
    drawn = 0
    for name, roc in curves.items():
        x, y = det_curve(thinned(roc))
        if x.size:
            ax.plot(x, y, marker="." if x.size < 200 else None, label=name)
            drawn += 1
        else:
            ax.plot([], [], label=f"{name}: no point with FMR and FNMR both > 0")
    ax.set_xticks(probit(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(probit(ticks), [f"{t:g}" for t in ticks])
    ax.set_xlim(probit(1e-4), probit(0.8))
    ax.set_ylim(probit(1e-4), probit(0.8))
    ax.set_xlabel("误识率 FMR (false match rate)")
    ax.set_ylabel("拒识率 FNMR (false non-match rate)")
    ax.set_title("DET 曲线" + ("" if drawn else "（本样本中两类错误不重叠 / errors do not overlap）"))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def histogram_plot(genuine: np.ndarray, impostor: np.ndarray, thresholds: Thresholds, path: Path, title: str = "") -> Path:
    """Genuine and impostor score histograms with accept, reject and duplicate drawn and the review band shaded."""
    fig, ax = plt.subplots(figsize=SIZE)
    bins = np.linspace(min(-0.2, float(np.min(impostor, initial=0))), 1.0, 61)
    ax.hist(impostor, bins=bins, density=True, alpha=0.55, color="tab:orange", label=f"异人 impostor (n={len(impostor)})")
    ax.hist(genuine, bins=bins, density=True, alpha=0.55, color="tab:blue", label=f"同人 genuine (n={len(genuine)})")
    ax.axvspan(thresholds.reject, thresholds.accept, color="gold", alpha=0.2, label="复核区间 review band")
    for name, value in thresholds.to_dict().items():
        color, style = LINES[name]
        ax.axvline(value, color=color, linestyle=style, label=f"{name} {value:.3f}")
    ax.set_xlabel("余弦分数 cosine score")
    ax.set_ylabel("密度 density")
    ax.set_title(title or "比对分数分布 / score distributions")
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def quality_plot(study: QualityStudy, thresholds: Thresholds, path: Path) -> Path:
    """Genuine score of each degraded copy against its quality metrics, coloured by degradation."""
    metrics = (("sharpness", "sharpness (Laplacian variance)", True), ("brightness", "face brightness (0-255)", False),
               ("inter_eye_px", "inter-eye distance (px)", True), ("drop", "score drop vs the undegraded pair", False))
    copies = {(c.image, c.degradation, c.level): c for c in study.copies if c.usable}
    fig, axes = plt.subplots(2, 2, figsize=(8.0, 6.0), sharey=True)
    colours = plt.get_cmap("tab10")
    for ax, (key, label, log) in zip(axes.ravel(), metrics):
        for i, d in enumerate(DEGRADATIONS):
            ps = [p for p in study.pairs if p.degradation == d.name]
            xs = [p.drop if key == "drop" else copies[(p.image, p.degradation, p.level)].metrics[key] for p in ps]
            ax.scatter(xs, [p.score for p in ps], s=6, alpha=0.5, color=colours(i), label=d.name)
        ax.axhspan(thresholds.reject, thresholds.accept, color="gold", alpha=0.2)
        ax.axhline(thresholds.accept, color="tab:green", lw=1)
        ax.axhline(thresholds.reject, color="tab:red", lw=1)
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(label, fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("同人分数 genuine score")
    axes[1, 0].set_ylabel("同人分数 genuine score")
    axes[0, 0].legend(fontsize=6, markerscale=2, loc="lower right")
    fig.suptitle("Quality study: genuine scores of degraded copies", fontsize=10)
    return _save(fig, path, dpi=72)


def level_plot(study: QualityStudy, thresholds: Thresholds, path: Path) -> Path:
    """Lowest and mean genuine score per degradation and level, with the review band."""
    rows = study.summary()
    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    x = np.arange(len(rows))
    ax.bar(x, [r.mean_score for r in rows], color=["#9ecae1", "#4292c6", "#08519c"] * len(DEGRADATIONS), label="mean genuine score")
    ax.scatter(x, [r.min_score for r in rows], color="black", marker="v", s=14, label="lowest genuine score")
    ax.axhspan(thresholds.reject, thresholds.accept, color="gold", alpha=0.3, label="复核区间 review band")
    ax.set_xticks(x, [f"{r.degradation}\n{r.level[:3]}" for r in rows], fontsize=6)
    ax.set_ylabel("cosine score")
    ax.set_title("Genuine scores by degradation and level (mild / moderate / severe)")
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)
