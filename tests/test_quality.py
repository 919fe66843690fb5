"""Quality checks on real photos with the real detector: ID photos pass, degraded copies are caught."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from imaging import encode_jpeg

from verifier.photos.checks import check_photo
from verifier.core.decode import decode_image
from verifier.photos.profiles import admission, graduation, override
from verifier.photos.quality import check_quality, colour_family, pose_degrees

NAME = "20210101000001.jpg"


def _pixels(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes()).pixels


def _sepia(img: np.ndarray) -> np.ndarray:
    k = np.array([[0.131, 0.534, 0.272], [0.168, 0.686, 0.349], [0.189, 0.769, 0.393]])
    return np.clip(img.astype(np.float64) @ k.T, 0, 255).astype(np.uint8)


def _rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _tiny_face(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(img, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    out = np.full_like(img, 235)
    y, x = h // 2 - h // 8, w // 2 - w // 8
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def _cut_at_edge(img: np.ndarray) -> np.ndarray:
    w = img.shape[1]
    shift = int(w * 0.45)
    out = np.full_like(img, 200)
    out[:, shift:] = img[:, : w - shift]
    return out


DEGRADATIONS = {
    "blur": (lambda im: cv2.GaussianBlur(im, (0, 0), 4), "QUALITY_BLURRY"),
    "dark": (lambda im: (im * 0.25).astype(np.uint8), "QUALITY_UNDEREXPOSED"),
    "overexposed": (lambda im: cv2.convertScaleAbs(im, alpha=1.4, beta=100), ("QUALITY_OVEREXPOSED", "QUALITY_HIGHLIGHTS_CLIPPED")),
    "grayscale": (lambda im: cv2.cvtColor(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR), "QUALITY_NOT_COLOUR"),
    "sepia": (_sepia, "QUALITY_NOT_COLOUR"),
    "rotated25": (lambda im: _rotate(im, 25), "QUALITY_POSE_ROLL"),
    "tiny_face": (_tiny_face, "QUALITY_FACE_TOO_SMALL"),
    "cut_off": (_cut_at_edge, "QUALITY_FACE_CUT_OFF"),
}


def test_id_photos_pass_the_admission_profile(id_photos, pipeline):
    """Every ID photo passes (warnings allowed), except a head visibly turned about 30° in the source (kit_harington_2)."""
    assert len(id_photos) >= 20
    failed = {}
    for stem, path in id_photos.items():
        result = check_photo(path.read_bytes(), admission, pipeline, file_name=NAME)
        assert result.metrics["face_count"] == 1
        if result.status == "fail":
            failed[stem] = [r.code for r in result.reasons if r.severity.value == "fail"]
    assert all(codes == ["QUALITY_POSE_YAW"] for codes in failed.values()), failed
    assert len(failed) <= 1, failed


def test_result_shape(id_photos, pipeline):
    path = next(iter(id_photos.values()))
    d = check_photo(path, admission, pipeline).to_dict()
    assert list(d) == ["file", "ksh", "profile", "status", "reasons", "metrics"]
    assert d["profile"] == "admission" and d["ksh"] is None
    assert d["status"] == "fail" and d["reasons"][0]["code"] == "SPEC_NAME_PATTERN"
    assert set(d["reasons"][0]) == {"code", "severity", "message_zh", "message_en", "measured", "limit"}
    for key in ("sharpness", "brightness", "yaw", "pitch", "roll", "inter_eye", "face_share", "face_score", "colour_spread"):
        assert key in d["metrics"]


def test_group_photos_fail_with_more_than_one_face(group_faces, pipeline):
    assert group_faces
    for path in group_faces:
        result = check_photo(path, admission, pipeline)
        assert result.status == "fail"
        assert "FACE_MULTIPLE" in [r.code for r in result.reasons], path.name


@pytest.mark.parametrize("kind", sorted(DEGRADATIONS))
def test_degraded_copies_are_caught(kind, id_photos, pipeline):
    degrade, expected = DEGRADATIONS[kind]
    wanted = {expected} if isinstance(expected, str) else set(expected)
    missed = {}
    for stem, path in id_photos.items():
        data = encode_jpeg(degrade(_pixels(path)), 80)
        result = check_photo(data, admission, pipeline, file_name=NAME)
        found = [r.code for r in result.reasons]
        if not wanted & set(found) or result.status == "pass":
            missed[stem] = found
    assert missed == {}, f"{kind}: expected one of {sorted(wanted)}"


def test_no_face_in_a_plain_picture(pipeline):
    data = encode_jpeg(np.full((413, 295, 3), 180, np.uint8))
    result = check_photo(data, admission, pipeline, file_name=NAME)
    assert [r.code for r in result.reasons] == ["FACE_NOT_FOUND"]


def test_pose_is_near_frontal_on_id_photos(id_photos, pipeline):
    rolls = []
    for path in id_photos.values():
        faces = pipeline.detector.detect(_pixels(path))
        pose = pose_degrees(faces[0])
        rolls.append(abs(pose["roll"]))
        assert abs(pose["pitch"]) < admission.max_pitch
    assert np.median(rolls) < 5


def test_thresholds_come_from_the_profile(id_photos, pipeline):
    pixels = _pixels(next(iter(id_photos.values())))
    faces = pipeline.detector.detect(pixels)
    strict = override(admission, {"min_inter_eye": 500.0, "min_sharpness": 1e9, "max_face_share": 0.01})
    codes = {r.code for r in check_quality(pixels, faces, strict)[0]}
    assert {"QUALITY_INTER_EYE_TOO_SMALL", "QUALITY_BLURRY", "QUALITY_FACE_TOO_LARGE"} <= codes


def test_background_colour_family_for_graduation(id_photos, pipeline):
    pixels = _pixels(next(iter(id_photos.values())))
    faces = pipeline.detector.detect(pixels)
    box = faces[0].box
    blue, white = pixels.copy(), pixels.copy()
    top = int(max(0, box[1] - 0.15 * box[3]))
    blue[:top] = (200, 120, 40)
    white[:top] = (250, 250, 250)
    blue_codes = [r.code for r in check_quality(blue, pipeline.detector.detect(blue), graduation)[0]]
    white_codes = [r for r in check_quality(white, pipeline.detector.detect(white), graduation)[0] if r.code == "QUALITY_BACKGROUND_COLOUR"]
    assert "QUALITY_BACKGROUND_COLOUR" not in blue_codes
    assert white_codes and white_codes[0].severity.value == "warn" and white_codes[0].measured in ("white", "light")


def test_colour_families():
    assert colour_family(np.array([200, 120, 40])) == "blue"
    assert colour_family(np.array([250, 250, 250])) == "white"
    assert colour_family(np.array([40, 40, 200])) == "red"
    assert colour_family(np.array([60, 160, 60])) == "other"
