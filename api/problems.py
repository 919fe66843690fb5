"""RFC 9457 problem details (`application/problem+json`) carrying the stable reason code with Chinese and English messages.

Every error response of the API goes through here: reason-coded library errors, auth and limit
errors, request validation, unknown routes and, last, unexpected exceptions (500, never with internals).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from verifier.common.reasons import REASONS, Reason, VerifierError, reason
from verifier.store.db import is_server_away

log = logging.getLogger("api")
PROBLEM = "application/problem+json"

# HTTP status of each reason code seen by the API; any other code is a 422 (bad input).
STATUS: dict[str, int] = {
    "API_KEY_MISSING": 401,
    "API_KEY_INVALID": 401,
    "API_KEY_EXPIRED": 401,
    "API_KEY_REVOKED": 401,
    "API_ROLE_FORBIDDEN": 403,
    "API_SCOPE_FORBIDDEN": 403,
    "API_NOT_FOUND": 404,
    "API_KEY_UNKNOWN": 404,
    "API_JOB_UNKNOWN": 404,
    "STORE_STUDENT_UNKNOWN": 404,
    "STORE_COLLEGE_UNKNOWN": 404,
    "STORE_CASE_UNKNOWN": 404,
    "STORE_CASE_MEMBER_UNKNOWN": 404,
    "API_METHOD_NOT_ALLOWED": 405,
    "API_JOB_BUSY": 409,
    "API_JOB_FINISHED": 409,
    "API_CASE_CLAIMED": 409,
    "STORE_CASE_TRANSITION_INVALID": 409,
    "STORE_PHOTO_PURGED": 410,
    "STORE_PHOTO_NOT_KEPT": 410,
    "API_BODY_TIMEOUT": 408,
    "API_BODY_TOO_LARGE": 413,
    "API_MULTIPART_INVALID": 400,
    "FILE_TOO_LARGE_TO_READ": 413,
    "ROSTER_TOO_LARGE": 413,
    "ROSTER_UNZIPPED_TOO_LARGE": 413,
    "API_AUTH_THROTTLED": 429,
    "API_INTERNAL_ERROR": 500,
    "CHECK_INTERNAL_ERROR": 500,
    "STORE_PHOTO_FILE_MISSING": 500,
    "STORE_PHOTO_CHECKSUM_MISMATCH": 500,
    "STORE_AUDIT_IMMUTABLE": 500,
    "API_SWEEP_UNAVAILABLE": 501,
    "API_BUSY": 503,
    "API_NOT_READY": 503,
    "STORE_DB_UNREACHABLE": 503,
    "STORE_DB_BUSY": 503,
    "STORE_DB_NOT_MIGRATED": 503,
    "STORE_DB_TOO_NEW": 503,
    "API_TIMEOUT": 504,
}


class ApiProblem(Exception):
    """An error to answer with problem+json: a reason code, optional detail, extra members and headers."""

    def __init__(self, code: str, detail: str = "", status: int | None = None, headers: dict[str, str] | None = None, **extra: Any):
        self.code = code
        self.detail = detail
        self.status = status or STATUS.get(code, 422)
        self.headers = headers or {}
        self.extra = extra
        super().__init__(f"{code}: {detail}")


def problem_body(code: str, status: int, detail: str = "", instance: str = "", **extra: Any) -> dict[str, Any]:
    """The JSON members of a problem: type, title, status, detail, code and both messages."""
    row = REASONS[code]
    body: dict[str, Any] = {
        "type": f"urn:verifier:reason:{code}",
        "title": row.en,
        "status": status,
        "detail": detail or row.en,
        "code": code,
        "message_zh": row.zh,
        "message_en": row.en,
    }
    if instance:
        body["instance"] = instance
    body.update({k: _jsonable(v) for k, v in extra.items() if v is not None})
    return body


def problem_response(code: str, status: int | None = None, detail: str = "", instance: str = "", headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response for a reason code."""
    status = status or STATUS.get(code, 422)
    return JSONResponse(problem_body(code, status, detail, instance, **extra), status_code=status, headers=headers, media_type=PROBLEM)


def from_reason(r: Reason, instance: str = "", detail: str = "", **extra: Any) -> JSONResponse:
    """A problem for a library Reason (keeps what was measured and the limit)."""
    return problem_response(r.code, detail=detail, instance=instance, measured=r.measured, limit=r.limit, **extra)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if hasattr(v, "item"):
        return v.item()
    return str(v)


DB_AWAY_CODES = ("STORE_DB_UNREACHABLE", "STORE_DB_BUSY")


def _retry_after(request: Request) -> str:
    """Seconds a client should wait before retrying (Settings.api_retry_after_s)."""
    state = getattr(request.app.state, "verifier", None)
    return str(state.settings.api_retry_after_s if state is not None else 1)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.code, exc.status, exc.detail, request.url.path, exc.headers, **exc.extra)

    @app.exception_handler(VerifierError)
    async def _verifier_error(request: Request, exc: VerifierError) -> JSONResponse:
        response = from_reason(exc.reason, request.url.path, exc.detail)
        if exc.reason.code in DB_AWAY_CODES:
            response.headers["Retry-After"] = _retry_after(request)
        return response

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if not is_server_away(exc):
            return await _unexpected(request, exc)
        log.warning("database away on %s %s", request.method, request.url.path)
        return problem_response("STORE_DB_UNREACHABLE", 503, "", request.url.path, {"Retry-After": _retry_after(request)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]
        return problem_response("API_REQUEST_INVALID", 422, "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)[:500], request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "API_NOT_FOUND", 405: "API_METHOD_NOT_ALLOWED", 413: "API_BODY_TOO_LARGE"}.get(exc.status_code, "API_REQUEST_INVALID")
        if isinstance(exc.__context__, MultiPartException):  # the form parser's own limits (fields, files, part size)
            code = "API_MULTIPART_INVALID"
        status = max(exc.status_code, 400)
        return problem_response(code, status, str(exc.detail)[:300] if exc.detail else "", request.url.path, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        return problem_response("API_INTERNAL_ERROR", 500, "", request.url.path)


def reason_dicts(reasons: list[Reason]) -> list[dict[str, Any]]:
    """Reasons as JSON objects."""
    return [r.to_dict() for r in reasons]


def code_reason(code: str) -> dict[str, Any]:
    """A bare reason object for a code (used where only a stored code is known)."""
    return reason(code).to_dict()
