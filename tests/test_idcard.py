"""ID-card photos (verifier.photos.idcard): scans told from chip photos, and a scan cut to its portrait, with real detection."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from idcardhelp import PORTRAIT_BOX, SCAN_SIZE, TEXT_RIGHT, card_scan, chip_photo, correlation, encode, inside

from verifier.photos.framing import ID_CARD
from verifier.photos.idcard import IdCardInput, crop_portrait, looks_like_card_scan, prepare_id_card


def _portrait(id_photos: dict[str, Path], n: int = 0) -> np.ndarray:
    path = sorted(id_photos.values())[n]
    image = cv2.imread(str(path))
    assert image is not None
    return image


@pytest.mark.parametrize(
    ("size", "scan"),
    [
        ((856, 540), True),  # the card at 254 dpi
        ((1712, 1080), True),
        ((640, 420), True),  # a loosely cropped phone shot
        ((102, 126), False),  # the chip photo
        ((295, 413), False),  # a portrait
        ((280, 177), False),  # card-shaped but too small to read
        ((800, 800), False),  # square
        ((1200, 540), False),  # too wide for ID-1
    ],
)
def test_looks_like_card_scan(size: tuple[int, int], scan: bool) -> None:
    assert looks_like_card_scan(*size) is scan


def test_crop_portrait_keeps_only_the_portrait(pipeline, id_photos: dict[str, Path]) -> None:
    portrait = _portrait(id_photos)
    scan = card_scan([portrait])
    crop, box, why = crop_portrait(scan, pipeline.detector.detect(scan))
    assert why is None and crop is not None and box is not None
    margin = int(0.1 * PORTRAIT_BOX[2])
    assert inside(box, PORTRAIT_BOX, margin), (box, PORTRAIT_BOX)
    assert box[0] > TEXT_RIGHT, "the crop reaches into the card's text rows"
    assert crop.shape[1] >= ID_CARD.width and abs(crop.shape[0] / crop.shape[1] - ID_CARD.height / ID_CARD.width) < 0.02
    x, y, w, h = PORTRAIT_BOX
    pasted = cv2.resize(portrait, (w, h), interpolation=cv2.INTER_AREA)
    bx, by, bw, bh = box
    source = pasted[max(by - y, 0) : by - y + bh, max(bx - x, 0) : bx - x + bw]
    assert correlation(crop, source) > 0.9


def test_prepare_id_card_stores_the_portrait_as_png(pipeline, id_photos: dict[str, Path]) -> None:
    data = encode(card_scan([_portrait(id_photos)]), ".jpg")
    out = prepare_id_card(data, pipeline)
    assert out.data is not None and out.data.startswith(b"\x89PNG") and out.origin_sha256 and out.box is not None
    assert out.reason is not None and out.reason.code == "IDCARD_SCAN_CROPPED" and out.reason.measured == list(SCAN_SIZE)


def test_chip_photo_passes_through(pipeline, faces: Path) -> None:
    data = encode(chip_photo(pipeline, sorted(faces.glob("*.jpg"))[0]), ".bmp")
    assert prepare_id_card(data, pipeline) == IdCardInput(data, None, None)


def test_several_faces_refused(pipeline, id_photos: dict[str, Path]) -> None:
    scan = card_scan([_portrait(id_photos, 0), _portrait(id_photos, 1)], [(40, 60, 200, 280), PORTRAIT_BOX])
    crop, box, why = crop_portrait(scan, pipeline.detector.detect(scan))
    assert crop is None and box is None and why is not None and why.code == "IDCARD_SCAN_SEVERAL_FACES" and why.measured == 2
    out = prepare_id_card(encode(scan, ".png"), pipeline)
    assert out.data is None and out.origin_sha256 and out.reason is not None and out.reason.code == "IDCARD_SCAN_SEVERAL_FACES"


def test_no_face_refused(pipeline) -> None:
    scan = card_scan([np.full((10, 10, 3), 200, np.uint8)])
    out = prepare_id_card(encode(scan, ".bmp"), pipeline)
    assert out.data is None and out.origin_sha256 and out.reason is not None and out.reason.code == "IDCARD_SCAN_NO_PORTRAIT"
