"""Delivering outbox events to ``on_event`` implementations after commit.

Each (event, handler) pair has its own delivery row, so one plugin's failure is retried with
back-off without holding up another plugin or the user. An event is marked dispatched once every
live handler's delivery succeeded or gave up. A process that dies between commit and dispatch
leaves the event pending, and the next dispatcher (the next request, ``crm events dispatch`` or
the scheduler's dispatch job) delivers it.
"""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import utcnow
from ..security.encrypted_copies import reveal_payload
from ..specs import Event
from .models import EventDelivery, OutboxEvent

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2**attempts * 5, 3600))


def _handlers() -> list[tuple[str, Any]]:
    registry = current_app.extensions["crm"]
    enabled = registry.enabled_names()
    out = []
    for impl in reversed(registry.pm.hook.on_event.get_hookimpls()):
        owner = registry.owner_of_module.get(impl.plugin_name, impl.plugin_name)
        if owner == "core" or owner in enabled:
            out.append((impl.plugin_name, impl.function))
    return out


def dispatch_pending(limit: int = 500, event_ids: list[int] | None = None) -> int:
    """Deliver up to ``limit`` undispatched events (or just ``event_ids``); returns how many
    events were completed. Uses its own session, never the caller's transaction."""
    engine = current_app.appbuilder.session.get_bind()  # type: ignore[attr-defined]
    handlers = _handlers()
    done = 0
    with Session(engine, expire_on_commit=False) as session:
        query = select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
        if event_ids is not None:
            query = query.where(OutboxEvent.id.in_(event_ids))
        rows = session.scalars(query.order_by(OutboxEvent.id).limit(limit)).all()
        session.commit()
        for row in rows:
            if _dispatch_one(session, row, handlers):
                done += 1
    return done


def _dispatch_one(session: Session, row: OutboxEvent, handlers: list[tuple[str, Any]]) -> bool:
    payload = reveal_payload(row.type, row.payload)  # handlers read custom values in plain
    event = Event(id=row.id, type=row.type, payload=payload, occurred_at=row.occurred_at)
    registry = current_app.extensions["crm"]
    existing = {
        d.handler: d
        for d in session.scalars(select(EventDelivery).where(EventDelivery.event_id == row.id))
    }
    finished = True
    for name, func in handlers:
        delivery = existing.get(name)
        if delivery is None:
            delivery = EventDelivery(event_id=row.id, handler=name, attempts=0, status="pending")
            session.add(delivery)
            try:
                session.commit()
            except IntegrityError:  # another dispatcher took it at the same moment
                session.rollback()
                finished = False
                continue
        if delivery.status in ("done", "failed"):
            continue
        if delivery.next_attempt_at and delivery.next_attempt_at > utcnow():
            finished = False
            continue
        try:
            func(event)
        except Exception:  # noqa: BLE001 - each handler is isolated
            delivery.attempts += 1
            delivery.last_error = traceback.format_exc(limit=6)[-4000:]
            if delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = "failed"
            else:
                delivery.next_attempt_at = utcnow() + _backoff(delivery.attempts)
                finished = False
            owner = registry.owner_of_module.get(name, name)
            registry.record_error(owner, f"on_event({event.type}): {delivery.last_error}")
        else:
            delivery.attempts += 1
            delivery.status = "done"
            delivery.delivered_at = utcnow()
        session.commit()
    if finished:
        row.dispatched_at = utcnow()
        session.commit()
    return finished
