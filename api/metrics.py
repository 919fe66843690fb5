"""Prometheus metrics of one app: requests, latency, inference time, queue depth, decisions by kind."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The app's own registry (several apps in one process, as in tests, never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("verifier_http_requests_total", "HTTP requests by method, route and status", ["method", "route", "status"], registry=r)
        self.latency = Histogram("verifier_http_request_seconds", "HTTP request latency by route", ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.inference = Histogram("verifier_inference_seconds", "Model inference time per request by operation", ["operation"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("verifier_inference_queue_depth", "Requests waiting for an inference slot", registry=r)
        self.in_flight = Gauge("verifier_inference_in_flight", "Inferences running now", registry=r)
        self.busy = Counter("verifier_inference_refused_total", "Requests refused with 503 because slots and queue were full", registry=r)
        self.decisions = Counter("verifier_decisions_total", "Decisions made through the API by kind and value", ["kind", "value"], registry=r)
        self.auth_failures = Counter("verifier_auth_failures_total", "Presented API keys refused, by reason code", ["code"], registry=r)
        self.auth_throttled = Counter("verifier_auth_throttled_total", "Requests answered 429 because too many keys were refused, by window", ["bucket"], registry=r)
        self.ready = Gauge("verifier_ready", "1 when models are loaded and the database answers", registry=r)

    def limiter_changed(self, running: int, waiting: int) -> None:
        """Callback of the inference limiter."""
        self.in_flight.set(running)
        self.queue_depth.set(waiting)

    def decision(self, kind: str, value: str) -> None:
        """Count one decision (check status, comparison decision, case outcome)."""
        self.decisions.labels(kind, value).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count and time every HTTP request under its route template (never the raw path: no 考生号 in labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def watch(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or ("/static" if scope.get("path", "").startswith("/static/") else "unmatched")
            self.metrics.requests.labels(scope.get("method", ""), name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - t0)
