"""SCRFD face detection (InsightFace buffalo_l / buffalo_s / antelopev2) on ONNX Runtime.

Input: RGB, (x - 127.5) / 128, NCHW; the image is letterboxed (resized
keeping its aspect, padded right and bottom with black) into the model's
fixed input size, or, for models with free spatial dimensions, into the
resized image rounded up to a multiple of the largest stride. Outputs: per
stride a score map, box distances (left, top, right, bottom in strides from
the anchor centre) and 5 landmark offsets (in strides from the anchor
centre); anchors sit at (column * stride, row * stride), `num_anchors` per
location, with or without a leading batch dimension.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from verifier.core.detect import ScalePolicy, faces_from_arrays, nms
from verifier.core.results import Face

_STRIDES = {9: (8, 16, 32), 15: (8, 16, 32, 64, 128)}
_WIDTHS = (1, 4, 10)  # last dimension of the score, box and landmark outputs


def _fixed_size(shape: list) -> tuple[int, int] | None:
    """(width, height) of a fixed NCHW input shape; None when H or W is free."""
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int) and shape[2] > 0 and shape[3] > 0:
        return int(shape[3]), int(shape[2])
    return None


class ScrfdDetector:
    """SCRFD with 5-point landmarks (9 outputs for 3 strides, or 15 for 5)."""

    def __init__(
        self,
        session: ort.InferenceSession,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        top_k: int = 100,
        policy: ScalePolicy = ScalePolicy(),
    ):
        self.session = session
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.input_size = _fixed_size(list(inp.shape))
        self.output_names = [o.name for o in session.get_outputs()]
        if len(self.output_names) not in _STRIDES:
            raise ValueError(
                f"not an SCRFD model with landmarks: expected 9 or 15 outputs, got {len(self.output_names)}"
            )
        self.strides = _STRIDES[len(self.output_names)]
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self.policy = policy

    def letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Model input blob (1x3xHxW float32) and the scale from image to blob pixels."""
        h, w = image.shape[:2]
        scale = self.policy.scale_for(w, h)
        if self.input_size is not None:
            scale = min(scale, self.input_size[0] / w, self.input_size[1] / h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        if self.input_size is not None:
            pw, ph = self.input_size
            nw, nh = min(nw, pw), min(nh, ph)
        else:
            m = self.strides[-1]
            pw, ph = -(-nw // m) * m, -(-nh // m) * m
        if (nw, nh) != (w, h):
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = cv2.resize(image, (nw, nh), interpolation=interp)
        canvas = np.zeros((ph, pw, 3), dtype=np.float32)
        canvas[:nh, :nw] = image[..., ::-1]
        blob = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None]
        return np.ascontiguousarray(blob), scale

    def _group(self, outs: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Score, box and landmark outputs as 2-D arrays, each list ordered by stride."""
        arrays = [np.asarray(o) for o in outs]
        flat = [a.reshape(-1, 1) if a.ndim == 1 else a.reshape(-1, a.shape[-1]) for a in arrays]
        n = len(self.strides)
        groups = [[a for a in flat if a.shape[1] == width] for width in _WIDTHS]
        if any(len(g) != n for g in groups):
            groups = [flat[i * n : (i + 1) * n] for i in range(3)]
        return [sorted(g, key=lambda a: -a.shape[0]) for g in groups]

    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face in a BGR image, in original pixels, largest first."""
        blob, scale = self.letterbox(image)
        ph, pw = blob.shape[2:]
        outs = self.session.run(self.output_names, {self.input_name: blob})
        score_maps, box_maps, kps_maps = self._group(outs)
        all_boxes, all_scores, all_kps = [], [], []
        for stride, sc, bb, kp in zip(self.strides, score_maps, box_maps, kps_maps):
            cols = pw // stride
            cells = (ph // stride) * cols
            anchors = sc.shape[0] // max(1, cells)
            if anchors < 1 or anchors * cells != sc.shape[0] or bb.shape[0] != sc.shape[0] or kp.shape[0] != sc.shape[0]:
                raise ValueError(f"SCRFD output for stride {stride} does not match a {pw}x{ph} input")
            scores = sc[:, 0]
            idx = np.nonzero(scores >= self.score_threshold)[0]
            if idx.size == 0:
                continue
            loc = idx // anchors
            centres = np.stack([loc % cols, loc // cols], axis=1).astype(np.float32) * stride
            d = bb[idx].astype(np.float32) * stride
            x1, y1 = centres[:, 0] - d[:, 0], centres[:, 1] - d[:, 1]
            x2, y2 = centres[:, 0] + d[:, 2], centres[:, 1] + d[:, 3]
            all_boxes.append(np.stack([x1, y1, x2 - x1, y2 - y1], axis=1))
            points = kp[idx].astype(np.float32).reshape(-1, 5, 2) * stride + centres[:, None, :]
            all_kps.append(points.reshape(-1, 10))
            all_scores.append(scores[idx].astype(np.float32))
        if not all_scores:
            return []
        boxes, scores, kps = np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_kps)
        keep = nms(boxes, scores, self.score_threshold, self.nms_threshold, self.top_k)
        return faces_from_arrays(boxes[keep], scores[keep], kps[keep], scale)
