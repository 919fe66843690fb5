"""Quality study: degraded copies of ID portraits cut from the face set, and how genuine scores move.

Each face-set photo is framed into a 295x413 ID portrait (as the photo fixer would);
each portrait is degraded at three levels (blur, small size, partial-face crop, head roll,
under- and over-exposure, heavy JPEG) and compared with the undegraded portraits of the
same person (genuine) and of everyone else (impostor), and impostors also with other
people's copies at the same degradation (two poor photos of different people).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from verifier.photos.framing import frame_face
from verifier.core.results import Face, FaceAnalysis, Thresholds
from verifier.core.score import decide

LEVELS = ("mild", "moderate", "severe")
ABSORBED_LEVELS = ("mild", "moderate")  # low quality an office still meets; severe copies are for re-collection
SHARPNESS_WIDTH = 112


@dataclass(frozen=True)
class Degradation:
    """One kind of damage with its strength per level."""

    name: str
    zh: str
    unit: str
    strengths: tuple[float, float, float]
    apply: Callable[[np.ndarray, Face, float], np.ndarray]


def _blur(img: np.ndarray, face: Face, f: float) -> np.ndarray:
    sigma = max(0.3, f * face.inter_eye)
    return cv2.GaussianBlur(img, (0, 0), sigma)


def _small(img: np.ndarray, face: Face, ied: float) -> np.ndarray:
    s = min(1.0, ied / max(face.inter_eye, 1.0))
    h, w = img.shape[:2]
    return cv2.resize(img, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)


def _crop(img: np.ndarray, face: Face, share: float) -> np.ndarray:
    x, _, bw, _ = face.box
    cut = int(max(0, min(img.shape[1] - 8, x + share * bw)))
    return np.ascontiguousarray(img[:, cut:])


def _roll(img: np.ndarray, face: Face, deg: float) -> np.ndarray:
    h, w = img.shape[:2]
    cx, cy = float(face.landmarks[2][0]), float(face.landmarks[2][1])
    m = cv2.getRotationMatrix2D((cx, cy), deg, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _dark(img: np.ndarray, face: Face, gain: float) -> np.ndarray:
    return np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def _bright(img: np.ndarray, face: Face, gain: float) -> np.ndarray:
    return np.clip(img.astype(np.float32) * gain + 40 * (gain - 1), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, face: Face, quality: float) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img


DEGRADATIONS: tuple[Degradation, ...] = (
    Degradation("blur", "模糊", "Gaussian sigma / inter-eye distance", (0.04, 0.08, 0.16), _blur),
    Degradation("small", "尺寸过小", "inter-eye distance, px", (20.0, 14.0, 9.0), _small),
    Degradation("crop", "人脸被裁切", "share of face width cut off", (0.15, 0.30, 0.45), _crop),
    Degradation("roll", "头部歪斜", "degrees of roll", (15.0, 25.0, 40.0), _roll),
    Degradation("dark", "曝光不足", "brightness gain", (0.45, 0.28, 0.15), _dark),
    Degradation("bright", "曝光过度", "brightness gain", (1.6, 2.1, 2.8), _bright),
    Degradation("jpeg", "JPEG 压缩过重", "JPEG quality", (15.0, 8.0, 3.0), _jpeg),
)


def _gray_box(img: np.ndarray, face: Face, inset: float) -> np.ndarray:
    h, w = img.shape[:2]
    x, y, bw, bh = face.box
    x0, y0 = int(max(0, x + inset * bw)), int(max(0, y + inset * bh))
    x1, y1 = int(min(w, x + (1 - inset) * bw)), int(min(h, y + (1 - inset) * bh))
    return cv2.cvtColor(img[y0:max(y1, y0 + 2), x0:max(x1, x0 + 2)], cv2.COLOR_BGR2GRAY)


def quality_metrics(img: np.ndarray, face: Face) -> dict[str, float]:
    """Inter-eye distance, sharpness (Laplacian variance at a fixed face width), inner-face brightness, detector score.

    Same definitions as the intake photo checks, so the floors below can be read against them.
    """
    gray = _gray_box(img, face, 0.0)
    scale = SHARPNESS_WIDTH / max(gray.shape[1], 1)
    gray = cv2.resize(gray, (SHARPNESS_WIDTH, max(2, round(gray.shape[0] * scale))), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return {
        "inter_eye_px": round(face.inter_eye, 1),
        "sharpness": round(float(cv2.Laplacian(gray, cv2.CV_64F).var()), 1),
        "brightness": round(float(_gray_box(img, face, 0.2).mean()), 1),
        "detector_score": round(float(face.score), 3),
    }


@dataclass(frozen=True)
class QualityFloor:
    """Below these a photo is too poor for its low score to count as evidence of another person.

    Defaults are the intake photo-check limits (sharpness, face brightness, inter-eye pixels).
    """

    min_sharpness: float = 30.0
    min_brightness: float = 70.0
    max_brightness: float = 215.0
    min_inter_eye: float = 30.0

    def failures(self, metrics: dict[str, float]) -> list[str]:
        """Names of the metrics outside the floor (empty: good enough)."""
        out = []
        if metrics.get("sharpness", 0.0) < self.min_sharpness:
            out.append("sharpness")
        b = metrics.get("brightness", 0.0)
        if b < self.min_brightness or b > self.max_brightness:
            out.append("brightness")
        if metrics.get("inter_eye_px", 0.0) < self.min_inter_eye:
            out.append("inter_eye_px")
        return out


@dataclass(frozen=True)
class QualityPair:
    """A genuine pair: degraded copy of one photo vs the portrait of another photo of the same person."""

    image: str
    other: str
    identity: str
    degradation: str
    level: str
    score: float
    reference: float  # the same pair, both undegraded
    below_floor: tuple[str, ...] = ()  # quality metrics of the degraded copy outside the QualityFloor

    @property
    def drop(self) -> float:
        return self.reference - self.score


@dataclass(frozen=True)
class QualityCopy:
    """One degraded copy: whether a face was still found, and its quality metrics."""

    image: str
    identity: str
    degradation: str
    level: str
    strength: float
    usable: bool
    reason: str | None
    metrics: dict[str, float]


@dataclass(frozen=True)
class LevelSummary:
    """Genuine-score movement for one degradation at one level."""

    degradation: str
    level: str
    strength: float
    copies: int
    usable: int
    pairs: int
    mean_score: float
    mean_drop: float
    min_score: float
    max_impostor: float
    max_impostor_both: float
    metric_means: dict[str, float]


@dataclass(frozen=True)
class BandCheck:
    """Where the genuine pairs of low-quality copies land under a set of thresholds."""

    thresholds: Thresholds
    levels: tuple[str, ...]
    match: int
    review: int
    mismatch: int
    impostor_pairs: int
    impostor_review: int
    impostor_match: int
    failing: list[QualityPair]

    @property
    def routed_by_quality(self) -> int:
        """Failing pairs whose degraded photo is below the quality floor (quality-aware routing sends them to review)."""
        return sum(1 for p in self.failing if p.below_floor)

    @property
    def absorbed(self) -> bool:
        """True when no low-quality genuine pair fails once quality-aware routing is applied."""
        return self.mismatch == self.routed_by_quality


@dataclass
class QualityStudy:
    """All copies, genuine pairs and impostor scores of the study."""

    portraits: list[str]
    copies: list[QualityCopy]
    pairs: list[QualityPair]
    impostor: dict[tuple[str, str], list[float]]  # degraded copy vs other people's good portraits
    impostor_both: dict[tuple[str, str], list[float]]  # two degraded copies (same damage) of different people
    reference_genuine: list[float]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[LevelSummary]:
        """One row per degradation and level."""
        rows = []
        for d in DEGRADATIONS:
            for level, strength in zip(LEVELS, d.strengths):
                cs = [c for c in self.copies if c.degradation == d.name and c.level == level]
                ps = [p for p in self.pairs if p.degradation == d.name and p.level == level]
                imp = self.impostor.get((d.name, level), [])
                both = self.impostor_both.get((d.name, level), [])
                used = [c for c in cs if c.usable]
                means = {k: float(np.mean([c.metrics[k] for c in used])) for k in (used[0].metrics if used else {})}
                rows.append(LevelSummary(
                    d.name, level, strength, len(cs), len(used), len(ps),
                    float(np.mean([p.score for p in ps])) if ps else float("nan"),
                    float(np.mean([p.drop for p in ps])) if ps else float("nan"),
                    float(min(p.score for p in ps)) if ps else float("nan"),
                    float(max(imp)) if imp else float("nan"),
                    float(max(both)) if both else float("nan"),
                    means,
                ))
        return rows

    def genuine_scores(self, levels: Sequence[str] = ABSORBED_LEVELS) -> np.ndarray:
        """Scores of the genuine pairs at the given levels."""
        return np.array([p.score for p in self.pairs if p.level in levels], dtype=np.float64)

    def impostor_scores(self, levels: Sequence[str] = ABSORBED_LEVELS, both_degraded: bool = False) -> np.ndarray:
        """Impostor scores at the given levels (degraded vs good portrait, or two degraded copies)."""
        src = self.impostor_both if both_degraded else self.impostor
        return np.array([s for (_, lv), v in src.items() if lv in levels for s in v], dtype=np.float64)

    def check_band(self, thresholds: Thresholds, levels: Sequence[str] = ABSORBED_LEVELS) -> BandCheck:
        """Count match / review / mismatch for the low-quality genuine pairs and review/match for impostors."""
        ps = [p for p in self.pairs if p.level in levels]
        decisions = [decide(p.score, thresholds).value for p in ps]
        imp = self.impostor_scores(levels)
        return BandCheck(
            thresholds, tuple(levels),
            decisions.count("match"), decisions.count("review"), decisions.count("mismatch"),
            int(imp.size), int(((imp >= thresholds.reject) & (imp < thresholds.accept)).sum()), int((imp >= thresholds.accept).sum()),
            sorted((p for p, d in zip(ps, decisions) if d == "mismatch"), key=lambda p: p.score),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "portraits": len(self.portraits),
            "copies": len(self.copies),
            "usable_copies": sum(c.usable for c in self.copies),
            "genuine_pairs": len(self.pairs),
            "notes": self.notes,
            "summary": [r.__dict__ for r in self.summary()],
            "unusable": [c.__dict__ for c in self.copies if not c.usable],
        }


Analyzer = Callable[[list[np.ndarray]], list[FaceAnalysis]]


def _portraits(decode: Callable[[Path], np.ndarray], analyze: Analyzer, images: Sequence[Path]) -> tuple[list[int], list[np.ndarray], list[str]]:
    """ID portraits cut from every usable photo (indices into images), and notes on the ones skipped."""
    pixels = [decode(p) for p in images]
    keep, out, notes = [], [], []
    for i, (p, a) in enumerate(zip(images, analyze(pixels))):
        if a.face is None or a.embedding is None:
            notes.append(f"{p.name}: no usable face, left out of the quality study")
            continue
        keep.append(i)
        out.append(frame_face(pixels[i], a.face))
    return keep, out, notes


def run_quality_study(
    images: Sequence[Path],
    identities: Sequence[str],
    decode: Callable[[Path], np.ndarray],
    analyze: Analyzer,
    progress: Callable[[int], None] | None = None,
    chunk: int = 16,
    floor: QualityFloor = QualityFloor(),
) -> QualityStudy:
    """Degrade every portrait at every level and score it against the undegraded portraits."""
    keep, portraits, notes = _portraits(decode, analyze, images)
    names = [images[i].name for i in keep]
    ids = [identities[i] for i in keep]
    base = analyze(portraits)
    usable = [a.face is not None and a.embedding is not None for a in base]
    dim = next(a.embedding.shape[-1] for a in base if a.embedding is not None)
    ref = np.stack([a.embedding if a.embedding is not None else np.zeros(dim, np.float32) for a in base]).astype(np.float64)
    for n, ok in zip(names, usable):
        if not ok:
            notes.append(f"{n}: its ID portrait has no usable face, left out")
    jobs = [(k, d, lv, s) for k in range(len(portraits)) if usable[k] for d in DEGRADATIONS for lv, s in zip(LEVELS, d.strengths)]
    copies: list[QualityCopy] = []
    emb: dict[tuple[int, str, str], np.ndarray] = {}
    low: dict[tuple[int, str, str], tuple[str, ...]] = {}
    for start in range(0, len(jobs), chunk):
        batch = jobs[start:start + chunk]
        imgs = [d.apply(portraits[k], base[k].face, s) for k, d, _, s in batch]
        for (k, d, lv, s), img, a in zip(batch, imgs, analyze(imgs)):
            ok = a.embedding is not None
            metrics = quality_metrics(img, a.face) if a.face is not None else {}
            copies.append(QualityCopy(names[k], ids[k], d.name, lv, s, ok, None if ok else (a.reason.code if a.reason else "UNKNOWN"), metrics))
            if ok:
                emb[(k, d.name, lv)] = a.embedding.astype(np.float64)
                low[(k, d.name, lv)] = tuple(floor.failures(metrics))
        if progress is not None:
            progress(len(batch))
    pairs: list[QualityPair] = []
    impostor: dict[tuple[str, str], list[float]] = {}
    both: dict[tuple[str, str], list[float]] = {}
    good = [k for k in range(len(portraits)) if usable[k]]
    ref_gen = [float(ref[a] @ ref[b]) for a, b in itertools.combinations(good, 2) if ids[a] == ids[b]]
    for (k, dname, lv), e in emb.items():
        for j in good:
            if j == k:
                continue
            s = float(e @ ref[j])
            if ids[j] == ids[k]:
                pairs.append(QualityPair(names[k], names[j], ids[k], dname, lv, s, float(ref[k] @ ref[j]), low[(k, dname, lv)]))
            else:
                impostor.setdefault((dname, lv), []).append(s)
        for j in good:
            if j > k and ids[j] != ids[k] and (j, dname, lv) in emb:
                both.setdefault((dname, lv), []).append(float(e @ emb[(j, dname, lv)]))
    return QualityStudy(names, copies, pairs, impostor, both, ref_gen, notes)
