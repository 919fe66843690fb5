"""Work over all cores: ordered, bounded chunk maps over worker threads (or processes).

Inference runs outside the GIL (ONNX Runtime, OpenCV), so the default is
threads in one process sharing one pipeline: the sessions (one thread each)
run concurrently from every worker thread, total threads equal the worker
count, and the model weights are in memory once (measured: same
throughput as one process per core, half the memory). Processes remain for
CPU-bound Python work, and Ray actors (`ray_address`) for a cluster. At
most two chunks per worker are in flight, so memory stays bounded however
long the input stream is.
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


def start_worker_process(initializer: Callable[..., None] | None, *initargs: Any) -> None:
    """Start of a worker process (pool or Ray actor): Ctrl-C is the parent's to handle (it drains work in flight), then the initializer."""
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
    ray_address: str | None = None,
) -> Iterator[tuple[T, R]]:
    """Yield (item, fn-result) in input order; `fn` maps a chunk to one result per item.

    Threads (default) run the initializer once here and share its state;
    processes run it in each worker. With workers <= 1 everything runs
    here. Once `stop()` is true no new chunk is started; chunks in flight
    still finish. With `ray_address` (an address, or "local") the chunks
    run on Ray actors instead, one per worker (workers <= 0: one per
    cluster CPU), each running the initializer once (verifier.cluster.executor).
    """
    if ray_address is not None:
        from verifier.cluster.executor import ray_map_chunks

        yield from ray_map_chunks(items, fn, workers, initializer, initargs, chunk_size, stop, ray_address)
        return
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
        pool = ProcessPoolExecutor(workers, initializer=start_worker_process, initargs=(initializer, *initargs))
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
