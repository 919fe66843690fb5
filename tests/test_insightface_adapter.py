"""InsightFace packs (SCRFD + ArcFace) with tiny generated ONNX models laid out like buffalo_l."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from verifier.cli.main import main as cli_main
from verifier.core.detect import ScalePolicy
from verifier.core.graph_repair import RepairOptions
from verifier.core.packs import load_pack, resolve_file
from verifier.core.pipeline import Pipeline
from verifier.common.reasons import VerifierError
from verifier.core.runtime import make_session, prepared_model
from verifier.core.scrfd import ScrfdDetector
from verifier.common.settings import Settings

INSIGHTFACE_PACKS = ("buffalo_l", "buffalo_s", "antelopev2")
CANVAS = 640
STRIDES = (8, 16, 32)
# The one face the tiny SCRFD reports: stride 32, row 5, column 7, second anchor.
FACE_STRIDE, FACE_ROW, FACE_COL, FACE_ANCHOR = 32, 5, 7, 1
FACE_SCORE = 0.9
FACE_DIST = np.array([2.0, 2.5, 2.0, 3.0], dtype=np.float32)  # l, t, r, b in strides
FACE_KPS = np.array([[-0.8, -0.6], [0.8, -0.6], [0.0, 0.2], [-0.6, 1.2], [0.6, 1.2]], dtype=np.float32)
SCRFD_OUTPUT_NAMES = ("448", "471", "494", "451", "474", "497", "454", "477", "500")


def canvas_face(stride: int = FACE_STRIDE, row: int = FACE_ROW, col: int = FACE_COL) -> tuple[np.ndarray, np.ndarray]:
    """Expected box (x, y, w, h) and 5 landmarks in letterboxed-canvas pixels."""
    cx, cy = col * stride, row * stride
    d = FACE_DIST * stride
    box = np.array([cx - d[0], cy - d[1], d[0] + d[2], d[1] + d[3]], dtype=np.float64)
    kps = FACE_KPS.astype(np.float64) * stride + np.array([cx, cy])
    return box, kps


def scrfd_maps(width: int, height: int, stride: int, row: int, col: int, anchor: int = FACE_ANCHOR):
    """Score, box and landmark maps (per stride, 2 anchors per location) with exactly one anchor firing."""
    out = []
    for s in STRIDES:
        rows = 2 * (height // s) * (width // s)
        scores = np.zeros((rows, 1), dtype=np.float32)
        if s == stride:
            scores[(row * (width // s) + col) * 2 + anchor, 0] = FACE_SCORE
        out.append((scores, np.tile(FACE_DIST, (rows, 1)), np.tile(FACE_KPS.reshape(1, 10), (rows, 1))))
    return out


def tiny_scrfd(batched: bool = True) -> bytes:
    """A fixed 640x640 'SCRFD': constant outputs (one face) made to depend on the input."""
    maps = scrfd_maps(CANVAS, CANVAS, FACE_STRIDE, FACE_ROW, FACE_COL)
    ordered = [m[0] for m in maps] + [m[1] for m in maps] + [m[2] for m in maps]
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nil"]),
    ]
    inits = [numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")]
    outputs = []
    for name, arr in zip(SCRFD_OUTPUT_NAMES, ordered):
        arr = arr[None] if batched else arr
        inits.append(numpy_helper.from_array(arr, f"{name}_const"))
        nodes.append(helper.make_node("Add", [f"{name}_const", "nil"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(arr.shape)))
    graph = helper.make_graph(
        nodes,
        "tiny_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, CANVAS, CANVAS])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tiny_arcface() -> bytes:
    """An 'ArcFace' with the real signature: N x 3 x 112 x 112 -> N x 512, with a per-channel PRelu."""
    rng = np.random.default_rng(7)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (8, 3, 1, 1)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "conv_b"),
        numpy_helper.from_array(rng.uniform(0.05, 0.3, (8, 1, 1)).astype(np.float32), "prelu_slope"),
        numpy_helper.from_array(rng.normal(0, 0.05, (8 * 7 * 7, 512)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.normal(0, 0.01, 512).astype(np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["input.1", "conv_w", "conv_b"], ["c1"], kernel_shape=[1, 1]),
        helper.make_node("PRelu", ["c1", "prelu_slope"], ["p1"]),
        helper.make_node("AveragePool", ["p1"], ["pool"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["683"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, 512])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="module")
def buffalo_dir(tmp_path_factory) -> Path:
    """A folder laid out like an unpacked buffalo_l.zip."""
    root = tmp_path_factory.mktemp("insightface") / "buffalo_l"
    root.mkdir()
    (root / "det_10g.onnx").write_bytes(tiny_scrfd())
    (root / "w600k_r50.onnx").write_bytes(tiny_arcface())
    (root / "1k3d68.onnx").write_bytes(b"not used")
    return root


def face_image() -> np.ndarray | Path:
    """A photo from the development face set when present, else a synthetic BGR array."""
    env = os.environ.get("VERIFIER_FACES")
    here = Path(__file__).resolve().parents[1]
    for folder in ([Path(env)] if env else []) + [here.parent / "shared" / "faces"]:
        photos = sorted(p for p in folder.glob("*_1.jpg")) if folder.is_dir() else []
        if photos:
            return photos[0]
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (480, 360, 3), dtype=np.uint8)


def expected_in_image(width: int, height: int, policy: ScalePolicy) -> tuple[np.ndarray, np.ndarray]:
    """The tiny SCRFD's face mapped back from the fixed 640x640 canvas into image pixels."""
    scale = min(policy.scale_for(width, height), CANVAS / width, CANVAS / height)
    box, kps = canvas_face()
    return box / scale, kps / scale


def scrfd_session(batched: bool) -> ort.InferenceSession:
    """The tiny SCRFD prepared exactly as the pipeline prepares a detector."""
    options = RepairOptions(dynamic_spatial=False, prelu_to_nchwc=False)
    return make_session(prepared_model(tiny_scrfd(batched), f"tiny-scrfd-{batched}", options, None))


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("size", [(480, 320), (1280, 720), (295, 413), (640, 640), (200, 150)])
def test_scrfd_decodes_known_face_into_original_pixels(batched: bool, size: tuple[int, int]) -> None:
    policy = ScalePolicy(256, 640)
    det = ScrfdDetector(scrfd_session(batched), 0.5, 0.4, policy=policy)
    assert det.input_size == (CANVAS, CANVAS)
    w, h = size
    faces = det.detect(np.full((h, w, 3), 100, dtype=np.uint8))
    assert len(faces) == 1
    box, kps = expected_in_image(w, h, policy)
    np.testing.assert_allclose(faces[0].box, box, atol=1e-3)
    np.testing.assert_allclose(faces[0].landmarks, kps, atol=1e-3)
    assert faces[0].score == pytest.approx(FACE_SCORE)


def test_letterbox_is_rgb_normalised_and_padded_right_bottom() -> None:
    det = ScrfdDetector(scrfd_session(True), policy=ScalePolicy(256, 640))
    image = np.zeros((640, 960, 3), dtype=np.uint8)
    image[..., 0] = 255  # blue in BGR
    blob, scale = det.letterbox(image)
    assert blob.shape == (1, 3, CANVAS, CANVAS) and blob.dtype == np.float32
    assert scale == pytest.approx(640 / 960)
    pad = -127.5 / 128.0
    assert np.allclose(blob[0, 2, :427, :], 127.5 / 128.0)  # B is the third channel of RGB
    assert np.allclose(blob[0, 0, :427, :], pad)
    assert np.allclose(blob[0, :, 427:, :], pad)


class _FakeDynamicScrfd:
    """A session stand-in with free input size, unbatched outputs in a shuffled order."""

    def __init__(self, stride: int, row: int, col: int):
        self.face = (stride, row, col)
        self.order = [8, 2, 5, 0, 7, 4, 1, 6, 3]
        self.seen: list[tuple[int, ...]] = []

    def get_inputs(self):
        return [SimpleNamespace(name="input.1", shape=[1, 3, "H", "W"])]

    def get_outputs(self):
        return [SimpleNamespace(name=f"o{i}", shape=None) for i in self.order]

    def run(self, names, feeds):
        blob = feeds["input.1"]
        self.seen.append(blob.shape)
        maps = scrfd_maps(blob.shape[3], blob.shape[2], *self.face)
        canonical = [m[0] for m in maps] + [m[1] for m in maps] + [m[2] for m in maps]
        return [canonical[i] for i in self.order]


def test_scrfd_dynamic_size_unbatched_any_output_order() -> None:
    session = _FakeDynamicScrfd(16, 4, 10)
    det = ScrfdDetector(session, policy=ScalePolicy(256, 640))  # type: ignore[arg-type]
    assert det.input_size is None
    faces = det.detect(np.zeros((600, 1000, 3), dtype=np.uint8))
    assert session.seen == [(1, 3, 384, 640)]
    scale = 640 / 1000
    box, kps = canvas_face(16, 4, 10)
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box, box / scale, atol=1e-3)
    np.testing.assert_allclose(faces[0].landmarks, kps / scale, atol=1e-3)


def test_scrfd_without_landmarks_is_refused() -> None:
    session = SimpleNamespace(
        get_inputs=lambda: [SimpleNamespace(name="x", shape=[1, 3, 640, 640])],
        get_outputs=lambda: [SimpleNamespace(name=str(i), shape=None) for i in range(6)],
    )
    with pytest.raises(ValueError, match="9 or 15 outputs"):
        ScrfdDetector(session)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "model, options",
    [
        (tiny_scrfd, RepairOptions(dynamic_spatial=False, prelu_to_nchwc=False)),
        (tiny_arcface, RepairOptions(prelu_to_nchwc=True)),
    ],
)
def test_graph_repair_keeps_insightface_graphs_exact(model, options: RepairOptions) -> None:
    data = model()
    original = make_session(data)
    repaired = make_session(prepared_model(data, "x" * 64, options, None))
    shape = [d if isinstance(d, int) else 2 for d in original.get_inputs()[0].shape]
    x = np.random.default_rng(3).uniform(-1, 1, shape).astype(np.float32)
    name = original.get_inputs()[0].name
    assert repaired.get_inputs()[0].name == name
    for a, b in zip(original.run(None, {name: x}), repaired.run(None, {name: x})):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_buffalo_l_end_to_end(buffalo_dir: Path, cache_dir: Path) -> None:
    pipeline = Pipeline.load("buffalo_l", model_dir=buffalo_dir, threads=1, settings=Settings(cache_dir=cache_dir))
    assert isinstance(pipeline.detector, ScrfdDetector)
    assert pipeline.embedder.dim == 512 and pipeline.embedder.mean == 127.5 and pipeline.embedder.std == 127.5
    source = face_image()
    analysis = pipeline.analyze(source)
    assert analysis.reason is None and analysis.face is not None
    box, kps = expected_in_image(analysis.width, analysis.height, pipeline.detector.policy)
    np.testing.assert_allclose(analysis.face.box, box, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(analysis.face.landmarks, kps, rtol=1e-4, atol=1e-2)
    emb = analysis.embedding
    assert emb is not None and emb.shape == (512,)
    assert np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-5)
    result = pipeline.compare(source, source)
    assert result.score == pytest.approx(1.0, abs=1e-4)
    assert result.thresholds == load_pack("buffalo_l").thresholds


def test_model_dir_parent_and_nested_layouts(buffalo_dir: Path, tmp_path: Path) -> None:
    pack = load_pack("buffalo_l")
    assert resolve_file(pack.files["detector"], buffalo_dir.parent) == buffalo_dir / "det_10g.onnx"
    nested = tmp_path / "antelopev2" / "antelopev2"
    nested.mkdir(parents=True)
    (nested / "scrfd_10g_bnkps.onnx").write_bytes(b"x")
    antelope = load_pack("antelopev2")
    assert resolve_file(antelope.files["detector"], tmp_path) == nested / "scrfd_10g_bnkps.onnx"
    assert resolve_file(antelope.files["detector"], tmp_path / "antelopev2") == nested / "scrfd_10g_bnkps.onnx"


def test_missing_model_dir_names_the_file(cache_dir: Path) -> None:
    with pytest.raises(VerifierError) as err:
        Pipeline.load("buffalo_l", model_dir=None, settings=Settings(cache_dir=cache_dir))
    assert err.value.reason.code == "MODEL_FILE_MISSING"
    assert "det_10g.onnx" in err.value.detail and "--model-dir" in err.value.detail


def test_missing_model_file_names_the_file(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "det_10g.onnx").write_bytes(tiny_scrfd())
    with pytest.raises(VerifierError) as err:
        Pipeline.load("buffalo_l", model_dir=tmp_path, settings=Settings(cache_dir=cache_dir))
    assert err.value.reason.code == "MODEL_FILE_MISSING"
    assert "w600k_r50.onnx" in err.value.detail


@pytest.mark.parametrize("pack_id", INSIGHTFACE_PACKS)
def test_insightface_packs_are_non_commercial(pack_id: str) -> None:
    pack = load_pack(pack_id)
    assert pack.commercial_use is False
    assert "non-commercial" in pack.licence
    assert pack.needs_model_dir and all(f.sha256 is None for f in pack.files.values())
    assert pack.detector["kind"] == "scrfd" and pack.recognizer["embedding_size"] == 512
    assert "provisional" in pack.thresholds_source["method"]
    th = pack.thresholds
    assert th.reject < th.accept < th.duplicate


def test_models_list_shows_the_licence(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for pack_id in INSIGHTFACE_PACKS:
        block = out.split(f"{pack_id}\t", 1)[1].split("\n  thresholds", 1)[0]
        assert "non-commercial research use only" in block
