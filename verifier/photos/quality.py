"""Photo-quality metrics from BGR pixels and the detected faces, judged against a profile's thresholds.

Pure functions: no model is run here (the caller passes the detector's
faces), so the rules are cheap to test and to reuse in the fixer and the API.
Pose angles are estimates from the 5 landmarks, good enough to catch a
turned or tilted head, not a head-pose model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from verifier.photos.framing import roll_degrees
from verifier.photos.profiles import Profile
from verifier.common.reasons import Reason, Severity, reason
from verifier.core.results import Face

FRONTAL_NOSE_RATIO = 0.52  # (nose - eyes) / (mouth - eyes), vertical, frontal YuNet landmarks
YAW_GAIN = 1.3  # half eye span / nose depth
PITCH_GAIN = 1.8  # eye-to-mouth height / nose depth
SHARPNESS_WIDTH = 112  # the face is resized to this width before measuring sharpness
HEAD_ALLOWANCE = 0.15  # hair above the detector box, share of the box height



def pose_degrees(face: Face) -> dict[str, float]:
    """Yaw, pitch and roll estimates (degrees) from the 5 landmarks."""
    roll = roll_degrees(face)
    pts = face.landmarks.astype(np.float64)
    eyes = (pts[0] + pts[1]) / 2
    t = np.radians(-roll)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    p = (pts - eyes) @ rot.T
    half_span = max(np.linalg.norm(p[1] - p[0]) / 2, 1e-6)
    mouth = (p[3] + p[4]) / 2
    axis_x = mouth[0] / 2
    yaw = np.degrees(np.arctan((p[2, 0] - axis_x) / half_span * YAW_GAIN))
    ratio = p[2, 1] / mouth[1] if mouth[1] > 1e-6 else FRONTAL_NOSE_RATIO
    pitch = np.degrees(np.arctan((ratio - FRONTAL_NOSE_RATIO) * PITCH_GAIN))
    return {"yaw": round(float(yaw), 1), "pitch": round(float(pitch), 1), "roll": round(float(roll), 1)}


def _face_crop(image: np.ndarray, face: Face, inset: float = 0.0) -> np.ndarray:
    """The face box (optionally shrunk by `inset` per side), clipped to the image."""
    h, w = image.shape[:2]
    x, y, bw, bh = face.box
    x0, y0 = int(max(0, x + inset * bw)), int(max(0, y + inset * bh))
    x1, y1 = int(min(w, x + (1 - inset) * bw)), int(min(h, y + (1 - inset) * bh))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image[: max(2, h), : max(2, w)]
    return image[y0:y1, x0:x1]


def sharpness(image: np.ndarray, face: Face) -> float:
    """Variance of the Laplacian on the face, resized to a fixed width so sizes compare."""
    gray = cv2.cvtColor(_face_crop(image, face), cv2.COLOR_BGR2GRAY)
    scale = SHARPNESS_WIDTH / gray.shape[1]
    size = (SHARPNESS_WIDTH, max(2, round(gray.shape[0] * scale)))
    gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def exposure(image: np.ndarray, face: Face) -> dict[str, float]:
    """Mean luma of the inner face and the share of its pixels at or near white."""
    luma = cv2.cvtColor(_face_crop(image, face, inset=0.2), cv2.COLOR_BGR2GRAY)
    return {"brightness": round(float(luma.mean()), 1), "clipped": round(float((luma >= 250).mean()), 4)}


def colour_spread(image: np.ndarray) -> float:
    """Spread of chromaticity over the picture (x1000): near 0 for grayscale and sepia, whose pixels share one tint."""
    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float64)
    total = small.sum(axis=1)
    keep = (total > 90) & (small.max(axis=1) < 245)
    if keep.sum() < 16:
        return 0.0
    chroma = small[keep] / total[keep, None]
    return round(float(np.sqrt(chroma[:, 1].var() + chroma[:, 2].var()) * 1000), 2)


def background_pixels(image: np.ndarray, face: Face) -> np.ndarray:
    """Pixels of the top strip and the upper side strips beside the head, as N x 3 BGR."""
    h, w = image.shape[:2]
    x, y, bw, _ = face.box
    top = max(1, int(min(0.10 * h, max(1, y - HEAD_ALLOWANCE * face.box[3]) * 0.6)))
    parts = [image[:top].reshape(-1, 3)]
    side_bottom = int(min(h * 0.4, y + face.box[3] * 0.5))
    left, right = int(max(0, x - 0.15 * bw) * 0.6), int(w - max(0, w - (x + 1.15 * bw)) * 0.6)
    if side_bottom > top and left > 0:
        parts.append(image[top:side_bottom, :left].reshape(-1, 3))
    if side_bottom > top and right < w:
        parts.append(image[top:side_bottom, right:].reshape(-1, 3))
    return np.concatenate(parts)


def colour_family(bgr: np.ndarray) -> str:
    """Name the colour family of a mean BGR colour: white, light, blue, red or other."""
    hsv = cv2.cvtColor(np.uint8([[bgr]]), cv2.COLOR_BGR2HSV)[0, 0]
    hue, sat, val = int(hsv[0]), int(hsv[1]), int(hsv[2])
    if sat < 40 and val >= 215:
        return "white"
    if sat < 60 and val >= 160:
        return "light"
    if 90 <= hue <= 130 and sat >= 60 and val >= 80:
        return "blue"
    if (hue <= 8 or hue >= 170) and sat >= 80 and val >= 80:
        return "red"
    return "other"


def _accepts(wanted: str, family: str) -> bool:
    """Whether a measured family satisfies the wanted one (white counts as light)."""
    return family == wanted or (wanted == "light" and family == "white")


def _face_checks(image: np.ndarray, face: Face, profile: Profile, metrics: dict[str, Any]) -> list[Reason]:
    """Size, position, pose, resolution and confidence of the one face."""
    h, w = image.shape[:2]
    x, y, bw, bh = face.box
    out: list[Reason] = []
    share = bw * bh / (w * h)
    offset = abs((x + bw / 2) - w / 2) / w
    margins = {
        "top": (y - HEAD_ALLOWANCE * bh) / h,
        "bottom": (h - (y + bh)) / h,
        "left": x / w,
        "right": (w - (x + bw)) / w,
    }
    pose = pose_degrees(face)
    metrics.update(
        face_score=round(float(face.score), 3),
        face_box=[round(float(v), 1) for v in face.box],
        face_share=round(share, 3),
        face_offset=round(offset, 3),
        face_margins={k: round(v, 3) for k, v in margins.items()},
        inter_eye=round(face.inter_eye, 1),
        **pose,
    )
    if face.score < profile.min_face_score:
        out.append(reason("QUALITY_FACE_LOW_CONFIDENCE", measured=round(float(face.score), 3), limit=profile.min_face_score))
    if share < profile.min_face_share:
        out.append(reason("QUALITY_FACE_TOO_SMALL", measured=round(share, 3), limit=profile.min_face_share))
    elif share > profile.max_face_share:
        out.append(reason("QUALITY_FACE_TOO_LARGE", measured=round(share, 3), limit=profile.max_face_share))
    cut = {k: round(v, 3) for k, v in margins.items() if v < profile.min_edge_margin}
    if cut:
        out.append(reason("QUALITY_FACE_CUT_OFF", measured=cut, limit=profile.min_edge_margin))
    elif offset > profile.max_center_offset:
        out.append(reason("QUALITY_FACE_OFF_CENTRE", measured=round(offset, 3), limit=profile.max_center_offset))
    for axis, limit in (("yaw", profile.max_yaw), ("pitch", profile.max_pitch), ("roll", profile.max_roll)):
        if abs(pose[axis]) > limit:
            out.append(reason(f"QUALITY_POSE_{axis.upper()}", measured=pose[axis], limit=limit))
    if face.inter_eye < profile.min_inter_eye:
        out.append(reason("QUALITY_INTER_EYE_TOO_SMALL", measured=round(face.inter_eye, 1), limit=profile.min_inter_eye))
    return out


def _image_checks(image: np.ndarray, face: Face, profile: Profile, metrics: dict[str, Any]) -> list[Reason]:
    """Sharpness, exposure, colour and background."""
    out: list[Reason] = []
    sharp = sharpness(image, face)
    expo = exposure(image, face)
    spread = colour_spread(image)
    bg = background_pixels(image, face)
    bg_luma = cv2.cvtColor(bg.reshape(-1, 1, 3), cv2.COLOR_BGR2GRAY).ravel()
    bg_mean = bg.mean(axis=0)
    family = colour_family(bg_mean)
    metrics.update(
        sharpness=round(sharp, 1),
        **expo,
        colour_spread=spread,
        background_std=round(float(bg_luma.std()), 1),
        background_bgr=[round(float(v)) for v in bg_mean],
        background_family=family,
    )
    if sharp < profile.min_sharpness:
        out.append(reason("QUALITY_BLURRY", measured=round(sharp, 1), limit=profile.min_sharpness))
    if expo["brightness"] < profile.min_brightness:
        out.append(reason("QUALITY_UNDEREXPOSED", measured=expo["brightness"], limit=profile.min_brightness))
    elif expo["brightness"] > profile.max_brightness:
        out.append(reason("QUALITY_OVEREXPOSED", measured=expo["brightness"], limit=profile.max_brightness))
    if expo["clipped"] > profile.max_clipped_share:
        out.append(reason("QUALITY_HIGHLIGHTS_CLIPPED", measured=expo["clipped"], limit=profile.max_clipped_share))
    if profile.require_colour and spread < profile.min_colourfulness:
        out.append(reason("QUALITY_NOT_COLOUR", measured=spread, limit=profile.min_colourfulness))
    severity = Severity(profile.background_severity)
    if metrics["background_std"] > profile.max_background_std:
        out.append(reason("QUALITY_BACKGROUND_NOT_PLAIN", measured=metrics["background_std"], limit=profile.max_background_std, severity=severity))
    if profile.background is not None and not _accepts(profile.background, family):
        out.append(reason("QUALITY_BACKGROUND_COLOUR", measured=family, limit=profile.background, severity=severity))
    return out


def check_quality(image: np.ndarray, faces: Sequence[Face], profile: Profile) -> tuple[list[Reason], dict[str, Any]]:
    """Judge an upright BGR photo and its detected faces; exactly one face is required."""
    metrics: dict[str, Any] = {"face_count": len(faces)}
    if not faces:
        return [reason("FACE_NOT_FOUND", measured=0, limit=1)], metrics
    if len(faces) > 1:
        return [reason("FACE_MULTIPLE", measured=len(faces), limit=1)], metrics
    face = faces[0]
    out = _face_checks(image, face, profile, metrics)
    out += _image_checks(image, face, profile, metrics)
    return out, metrics
