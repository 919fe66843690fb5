"""An intake cohort made from the face set: admission photos, ID-card chip photos (BMP) and card-front scans."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from verifier.common.faceset import identity_of, single_face_images
from verifier.photos.framing import ID_CARD, Framing, frame_face

CARD_SIZE = (856, 540)  # ID-1 at 10 px/mm
PORTRAIT_BOX = (560, 110, 240, 296)  # x, y, w, h of the portrait on the card's front (人像面, right side)
SCAN_PORTRAIT = Framing(240, 296, ID_CARD.eye_line, ID_CARD.face_width)  # the chip photo as printed on the card


@dataclass
class IntakeCohort:
    """Roster and folders, with what each student should get."""

    roster: Path
    admission_dir: Path
    id_card_dir: Path
    expected: dict[str, str] = field(default_factory=dict)
    scans: dict[str, bytes] = field(default_factory=dict)


def card_scan(portrait: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """A card front: a pale patterned ground, black text lines on the left, the portrait pasted at PORTRAIT_BOX."""
    rng = np.random.default_rng(seed)
    w, h = CARD_SIZE
    card = np.full((h, w, 3), (236, 228, 214), np.uint8)
    card += rng.integers(0, 12, size=card.shape, dtype=np.uint8)
    for i, text in enumerate(("NAME ZHANG SAN", "SEX M  NATION HAN", "BORN 2003 01 01", "ADDRESS BEIJING HAIDIAN", "ROAD 1 NO 2")):
        cv2.putText(card, text, (40, 90 + 70 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (20, 20, 20), 2, cv2.LINE_AA)
    cv2.putText(card, "110101200301011234", (200, 500), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (20, 20, 20), 3, cv2.LINE_AA)
    if portrait is not None:
        x, y, pw, ph = PORTRAIT_BOX
        card[y : y + ph, x : x + pw] = cv2.resize(portrait, (pw, ph), interpolation=cv2.INTER_CUBIC)
    return card


def _jpeg(image: np.ndarray, max_bytes: int = 50 * 1024) -> bytes:
    for q in (90, 80, 70, 60, 50):
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, q])
        if buf.size <= max_bytes:
            break
    return buf.tobytes()


def make_intake_cohort(pipeline, faces_root: Path, out: Path) -> IntakeCohort:
    """One student per face-set identity with two photos, plus impostors, a missing card, scans and a faceless scan."""
    by_person: dict[str, list[tuple[np.ndarray, object]]] = {}
    for path in single_face_images(faces_root):
        a = pipeline.analyze(path)
        if a.face is not None and "partial" not in path.name:
            by_person.setdefault(identity_of(path), []).append((pipeline.decode(path).pixels, a.face))
    people = sorted(p for p, shots in by_person.items() if len(shots) >= 2)
    adm_dir, card_dir = out / "admission", out / "id_card"
    adm_dir.mkdir(parents=True)
    card_dir.mkdir(parents=True)
    cohort = IntakeCohort(out / "roster.csv", adm_dir, card_dir)
    rows = []
    for i, person in enumerate(people):
        ksh = f"2026{i:010d}"
        (img_a, face_a), (img_b, face_b) = by_person[person][0], by_person[person][1]
        (adm_dir / f"{ksh}.jpg").write_bytes(_jpeg(frame_face(img_a, face_a)))
        chip = frame_face(img_b, face_b, ID_CARD)
        if i % 4 == 1:  # a scan of the card's front instead of the chip export
            scan = cv2.imencode(".jpg", card_scan(frame_face(img_b, face_b, SCAN_PORTRAIT), i), [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
            (card_dir / f"{ksh}.jpg").write_bytes(scan)
            cohort.scans[ksh] = scan
            cohort.expected[ksh] = "genuine_scan"
        else:
            (card_dir / f"{ksh}.bmp").write_bytes(cv2.imencode(".bmp", chip)[1].tobytes())
            cohort.expected[ksh] = "genuine"
        rows.append((ksh, f"学生{i}", f"S{i:06d}", "学院甲" if i % 2 else "学院乙"))
    n = len(people)
    for j, person in enumerate(people[:3]):  # impostors: someone else's ID card
        ksh = f"2026{n + j:010d}"
        img_a, face_a = by_person[person][0]
        other = people[(people.index(person) + 3) % len(people)]
        img_b, face_b = by_person[other][1]
        (adm_dir / f"{ksh}.jpg").write_bytes(_jpeg(frame_face(img_a, face_a)))
        (card_dir / f"{ksh}.bmp").write_bytes(cv2.imencode(".bmp", frame_face(img_b, face_b, ID_CARD))[1].tobytes())
        cohort.expected[ksh] = "impostor"
        rows.append((ksh, f"冒名{j}", f"S{n + j:06d}", "学院甲"))
    img_a, face_a = by_person[people[0]][0]
    extra = {"missing": n + 3, "faceless_scan": n + 4}
    for kind, k in extra.items():
        ksh = f"2026{k:010d}"
        (adm_dir / f"{ksh}.jpg").write_bytes(_jpeg(frame_face(img_a, face_a)))
        if kind == "faceless_scan":
            scan = cv2.imencode(".jpg", card_scan(None, k))[1].tobytes()
            (card_dir / f"{ksh}.jpg").write_bytes(scan)
            cohort.scans[ksh] = scan
        cohort.expected[ksh] = kind
        rows.append((ksh, f"学生{k}", f"S{k:06d}", "学院乙"))
    with open(cohort.roster, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["考生号", "姓名", "学号", "身份证号", "学院", "学习中心", "入学批次"])
        for ksh, name, sno, college in rows:
            w.writerow([ksh, name, sno, "", college, "本部", "2026秋"])
    return cohort
