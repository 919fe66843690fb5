"""Typed results of the face pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from verifier.common.reasons import Reason


@dataclass(frozen=True)
class Face:
    """One detected face in image coordinates (pixels of the upright image)."""

    box: tuple[float, float, float, float]  # x, y, width, height
    score: float
    landmarks: np.ndarray  # 5 x 2: right eye, left eye, nose, right mouth, left mouth (subject's sides)

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def inter_eye(self) -> float:
        return float(np.linalg.norm(self.landmarks[0] - self.landmarks[1]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
        }


class Decision(str, Enum):
    """Outcome of a 1:1 comparison under the pack's thresholds."""

    MATCH = "match"
    REVIEW = "review"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class FaceAnalysis:
    """Everything the pipeline learned about one image.

    `face` is the face chosen for embedding (None when unusable, see `reason`).
    """

    width: int
    height: int
    faces: list[Face]
    face: Face | None = None
    embedding: np.ndarray | None = None
    reason: Reason | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.embedding is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "face_count": len(self.faces),
            "face": self.face.to_dict() if self.face else None,
            "reason": self.reason.to_dict() if self.reason else None,
        }


@dataclass(frozen=True)
class Thresholds:
    """Cosine thresholds from the pack manifest."""

    accept: float
    reject: float
    duplicate: float

    def to_dict(self) -> dict[str, float]:
        return {"accept": self.accept, "reject": self.reject, "duplicate": self.duplicate}


@dataclass(frozen=True)
class Comparison:
    """A scored pair. `decision` is None when either side is unusable."""

    score: float | None
    decision: Decision | None
    thresholds: Thresholds
    a: FaceAnalysis
    b: FaceAnalysis

    @property
    def reason(self) -> Reason | None:
        return self.a.reason or self.b.reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": None if self.score is None else round(self.score, 4),
            "decision": self.decision.value if self.decision else "error",
            "thresholds": self.thresholds.to_dict(),
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "reason": self.reason.to_dict() if self.reason else None,
        }
