"""Authentication and authorisation as dependencies: a key from `Authorization: Bearer` or `X-API-Key`, a role, a scope.

Missing or unknown key → 401; a valid key of the wrong role → 403 (API_ROLE_FORBIDDEN). A scoped key
asking for a student outside its 学院/学习中心 gets the same 404 as for a student that does not exist
(STORE_STUDENT_UNKNOWN), so scope never reveals who is on the rolls elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import or_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from verifier.common.reasons import VerifierError
from verifier.store.models import Student
from verifier.store.students import get_student

from api.keys import Principal, authenticate, hash_key, public_prefix
from api.problems import DB_AWAY_CODES, ApiProblem
from api.state import AppState, get_state

bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key in the X-API-Key header")

ADMISSIONS, ACADEMIC, REVIEWER, ADMIN = "admissions", "academic_affairs", "reviewer", "admin"
_WWW = {"WWW-Authenticate": 'Bearer realm="verifier"'}
REFUSED = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_REVOKED"})  # what counts as a refused key


def principal(
    request: Request,
    state: AppState = Depends(get_state),
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    api_key: str | None = Depends(header_key),
) -> Principal:
    """The calling key: the one api.security verified before the body was read, else verified here; 401 otherwise."""
    verified = getattr(request.state, "principal", None)
    if isinstance(verified, Principal):
        return verified
    address = request.client.host if request.client else ""
    return identify(state, (credentials.credentials if credentials else None) or api_key, address)


def identify(state: AppState, presented: str | None, address: str = "") -> Principal:
    """The principal of a presented key, verified (cached under a second); ApiProblem 401 with a reason code otherwise,
    503 with Retry-After when the database stays away for the API's retry time (a key is never refused for that).

    A key refused for being wrong, expired or revoked counts against its client address and key prefix;
    once either is over its limit the answer is 429 API_AUTH_THROTTLED without looking the key up.
    """
    if not presented:
        raise ApiProblem("API_KEY_MISSING", headers=_WWW)
    digest = hash_key(presented)
    cached = state.cached_principal(digest)
    if cached is not None:
        return cached
    prefix = public_prefix(presented)
    throttled = state.throttle.check(address, prefix)
    if throttled is not None:
        raise ApiProblem("API_AUTH_THROTTLED", f"too many refused keys for this {throttled.bucket}",
                         headers={"Retry-After": str(throttled.retry_after_s)}, bucket=throttled.bucket)
    try:
        who = state.database().read(lambda s: authenticate(s, presented))
    except VerifierError as exc:
        if exc.reason.code in DB_AWAY_CODES:
            raise ApiProblem(exc.reason.code, headers={"Retry-After": str(state.settings.api_retry_after_s)}) from None
        if exc.reason.code in REFUSED:
            state.throttle.refused(address, prefix, exc.reason.code)
        raise ApiProblem(exc.reason.code, headers=_WWW) from None
    state.remember_principal(digest, who)
    return who


def require(*roles: str) -> Callable[..., Principal]:
    """Dependency factory: the caller must hold one of these roles."""

    def dependency(who: Principal = Depends(principal)) -> Principal:
        if who.role not in roles:
            raise ApiProblem("API_ROLE_FORBIDDEN", f"needs role {' or '.join(roles)}", required_roles=list(roles))
        return who

    dependency.__name__ = "require_" + "_or_".join(roles)
    return dependency


def visible_student(session: Session, who: Principal, ksh: str) -> Student:
    """The student if it exists and lies in the key's scope; 404 STORE_STUDENT_UNKNOWN otherwise."""
    st = get_student(session, ksh)
    if st is None or not who.sees(st.college, st.centre):
        raise VerifierError("STORE_STUDENT_UNKNOWN")
    return st


def check_college(who: Principal, college: str | None) -> None:
    """A filter naming a 学院/学习中心 outside the key's scope is refused (403 API_SCOPE_FORBIDDEN)."""
    if college and who.scoped and college not in who.colleges | who.centres:
        raise ApiProblem("API_SCOPE_FORBIDDEN")


def scope_clause(who: Principal, student: Any = Student) -> ColumnElement[bool]:
    """SQL form of Principal.sees over Student (or an alias of it): the 学院 among the key's 学院 scopes, or the 学习中心 among its 学习中心 scopes."""
    return or_(student.college.in_(sorted(who.colleges)), student.centre.in_(sorted(who.centres)))
