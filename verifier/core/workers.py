"""One pipeline per worker, and files analysed over all cores through it (threads sharing it by default)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from verifier.common.parallel import map_chunks
from verifier.common.settings import cpu_count
from verifier.core.pipeline import Pipeline
from verifier.core.results import FaceAnalysis

_PIPELINE: Pipeline | None = None


def worker_pipeline() -> Pipeline:
    """This worker's pipeline (built by `init_pipeline`)."""
    assert _PIPELINE is not None, "init_pipeline() was not run in this process"
    return _PIPELINE


def init_pipeline(pack_id: str | None, model_dir: str | None, pipeline: Pipeline | None = None) -> None:
    """Initializer: one pipeline with single-threaded sessions for this process (or reuse a given one)."""
    global _PIPELINE
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _PIPELINE = pipeline or Pipeline.load(pack_id, Path(model_dir) if model_dir else None, threads=1)


def _analyze_chunk(paths: list[str]) -> list[FaceAnalysis]:
    return worker_pipeline().analyze_many([Path(p) for p in paths])


def analyze_files(
    paths: Iterable[str],
    workers: int | None = None,
    pack_id: str | None = None,
    model_dir: Path | None = None,
    chunk_size: int = 8,
    pipeline: Pipeline | None = None,
) -> Iterator[tuple[str, FaceAnalysis]]:
    """Yield (path, analysis) in input order over `workers` threads (default: all cores)."""
    workers = workers or cpu_count()
    args = (pack_id, str(model_dir) if model_dir else None, pipeline)
    return map_chunks(paths, _analyze_chunk, workers, init_pipeline, args, chunk_size)
