"""Inference backends behind one tiny interface: `run(blob) -> array`, safe to call from worker threads.

`OrtBackend` wraps an ONNX Runtime session (its `run` is thread-safe). `OpenVinoBackend` holds one
compiled OpenVINO model with one stream per core and gives each calling thread its own infer request.
`openvino_backend` compiles a model for a precision and caches the compiled blob like
`runtime.prepared_model` caches repaired ONNX: keyed by the source, the OpenVINO version, the options and
the CPU flags, its digest kept beside it, a corrupt or unloadable entry rebuilt. openvino is imported
only here, when a pipeline that uses it loads.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from verifier.common.files import write_output

log = logging.getLogger(__name__)

OV_HINTS = {"fp32": "f32", "bf16": "bf16"}
# Faces per inference call, measured per engine (benchmarks/bench_engines.py, CPU time per face): both engines
# are at or near their best at 4 (ONNX Runtime fp32 12.6 ms, OpenVINO fp32 10.2 ms; 8 within noise, 32 worse).
PREFERRED_BATCH = {"onnxruntime": 4, "openvino": 4}


class Backend(Protocol):
    """What the Embedder needs from an engine."""

    engine: str
    precision: str
    fixed_batch: int | None
    output_dim: int
    preferred_batch: int

    def run(self, blob: np.ndarray) -> np.ndarray:
        """Outputs (first output) for one NCHW float32 blob; callable from several threads at once."""
        ...


class OrtBackend:
    """An ONNX Runtime session as a backend."""

    engine = "onnxruntime"
    precision = "fp32"
    preferred_batch = PREFERRED_BATCH["onnxruntime"]

    def __init__(self, session: Any):
        self.session = session
        self.input_name = session.get_inputs()[0].name
        first = session.get_inputs()[0].shape[0]
        self.fixed_batch = first if isinstance(first, int) else None
        self.output_dim = int(session.get_outputs()[0].shape[-1])

    def run(self, blob: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: blob})[0]


class OpenVinoBackend:
    """One compiled OpenVINO model; an infer request per calling thread (requests are not shareable)."""

    engine = "openvino"
    preferred_batch = PREFERRED_BATCH["openvino"]

    def __init__(self, compiled: Any, precision: str):
        self.compiled = compiled
        self.precision = precision
        shape = compiled.inputs[0].get_partial_shape()
        self.fixed_batch = shape[0].get_length() if shape[0].is_static else None
        self.output_dim = int(compiled.outputs[0].get_partial_shape()[-1].get_length())
        self._local = threading.local()

    def run(self, blob: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer({0: blob})
        return np.array(request.get_output_tensor(0).data, copy=True)  # the request reuses its output buffer


def openvino_config(precision: str, threads: int, cores: int) -> dict[str, Any]:
    """Compile options: `threads` per inference, as many streams as fit the cores (one per worker thread)."""
    streams = max(1, cores // max(1, threads))
    return {
        "INFERENCE_PRECISION_HINT": OV_HINTS[precision],
        "NUM_STREAMS": streams,
        "INFERENCE_NUM_THREADS": streams * max(1, threads),
    }


def _cache_key(source_key: str, ov_version: str, config: dict[str, Any], flags: frozenset[str]) -> str:
    opts = json.dumps({"ov": ov_version, "config": config, "flags": sorted(flags)}, sort_keys=True, default=str)
    return f"{source_key[:32]}-ov-{hashlib.sha256(opts.encode()).hexdigest()[:16]}"


def openvino_backend(
    model: Callable[[], bytes], source_key: str, precision: str, threads: int, cores: int, flags: frozenset[str], cache_dir: Path | None
) -> OpenVinoBackend:
    """A compiled OpenVINO model for ONNX bytes, from the compiled-blob cache when a valid copy is there.

    `model` is called only on a cache miss, so a warm start reads neither the ONNX file nor its repair.
    """
    import openvino as ov

    core = ov.Core()
    config = openvino_config(precision, threads, cores)
    path = digest_path = None
    if cache_dir is not None:
        path = cache_dir / "models" / f"{_cache_key(source_key, ov.__version__, config, flags)}.ovblob"
        digest_path = path.with_suffix(".sha256")
        try:
            blob = path.read_bytes()
            if hashlib.sha256(blob).hexdigest() == digest_path.read_text().strip():
                return OpenVinoBackend(core.import_model(io.BytesIO(blob), "CPU", config), precision)
            log.info("compiled model cache entry is corrupt; rebuilding")
        except (OSError, ValueError):
            pass
        except RuntimeError:
            log.info("compiled model cache entry does not load; rebuilding")
    compiled = core.compile_model(core.read_model(model(), b""), "CPU", config)
    if path is not None and digest_path is not None:
        try:
            data = compiled.export_model().getvalue()
            write_output(path, data)
            write_output(digest_path, hashlib.sha256(data).hexdigest().encode())
        except (OSError, RuntimeError) as exc:
            log.warning("cannot write the compiled model cache (%s); continuing without it", exc.__class__.__name__)
    return OpenVinoBackend(compiled, precision)
