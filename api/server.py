"""How `verifier serve` runs uvicorn: explicit connection, backlog, keep-alive and header limits, and a slow-client timeout.

uvicorn bounds idle keep-alive connections but not a client that sends its request head slowly
(one byte every few seconds holds a connection, and with it one of `limit_concurrency` slots, forever).
`HeaderTimeoutProtocol` closes such a connection with 408 once `api_header_timeout_s` pass without a
complete request head. Bodies are bounded by the app: size (BodyLimitMiddleware) and time (TimeoutMiddleware).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from verifier.common.settings import Settings

from api.problems import PROBLEM, problem_body


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head (class attribute set by uvicorn_config)."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if getattr(self, "_head_timer", None) is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_head():
            self._arm()
        super().data_received(data)
        if not self._waiting_for_head():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _too_slow(self) -> None:
        self._head_timer = None
        if not self._waiting_for_head() or self.transport.is_closing():
            return
        body = json.dumps(problem_body("API_HEADER_TIMEOUT", 408, limit=self.header_timeout_s), ensure_ascii=False).encode("utf-8")
        head = f"HTTP/1.1 408 Request Timeout\r\ncontent-type: {PROBLEM}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
        self.transport.write(head.encode("ascii") + body)
        self.transport.close()


def uvicorn_config(app: Any, settings: Settings, host: str, port: int, log_level: str = "info") -> Any:
    """The uvicorn Config `verifier serve` runs with; every limit comes from Settings (defaults in common.settings)."""
    import uvicorn

    protocol = type("ServeProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": settings.api_header_timeout_s})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        http=protocol,
        limit_concurrency=settings.api_limit_concurrency,
        backlog=settings.api_backlog,
        timeout_keep_alive=settings.api_keep_alive_s,
        h11_max_incomplete_event_size=settings.api_max_header_bytes,
        timeout_graceful_shutdown=15,
        server_header=False,
    )
