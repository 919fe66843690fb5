"""API keys in the store: create (the secret is shown once), list, revoke, and authenticate a presented key.

A key reads `vfk_<prefix>_<secret>`. The prefix is public and finds the row; only the SHA-256 of the
whole key is stored, compared in constant time. Keys are 256-bit random, so a fast hash is enough
(no password-stretching needed). A key may carry scopes: names of 学院 or 学习中心 it is limited to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from verifier.common.reasons import VerifierError
from verifier.common.text import has_unsafe_chars
from verifier.store import audit
from verifier.store.models import API_ROLES, ApiKey, utcnow

KEY_PREFIX = "vfk"
NAME_MAX = 100  # the column's width; actor names carry it into the audit log
SCOPE_MAX = 100  # a 学院/学习中心 name longer than this is not a real one
SCOPES_MAX = 50
CENTRE_PREFIX = "学习中心:"  # a scope naming a 学习中心; a bare name (or 学院:<name>) is a 学院
_CENTRE_ALIASES = ("学习中心:", "centre:", "center:")
_COLLEGE_ALIASES = ("学院:", "college:")
LATEST_EXPIRY = dt.datetime(2999, 12, 31, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name, role and scopes (empty scopes = every 学院/学习中心)."""

    key_id: int
    name: str
    role: str
    scopes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def actor(self) -> str:
        """How the audit log names this key (id and name, never the secret)."""
        return f"key:{self.key_id}:{self.name}"[:100]

    @property
    def scoped(self) -> bool:
        return bool(self.scopes)

    @property
    def colleges(self) -> frozenset[str]:
        """The 学院 this key is limited to (scopes written bare or as 学院:<name>)."""
        return frozenset(s for s in self.scopes if not s.startswith(CENTRE_PREFIX))

    @property
    def centres(self) -> frozenset[str]:
        """The 学习中心 this key is limited to (scopes written 学习中心:<name>)."""
        return frozenset(s[len(CENTRE_PREFIX):] for s in self.scopes if s.startswith(CENTRE_PREFIX))

    def sees(self, college: str | None, centre: str | None) -> bool:
        """True when a student of this 学院/学习中心 is within the key's scope.

        A scope names a 学院 or a 学习中心 and is matched against that column only: a 学院A key does not
        see a student of 学院B whose 学习中心 happens to be called 学院A.
        """
        if not self.scopes:
            return True
        return bool(college) and college in self.colleges or bool(centre) and centre in self.centres


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: the row and the secret, which is never stored or shown again."""

    key: ApiKey
    secret: str


def hash_key(presented: str) -> str:
    """SHA-256 hex of a presented key."""
    return hashlib.sha256(presented.encode("utf-8")).hexdigest()


def valid_name(name: str) -> str:
    """The key's name stripped; refused (API_KEY_NAME_INVALID) when empty, longer than NAME_MAX or holding control characters."""
    clean = name.strip()
    if not clean or len(clean) > NAME_MAX or has_unsafe_chars(clean):
        raise VerifierError("API_KEY_NAME_INVALID", measured=len(clean), limit=NAME_MAX)
    return clean


def valid_scopes(scopes: list[str]) -> list[str]:
    """Scopes stripped, de-duplicated and sorted; a blank, over-long or control-character scope, or too many, is refused.

    A blank scope must never be dropped silently: an empty list means every 学院, the opposite of what was meant.
    """
    if len(scopes) > SCOPES_MAX:
        raise VerifierError("API_KEY_SCOPE_INVALID", detail="too many scopes", measured=len(scopes), limit=SCOPES_MAX)
    clean = {_canonical_scope(s) for s in scopes}
    if any(not s.removeprefix(CENTRE_PREFIX) or len(s) > SCOPE_MAX or has_unsafe_chars(s) for s in clean):
        raise VerifierError("API_KEY_SCOPE_INVALID", detail="a scope is blank, too long or holds control characters", limit=SCOPE_MAX)
    return sorted(clean)


def _canonical_scope(scope: str) -> str:
    """`学院:X`/`college:X`/`X` → `X` (a 学院); `学习中心:X`/`centre:X` → `学习中心:X` (a 学习中心)."""
    s = scope.strip()
    low = s.lower()
    for alias in _CENTRE_ALIASES:
        if low.startswith(alias):
            return CENTRE_PREFIX + s[len(alias):].strip()
    for alias in _COLLEGE_ALIASES:
        if low.startswith(alias):
            return s[len(alias):].strip()
    return s


def create_key(
    session: Session, role: str, name: str, scopes: list[str] | None = None, expires_at: dt.datetime | None = None, actor: str = "system"
) -> IssuedKey:
    """Make a key with a role and optional scopes and expiry; audited without the secret."""
    if role not in API_ROLES:
        raise VerifierError("API_ROLE_INVALID", detail=repr(role), limit=list(API_ROLES))
    clean_name = valid_name(name)
    clean_scopes = valid_scopes(scopes or [])
    if expires_at is not None and not (utcnow() < expires_at <= LATEST_EXPIRY):
        raise VerifierError("API_KEY_EXPIRY_INVALID", detail=expires_at.isoformat(timespec="seconds"))
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        prefix=prefix, name=clean_name, role=role, scopes=clean_scopes, secret_hash=hash_key(secret), created_by=actor[:100], expires_at=expires_at
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "apikey.create", "api_key", row.id, after={"name": row.name, "role": role, "scopes": clean_scopes,
                 "expires_at": expires_at.isoformat() if expires_at else None})
    return IssuedKey(row, secret)


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, oldest first (secrets are not stored, so none can be shown)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, key_id: int, actor: str = "system") -> ApiKey:
    """Revoke a key from now on (idempotent); audited."""
    row = session.get(ApiKey, key_id, with_for_update=True)
    if row is None:
        raise VerifierError("API_KEY_UNKNOWN", detail=str(key_id))
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
        audit.record(session, actor, "apikey.revoke", "api_key", row.id, after={"name": row.name, "role": row.role})
    return row


def key_state(row: ApiKey, now: dt.datetime | None = None) -> str:
    """active, expired or revoked."""
    now = now or utcnow()
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def public_prefix(presented: str) -> str | None:
    """The public prefix of a well-formed key (`vfk_<prefix>_<secret>`), None for anything else."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


def authenticate(session: Session, presented: str) -> Principal:
    """The principal of a presented key, or VerifierError API_KEY_INVALID / _EXPIRED / _REVOKED.

    The row is found by the SHA-256 of the whole key, never by its prefix: a wrong key costs one index
    probe for a random digest however much of it is right, so its timing tells nothing.
    """
    prefix = public_prefix(presented)
    if prefix is None:
        raise VerifierError("API_KEY_INVALID")
    digest = hash_key(presented)
    row = session.scalar(select(ApiKey).where(ApiKey.secret_hash == digest))
    if row is None or not (hmac.compare_digest(row.secret_hash, digest) and hmac.compare_digest(row.prefix, prefix)):
        raise VerifierError("API_KEY_INVALID")
    state = key_state(row)
    if state == "revoked":
        raise VerifierError("API_KEY_REVOKED")
    if state == "expired":
        raise VerifierError("API_KEY_EXPIRED")
    return Principal(row.id, row.name, row.role, tuple(row.scopes or ()))
