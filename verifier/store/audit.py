"""Append-only audit events: who did what to which object, with a before/after summary free of raw ID numbers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import ORMExecuteState, Session

from verifier.common.reasons import VerifierError
from verifier.store.models import AuditEvent


def record(
    session: Session,
    actor: str,
    action: str,
    object_type: str,
    object_id: int | str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    **extra: Any,
) -> AuditEvent:
    """Append one audit event in the caller's transaction (it commits or rolls back with the change it records)."""
    summary: dict[str, Any] = {}
    if before is not None:
        summary["before"] = before
    if after is not None:
        summary["after"] = after
    summary.update(extra)
    ev = AuditEvent(actor=actor or "system", action=action, object_type=object_type, object_id=str(object_id), summary=summary)
    session.add(ev)
    session.flush()
    return ev


def events_for(session: Session, object_type: str, object_id: int | str) -> list[AuditEvent]:
    """The audit trail of one object, oldest first."""
    q = (
        select(AuditEvent)
        .where(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id))
        .order_by(AuditEvent.id)
    )
    return list(session.scalars(q))


def count_since(session: Session, actor: str, action: str, since: dt.datetime) -> int:
    """How many events of one action one actor caused since a moment (rate limits that survive a restart)."""
    q = select(func.count(AuditEvent.id)).where(AuditEvent.actor == actor, AuditEvent.action == action, AuditEvent.at >= since)
    return int(session.scalar(q) or 0)


@event.listens_for(Session, "before_flush")
def _refuse_changed_audit_rows(session: Session, _ctx: Any, _instances: Any) -> None:
    """No code path updates or deletes audit rows through the ORM unit of work."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise VerifierError("STORE_AUDIT_IMMUTABLE", detail=f"audit event {obj.id}")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_audit_changes(state: ORMExecuteState) -> None:
    """ORM-level bulk UPDATE/DELETE statements on audit_events are refused before they reach the database."""
    if (state.is_update or state.is_delete) and state.bind_mapper is not None and state.bind_mapper.class_ is AuditEvent:
        raise VerifierError("STORE_AUDIT_IMMUTABLE", detail="bulk statement on audit_events")
