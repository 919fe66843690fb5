"""The batch's store-writer thread: groups in order, the rest at close, a failed commit stops the run."""

from __future__ import annotations

import threading

import pytest

from verifier.batch.writer import StoreWriter


def test_groups_are_committed_in_order_on_another_thread_and_the_rest_at_close() -> None:
    groups: list[list[int]] = []
    threads: set[str] = set()

    def commit(items: list[int]) -> None:
        threads.add(threading.current_thread().name)
        groups.append(list(items))

    w = StoreWriter(commit, every=3, depth=2)
    for i in range(8):
        w.put(i)
    w.close()
    assert groups == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert threads == {"verifier-store-writer"}


def test_a_failed_commit_is_raised_in_the_feeding_thread() -> None:
    def commit(items: list[int]) -> None:
        if 4 in items:
            raise RuntimeError("disk full")

    w = StoreWriter(commit, every=2, depth=1)
    with pytest.raises(RuntimeError, match="disk full"):
        for i in range(1000):
            w.put(i)
    assert w.failed
    with pytest.raises(RuntimeError, match="disk full"):
        w.close()


def test_abort_stops_after_the_transaction_in_progress() -> None:
    started, release = threading.Event(), threading.Event()
    groups: list[list[int]] = []

    def commit(items: list[int]) -> None:
        started.set()
        release.wait(5)
        groups.append(list(items))

    w = StoreWriter(commit, every=1, depth=10)
    for i in range(5):
        w.put(i)
    assert started.wait(5)
    threading.Timer(0.2, release.set).start()
    w.close(abort=True)
    assert groups == [[0]]
