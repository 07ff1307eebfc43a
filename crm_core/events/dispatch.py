"""Delivering outbox events to ``on_event`` implementations after commit.

Each (event, handler) pair has its own delivery row, so one plugin's failure is retried with
back-off without holding up another plugin or the user. An event is marked dispatched once every
live handler's delivery succeeded or gave up. A process that dies between commit and dispatch
leaves the event pending, and the next dispatcher (the next request, ``crm events dispatch`` or
the scheduler's dispatch job) delivers it.

Events are delivered a chunk at a time: the chunk's delivery rows are claimed with one insert
and one commit, every handler gets every event, and the outcomes are written with one commit.
A dispatcher racing another for the same events (the claim collides) goes one event at a time.
Delivery is at least once: a process killed in the middle of a chunk leaves its deliveries
pending, and they are made again. The scheduler's job drains the whole backlog (an import of a
hundred thousand customers leaves as many events) page after page within its interval.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import utcnow
from ..security.encrypted_copies import reveal_payload
from ..specs import Event
from .models import EventDelivery, OutboxEvent

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
#: How long a dispatcher holds a delivery it is making: another dispatcher leaves it alone
#: meanwhile, and makes it once the lease is over (its dispatcher died).
LEASE = timedelta(minutes=5)


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


#: Events whose deliveries are claimed and written together.
CHUNK = 200


def _session() -> Session:
    engine = current_app.appbuilder.session.get_bind()  # type: ignore[attr-defined]
    return Session(engine, expire_on_commit=False)


def dispatch_pending(limit: int = 500, event_ids: list[int] | None = None) -> int:
    """Deliver up to ``limit`` undispatched events (or just ``event_ids``); returns how many
    events were completed. Uses its own session, never the caller's transaction."""
    handlers = _handlers()
    with _session() as session:
        query = select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
        if event_ids is not None:
            query = query.where(OutboxEvent.id.in_(event_ids))
        rows = session.scalars(query.order_by(OutboxEvent.id).limit(limit)).all()
        session.commit()
        return _dispatch_rows(session, list(rows), handlers)


def dispatch_backlog(seconds: float = 25.0, page: int = 1000) -> int:
    """Deliver pending events oldest first, page after page, until none is left or ``seconds``
    have passed; returns how many were completed. Events still backing off are passed over, so
    a page of them does not hold up the ones behind."""
    handlers = _handlers()
    deadline = time.monotonic() + seconds
    after = 0
    done = 0
    while time.monotonic() < deadline:
        with _session() as session:
            rows = session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.dispatched_at.is_(None), OutboxEvent.id > after)
                .order_by(OutboxEvent.id)
                .limit(page)
            ).all()
            session.commit()
            if not rows:
                break
            done += _dispatch_rows(session, list(rows), handlers)
            after = rows[-1].id
    return done


def _dispatch_rows(session: Session, rows: list[OutboxEvent], handlers: list[Any]) -> int:
    done = 0
    for start in range(0, len(rows), CHUNK):
        done += _dispatch_chunk(session, rows[start : start + CHUNK], handlers)
    return done


def _event(row: OutboxEvent) -> Event:
    payload = reveal_payload(row.type, row.payload)  # handlers read custom values in plain
    return Event(id=row.id, type=row.type, payload=payload, occurred_at=row.occurred_at)


def _claims(rows: list[OutboxEvent], handlers: list[Any], existing: Any) -> list[EventDelivery]:
    """Delivery rows for the (event, handler) pairs that have none, leased to this
    dispatcher."""
    until = utcnow() + LEASE
    return [
        EventDelivery(
            event_id=row.id, handler=name, attempts=0, status="pending", next_attempt_at=until
        )
        for row in rows
        for name, _func in handlers
        if (row.id, name) not in existing
    ]


def _dispatch_chunk(session: Session, rows: list[OutboxEvent], handlers: list[Any]) -> int:
    """Deliver ``rows`` with one claim and one commit of the outcomes; the number completed.
    Deliveries made and events completed are written with one statement each (an update per
    row costs a round trip each on PostgreSQL); failed ones through the session."""
    existing = {
        (d.event_id, d.handler): d
        for d in session.scalars(
            select(EventDelivery).where(EventDelivery.event_id.in_([row.id for row in rows]))
        )
    }
    claims = _claims(rows, handlers, existing)
    session.add_all(claims)
    try:
        session.commit()  # no transaction is held while the handlers run
    except IntegrityError:  # another dispatcher is on these events: one at a time
        session.rollback()
        return sum(_dispatch_one(session, row, handlers) for row in rows)
    mine = {id(d) for d in claims}
    existing.update(((d.event_id, d.handler), d) for d in claims)
    delivered: list[int] = []
    completed: list[int] = []
    for row in rows:
        event = _event(row)
        finished = True
        for name, func in handlers:
            delivery = existing[(row.id, name)]
            outcome = _deliver(session, delivery, id(delivery) in mine, event, name, func)
            if outcome == DELIVERED:
                delivered.append(delivery.id)
            finished = outcome != WAITING and finished
        if finished:
            completed.append(row.id)
    now = utcnow()
    for start in range(0, len(delivered), 500):
        session.execute(
            update(EventDelivery)
            .where(EventDelivery.id.in_(delivered[start : start + 500]))
            .values(
                status="done",
                attempts=EventDelivery.attempts + 1,
                delivered_at=now,
                next_attempt_at=None,
            )
            .execution_options(synchronize_session=False)
        )
    done = _complete(session, completed, now)
    session.commit()
    return done


def _complete(session: Session, event_ids: list[int], now: datetime) -> int:
    """Mark events dispatched; how many this call marked (not those another dispatcher
    completed meanwhile)."""
    if not event_ids:
        return 0
    marked = session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(event_ids), OutboxEvent.dispatched_at.is_(None))
        .values(dispatched_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(marked.rowcount)  # type: ignore[attr-defined]


def _dispatch_one(session: Session, row: OutboxEvent, handlers: list[tuple[str, Any]]) -> bool:
    event = _event(row)
    existing = {
        (row.id, d.handler): d
        for d in session.scalars(select(EventDelivery).where(EventDelivery.event_id == row.id))
    }
    finished = True
    for name, func in handlers:
        delivery = existing.get((row.id, name))
        mine = delivery is None
        if delivery is None:
            [delivery] = _claims([row], [(name, func)], existing)
            session.add(delivery)
            try:
                session.commit()
            except IntegrityError:  # another dispatcher took it at the same moment
                session.rollback()
                finished = False
                continue
        outcome = _deliver(session, delivery, mine, event, name, func)
        if outcome == DELIVERED:
            delivery.attempts += 1
            delivery.status = "done"
            delivery.delivered_at = utcnow()
            delivery.next_attempt_at = None
        finished = outcome != WAITING and finished
        session.commit()
    if not finished:
        return False
    marked = _complete(session, [row.id], utcnow())
    session.commit()
    return bool(marked)


#: What :func:`_deliver` did: the handler took the event now (the caller marks the delivery
#: done), the delivery was finished before or has been given up now, or it waits (for its
#: retry, or for the dispatcher holding it).
DELIVERED, FINISHED, WAITING = "delivered", "finished", "waiting"


def _take(session: Session, delivery: EventDelivery) -> bool:
    """Lease a delivery that is due (a retry, or one whose dispatcher died) to this
    dispatcher: whether no other dispatcher took it first."""
    before = delivery.next_attempt_at
    until = utcnow() + LEASE
    taken = session.execute(
        update(EventDelivery)
        .where(
            EventDelivery.id == delivery.id,
            EventDelivery.status == "pending",
            EventDelivery.next_attempt_at.is_(None)
            if before is None
            else EventDelivery.next_attempt_at == before,
        )
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if not taken.rowcount:  # type: ignore[attr-defined]
        return False
    delivery.next_attempt_at = until
    return True


def _deliver(
    session: Session, delivery: EventDelivery, mine: bool, event: Event, name: str, func: Any
) -> str:
    """Hand ``event`` to one handler if the delivery is this dispatcher's (``mine``: claimed
    just now) or due and taken. A failure is noted on ``delivery`` (written by the caller)
    with its back-off."""
    if delivery.status in ("done", "failed"):
        return FINISHED
    if not mine:
        if delivery.next_attempt_at and delivery.next_attempt_at > utcnow():
            return WAITING
        if not _take(session, delivery):
            return WAITING
    try:
        func(event)
    except Exception:  # noqa: BLE001 - each handler is isolated
        delivery.attempts += 1
        delivery.last_error = traceback.format_exc(limit=6)[-4000:]
        if delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = "failed"
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = utcnow() + _backoff(delivery.attempts)
        registry = current_app.extensions["crm"]
        owner = registry.owner_of_module.get(name, name)
        registry.record_error(owner, f"on_event({event.type}): {delivery.last_error}")
        return FINISHED if delivery.status == "failed" else WAITING
    return DELIVERED
