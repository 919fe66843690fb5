"""Scoring: cosine similarity of unit embeddings and the three-way decision."""

from __future__ import annotations

import numpy as np

from verifier.core.results import Decision, Thresholds


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise unit vectors (float32); zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings."""
    return float(np.dot(l2_normalize(a).ravel(), l2_normalize(b).ravel()))


def decide(score: float, thresholds: Thresholds, quality_ok: bool = True) -> Decision:
    """match at or above accept, mismatch below reject, review in between.

    A pair with a photo below the quality limits never fails and passes only
    at the strict (duplicate) threshold: blur and bad exposure push genuine
    scores down and impostor scores up (degraded impostors reached 0.545 in
    the quality study, docs/ACCURACY.md), so anything else goes to review.
    """
    if not quality_ok:
        return Decision.MATCH if score >= thresholds.duplicate else Decision.REVIEW
    if score >= thresholds.accept:
        return Decision.MATCH
    if score < thresholds.reject:
        return Decision.MISMATCH
    return Decision.REVIEW
