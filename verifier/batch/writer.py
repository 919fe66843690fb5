"""The batch's store writer: finished students are committed on a thread of their own, a few per transaction.

The workers' results used to be committed by the thread that also feeds the
workers, so while it waited for the photo files' fsyncs and the database no
new work was handed out and the workers idled. Here the feeding thread only
queues results; this thread commits them in groups of `every` (a killed run
loses at most those and the queue), in arrival order. A failed commit stops
the run: the next `put` or `close` raises it in the feeding thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()


class StoreWriter(Generic[T]):
    """Runs `commit(items)` on its own thread for every `every` items put (the rest at close)."""

    def __init__(self, commit: Callable[[list[T]], None], every: int, depth: int = 256):
        self._commit = commit
        self._every = every
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="verifier-store-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        group: list[T] = []
        try:
            while not self._abort.is_set():
                item = self._queue.get()
                if item is not _END:
                    group.append(item)
                if group and (len(group) >= self._every or item is _END):
                    self._commit(group)
                    group = []
                if item is _END:
                    return
        except BaseException as exc:  # handed to the feeding thread, which stops the run
            self._error = exc
            self._abort.set()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        """Queue one finished item (waits while the queue is full); raises the writer's error if it failed."""
        while True:
            self._raise()
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    @property
    def failed(self) -> bool:
        """Whether a commit failed (the run should stop handing out work)."""
        return self._error is not None

    def close(self, abort: bool = False) -> None:
        """Commit what is queued and wait (`abort`: stop after the transaction in progress); raise a commit error."""
        if abort:
            self._abort.set()
            try:
                self._queue.put_nowait(_END)
            except queue.Full:
                pass
        else:
            self.put(_END)  # type: ignore[arg-type]
        self._thread.join()
        self._raise()
