"""Security middleware: authenticate before any body is read, and the headers every response carries.

FastAPI reads and parses a request's body (multipart included) before it solves an endpoint's dependencies,
so a key checked by a dependency alone lets anyone make the server read and parse an upload. Here the key is
checked first, from the headers; an unauthenticated request is answered 401 and its body never read.
Authorisation by role and scope stays with the endpoints' dependencies.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import _send_problem
from api.problems import ApiProblem

PROTECTED = ("/api/", "/metrics")
NO_STORE = ("/api/", "/metrics")
BASE_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"))


def presented_key(scope: Scope) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`, None when neither is given."""
    bearer = header = None
    for k, v in scope.get("headers", ()):
        if k == b"authorization":
            scheme, _, value = v.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                bearer = value.strip()
        elif k == b"x-api-key" and v.strip():
            header = v.decode("latin-1").strip()
    return bearer or header


def client_address(scope: Scope) -> str:
    """The peer's address as the server saw it (behind a proxy, uvicorn's --forwarded-allow-ips sets it)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


class AuthFirstMiddleware:
    """Verify the API key of every protected request before the app (and so before any body is read)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(PROTECTED):
            await self.app(scope, receive, send)
            return
        from api.auth import identify

        state = scope["app"].state.verifier
        try:
            who = await run_in_threadpool(identify, state, presented_key(scope), client_address(scope))
        except ApiProblem as exc:
            await _send_problem(send, exc.code, exc.status, scope.get("path", ""), exc.headers, exc.detail, **exc.extra)
            return
        scope.setdefault("state", {})["principal"] = who
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """nosniff, no referrer and no framing on every response; `Cache-Control: no-store` on API answers (personal data)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope.get("path", "").startswith(NO_STORE)

        async def add(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in BASE_HEADERS if k not in present]
                if no_store and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, receive, add)
