"""Writing domain events and vetting changes inside the user's transaction.

Models that declare ``__crm_event__ = "customer"`` get ``customer.created``, ``.updated``,
``.archived`` and ``.deleted`` events for free. Before each flush every pending change is shown to
``validate_change``; after each flush the events go into the outbox, and the audit entries into
the audit log (:mod:`crm_core.security.audit`), in the same transaction. Configuration models
declare ``__crm_audit__ = "record_rule"`` instead: their writes are audited the same way and
raise no events.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from ..errors import VetoError
from ..security import audit
from ..security.encrypted_copies import protect_changes
from ..specs import Change
from .models import OutboxEvent

_PENDING_KEY = "crm_pending_events"
NEW_EVENTS_KEY = "crm_new_events"
#: Set on a session by whatever writes on behalf of a cause (an automation rule's run): every
#: event emitted meanwhile carries it as ``_cause``, so a rule can tell it triggered itself.
CAUSE_KEY = "crm_event_cause"


def emit(session: Session, type_: str, payload: dict[str, Any]) -> OutboxEvent:
    """Add a domain event to the outbox in ``session``'s transaction; it is dispatched after
    commit. Use for events that are not plain record changes (``lead.converted``)."""
    cause = session.info.get(CAUSE_KEY)
    if cause:
        payload = {**payload, "_cause": cause}
    row = OutboxEvent(type=type_, payload=_jsonable(payload))
    session.add(row)
    session.info.setdefault(NEW_EVENTS_KEY, []).append(row)
    return row


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _changes(obj: Any) -> dict[str, tuple[Any, Any]]:
    state = inspect(obj)
    out: dict[str, tuple[Any, Any]] = {}
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if hist.has_changes():
            old = hist.deleted[0] if hist.deleted else None
            new = hist.added[0] if hist.added else None
            if attr.key not in ("updated_at", "version"):
                out[attr.key] = (old, new)
    out.update(link_changes(obj))
    return out


def link_changes(obj: Any, created: bool = False) -> dict[str, tuple[Any, list[str]]]:
    """Changed many-to-many links of ``obj`` (a customer's tags) as ``{relation: (before,
    after)}``, each a sorted list of the linked records' names (``before`` is ``None`` for a
    new record). One-to-many collections (a customer's contacts) are the other side's change."""
    state = inspect(obj)
    out: dict[str, tuple[Any, list[str]]] = {}
    for rel in state.mapper.relationships:
        if rel.secondary is None:
            continue
        hist = state.attrs[rel.key].history
        if not (hist.added or hist.deleted):
            continue
        before = sorted(str(x) for x in (*hist.unchanged, *hist.deleted))
        after = sorted(str(x) for x in (*hist.unchanged, *hist.added))
        if created and after:
            out[rel.key] = (None, after)
        elif before != after:
            out[rel.key] = (before, after)
    return out


def _operation(session: Session, obj: Any) -> str | None:
    if obj in session.new:
        return "create"
    if obj in session.deleted:
        return "delete"
    if session.is_modified(obj, include_collections=False) or link_changes(obj):
        return "update"
    return None


def install(session_factory: Any) -> None:
    """Attach the listeners to the app's session class (or scoped session)."""

    @event.listens_for(session_factory, "before_flush")
    def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
        if not has_app_context():
            return
        registry = current_app.extensions["crm"]
        pending = session.info.setdefault(_PENDING_KEY, [])
        for obj in list(session.new) + list(session.dirty) + list(session.deleted):
            prefix = audit.audited_name(obj)
            if prefix is None:
                continue
            audited_only = getattr(obj, "__crm_event__", None) is None  # configuration: no events
            op = _operation(session, obj)
            if op is None:
                continue
            change = Change(model=prefix, operation=op, record=obj, changes=_changes(obj))
            if not audited_only:
                for _owner, message in registry.collect("validate_change", change=change):
                    if message:
                        raise VetoError(str(message))
            if op == "update" and change.changes.get("active", (None, None))[1] is False:
                op = "archive"
            pending.append((obj, prefix, op, change.changes))
        if pending:
            audit.capture_actor(session)

    @event.listens_for(session_factory, "after_flush")
    def _after_flush(session: Session, _ctx: Any) -> None:
        pending = session.info.pop(_PENDING_KEY, [])
        for obj, prefix, op, changes in pending:
            if getattr(obj, "__crm_event__", None) is None:
                continue  # audited only
            past = {"create": "created", "update": "updated", "archive": "archived"}.get(
                op, "deleted"
            )
            payload = {"id": getattr(obj, "id", None)}
            if op != "create":
                plain = {k: [o, n] for k, (o, n) in changes.items()}
                payload["changes"] = protect_changes(type(obj), plain)  # encrypted stay so
            emit(session, f"{prefix}.{past}", payload)
        audit.write_entries(session, pending)  # one audit entry per changed record

    @event.listens_for(session_factory, "after_soft_rollback")
    def _after_rollback(session: Session, _previous: Any) -> None:
        session.info.pop(_PENDING_KEY, None)
        session.info.pop(NEW_EVENTS_KEY, None)
