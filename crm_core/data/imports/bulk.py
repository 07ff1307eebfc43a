"""Writing an import's new records with Core statements, audited and evented like the ORM.

The ORM's unit of work costs far more per record than the database does. New records of a
batch that passed every check are written together (:mod:`.writers`: ``COPY`` on PostgreSQL,
multi-row ``INSERT … RETURNING`` elsewhere); their audit entries (channel ``import``, the
importing user) and their ``<model>.created`` domain events follow with one statement each, in
the same transaction as the batch's checkpoint. The entries and events are the ones a write
through the ORM leaves (:mod:`crm_core.security.audit`, :mod:`crm_core.events.outbox`).

A model with a custom field encrypted at rest is written through the ORM instead: its values
need the blind index the ORM's flush maintains.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from ...db import utcnow
from ...events.models import OutboxEvent
from ...events.outbox import _jsonable
from ...lowcode import live
from ...lowcode.fields import custom_column
from ...security import audit
from ...security.audit import AuditLog
from ...security.encrypted_copies import protect_changes
from . import quiet, writers
from .writers import OrderLost

__all__ = ["WRITTEN_KEY", "OrderLost", "Written", "eligible", "insert_new", "note"]

#: ``session.info`` key of what :func:`insert_new` wrote in the session's transaction, as
#: ``(model, ids, rows)``: for code that follows writes (the tests' audit check).
WRITTEN_KEY = "crm_bulk_written"
Written = tuple[type, list[int], list[dict[str, Any]]]


def eligible(model: type) -> bool:
    """Whether new records of ``model`` may be written with Core statements."""
    mapper: Any = inspect(model)
    if len(mapper.primary_key) != 1 or mapper.inherits is not None:
        return False
    return not any(d.encrypted or d.encryption_pending for d in live.current(model))


_PLAIN = (str, int, float, bool)


def _created_changes(model: type, rows: list[dict[str, Any]]) -> list[dict[str, list[Any]]]:
    """The audit diffs of created records: every set column but the bookkeeping ones."""
    column = custom_column(model)
    skip = {"id", *audit.IGNORED_FIELDS}
    out = []
    for row in rows:
        changes = {
            key: [None, value if isinstance(value, _PLAIN) else _jsonable(value)]
            for key, value in row.items()
            if value is not None and value != "" and key not in skip
        }
        out.append(protect_changes(model, changes) if column in changes else changes)
    return out


def note(session: Session, written: list[Written]) -> None:
    """Record writes of :func:`insert_new` once their savepoint is released."""
    session.info.setdefault(WRITTEN_KEY, []).extend(written)


def insert_new(session: Session, model: type, objs: list[Any]) -> Written:
    """Insert ``objs`` (built by :mod:`.quiet`), with their audit entries and events; the
    model, ids in order and rows written."""
    if not objs:
        return (model, [], [])
    mapper: Any = inspect(model)
    table = mapper.local_table
    pk = mapper.primary_key[0]
    now = utcnow()
    connection = session.connection()
    the_plan = writers.plan(table, connection.dialect)
    rows = quiet.rows(objs, pk.key)
    writers.complete(rows, the_plan.columns)
    ids = writers.insert_records(connection, table, rows)
    prefix = getattr(model, "__crm_event__", None)
    if prefix is None:
        return (model, ids, rows)
    user_id, username, ip = audit.current_actor()
    log_row = writers.template(
        writers.plan(AuditLog.__table__, connection.dialect),
        {
            "occurred_at": now,
            "user_id": user_id,
            "username": username,
            "channel": audit.current_channel(),
            "ip": ip,
            "model": prefix,
            "operation": "create",
        },
        ("record_id", "changes"),
    )
    changes = _created_changes(model, rows)
    writers.insert_values(
        connection,
        AuditLog.__table__,
        [log_row(pair) for pair in zip(ids, changes, strict=True)],
    )
    event_row = writers.template(
        writers.plan(OutboxEvent.__table__, connection.dialect),
        {"type": f"{prefix}.created", "occurred_at": now, "dispatched_at": None},
        ("payload",),
    )
    writers.insert_values(
        connection,
        OutboxEvent.__table__,
        [event_row(({"id": record_id},)) for record_id in ids],
    )
    return (model, ids, rows)
