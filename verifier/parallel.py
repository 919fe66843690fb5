"""Analyse many image files on all cores: one pipeline (one session pair) per worker process."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .pipeline import Pipeline
from .results import FaceAnalysis
from .settings import cpu_count

_PIPELINE: Pipeline | None = None


def _init_worker(pack_id: str | None, model_dir: str | None) -> None:
    global _PIPELINE
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _PIPELINE = Pipeline.load(pack_id, Path(model_dir) if model_dir else None, threads=1)


def _analyze_chunk(paths: list[str]) -> list[FaceAnalysis]:
    assert _PIPELINE is not None
    return _PIPELINE.analyze_many([Path(p) for p in paths])


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def analyze_files(
    paths: Iterable[str],
    workers: int | None = None,
    pack_id: str | None = None,
    model_dir: Path | None = None,
    chunk_size: int = 8,
    pipeline: Pipeline | None = None,
) -> Iterator[tuple[str, FaceAnalysis]]:
    """Yield (path, analysis) in input order, with at most 2 chunks in flight per worker.

    workers=1 (or a given pipeline) runs in this process: no pool overhead.
    """
    workers = workers or cpu_count()
    if workers <= 1 or pipeline is not None:
        pl = pipeline or Pipeline.load(pack_id, model_dir, threads=max(1, workers))
        for chunk in _chunks(paths, chunk_size):
            yield from zip(chunk, pl.analyze_many([Path(p) for p in chunk]))
        return
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(pack_id, str(model_dir) if model_dir else None)) as pool:
        pending = []
        for chunk in _chunks(paths, chunk_size):
            pending.append((chunk, pool.submit(_analyze_chunk, chunk)))
            if len(pending) >= 2 * workers:
                done_chunk, fut = pending.pop(0)
                yield from zip(done_chunk, fut.result())
        for done_chunk, fut in pending:
            yield from zip(done_chunk, fut.result())
