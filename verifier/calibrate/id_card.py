"""Calibration at ID-card size: each labelled pair scored as (admission photo of one image) vs (ID-card photo of the other).

The intake check compares a 102x126 chip photo (身份证照片) with the 295x413 admission photo, which scores lower than
two full-size photos. Every image of the evaluation set is therefore cut, as the offices' photos are, into an
admission photo (295x413 JPEG within the 50 KB limit) and an ID-card photo (102x126 BMP, as card readers export
it), both analysed by the real pipeline from their encoded bytes. In each pair the image with the lower index is
the admission side and the other the ID-card side (the set's file order, independent of identity). The same pairs
are also scored admission photo vs the original image, so what the small size costs is measured like for like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from verifier.calibrate.pairs import PairSet, ScoredPairs, scored_from_embeddings
from verifier.core.results import FaceAnalysis
from verifier.photos.framing import ID_CARD, Framing, frame_face

ADMISSION_MAX_BYTES = 51_200  # the admission specification's size limit
CHUNK = 16


@dataclass(frozen=True)
class IdCardScores:
    """The pairs scored at ID-card size and, for comparison, at full size; seconds per image for all three analyses."""

    id_card: ScoredPairs
    full_size: ScoredPairs
    seconds_per_image: float


def admission_bytes(pixels: np.ndarray, analysis: FaceAnalysis) -> bytes:
    """The admission photo an office would upload: the face framed at 295x413, JPEG at the best quality within 50 KB."""
    portrait = frame_face(pixels, analysis.face, Framing())
    for quality in (92, 85, 75, 65, 55, 45):
        data = cv2.imencode(".jpg", portrait, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
        if len(data) <= ADMISSION_MAX_BYTES:
            break
    return data


def id_card_bytes(pixels: np.ndarray, analysis: FaceAnalysis) -> bytes:
    """The ID-card photo as a reader exports it: the face framed like the chip photo, 102x126, BMP."""
    return cv2.imencode(".bmp", frame_face(pixels, analysis.face, ID_CARD))[1].tobytes()


def _stack(pairs: PairSet, side_a: list[FaceAnalysis], side_b: list[FaceAnalysis]) -> ScoredPairs:
    """Scores with the lower-index image from `side_a` and the other from `side_b` (one matrix, b's rows after a's)."""
    n = len(pairs.images)
    analyses = side_a + side_b
    dim = next((a.embedding.shape[-1] for a in analyses if a.embedding is not None), 1)
    emb = np.zeros((2 * n, dim), dtype=np.float32)
    ok = np.zeros(2 * n, dtype=bool)
    unusable: dict[str, str] = {}
    for i, a in enumerate(analyses):
        if a.embedding is not None:
            emb[i], ok[i] = a.embedding, True
        else:
            unusable[pairs.images[i % n].name] = a.reason.code if a.reason else "UNKNOWN"
    lo, hi = np.minimum(pairs.idx_a, pairs.idx_b), np.maximum(pairs.idx_a, pairs.idx_b)
    doubled = replace(pairs, images=pairs.images * 2, identities=pairs.identities * 2, idx_a=lo, idx_b=hi + n)
    return scored_from_embeddings(doubled, emb, ok, unusable)


def score_at_id_card_size(pipeline, pairs: PairSet, progress: Callable[[int], None] | None = None) -> IdCardScores:
    """Analyse every image three ways (original, admission photo, ID-card photo) and score the pairs at both sizes."""
    import time

    t0 = time.perf_counter()
    original: list[FaceAnalysis] = []
    admission: list[FaceAnalysis] = []
    card: list[FaceAnalysis] = []
    for start in range(0, len(pairs.images), CHUNK):
        chunk = pairs.images[start : start + CHUNK]
        pixels = [pipeline.decode(p) for p in chunk]
        pixels = [getattr(p, "pixels", p) for p in pixels]
        found = pipeline.analyze_many(pixels)
        original.extend(found)
        framed = [i for i, a in enumerate(found) if a.face is not None]
        adm = pipeline.analyze_many([admission_bytes(pixels[i], found[i]) for i in framed])
        ids = pipeline.analyze_many([id_card_bytes(pixels[i], found[i]) for i in framed])
        by_index = dict(zip(framed, zip(adm, ids, strict=True), strict=True))
        for i, a in enumerate(found):
            pair = by_index.get(i)
            admission.append(pair[0] if pair else a)
            card.append(pair[1] if pair else a)
        if progress is not None:
            progress(len(chunk))
    per_image = (time.perf_counter() - t0) / max(1, len(pairs.images))
    return IdCardScores(_stack(pairs, admission, card), _stack(pairs, admission, original), per_image)
