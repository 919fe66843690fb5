"""Two-pass detection of ID photos (small whole-image pass, then a full-resolution crop): geometry, agreement, fallback."""

from __future__ import annotations

import numpy as np
import pytest

from verifier.common.settings import Settings
from verifier.core.detect import RefinedDetector, RefinePolicy, YuNetDetector, crop_for_refine, face_to_image
from verifier.core.results import Face
from verifier.photos.framing import Framing, frame_face, roll_degrees
from verifier.photos.profiles import graduation
from verifier.photos.quality import pose_degrees

# YuNet's own landmarks move this much when the same portrait loses its first 1-3 pixel rows and columns
# (docs/BENCHMARKS.md, "Detection at a small input"): the refined ones must stay within that noise.
MEAN_LANDMARK_TOLERANCE = 0.08  # share of the inter-ocular distance, mean of the 5 points
ROLL_TOLERANCE = 4.0  # degrees


@pytest.fixture(scope="module")
def refined(pipeline) -> RefinedDetector:
    """The pack's detector under the default refine policy, on the test session's YuNet session."""
    from verifier.core.detect import ScalePolicy, with_refinement

    full = pipeline.detector
    assert isinstance(full, YuNetDetector), "the shipped pack detects at full size unless refinement is turned on"

    def make(policy: ScalePolicy) -> YuNetDetector:
        return YuNetDetector(full.session, full.score_threshold, full.nms_threshold, policy=policy)

    det = with_refinement(make, full.policy, RefinePolicy())
    assert isinstance(det, RefinedDetector)
    return det


@pytest.fixture(scope="module")
def graduation_crops(pipeline, single_faces) -> dict[str, np.ndarray]:
    """480x640 graduation-size portraits (level eyes) framed around each face-set face."""
    out = {}
    for path in single_faces:
        if "partial" in path.name:
            continue
        pixels = pipeline.decode(path).pixels
        face, _ = pipeline.face_policy.choose(pipeline.detector.detect(pixels))
        if face is not None:
            out[path.stem] = frame_face(pixels, face, Framing(480, 640))
    return out


def _dot(width: int, height: int, x: int, y: int) -> np.ndarray:
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[y - 2 : y + 3, x - 2 : x + 3] = 255
    return img


@pytest.mark.parametrize("box", [(150.0, 180.0, 200.0, 260.0), (-40.0, 400.0, 180.0, 230.0), (300.0, 20.0, 40.0, 50.0)])
def test_a_point_in_the_refine_crop_maps_back_to_where_it_was(box):
    x, y, w, h = box
    target = (int(max(5, x + 0.3 * w)), int(y + 0.6 * h))
    crop, window = crop_for_refine(_dot(480, 640, *target), box, 192, 0.4)
    assert crop.shape == (192, 192, 3)
    weights = crop[..., 0].astype(np.float64)
    rows, cols = np.indices(weights.shape)
    cx, cy = (cols * weights).sum() / weights.sum() + 0.5, (rows * weights).sum() / weights.sum() + 0.5
    back = face_to_image(Face((cx, cy, 1.0, 1.0), 1.0, np.array([[cx, cy]] * 5, dtype=np.float32)), window)
    assert back.landmarks[0] == pytest.approx((target[0] + 0.5, target[1] + 0.5), abs=0.75)
    assert back.box[2] == pytest.approx(1.0 / window.scale)


def test_crop_outside_the_image_is_zero_and_inside_is_the_image():
    image = np.full((640, 480, 3), 200, dtype=np.uint8)
    crop, window = crop_for_refine(image, (-100.0, -100.0, 200.0, 200.0), 160, 0.5)
    assert crop[0, 0].tolist() == [0, 0, 0]
    assert crop[-1, -1].tolist() == [200, 200, 200]
    assert window.scale == pytest.approx(160 / 400, rel=0.02)


def test_refined_landmarks_agree_with_full_size_on_face_set_portraits(pipeline, refined, graduation_crops):
    errors, rolls = {}, {}
    for name, img in graduation_crops.items():
        face = refined.refine(img)
        assert face is not None, f"{name}: the two passes did not settle a one-face portrait"
        ref = pipeline.detector.detect(img)[0]
        errors[name] = float((np.linalg.norm(face.landmarks - ref.landmarks, axis=1) / ref.inter_eye).mean())
        rolls[name] = abs(roll_degrees(face) - roll_degrees(ref))
    assert len(errors) >= 20
    assert max(errors.values()) <= MEAN_LANDMARK_TOLERANCE, sorted(errors.items(), key=lambda kv: -kv[1])[:3]
    assert max(rolls.values()) <= ROLL_TOLERANCE, sorted(rolls.items(), key=lambda kv: -kv[1])[:3]


def test_roll_verdicts_unchanged_on_face_set_portraits(pipeline, refined, graduation_crops):
    import cv2

    changed, compared = [], 0
    for name, img in graduation_crops.items():
        for tilt in (0.0, -25.0, 25.0):
            m = cv2.getRotationMatrix2D((240.0, 0.42 * 640), tilt, 1.0)
            tilted = cv2.warpAffine(img, m, (480, 640), borderMode=cv2.BORDER_REPLICATE)
            a, b = pipeline.detector.detect(tilted), refined.detect(tilted)
            assert len(a) == len(b), f"{name} tilted {tilt}: {len(a)} -> {len(b)} faces"
            if len(a) != 1:
                continue
            compared += 1
            ra, rb = pose_degrees(a[0])["roll"], pose_degrees(b[0])["roll"]
            if (abs(ra) > graduation.max_roll) != (abs(rb) > graduation.max_roll):
                changed.append(f"{name} tilted {tilt}: {ra} -> {rb}")
            if tilt:
                assert abs(rb) > graduation.max_roll, f"{name}: a 25 degree tilt passed the roll check ({rb})"
    assert compared >= 3 * 20 - 5 and not changed, changed


def test_group_photos_keep_every_face(pipeline, refined, group_faces):
    for path in group_faces:
        pixels = pipeline.decode(path).pixels
        full, two = pipeline.detector.detect(pixels), refined.detect(pixels)
        assert len(full) >= 2 and len(two) == len(full), path.name
        assert refined.refine(pixels) is None, f"{path.name}: a group photo took the ID-photo path"


def test_a_small_face_in_a_large_frame_is_detected_at_full_size(pipeline, refined, graduation_crops):
    import cv2

    img = next(iter(graduation_crops.values()))
    canvas = np.full((1280, 960, 3), 230, dtype=np.uint8)
    canvas[500:660, 400:520] = cv2.resize(img, (120, 160), interpolation=cv2.INTER_AREA)
    full = pipeline.detector.detect(canvas)
    assert len(full) == 1
    assert refined.refine(canvas) is None
    two = refined.detect(canvas)
    assert [f.box for f in two] == [f.box for f in full]


def test_the_policy_is_chosen_by_the_pack_and_the_settings(cache_dir):
    from verifier.core.pipeline import Pipeline

    assert Settings.from_env({"VERIFIER_DETECT_REFINE": "1"}).detect_refine is True
    assert Settings.from_env({"VERIFIER_DETECT_REFINE": "0"}).detect_refine is False
    assert Settings.from_env({}).detect_refine is None
    on = Pipeline.load(settings=Settings(cache_dir=cache_dir, detect_refine=True), threads=1)
    assert isinstance(on.detector, RefinedDetector)
    assert on.detector.policy == RefinePolicy.from_config({**(on.pack.detector.get("refine") or {}), "enabled": True})
    off = Pipeline.load(settings=Settings(cache_dir=cache_dir, detect_refine=False), threads=1)
    assert isinstance(off.detector, YuNetDetector)
    assert RefinePolicy.from_config(None) is None and RefinePolicy.from_config({"enabled": False}) is None


def test_the_resized_crop_finds_the_same_face(pipeline, graduation_crops):
    from verifier.core.detect import ScalePolicy, box_iou, with_refinement

    full = pipeline.detector
    def make(policy: ScalePolicy) -> YuNetDetector:
        return YuNetDetector(full.session, full.score_threshold, full.nms_threshold, policy=policy)

    det = with_refinement(make, full.policy, RefinePolicy(crop_size=192, margin=0.4))
    assert isinstance(det, RefinedDetector) and det.fine.policy == ScalePolicy(192, 192)
    for name, img in graduation_crops.items():
        face, ref = det.refine(img), full.detect(img)[0]
        assert face is not None, name
        assert box_iou(face.box, ref.box) >= 0.7, name
        assert np.all(face.landmarks[:, 0] > face.box[0]) and np.all(face.landmarks[:, 0] < face.box[0] + face.box[2]), name
