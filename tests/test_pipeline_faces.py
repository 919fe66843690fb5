"""The core pipeline on the real face set: separation, detection, alignment, EXIF."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from verifier.core.results import Decision


@pytest.fixture(scope="session")
def analyses(pipeline, single_faces):
    return dict(zip(single_faces, pipeline.analyze_many(single_faces)))


def test_every_single_face_photo_is_usable(analyses):
    unusable = {p.name: a.reason.code for p, a in analyses.items() if not a.usable}
    assert unusable == {}


def test_embeddings_are_unit_float32(analyses):
    for a in analyses.values():
        assert a.embedding.dtype == np.float32
        assert a.embedding.shape == (128,)
        assert abs(float(np.linalg.norm(a.embedding)) - 1.0) < 1e-5


def test_genuine_pairs_score_above_impostor_pairs(analyses, identity, pipeline):
    genuine, impostor = [], []
    for (pa, a), (pb, b) in itertools.combinations(analyses.items(), 2):
        s = float(a.embedding @ b.embedding)
        (genuine if identity(pa) == identity(pb) else impostor).append((s, pa.name, pb.name))
    assert len(genuine) >= 30 and len(impostor) >= 200
    lowest_genuine, highest_impostor = min(genuine), max(impostor)
    assert lowest_genuine[0] > highest_impostor[0], (lowest_genuine, highest_impostor)
    # The hardest genuine pair is the decades-apart clapton pair.
    assert {lowest_genuine[1], lowest_genuine[2]} == {"clapton_1.jpg", "clapton_2.jpg"}
    th = pipeline.thresholds
    # No impostor is accepted (accept sits at FMR 1e-5); no genuine pair is a mismatch (reject at FNMR 1e-3);
    # the pairs between go to a reviewer: the age-gap pair among them, and most genuine pairs are accepted.
    assert all(s < th.accept for s, _, _ in impostor), "an impostor pair would be accepted"
    assert all(s >= th.reject for s, _, _ in genuine), "a genuine pair would be sent to identity re-review"
    accepted = [p for p in genuine if p[0] >= th.accept]
    assert len(accepted) >= 0.8 * len(genuine), sorted(genuine)[:8]
    assert th.reject <= lowest_genuine[0] < th.accept  # clapton, decades apart: review, not mismatch


def test_group_photos_have_two_or_more_faces_and_are_not_compared(pipeline, group_faces):
    for path in group_faces:
        a = pipeline.analyze(path)
        assert len(a.faces) >= 2, path.name
        assert a.reason is not None and a.reason.code == "FACE_MULTIPLE"


def test_landmarks_lie_inside_their_boxes(pipeline, single_faces, group_faces):
    for path in [*single_faces, *group_faces]:
        pixels = pipeline.decode(path).pixels
        for face in pipeline.detector.detect(pixels):
            x, y, w, h = face.box
            lm = face.landmarks
            assert np.all(lm[:, 0] >= x) and np.all(lm[:, 0] <= x + w), path.name
            assert np.all(lm[:, 1] >= y) and np.all(lm[:, 1] <= y + h), path.name
            assert lm[0, 0] < lm[1, 0], "subject's right eye is left in the image"


def test_exif_rotated_copy_gives_the_same_embedding(pipeline, faces):
    src = Image.open(faces / "obama_1.jpg").convert("RGB")
    buf = io.BytesIO()
    src.save(buf, "JPEG", quality=95)
    upright = buf.getvalue()
    stored = src.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # viewer must rotate 90 degrees clockwise
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    rotated = buf.getvalue()
    a, b = pipeline.analyze_many([upright, rotated])
    assert (b.width, b.height) == (a.width, a.height)
    assert float(a.embedding @ b.embedding) >= 0.99


def test_id_photos_at_90_px_wide_are_detected(pipeline, id_photos, analyses, faces):
    import cv2

    for stem, path in id_photos.items():
        pixels = pipeline.decode(path).pixels
        small = cv2.resize(pixels, (90, 126), interpolation=cv2.INTER_AREA)
        a = pipeline.analyze(small)
        assert a.usable, (stem, a.reason)
        original = analyses[faces / next(p.name for p in faces.iterdir() if p.stem == stem)]
        assert float(a.embedding @ original.embedding) >= pipeline.thresholds.accept, stem


def test_compare_decides_with_pack_thresholds(pipeline, faces):
    same = pipeline.compare(faces / "obama_1.jpg", faces / "obama_2.jpg")
    other = pipeline.compare(faces / "obama_1.jpg", faces / "biden_1.jpg")
    assert same.decision is Decision.MATCH
    th = pipeline.thresholds
    expected = Decision.MISMATCH if other.score < th.reject else Decision.REVIEW
    assert other.score < th.accept and other.decision is expected
    unusable = pipeline.compare(faces / "obama_1.jpg", faces / "multi" / "two_people.jpg")
    assert unusable.decision is None and unusable.reason.code == "FACE_MULTIPLE"


def test_batched_and_single_embeddings_agree(pipeline, single_faces):
    batch = pipeline.analyze_many(single_faces[:6])
    for path, a in zip(single_faces[:6], batch):
        single = pipeline.analyze(path)
        assert float(a.embedding @ single.embedding) > 0.9999
