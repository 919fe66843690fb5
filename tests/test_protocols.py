"""The standard protocols: LFW-style pairs.txt, packed .bin sets (safely unpickled), 10-fold accuracy."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from verifier.calibrate.protocols import best_threshold, default_folds, pairset_of, read_bin, read_lfw_pairs, ten_fold_accuracy
from verifier.cli import main as cli
from verifier.common.reasons import VerifierError
from verifier.core.align import align_face


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_lfw_pairs_txt_with_header_folds_and_missing_images(tmp_path: Path) -> None:
    for name in ("Ann_Lee/Ann_Lee_0001.jpg", "Ann_Lee/Ann_Lee_0002.jpg", "Bo_Li/Bo_Li_0001.jpg", "Cy_Wu_0001.jpg", "Cy_Wu_0003.jpg"):
        _touch(tmp_path / "img" / name)
    (tmp_path / "pairs.txt").write_text(
        "2\t1\nAnn_Lee\t1\t2\nAnn_Lee\t1\tBo_Li\t1\nCy_Wu\t1\t3\nCy_Wu\t1\tDee_Ng\t1\n", encoding="utf-8")
    ps = read_lfw_pairs(tmp_path / "pairs.txt", tmp_path / "img")
    assert ps.n_genuine == 2 and ps.n_impostor == 1 and list(ps.folds) == [0, 0, 1]
    assert any("1 of 4 pairs left out" in n for n in ps.notes)
    assert sorted(p.name for p in ps.images) == ["Ann_Lee_0001.jpg", "Ann_Lee_0002.jpg", "Bo_Li_0001.jpg", "Cy_Wu_0001.jpg", "Cy_Wu_0003.jpg"]
    (tmp_path / "bad.txt").write_text("Ann_Lee\tone\ttwo\n", encoding="utf-8")
    with pytest.raises(VerifierError) as exc:
        read_lfw_pairs(tmp_path / "bad.txt", tmp_path / "img")
    assert exc.value.reason.code == "PAIRS_FILE_INVALID"


def test_ten_fold_accuracy_uses_the_other_folds_threshold() -> None:
    rng = np.random.default_rng(0)
    same = np.repeat([True, False], 3000)
    scores = np.where(same, rng.normal(0.7, 0.1, same.size), rng.normal(0.1, 0.1, same.size))
    folds = default_folds(same.size)
    acc = ten_fold_accuracy(scores, same, folds)
    assert len(acc.per_fold) == 10 and 0.99 < acc.mean <= 1.0 and acc.std < 0.01
    assert all(0.3 < t < 0.5 for t in acc.thresholds)
    assert best_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True])) == pytest.approx(0.5)
    chance = ten_fold_accuracy(rng.random(2000), rng.random(2000) < 0.5, default_folds(2000))
    assert 0.4 < chance.mean < 0.6


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_bin_reader_refuses_code_in_the_pickle(tmp_path: Path) -> None:
    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(([_Evil()], [True])))
    with pytest.raises(VerifierError) as exc:
        read_bin(path)
    assert exc.value.reason.code == "PAIRS_FILE_INVALID" and "refused global" in exc.value.detail


@pytest.fixture
def aligned_bin(tmp_path: Path, pipeline, single_faces, identity) -> Path:
    """A .bin set made the way InsightFace packs them: JPEG bytes of aligned 112x112 faces, two per pair."""
    crops: dict[str, list[np.ndarray]] = {}
    for p in single_faces:
        a = pipeline.analyze(p)
        if a.face is not None:
            crops.setdefault(identity(p), []).append(align_face(pipeline.decode(p).pixels, a.face.landmarks, 112))
    people = [k for k, v in crops.items() if len(v) >= 2]
    bins, issame = [], []
    for k, person in enumerate(people):
        other = people[(k + 1) % len(people)]
        for a, b, s in ((crops[person][0], crops[person][1], True), (crops[person][0], crops[other][0], False)):
            bins += [cv2.imencode(".jpg", a)[1].tobytes(), cv2.imencode(".jpg", b)[1].tobytes()]
            issame.append(s)
    path = tmp_path / "mini.bin"
    path.write_bytes(pickle.dumps((bins, issame), protocol=4))
    return path


def test_bin_set_runs_through_calibrate_recognizer_only(aligned_bin: Path, tmp_path: Path) -> None:
    aligned = read_bin(aligned_bin)
    assert aligned.n_pairs >= 6 and all(f.shape == (112, 112, 3) for f in aligned.faces)
    ps = pairset_of(aligned)
    assert ps.n_genuine == ps.n_impostor == aligned.n_pairs // 2 and len(set(ps.folds)) > 1
    out = tmp_path / "out"
    assert cli.main(["calibrate", "--bin", str(aligned_bin), "--out", str(out), "--bootstrap", "20", "--tail-bootstrap", "5", "--no-dlib"]) == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    own = m["systems"][0]
    assert own["genuine"] == ps.n_genuine and own["images_unusable"] == {}
    assert own["ten_fold_accuracy"]["basis"] == "the protocol's folds" and own["ten_fold_accuracy"]["mean"] >= 0.8
    assert set(own["tar_at_far"]) == {"0.01", "0.001", "0.0001", "1e-05"} and own["tar_at_far"]["1e-05"] is None  # not supported
