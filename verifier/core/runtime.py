"""ONNX Runtime sessions and the cache of repaired model files."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import onnxruntime as ort

from verifier.common.files import write_output
from verifier.core.graph_repair import REPAIR_VERSION, RepairOptions, repair_model

log = logging.getLogger(__name__)

ort.set_default_logger_severity(3)


def cache_key(source_sha256: str, options: RepairOptions) -> str:
    """Name of a repaired model in the cache: source digest, repair version, options."""
    opts = hashlib.sha256(json.dumps(asdict(options), sort_keys=True).encode()).hexdigest()[:12]
    return f"{source_sha256[:32]}-r{REPAIR_VERSION}-{opts}"


def prepared_model(data: bytes, source_sha256: str, options: RepairOptions, cache_dir: Path | None) -> bytes:
    """Repaired model bytes, from the cache when a valid copy is there.

    The cache entry is keyed by the source file's SHA-256, the repair code
    version and the options; its own digest is kept beside it, so a
    truncated or corrupt entry is detected and rebuilt.
    """
    if cache_dir is not None:
        path = cache_dir / "models" / f"{cache_key(source_sha256, options)}.onnx"
        digest_path = path.with_suffix(".sha256")
        try:
            cached = path.read_bytes()
            if hashlib.sha256(cached).hexdigest() == digest_path.read_text().strip():
                return cached
            log.info("repaired model cache entry is corrupt; rebuilding")
        except (OSError, ValueError):
            pass
    repaired = repair_model(data, options)
    if cache_dir is not None:
        try:
            write_output(path, repaired)
            write_output(digest_path, hashlib.sha256(repaired).hexdigest().encode())
        except OSError as exc:
            log.warning("cannot write the model cache (%s); continuing without it", exc.__class__.__name__)
    return repaired


def make_session(model: bytes, threads: int = 1) -> ort.InferenceSession:
    """One CPU inference session with an explicit thread count and quiet logs."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if threads > 1:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
