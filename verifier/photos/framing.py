"""ID-photo framing: the crop that turns a detected face into a 295x413 portrait.

Pure geometry on landmarks; used by the photo fixer and by tests and
benchmarks that make ID-sized photos from ordinary ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from verifier.core.results import Face


@dataclass(frozen=True)
class Framing:
    """Where the face sits in the output portrait (fractions of its size)."""

    width: int = 295
    height: int = 413
    eye_line: float = 0.42  # eye midpoint, from the top, as a share of the height
    face_width: float = 0.58  # detector box width as a share of the output width


# The 身份证 chip photo as readers export it: 102x126, the head filling most of the width.
ID_CARD = Framing(width=102, height=126, eye_line=0.46, face_width=0.60)


def crop_box(face: Face, framing: Framing = Framing()) -> tuple[float, float, float, float]:
    """The source rectangle (x, y, w, h) to cut around a face."""
    eyes = (face.landmarks[0] + face.landmarks[1]) / 2.0
    w = face.box[2] / framing.face_width
    h = w * framing.height / framing.width
    return float(eyes[0] - w / 2), float(eyes[1] - framing.eye_line * h), float(w), float(h)


def roll_degrees(face: Face) -> float:
    """In-plane head tilt from the eye line, degrees (positive: clockwise in the image)."""
    (x1, y1), (x2, y2) = face.landmarks[0], face.landmarks[1]
    return float(np.degrees(np.arctan2(y2 - y1, x2 - x1)))


def frame_face(image: np.ndarray, face: Face, framing: Framing = Framing(), level: bool = True) -> np.ndarray:
    """Cut and resize a portrait around the face; edges beyond the image are replicated.

    With `level`, the eye line is made horizontal about the eye midpoint.
    """
    x, y, w, h = crop_box(face, framing)
    sx = framing.width / w
    eyes = (face.landmarks[0] + face.landmarks[1]) / 2.0
    angle = roll_degrees(face) if level else 0.0
    m = cv2.getRotationMatrix2D((float(eyes[0]), float(eyes[1])), angle, 1.0)
    m = np.vstack([m, [0, 0, 1]])
    shift = np.array([[sx, 0, -x * sx], [0, sx, -y * sx], [0, 0, 1]])
    full = (shift @ m)[:2]
    interp = cv2.INTER_AREA if sx < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(image, full, (framing.width, framing.height), flags=interp, borderMode=cv2.BORDER_REPLICATE)
