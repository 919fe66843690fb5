"""Face detection: the detector protocol, input scaling, and YuNet on ONNX Runtime."""

from __future__ import annotations

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
