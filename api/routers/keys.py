"""Key management for admins, and `/me` for any key (the reviewer page signs in with it)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from verifier.store.models import ApiKey

from api import keys as key_service
from api.dates import day_start
from api.auth import ADMIN, principal, require
from api.keys import Principal
from api.schemas import KeyCreated, KeyIn, KeyOut, MeOut
from api.state import AppState, get_state

router = APIRouter(prefix="/api/v1", tags=["keys"])


def key_out(row: ApiKey) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "scopes": list(row.scopes or []),
        "state": key_service.key_state(row),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "prefix": row.prefix,
    }


@router.get("/me", response_model=MeOut)
def me(who: Principal = Depends(principal)) -> MeOut:
    """Who this key is: name, role and scopes."""
    return MeOut(key_id=who.key_id, name=who.name, role=who.role, scopes=list(who.scopes))


@router.get("/keys", response_model=list[KeyOut])
def list_keys(state: AppState = Depends(get_state), _who: Principal = Depends(require(ADMIN))) -> list[dict]:
    """Every key (never a secret)."""
    with state.database().session() as s:
        return [key_out(k) for k in key_service.list_keys(s)]


@router.post("/keys", response_model=KeyCreated, status_code=201)
def create_key(body: KeyIn, state: AppState = Depends(get_state), who: Principal = Depends(require(ADMIN))) -> dict:
    """Create a key; the response carries the secret this one time."""
    expires = day_start(body.expires, "expires") if body.expires else None

    def unit(s):  # type: ignore[no-untyped-def]
        issued = key_service.create_key(s, body.role.value, body.name, body.scopes, expires, who.actor)
        return {**key_out(issued.key), "key": issued.secret}

    return state.database().transaction(unit)


@router.post("/keys/{key_id}/revoke", response_model=KeyOut)
def revoke_key(key_id: int = Path(ge=1, le=2**31 - 1), state: AppState = Depends(get_state), who: Principal = Depends(require(ADMIN))) -> dict:
    """Revoke a key at once (this server forgets its cached keys; other servers within 5 s)."""
    row = state.database().transaction(lambda s: key_out(key_service.revoke_key(s, key_id, who.actor)))
    state.forget_keys()
    return row
