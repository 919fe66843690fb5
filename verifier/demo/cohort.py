"""Synthetic student cohorts for the demo, tests and benchmarks, cut from the face set.

Every student gets an admission photo (295x413 JPEG <= 50 KB) and a
graduation photo (480x640 JPEG) made from real photos with varied crops,
lighting and JPEG quality. Genuine students use two photos of one person,
impostors a graduation photo of someone else; a few have no graduation
photo, or a group photo instead. Nothing here touches the repository.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from verifier.common.faceset import group_images, identity_of, single_face_images
from verifier.photos.framing import Framing, frame_face
from verifier.common.files import open_output, write_output
from verifier.core.pipeline import Pipeline
from verifier.core.results import Face

ADMISSION = Framing(295, 413)
GRADUATION = Framing(480, 640)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "志强", "晓燕", "建华", "海燕"]
COLLEGES = [("计算机学院", "北京学习中心"), ("经济管理学院", "上海学习中心"), ("文学院", "广州学习中心"), ("法学院", "北京学习中心")]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


@dataclass
class Cohort:
    """Where a generated cohort lives and what each student should come out as."""

    roster: Path
    admission_dir: Path
    graduation_dir: Path
    expected: dict[str, str] = field(default_factory=dict)  # ksh -> genuine | impostor | missing | unusable


def id_number(rng: random.Random) -> str:
    """A well-formed 18-digit 身份证号 with a valid GB 11643 check digit (fictional)."""
    body = f"110101{rng.randint(1998, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + ID_CHECK[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def _vary(image: np.ndarray, face: Face, framing: Framing, rng: random.Random) -> np.ndarray:
    """An ID portrait with a jittered crop and changed brightness and contrast."""
    box = face.box
    scale = rng.uniform(0.92, 1.08)
    dx, dy = rng.uniform(-0.05, 0.05) * box[2], rng.uniform(-0.04, 0.04) * box[3]
    jittered = Face((box[0] + dx, box[1] + dy, box[2] * scale, box[3] * scale), face.score, face.landmarks + np.float32([dx, dy]))
    out = frame_face(image, jittered, framing).astype(np.float32)
    out = out * rng.uniform(0.85, 1.15) + rng.uniform(-18, 18)
    return np.clip(out, 0, 255).astype(np.uint8)


def _jpeg(image: np.ndarray, quality: int, max_bytes: int | None = None) -> bytes:
    while True:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        if max_bytes is None or buf.size <= max_bytes or quality <= 30:
            return buf.tobytes()
        quality -= 5


def make_cohort(
    pipeline: Pipeline,
    faces_root: Path,
    out: Path,
    n: int,
    seed: int = 0,
    impostor_rate: float = 0.1,
    missing_rate: float = 0.03,
    unusable_rate: float = 0.02,
) -> Cohort:
    """Write a roster (UTF-8 CSV, Chinese headers) and two photo folders for n students."""
    rng = random.Random(seed)
    sources: dict[str, list[tuple[np.ndarray, Face]]] = defaultdict(list)
    for path in single_face_images(faces_root):
        a = pipeline.analyze(path)
        if a.face is not None:
            sources[identity_of(path)].append((pipeline.decode(path).pixels, a.face))
    people = sorted(sources)
    groups = [pipeline.decode(p).pixels for p in group_images(faces_root)]
    adm_dir, grad_dir = out / "admission", out / "graduation"
    adm_dir.mkdir(parents=True, exist_ok=True)
    grad_dir.mkdir(parents=True, exist_ok=True)
    cohort = Cohort(out / "roster.csv", adm_dir, grad_dir)
    with open_output(cohort.roster, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["考生号", "姓名", "学号", "身份证号", "学院", "学习中心", "入学批次"])
        for i in range(n):
            ksh, student_no = f"2021{i:010d}", f"S{2021000000 + i}"
            college, centre = COLLEGES[i % len(COLLEGES)]
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
            writer.writerow([ksh, name, student_no, id_number(rng), college, centre, "2021秋"])
            person = people[i % len(people)]
            shots = sources[person]
            adm_pick = rng.randrange(len(shots))
            adm_img, adm_face = shots[adm_pick]
            write_output(adm_dir / f"{ksh}.jpg", _jpeg(_vary(adm_img, adm_face, ADMISSION, rng), rng.randint(60, 95), 51_200))
            roll = rng.random()
            if roll < missing_rate:
                cohort.expected[ksh] = "missing"
                continue
            if roll < missing_rate + unusable_rate and groups:
                cohort.expected[ksh] = "unusable"
                group = groups[rng.randrange(len(groups))]
                write_output(grad_dir / f"{ksh}.jpg", _jpeg(cv2.resize(group, (480, 640)), 85))
                continue
            if roll < missing_rate + unusable_rate + impostor_rate:
                cohort.expected[ksh] = "impostor"
                other = people[(people.index(person) + 1 + rng.randrange(len(people) - 1)) % len(people)]
                grad_img, grad_face = sources[other][rng.randrange(len(sources[other]))]
            else:
                cohort.expected[ksh] = "genuine"
                others = [k for k in range(len(shots)) if k != adm_pick] or [adm_pick]
                grad_img, grad_face = shots[rng.choice(others)]
            write_output(grad_dir / f"{ksh}.jpg", _jpeg(_vary(grad_img, grad_face, GRADUATION, rng), rng.randint(70, 95)))
    return cohort
