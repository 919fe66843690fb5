"""Face detection: the detector protocol, input scaling, YuNet on ONNX Runtime, and two-pass refinement for ID photos."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort

from verifier.core.results import Face


class Detector(Protocol):
    """Anything that returns every face in a BGR image."""

    def detect(self, image: np.ndarray) -> list[Face]: ...


@dataclass(frozen=True)
class ScalePolicy:
    """How an image is resized before detection.

    The long side is brought into [min_side, max_side]: big photos are
    downscaled (cost grows with pixels), tiny ID photos (90 px wide is legal)
    are upscaled, because detectors miss faces that fill a very small frame.
    """

    min_side: int = 256
    max_side: int = 640

    def scale_for(self, width: int, height: int) -> float:
        long_side = max(width, height)
        target = min(max(long_side, self.min_side), self.max_side)
        return target / long_side


def resize_for_detection(image: np.ndarray, policy: ScalePolicy) -> tuple[np.ndarray, float]:
    """Resized copy of the image and the factor applied."""
    h, w = image.shape[:2]
    s = policy.scale_for(w, h)
    if abs(s - 1.0) < 1e-6:
        return image, 1.0
    size = (max(1, round(w * s)), max(1, round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp), s


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_threshold: float, top_k: int) -> np.ndarray:
    """Indices kept by OpenCV's non-maximum suppression, best first."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), score_threshold, nms_threshold, top_k=top_k)
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def faces_from_arrays(boxes: np.ndarray, scores: np.ndarray, kps: np.ndarray, scale: float) -> list[Face]:
    """Map detections back to original pixels and wrap them, largest first."""
    faces = [
        Face(tuple(float(v) / scale for v in b), float(s), (k.reshape(5, 2) / scale).astype(np.float32))
        for b, s, k in zip(boxes, scores, kps)
    ]
    faces.sort(key=lambda f: f.area, reverse=True)
    return faces


class YuNetDetector:
    """YuNet (OpenCV Zoo, 2023mar) run by ONNX Runtime at any input size.

    Input: BGR, 0..255 float, NCHW, padded on the right and bottom to a
    multiple of 32. Output per stride (8, 16, 32): class and objectness
    scores, box offsets (centre in cells, log size), 5 landmark offsets.
    """

    STRIDES = (8, 16, 32)

    def __init__(
        self,
        session: ort.InferenceSession,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 50,
        policy: ScalePolicy = ScalePolicy(),
    ):
        self.session = session
        self.input_name = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]
        self.output_names = [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in self.STRIDES]
        missing = set(self.output_names) - set(names)
        if missing:
            raise ValueError(f"not a YuNet model: missing outputs {sorted(missing)}")
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self.policy = policy

    def detect(self, image: np.ndarray) -> list[Face]:
        resized, scale = resize_for_detection(image, self.policy)
        h, w = resized.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        blob = np.zeros((1, 3, ph, pw), dtype=np.float32)
        blob[0, :, :h, :w] = resized.transpose(2, 0, 1)
        outs = dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: blob})))
        all_boxes, all_scores, all_kps = [], [], []
        for s in self.STRIDES:
            cols = pw // s
            cls = np.clip(outs[f"cls_{s}"].reshape(-1), 0, 1)
            obj = np.clip(outs[f"obj_{s}"].reshape(-1), 0, 1)
            score = np.sqrt(cls * obj)
            idx = np.nonzero(score >= self.score_threshold)[0]
            if idx.size == 0:
                continue
            r, c = (idx // cols).astype(np.float32), (idx % cols).astype(np.float32)
            bb = outs[f"bbox_{s}"].reshape(-1, 4)[idx]
            cx, cy = (c + bb[:, 0]) * s, (r + bb[:, 1]) * s
            bw, bh = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
            all_boxes.append(np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1))
            kp = outs[f"kps_{s}"].reshape(-1, 10)[idx].reshape(-1, 5, 2)
            kp = (kp + np.stack([c, r], axis=1)[:, None, :]) * s
            all_kps.append(kp.reshape(-1, 10))
            all_scores.append(score[idx])
        if not all_scores:
            return []
        boxes, scores, kps = np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_kps)
        keep = nms(boxes, scores, self.score_threshold, self.nms_threshold, self.top_k)
        return faces_from_arrays(boxes[keep], scores[keep], kps[keep], scale)


GRID = 32  # the largest stride of YuNet and SCRFD: inputs are padded to it
Box = tuple[float, float, float, float]  # x, y, width, height in pixels


@dataclass(frozen=True)
class RefinePolicy:
    """Detect an ID photo small, then refine its one large face on a full-resolution crop.

    A whole-image pass at a small input finds the face cheaply but moves the
    landmarks; a second pass on a crop around that face, cut from the
    full-resolution image, finds them again. Images that do not look like an
    ID photo at the small input (no face, a second face, a face narrower
    than `min_face_fraction` of the image width) and images where the two
    passes would not save `min_gain` of the pixels are detected at full size,
    as before. Off in the shipped pack: see its `detector.refine.why`.
    """

    coarse_side: int = 160  # long side of the whole-image pass
    # 0: the crop keeps the full-size pass's scale and 32-pixel grid (cut, not resized), grown by `margin` of the box
    # per side; N: a square of the box's long side x (1 + 2 margin) resized to N x N (faster, but YuNet's landmarks
    # move with the face's size in pixels: docs/BENCHMARKS.md, "Detection at a small input").
    crop_size: int = 0
    margin: float = 0.1
    min_face_fraction: float = 0.25  # coarse box width / image width needed to trust the coarse pass
    min_overlap: float = 0.5  # IoU of the refined box with the coarse one needed to keep it
    min_gain: float = 1.3  # full-size input pixels / two-pass input pixels needed to run the two passes

    @classmethod
    def from_config(cls, cfg: dict | None) -> "RefinePolicy | None":
        """The manifest's `detector.refine` block (None or `enabled: false`: no refinement)."""
        if not cfg or not cfg.get("enabled", True):
            return None
        fields = {k: v for k, v in cfg.items() if k not in ("enabled", "why")}
        return cls(**fields)


@dataclass(frozen=True)
class CropWindow:
    """Where a refine crop came from: full-image pixel = origin + crop pixel / scale."""

    origin: tuple[float, float]
    scale: float


def padded_pixels(width: int, height: int, policy: ScalePolicy) -> int:
    """Pixels of the padded detector input an image of this size gets under a policy."""
    s = policy.scale_for(width, height)
    w, h = max(1, round(width * s)), max(1, round(height * s))
    return (-(-w // GRID) * GRID) * (-(-h // GRID) * GRID)


def refine_window(box: Box, margin: float) -> tuple[float, float, float]:
    """The square (x0, y0, side) in full-image pixels cut around a face box for refinement."""
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    return x + w / 2 - side / 2, y + h / 2 - side / 2, side


def crop_for_refine(image: np.ndarray, box: Box, size: int, margin: float) -> tuple[np.ndarray, CropWindow]:
    """A size x size crop around the box at full resolution (zero outside the image), and its window."""
    x0, y0, side = refine_window(box, margin)
    scale = size / side
    h, w = image.shape[:2]
    ix0, iy0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    ix1, iy1 = min(w, int(np.ceil(x0 + side))), min(h, int(np.ceil(y0 + side)))
    canvas = np.zeros((size, size, 3), dtype=image.dtype)
    if ix1 <= ix0 or iy1 <= iy0:
        return canvas, CropWindow((x0, y0), scale)
    px, py = max(0, round((ix0 - x0) * scale)), max(0, round((iy0 - y0) * scale))
    nw, nh = min(size - px, max(1, round((ix1 - ix0) * scale))), min(size - py, max(1, round((iy1 - iy0) * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas[py : py + nh, px : px + nw] = cv2.resize(image[iy0:iy1, ix0:ix1], (nw, nh), interpolation=interp)
    sx, sy = nw / (ix1 - ix0), nh / (iy1 - iy0)
    return canvas, CropWindow((ix0 - px / sx, iy0 - py / sy), (sx + sy) / 2)


def grid_window(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The refine window (x0, y0, x1, y1): the box grown by `margin` of its size per side, its corner on the 32-pixel grid.

    On the grid the network's cells fall where they fell in the whole image,
    so the face is seen as the full-size pass saw it; only the cut-off
    context differs.
    """
    x, y, w, h = box
    gx, gy = max(0, int((x - margin * w) // GRID) * GRID), max(0, int((y - margin * h) // GRID) * GRID)
    return gx, gy, min(width, int(np.ceil(x + w + margin * w))), min(height, int(np.ceil(y + h + margin * h)))


def face_to_image(face: Face, window: CropWindow) -> Face:
    """A face found in a refine crop, in full-image pixels."""
    ox, oy = window.origin
    x, y, w, h = face.box
    box = (ox + x / window.scale, oy + y / window.scale, w / window.scale, h / window.scale)
    pts = (face.landmarks.astype(np.float64) / window.scale + np.array([ox, oy])).astype(np.float32)
    return Face(box, face.score, pts)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def trusts_coarse(faces: list[Face], width: int, policy: RefinePolicy) -> bool:
    """Whether a small-input pass looks like an ID photo: exactly one face, wide enough."""
    return len(faces) == 1 and faces[0].box[2] >= policy.min_face_fraction * width


class RefinedDetector:
    """Two-pass detection for ID photos (see RefinePolicy); everything else goes to the full-size detector.

    `coarse`, `fine` and `full` are the same model under three scale
    policies (small whole image, the crop as it is, the usual sizes), so
    this works on whatever runs the detector.
    """

    def __init__(self, full: Detector, coarse: Detector, fine: Detector, full_policy: ScalePolicy, policy: RefinePolicy):
        self.full = full
        self.coarse = coarse
        self.fine = fine
        self.full_policy = full_policy
        self.policy = policy
        self._coarse_policy = ScalePolicy(policy.coarse_side, policy.coarse_side)

    def worth_refining(self, width: int, height: int) -> bool:
        """Whether the two passes may feed the model `min_gain` times fewer pixels than one full-size pass."""
        crop = self.policy.crop_size**2
        two = padded_pixels(width, height, self._coarse_policy) + crop
        return padded_pixels(width, height, self.full_policy) >= self.policy.min_gain * two

    def _fine_pass(self, image: np.ndarray, box: Box) -> tuple[list[Face], CropWindow] | None:
        """Detect in the refine crop: resized to crop_size, or (crop_size 0) at the full-size pass's own scale and grid."""
        if self.policy.crop_size:
            crop, window = crop_for_refine(image, box, self.policy.crop_size, self.policy.margin)
            return self.fine.detect(crop), window
        resized, scale = resize_for_detection(image, self.full_policy)
        scaled: Box = (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)
        x0, y0, x1, y1 = grid_window(scaled, self.policy.margin, resized.shape[1], resized.shape[0])
        h, w = resized.shape[:2]
        crop_cost = (-(-(x1 - x0) // GRID) * GRID) * (-(-(y1 - y0) // GRID) * GRID)
        coarse_cost = padded_pixels(image.shape[1], image.shape[0], self._coarse_policy)
        if padded_pixels(w, h, ScalePolicy(1, 1 << 30)) < self.policy.min_gain * (coarse_cost + crop_cost):
            return None
        return self.fine.detect(resized[y0:y1, x0:x1]), CropWindow((x0 / scale, y0 / scale), scale)

    def refine(self, image: np.ndarray) -> Face | None:
        """The one face of an ID photo by the two passes, or None when the full-size pass must decide."""
        coarse = self.coarse.detect(image)
        if not trusts_coarse(coarse, image.shape[1], self.policy):
            return None
        fine = self._fine_pass(image, coarse[0].box)
        if fine is None or not fine[0]:
            return None
        face = face_to_image(fine[0][0], fine[1])
        return face if box_iou(face.box, coarse[0].box) >= self.policy.min_overlap else None

    def detect(self, image: np.ndarray) -> list[Face]:
        """The ID photo's one face by the two passes, else every face by the full-size pass."""
        h, w = image.shape[:2]
        if self.worth_refining(w, h):
            face = self.refine(image)
            if face is not None:
                return [face]
        return self.full.detect(image)


def with_refinement(make: Callable[[ScalePolicy], Detector], full_policy: ScalePolicy, policy: RefinePolicy | None) -> Detector:
    """The detector `make` builds for the usual sizes, wrapped in two-pass refinement when a policy is given."""
    full = make(full_policy)
    if policy is None:
        return full
    coarse = make(ScalePolicy(policy.coarse_side, policy.coarse_side))
    fine = make(ScalePolicy(policy.crop_size, policy.crop_size) if policy.crop_size else ScalePolicy(1, 1 << 30))
    return RefinedDetector(full, coarse, fine, full_policy, policy)
