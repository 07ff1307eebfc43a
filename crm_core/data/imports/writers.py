"""Many new rows of one table in as few round trips as each database allows.

An import's batch writes up to a thousand records, as many audit entries and as many outbox
events. SQLAlchemy's ``executemany`` spends more time per row preparing parameters than the
database spends storing them, so the rows are sent the way each driver takes them fastest:

- PostgreSQL: ``COPY … FROM STDIN``; the ids of new records are drawn from the table's sequence
  beforehand, in one ``SELECT nextval(…) FROM generate_series(…)``;
- SQLite, MariaDB and any other: SQLAlchemy's multi-row ``INSERT … RETURNING`` for records
  (the database's own work dominates there), the driver's ``executemany`` with tuples for rows
  whose ids nobody needs.

Every value goes through its column type's bind processor for the dialect first (JSON,
timestamps on SQLite, custom values' hooks), so the stored forms are those an ORM write leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Table, insert

from . import pgcopy


class OrderLost(RuntimeError):
    """The database returned the new ids in another order than the rows were given."""


@dataclass(frozen=True)
class Plan:
    """How rows of one table are written on one dialect: the columns sent (those given and
    those with a Python default) and their bind processors."""

    table: Table
    pk: Column[Any]
    #: ``(key, kind, argument)`` of every non-key column: kind ``value`` (given, else NULL),
    #: ``scalar`` or ``callable`` (the column's Python default).
    columns: tuple[tuple[str, str, Any], ...]
    processors: tuple[Any, ...]


@lru_cache(maxsize=256)
def plan(table: Table, dialect: Any) -> Plan:
    """The plan of ``table`` on ``dialect`` (read once per process)."""
    pk = next(c for c in table.columns if c.primary_key)
    columns = []
    processors = []
    for column in table.columns:
        if column.primary_key:
            continue
        default = column.default
        if default is not None and default.is_scalar:
            columns.append((column.key, "scalar", default.arg))  # type: ignore[attr-defined]
        elif default is not None and default.is_callable:
            columns.append((column.key, "callable", default.arg))  # type: ignore[attr-defined]
        else:
            columns.append((column.key, "value", None))
        processors.append(column.type.dialect_impl(dialect).bind_processor(dialect))
    return Plan(table, pk, tuple(columns), tuple(processors))


def complete(rows: list[dict[str, Any]], columns: tuple[tuple[str, str, Any], ...]) -> None:
    """Fill, in place, each row's columns that have no value with their Python default (or
    ``None``), as an ORM insert would."""
    for row in rows:
        for key, kind, argument in columns:
            if row.get(key) is not None:
                continue
            if kind == "scalar":
                row[key] = argument
            elif kind == "callable":
                row[key] = argument(None)
            else:
                row.setdefault(key, None)


def _tuples(the_plan: Plan, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows' values in the plan's column order, through their bind processors (``None``
    too, as SQLAlchemy sends it: a JSON column stores it as JSON ``null``)."""
    pairs = [
        (key, process)
        for (key, _kind, _arg), process in zip(the_plan.columns, the_plan.processors, strict=True)
    ]
    return [
        tuple(
            [
                value if process is None else process(value)
                for value, process in [(row.get(key), process) for key, process in pairs]
            ]
        )
        for row in rows
    ]


def _column_list(dialect: Any, the_plan: Plan, with_pk: bool) -> str:
    quote = dialect.identifier_preparer.quote
    keys = [the_plan.table.c[key].name for key, _kind, _arg in the_plan.columns]
    if with_pk:
        keys.insert(0, the_plan.pk.name)
    return ", ".join(quote(name) for name in keys)


def _marker(dialect: Any) -> str:
    return "?" if dialect.paramstyle == "qmark" else "%s"


# --------------------------------------------------------------------------- records


def insert_records(connection: Any, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (complete: see :func:`complete`) into ``table``; their new ids in the
    order of the rows."""
    dialect = connection.dialect
    the_plan = plan(table, dialect)
    if _copies(dialect, the_plan):
        ids = _copy_records(connection, the_plan, rows)
        if ids is not None:
            return ids
    return _orm_returning(connection, the_plan, rows)


def _copies(dialect: Any, the_plan: Plan) -> bool:
    return (
        dialect.name == "postgresql" and dialect.driver == "psycopg2" and pgcopy.suitable(the_plan)
    )


def _copy_records(connection: Any, the_plan: Plan, rows: list[dict[str, Any]]) -> list[int] | None:
    """COPY with ids drawn first; ``None`` (nothing written) when the table's key has no
    sequence or a value is of a kind COPY is not written for here."""
    try:
        lines = pgcopy.lines(_tuples(the_plan, rows))
    except TypeError:
        return None
    ids = pgcopy.next_ids(connection, the_plan.table, the_plan.pk, len(rows))
    if ids is None:
        return None
    numbered = [f"{new_id}\t{line}" for new_id, line in zip(ids, lines, strict=True)]
    column_list = _column_list(connection.dialect, the_plan, with_pk=True)
    pgcopy.copy(connection, the_plan.table, column_list, numbered)
    return ids


def witness(table: Table) -> Column[Any]:
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
        table.columns["name"]
        if "name" in table.columns
        else next(c for c in table.columns if not c.primary_key)
    )


def _orm_returning(connection: Any, the_plan: Plan, rows: list[dict[str, Any]]) -> list[int]:
    """SQLAlchemy's ``INSERT … RETURNING`` for many rows.

    Multi-row ``INSERT … RETURNING`` answers in the order of its rows on the three databases,
    which SQLAlchemy only promises with ``sort_by_parameter_order`` (a statement per row on
    some of them). The answer is checked against a column that tells rows apart; should the
    order ever differ, :class:`OrderLost` makes the caller write the rows one by one.
    """
    check = witness(the_plan.table)
    statement = insert(the_plan.table).returning(the_plan.pk, check)
    answered = connection.execute(statement, [dict(r) for r in rows]).all()
    if [a[1] for a in answered] != [r.get(check.key) for r in rows]:
        raise OrderLost(the_plan.table.name)
    return [a[0] for a in answered]


# --------------------------------------------------------------------------- other rows


def insert_rows(connection: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (complete) into ``table`` where nobody needs their ids (audit entries,
    outbox events)."""
    if not rows:
        return
    dialect = connection.dialect
    the_plan = plan(table, dialect)
    values = _tuples(the_plan, rows)
    column_list = _column_list(dialect, the_plan, False)
    if _copies(dialect, the_plan):
        try:
            lines = pgcopy.lines(values)
        except TypeError:
            pass
        else:
            pgcopy.copy(connection, table, column_list, lines)
            return
    marker = _marker(dialect)
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({column_list}) "
        f"VALUES ({', '.join([marker] * len(the_plan.columns))})"
    )
    connection.exec_driver_sql(sql, values)
