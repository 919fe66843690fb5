"""Work over all cores: ordered, bounded chunk maps over worker threads (or processes).

Inference runs outside the GIL (ONNX Runtime, OpenCV), so the default is
threads in one process sharing one pipeline: the sessions (one thread each)
run concurrently from every worker thread, total threads equal the worker
count, and the model weights are in memory once (measured: same
throughput as one process per core, half the memory). Processes remain for
CPU-bound Python work. At most two chunks per worker are in flight, so
memory stays bounded however long the input stream is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .pipeline import Pipeline
from .results import FaceAnalysis
from .settings import cpu_count

T = TypeVar("T")
R = TypeVar("R")

_PIPELINE: Pipeline | None = None


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of up to `size` items, streamed."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def map_chunks(
    items: Iterable[T],
    fn: Callable[[list[T]], list[R]],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    chunk_size: int = 8,
    stop: Callable[[], bool] = lambda: False,
    processes: bool = False,
) -> Iterator[tuple[T, R]]:
    """Yield (item, fn-result) in input order; `fn` maps a chunk to one result per item.

    Threads (default) run the initializer once here and share its state;
    processes run it in each worker. With workers <= 1 everything runs
    here. Once `stop()` is true no new chunk is started; chunks in flight
    still finish.
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for chunk in chunked(items, chunk_size):
            yield from zip(chunk, fn(chunk))
            if stop():
                return
        return
    pool: Executor
    if processes:
        pool = ProcessPoolExecutor(workers, initializer=initializer, initargs=initargs)
    else:
        if initializer is not None:
            initializer(*initargs)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="verifier-worker")
    with pool:
        pending: list[tuple[list[T], Future]] = []
        for chunk in chunked(items, chunk_size):
            if stop():
                break
            pending.append((chunk, pool.submit(fn, chunk)))
            if len(pending) >= 2 * workers:
                done, fut = pending.pop(0)
                yield from zip(done, fut.result())
        for done, fut in pending:
            yield from zip(done, fut.result())


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
