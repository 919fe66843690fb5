"""The face pipeline: decode -> detect -> align -> embed -> score.

`Pipeline.load()` builds one detector and one recognizer session per
process from a model pack; `analyze` and `compare` are the public entry
points, `analyze_many` embeds many images in batched runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from verifier.core.align import align_face
from verifier.core.decode import DecodedImage, decode_image
from verifier.core.detect import Detector, RefinePolicy, ScalePolicy, YuNetDetector, with_refinement
from verifier.core.backends import Backend, OrtBackend, openvino_backend
from verifier.core.embed import Embedder
from verifier.core.engines import EngineChoice, choose_engine, openvino_installed, pack_reference, pack_variants, read_cpu
from verifier.core.graph_repair import RepairOptions
from verifier.core.packs import Pack, load_pack, read_verified
from verifier.common.reasons import Reason, VerifierError, reason
from verifier.core.results import Comparison, Face, FaceAnalysis
from verifier.core.runtime import cache_key, make_session, prepared_model
from verifier.core.score import decide
from verifier.common.settings import Settings, cpu_count

ImageInput = DecodedImage | np.ndarray | bytes | str | Path


@dataclass(frozen=True)
class FacePolicy:
    """Which face of an image is compared.

    One face: that one. Several: the largest, but only when it dominates
    (area at least `dominance` times the next), as in a portrait with a
    small face in the background; otherwise the image is ambiguous.
    """

    dominance: float = 2.5

    def choose(self, faces: Sequence[Face]) -> tuple[Face | None, Reason | None]:
        if not faces:
            return None, reason("FACE_NOT_FOUND", measured=0, limit=1)
        ranked = sorted(faces, key=lambda f: f.area, reverse=True)
        if len(ranked) == 1 or ranked[0].area >= self.dominance * ranked[1].area:
            return ranked[0], None
        return None, reason("FACE_MULTIPLE", measured=len(ranked), limit=1)


def _build_detector(pack: Pack, data: bytes, digest: str, settings: Settings, threads: int, policy: ScalePolicy | None) -> Detector:
    cfg = pack.detector
    # SCRFD keeps its declared input size: a fixed-size export must be fed exactly that size.
    options = RepairOptions(dynamic_spatial=cfg["kind"] != "scrfd", prelu_to_nchwc=False)
    session = make_session(prepared_model(data, digest, options, settings.cache_dir), threads)
    policy = policy or ScalePolicy(int(cfg.get("min_side", 256)), int(cfg.get("max_side", 640)))
    kind = cfg["kind"]
    if kind == "yunet":
        score, overlap = float(cfg.get("score_threshold", 0.6)), float(cfg.get("nms_threshold", 0.3))
        return with_refinement(lambda p: YuNetDetector(session, score, overlap, policy=p), policy, _refine_policy(cfg, settings))
    if kind == "scrfd":
        from verifier.core.scrfd import ScrfdDetector

        return ScrfdDetector(session, float(cfg.get("score_threshold", 0.5)), float(cfg.get("nms_threshold", 0.4)), policy=policy)
    raise VerifierError("MODEL_PACK_UNKNOWN", detail=f"detector kind {kind!r}")


def _refine_policy(cfg: dict, settings: Settings) -> RefinePolicy | None:
    """The pack's two-pass detection policy, unless the settings turn it off (or on with the defaults)."""
    block = dict(cfg.get("refine") or {})
    if settings.detect_refine is not None:
        block["enabled"] = settings.detect_refine
    try:
        return RefinePolicy.from_config(block or None)
    except (TypeError, ValueError) as exc:
        raise VerifierError("MODEL_PACK_UNKNOWN", detail=f"detector.refine: {exc}") from None


def _build_embedder(pack: Pack, data: bytes, digest: str, settings: Settings, threads: int) -> Embedder:
    cfg = pack.recognizer
    choice = select_engine(pack, settings)
    if choice.engine == "openvino":
        # OpenVINO fuses PRelu itself; the ONNX Runtime rewrite only slows it down.
        options = RepairOptions(prelu_to_nchwc=False)
        backend: Backend = openvino_backend(
            lambda: prepared_model(data, digest, options, settings.cache_dir),
            cache_key(digest, options), choice.precision, threads, cpu_count(), read_cpu().flags, settings.cache_dir,
        )
    else:
        options = RepairOptions(prelu_to_nchwc=bool(cfg.get("rewrite_prelu", True)))
        backend = OrtBackend(make_session(prepared_model(data, digest, options, settings.cache_dir), threads))
    return Embedder(
        backend,
        size=int(cfg.get("input_size", 112)),
        channel_order=cfg.get("channel_order", "RGB"),
        mean=float(cfg.get("mean", 0.0)),
        std=float(cfg.get("std", 1.0)),
    )


def select_engine(pack: Pack, settings: Settings) -> EngineChoice:
    """The recognizer's engine and precision for this machine, this pack and these settings (core.engines)."""
    return choose_engine(read_cpu().flags, pack_variants(pack.recognizer), settings.engine, settings.precision, openvino_installed(), pack.id, pack_reference(pack.recognizer))


class Pipeline:
    """Detector + recognizer of one pack, with the pack's thresholds."""

    def __init__(self, pack: Pack, detector: Detector, embedder: Embedder, settings: Settings | None = None, face_policy: FacePolicy = FacePolicy()):
        self.pack = pack
        self.detector = detector
        self.embedder = embedder
        self.settings = settings or Settings()
        self.face_policy = face_policy

    @classmethod
    def load(
        cls,
        pack_id: str | None = None,
        model_dir: Path | None = None,
        threads: int | None = None,
        settings: Settings | None = None,
        detect_policy: ScalePolicy | None = None,
    ) -> "Pipeline":
        """Create the sessions once for this process (nothing is downloaded)."""
        settings = settings or Settings.from_env()
        pack = load_pack(pack_id or settings.pack)
        model_dir = model_dir or settings.model_dir
        threads = threads or settings.threads
        det_bytes, det_sha = read_verified(pack.files["detector"], model_dir)
        rec_bytes, rec_sha = read_verified(pack.files["recognizer"], model_dir)
        detector = _build_detector(pack, det_bytes, det_sha, settings, threads, detect_policy)
        embedder = _build_embedder(pack, rec_bytes, rec_sha, settings, threads)
        return cls(pack, detector, embedder, settings)

    @property
    def thresholds(self):
        return self.pack.thresholds

    def decode(self, source: ImageInput) -> DecodedImage | np.ndarray:
        """Bytes or a path to a DecodedImage; arrays and decoded images pass through."""
        if isinstance(source, (DecodedImage, np.ndarray)):
            return source
        if isinstance(source, (str, Path)):
            source = read_image_file(Path(source), self.settings.max_file_bytes)
        return decode_image(source, self.settings.max_pixels)

    def _locate(self, source: ImageInput) -> tuple[FaceAnalysis, np.ndarray | None]:
        """Decode, detect and align one image; the embedding is filled in later."""
        t0 = time.perf_counter()
        try:
            decoded = self.decode(source)
        except VerifierError as exc:
            return FaceAnalysis(0, 0, [], reason=exc.reason), None
        pixels = decoded.pixels if isinstance(decoded, DecodedImage) else decoded
        t1 = time.perf_counter()
        faces = self.detector.detect(pixels)
        t2 = time.perf_counter()
        face, why = self.face_policy.choose(faces)
        aligned = align_face(pixels, face.landmarks, self.embedder.size) if face is not None else None
        t3 = time.perf_counter()
        timings = {"decode": (t1 - t0) * 1e3, "detect": (t2 - t1) * 1e3, "align": (t3 - t2) * 1e3}
        h, w = pixels.shape[:2]
        return FaceAnalysis(w, h, list(faces), face, None, why, timings), aligned

    def analyze_many(self, sources: Iterable[ImageInput]) -> list[FaceAnalysis]:
        """Analyse several images, embedding all their faces in batched runs."""
        located = [self._locate(s) for s in sources]
        crops = [crop for _, crop in located if crop is not None]
        t0 = time.perf_counter()
        vectors = self.embedder.embed(crops)
        per_face = (time.perf_counter() - t0) * 1e3 / max(1, len(crops))
        out, k = [], 0
        for analysis, crop in located:
            if crop is None:
                out.append(analysis)
                continue
            timings = {**analysis.timings_ms, "embed": per_face}
            out.append(FaceAnalysis(analysis.width, analysis.height, analysis.faces, analysis.face, vectors[k], None, timings))
            k += 1
        return out

    def analyze(self, source: ImageInput) -> FaceAnalysis:
        """Detect every face, choose one, align and embed it."""
        return self.analyze_many([source])[0]

    def score(self, a: FaceAnalysis, b: FaceAnalysis) -> Comparison:
        """Compare two analysed images (cosine of their embeddings)."""
        if a.embedding is None or b.embedding is None:
            return Comparison(None, None, self.thresholds, a, b)
        s = float(np.dot(a.embedding, b.embedding))
        return Comparison(s, decide(s, self.thresholds), self.thresholds, a, b)

    def compare(self, a: ImageInput, b: ImageInput) -> Comparison:
        """Analyse two images and score them."""
        fa, fb = self.analyze_many([a, b])
        return self.score(fa, fb)


def read_image_file(path: Path, max_bytes: int) -> bytes:
    """Read a file for decoding, mapping file-system problems to reason codes."""
    try:
        if path.is_dir():
            raise VerifierError("FILE_IS_DIRECTORY", detail=path.name)
        size = path.stat().st_size
        if size > max_bytes:
            raise VerifierError("FILE_TOO_LARGE_TO_READ", measured=size, limit=max_bytes)
        return path.read_bytes()
    except FileNotFoundError:
        raise VerifierError("FILE_NOT_FOUND", detail=path.name) from None
    except IsADirectoryError:
        raise VerifierError("FILE_IS_DIRECTORY", detail=path.name) from None
    except OSError as exc:
        raise VerifierError("FILE_UNREADABLE", detail=exc.strerror or exc.__class__.__name__) from None
