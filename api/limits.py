"""Limits: request body cap and per-request timeout (ASGI middleware), and the bounded inference limiter.

The limiter admits `slots` inferences at once and lets at most `queue` more wait; anything beyond is
refused at once with 503 and Retry-After, so load never builds an unbounded queue. A timed-out request
is answered 504 at the deadline; its work finishes in the background and frees its slot only then, so the
bound on concurrent inference holds even for abandoned requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM, ApiProblem, problem_body

T = TypeVar("T")


class BodyRefused(Exception):
    """The request body grew past the cap, or did not arrive in time, while it was being read."""

    def __init__(self, code: str, **extra: Any):
        self.code, self.extra = code, extra
        super().__init__(code)


async def _send_problem(send: Send, code: str, status: int, path: str, headers: dict[str, str] | None = None, detail: str = "", **extra: Any) -> None:
    body = json.dumps(problem_body(code, status, detail, path, **extra), ensure_ascii=False).encode("utf-8")
    raw = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` (413: by Content-Length before reading, else while streaming) and bodies
    that take longer than `timeout_s` to arrive once the app starts reading them (408: a trickling client
    would otherwise hold its connection and a worker for as long as it likes)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 20.0):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await _send_problem(send, "API_BODY_TOO_LARGE", 413, path, measured=declared, limit=self.max_bytes)
                    return
        seen = 0
        started = body_done = False
        refused: BodyRefused | None = None
        deadline: float | None = None

        async def counted() -> Message:
            nonlocal seen, refused, deadline, body_done
            if body_done:  # later reads wait for the disconnect, which has no deadline
                return await receive()
            loop = asyncio.get_running_loop()
            deadline = deadline or loop.time() + self.timeout_s
            try:
                msg = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                refused = BodyRefused("API_BODY_TIMEOUT", measured=seen, limit=self.timeout_s)
                raise refused from None
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                body_done = not msg.get("more_body", False)
                if seen > self.max_bytes:
                    refused = BodyRefused("API_BODY_TOO_LARGE", measured=seen, limit=self.max_bytes)
                    raise refused
            return msg

        async def answer(problem: BodyRefused) -> None:
            status = 408 if problem.code == "API_BODY_TIMEOUT" else 413
            headers = {"Connection": "close"} if status == 408 else None
            await _send_problem(send, problem.code, status, path, headers, **problem.extra)

        async def watch(msg: Message) -> None:
            nonlocal started
            if refused is not None:  # whatever the app made of the aborted body (FastAPI: a 400), the answer is ours
                if msg["type"] == "http.response.start" and not started:
                    started = True
                    await answer(refused)
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted, watch)
        except BodyRefused as exc:
            if not started:
                await answer(exc)


class TimeoutMiddleware:
    """Answer 504 when no response has started within `seconds`; later sends of the late handler are dropped."""

    def __init__(self, app: ASGIApp, seconds: float, prefix: str = "/api/"):
        self.app, self.seconds, self.prefix = app, seconds, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        started = asyncio.Event()
        timed_out = False

        async def guarded(msg: Message) -> None:
            if timed_out:
                return
            if msg["type"] == "http.response.start":
                started.set()
            await send(msg)

        task = asyncio.ensure_future(self.app(scope, receive, guarded))
        waiter = asyncio.ensure_future(started.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=self.seconds, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            timed_out = True
            waiter.cancel()
            await _send_problem(send, "API_TIMEOUT", 504, scope.get("path", ""), limit=self.seconds)
            try:
                await task
            except Exception:  # noqa: BLE001 - the client already has its 504; the late error must not surface
                pass
            return
        waiter.cancel()
        await task


class InferenceLimiter:
    """At most `slots` inferences run at once and `queue` wait; beyond that, ApiProblem API_BUSY (503, Retry-After)."""

    def __init__(self, slots: int, queue: int, retry_after_s: int = 1, on_change: Callable[[int, int], None] | None = None):
        self.slots, self.queue, self.retry_after_s = max(1, slots), max(0, queue), max(1, retry_after_s)
        self._sem = asyncio.Semaphore(self.slots)
        self.running = 0
        self.waiting = 0
        self.refused = 0
        self._on_change = on_change

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.running, self.waiting)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) in a worker thread once a slot is free; refuse at once when slots and queue are full."""
        if self.running + self.waiting >= self.slots + self.queue:
            self.refused += 1
            raise ApiProblem("API_BUSY", f"{self.slots} running, {self.waiting} waiting", headers={"Retry-After": str(self.retry_after_s)})
        self.waiting += 1
        self._changed()
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self._changed()
        work = asyncio.ensure_future(run_in_threadpool(fn, *args))
        work.add_done_callback(lambda _f: self._release())
        return await asyncio.shield(work)

    def _release(self) -> None:
        self.running -= 1
        self._sem.release()
        self._changed()


async def run_db(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking store code off the event loop."""
    return await run_in_threadpool(fn, *args)


