"""ID-card test images made at test time from the face set: a chip-size photo and a synthetic scan of the card's front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from verifier.photos.framing import ID_CARD, frame_face

SCAN_SIZE = (856, 540)  # width, height: an ID-1 card scanned at about 254 dpi
CARD_COLOUR = (222, 232, 238)  # BGR: the pale background of a 身份证's front
PORTRAIT_BOX = (600, 70, 220, 308)  # x, y, w, h where the portrait is pasted (right third, like the 人像面)
TEXT_RIGHT = 540  # the text rows stay left of this x
# Text rows like the card's (name, sex, birth, address, number); Latin glyphs, as cv2.putText draws no CJK.
TEXT_ROWS = ("XINGMING  ZHANG SAN", "XINGBIE NAN  MINZU HAN", "CHUSHENG 2001 5 17", "ZHUZHI  BEIJING SHI", "HAIDIAN QU 1 HAO", "GONGMIN SHENFEN HAOMA")


def chip_photo(pipeline: Any, source: Path) -> np.ndarray:
    """A 102x126 chip photo (身份证芯片照) cut around the face of a face-set photo."""
    analysis = pipeline.analyze(source)
    assert analysis.face is not None, f"no face in {source.name}"
    return frame_face(pipeline.decode(source).pixels, analysis.face, ID_CARD)


def chip_from_admission(jpeg: bytes) -> bytes:
    """A 102x126 BMP in the chip photo's framing, cut from a 295x413 admission photo by its framing alone (no detector)."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    h, w = image.shape[:2]
    cw = w * 0.58 / ID_CARD.face_width
    ch = cw * ID_CARD.height / ID_CARD.width
    top = 0.42 * h - ID_CARD.eye_line * ch
    left = (w - cw) / 2
    crop = image[max(int(top), 0) : int(top + ch), max(int(left), 0) : int(left + cw)]
    return encode(cv2.resize(crop, (ID_CARD.width, ID_CARD.height), interpolation=cv2.INTER_AREA), ".bmp")


def encode(image: np.ndarray, ext: str) -> bytes:
    """An image encoded by OpenCV (ext: '.bmp', '.png', '.jpg')."""
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def card_scan(portraits: list[np.ndarray], boxes: list[tuple[int, int, int, int]] | None = None) -> np.ndarray:
    """A card-front scan: card-coloured background, black text rows on the left two-thirds, portraits pasted into `boxes`."""
    w, h = SCAN_SIZE
    scan = np.full((h, w, 3), CARD_COLOUR, np.uint8)
    for i, row in enumerate(TEXT_ROWS):
        cv2.putText(scan, row, (40, 80 + i * 60), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2, cv2.LINE_AA)
    cv2.putText(scan, "110108200105170000", (40, 480), cv2.FONT_HERSHEY_DUPLEX, 1.2, (0, 0, 0), 2, cv2.LINE_AA)
    for portrait, (x, y, bw, bh) in zip(portraits, boxes or [PORTRAIT_BOX], strict=True):
        scan[y : y + bh, x : x + bw] = cv2.resize(portrait, (bw, bh), interpolation=cv2.INTER_AREA)
    return scan


def intake_case(db: Any, pack_id: str, ksh: str, decision: str = "review") -> int:
    """An intake_mismatch case on the comparison of the student's current ID-card photo with the admission photo."""
    from verifier.store import embeddings
    from verifier.store.cases import open_case
    from verifier.store.comparisons import record_comparison
    from verifier.store.photos import current_photo
    from verifier.store.students import get_student

    def unit(s: Any) -> int:
        st = get_student(s, ksh)
        adm, card = current_photo(s, st.id, "admission"), current_photo(s, st.id, "id_card")
        assert adm is not None and card is not None
        a, b = embeddings.get_or_none(s, adm.id, pack_id), embeddings.get_or_none(s, card.id, pack_id)
        score = float(a @ b) if a is not None and b is not None else None
        rec = record_comparison(s, adm, card, pack_id, score, decision, ["COMPARE_REVIEW_BAND"])
        return open_case(s, "intake_mismatch", "comparison", rec.comparison.id, st.id, actor="test").case.id

    return db.transaction(unit)


def inside(box: tuple[int, int, int, int], area: tuple[int, int, int, int], margin: int) -> bool:
    """Whether rectangle `box` (x, y, w, h) lies within `area` grown by `margin` pixels on every side."""
    x, y, w, h = box
    ax, ay, aw, ah = area
    return x >= ax - margin and y >= ay - margin and x + w <= ax + aw + margin and y + h <= ay + ah + margin


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images' grey levels (b resized to a's size)."""
    ga = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float64).ravel()
    gb = cv2.cvtColor(cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY).astype(np.float64).ravel()
    return float(np.corrcoef(ga, gb)[0, 1])
