"""ID-card photos (身份证照片): tell a scan of the card's front from the chip photo, and keep only its portrait.

Card readers export the chip photo (about 102x126, portrait). Offices also send scans or phone shots of the
card's front (人像面, landscape, ISO/IEC 7810 ID-1 proportions), which carry the name, the 身份证号 and the
address beside the portrait. A scan is cut down to the portrait, framed like the chip photo, before anything is
stored or shown; when no single portrait can be found the scan's pixels are kept nowhere (the photo row records
only that a scan came and why it was refused).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from verifier.common.reasons import Reason, VerifierError, reason
from verifier.core.decode import decode_image, sniff_format
from verifier.core.results import Face
from verifier.photos.framing import ID_CARD, Framing, crop_box, frame_face
from verifier.photos.spec import HeaderError, read_header

if TYPE_CHECKING:
    from verifier.core.pipeline import Pipeline

CARD_ASPECT = 85.6 / 54.0  # ID-1 card, width / height
CARD_ASPECT_TOLERANCE = 0.15  # relative: scans are cropped loosely, phone shots a little skewed
MIN_SCAN_WIDTH = 300  # below this a landscape picture is not a legible card scan
MAX_PORTRAIT_WIDTH = 480  # the ID-card profile's widest photo
# A second face must be this many times smaller than the portrait to be ignored (a printed ghost image, a thumb).
PORTRAIT_DOMINANCE = 4.0


@dataclass(frozen=True)
class IdCardInput:
    """What is stored for an ID-card file: its own bytes, the portrait cut from a scan, or nothing."""

    data: bytes | None  # None: a scan with no usable portrait; keep no pixel of it
    origin_sha256: str | None  # the scan's digest when `data` was cut from it
    reason: Reason | None  # IDCARD_SCAN_CROPPED, or why no portrait was kept
    box: tuple[int, int, int, int] | None = None  # the portrait's rectangle in the scan (x, y, w, h)


def looks_like_card_scan(width: int, height: int) -> bool:
    """A landscape picture in the card's proportions, large enough to be a scan of its front."""
    if width <= height or width < MIN_SCAN_WIDTH:
        return False
    return abs(width / height - CARD_ASPECT) <= CARD_ASPECT_TOLERANCE * CARD_ASPECT


def portrait_framing(face: Face) -> Framing:
    """The chip photo's framing at the scan's own resolution (never below 102x126, never above the profile's width)."""
    width = int(round(face.box[2] / ID_CARD.face_width))
    width = min(max(width, ID_CARD.width), MAX_PORTRAIT_WIDTH)
    return Framing(width, int(round(width * ID_CARD.height / ID_CARD.width)), ID_CARD.eye_line, ID_CARD.face_width)


def choose_portrait(faces: list[Face]) -> tuple[Face | None, Reason | None]:
    """The card's portrait: the only face, or one that dwarfs every other."""
    if not faces:
        return None, reason("IDCARD_SCAN_NO_PORTRAIT", measured=0, limit=1)
    ranked = sorted(faces, key=lambda f: f.area, reverse=True)
    if len(ranked) > 1 and ranked[0].area < PORTRAIT_DOMINANCE * ranked[1].area:
        return None, reason("IDCARD_SCAN_SEVERAL_FACES", measured=len(ranked), limit=1)
    return ranked[0], None


def crop_portrait(image: np.ndarray, faces: list[Face]) -> tuple[np.ndarray | None, tuple[int, int, int, int] | None, Reason | None]:
    """The portrait cut from a card scan (levelled, chip-photo framing), its source box, or why there is none."""
    face, why = choose_portrait(faces)
    if face is None:
        return None, None, why
    framing = portrait_framing(face)
    x, y, w, h = crop_box(face, framing)
    box = (int(round(x)), int(round(y)), int(round(w)), int(round(h)))
    return frame_face(image, face, framing), box, None


def _dimensions(data: bytes) -> tuple[int, int] | None:
    fmt = sniff_format(data)
    if fmt not in ("jpeg", "png", "bmp"):
        return None
    try:
        header = read_header(data, fmt)
    except HeaderError:
        return None
    return header.width, header.height


def prepare_id_card(data: bytes, pipeline: "Pipeline") -> IdCardInput:
    """The bytes to store for an ID-card file: unchanged unless it is a card scan, then the portrait as PNG.

    Anything undecodable is passed through unchanged: the photo checks name its problem as for any photo.
    """
    size = _dimensions(data)
    if size is None or not looks_like_card_scan(*size):
        return IdCardInput(data, None, None)
    origin = hashlib.sha256(data).hexdigest()
    try:
        pixels = decode_image(data, pipeline.settings.max_pixels).pixels
    except VerifierError:
        return IdCardInput(data, None, None)
    portrait, box, why = crop_portrait(pixels, pipeline.detector.detect(pixels))
    if portrait is None:
        return IdCardInput(None, origin, why)
    ok, buf = cv2.imencode(".png", portrait)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR array
        return IdCardInput(None, origin, reason("IDCARD_SCAN_NO_PORTRAIT", measured="encode failed"))
    return IdCardInput(buf.tobytes(), origin, reason("IDCARD_SCAN_CROPPED", measured=list(size), limit=[portrait.shape[1], portrait.shape[0]]), box)
