"""Embedding: aligned 112x112 faces to L2-normalised vectors, in batches, on any backend."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from verifier.core.backends import Backend
from verifier.core.score import l2_normalize


class Embedder:
    """A recognizer (SFace or ArcFace) behind one backend (core.backends: ONNX Runtime or OpenVINO).

    `mean`/`std` apply (x - mean) / std before the model; SFace normalises
    inside its graph (mean 0, std 1 here), ArcFace expects 127.5/127.5.
    Faces go to the backend `max_batch` at a time (default: the backend's measured best).
    """

    def __init__(
        self,
        backend: Backend,
        size: int = 112,
        channel_order: str = "RGB",
        mean: float = 0.0,
        std: float = 1.0,
        max_batch: int | None = None,
    ):
        self.backend = backend
        self.fixed_batch = backend.fixed_batch
        self.size = size
        self.swap_rb = channel_order.upper() == "RGB"
        self.mean = float(mean)
        self.std = float(std)
        self.max_batch = self.fixed_batch or max_batch or backend.preferred_batch
        self.dim = backend.output_dim

    def _blob(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        arr = np.stack(faces).astype(np.float32)
        if self.swap_rb:
            arr = arr[..., ::-1]
        if self.mean != 0.0 or self.std != 1.0:
            arr = (arr - self.mean) / self.std
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))

    def embed(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """Unit embeddings (N x dim, float32) for aligned BGR faces."""
        if len(faces) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for i in range(0, len(faces), self.max_batch):
            blob = self._blob(faces[i : i + self.max_batch])
            out.append(self.backend.run(blob).reshape(len(blob), -1))
        return l2_normalize(np.concatenate(out))
