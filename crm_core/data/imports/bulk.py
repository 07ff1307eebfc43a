"""Writing an import's new records with Core statements, audited and evented like the ORM.

The ORM's unit of work costs far more per record than the database does. New records of a
batch that passed every check are inserted with one multi-row ``INSERT … RETURNING``; their
audit entries (channel ``import``, the importing user) and their ``<model>.created`` domain
events follow with one statement each, in the same transaction as the batch's checkpoint. The
entries and events are the ones a write through the ORM leaves (:mod:`crm_core.security.audit`,
:mod:`crm_core.events.outbox`).

A model with a custom field encrypted at rest is written through the ORM instead: its values
need the blind index the ORM's flush maintains.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, inspect
from sqlalchemy.orm import Session

from ...db import utcnow
from ...events.models import OutboxEvent
from ...events.outbox import _jsonable
from ...lowcode import live
from ...security import audit
from ...security.audit import AuditLog
from ...security.encrypted_copies import protect_changes
from . import quiet

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


def _defaults(table: Any, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with every column's Python default filled where it has no value."""
    for column in table.columns:
        if column.primary_key or row.get(column.key) is not None:
            continue
        default = column.default
        if default is None:
            row.setdefault(column.key, None)
        elif default.is_scalar:
            row[column.key] = default.arg
        elif default.is_callable:
            row[column.key] = default.arg(None)
        else:
            row.setdefault(column.key, None)
    return row


_PLAIN = (str, int, float, bool)


def _created_changes(model: type, values: dict[str, Any]) -> dict[str, list[Any]]:
    """The audit diff of a created record: every set column but the bookkeeping ones."""
    changes = {
        key: [None, value if isinstance(value, _PLAIN) else _jsonable(value)]
        for key, value in values.items()
        if key != "id" and key not in audit.IGNORED_FIELDS and value not in (None, "")
    }
    return protect_changes(model, changes)


class OrderLost(RuntimeError):
    """The database returned the new ids in another order than the rows were given."""


def _insert(connection: Any, table: Any, pk: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows``; their new ids, in order.

    Multi-row ``INSERT … RETURNING`` answers in the order of its rows on the three databases,
    which SQLAlchemy only promises with ``sort_by_parameter_order`` (a statement per row on
    some of them). The answer is checked against a column that tells rows apart; should the
    order ever differ, :class:`OrderLost` makes the caller write the rows one by one.
    """
    witness = _witness(table)
    result = connection.execute(insert(table).returning(pk, witness), [dict(r) for r in rows])
    answered = result.all()
    if [row[1] for row in answered] != [r.get(witness.key) for r in rows]:
        raise OrderLost(table.name)
    return [row[0] for row in answered]


def _witness(table: Any) -> Any:
    """A column whose values tell a table's new rows apart: a unique one if there is one."""
    for column in table.columns:
        if column.unique and not column.primary_key:
            return column
    for constraint in table.constraints:
        columns = list(getattr(constraint, "columns", []))
        if (
            len(columns) == 1
            and not columns[0].primary_key
            and constraint.__class__.__name__ == "UniqueConstraint"
        ):
            return columns[0]
    return (
        table.columns.get("name")
        if "name" in table.columns
        else next(c for c in table.columns if not c.primary_key)
    )


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
    rows = [_defaults(table, quiet.values(obj)) for obj in objs]
    for row in rows:
        row.pop(pk.key, None)  # the database numbers new records
    connection = session.connection()
    ids = _insert(connection, table, pk, rows)
    prefix = getattr(model, "__crm_event__", None)
    if prefix is None:
        return (model, ids, rows)
    user_id, username, ip = audit._actor()
    channel = audit.current_channel()
    log_table = AuditLog.__table__
    event_table = OutboxEvent.__table__
    connection.execute(
        insert(log_table),
        [
            {
                "occurred_at": now,
                "user_id": user_id,
                "username": username,
                "channel": channel,
                "ip": ip,
                "model": prefix,
                "record_id": record_id,
                "operation": "create",
                "changes": _created_changes(model, row),
            }
            for record_id, row in zip(ids, rows, strict=True)
        ],
    )
    connection.execute(
        insert(event_table),
        [
            {
                "type": f"{prefix}.created",
                "payload": {"id": record_id},
                "occurred_at": now,
                "dispatched_at": None,
            }
            for record_id in ids
        ],
    )
    return (model, ids, rows)
