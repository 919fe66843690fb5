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

import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar


T = TypeVar("T")
R = TypeVar("R")



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


def _pool_worker_start(initializer: Callable[..., None] | None, *initargs: Any) -> None:
    """Start of a pool worker process: Ctrl-C is the parent's to handle (it drains work in flight), then the initializer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


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
        pool = ProcessPoolExecutor(workers, initializer=_pool_worker_start, initargs=(initializer, *initargs))
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
