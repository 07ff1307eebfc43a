"""Many new rows of one table in as few round trips as each database allows.

An import's batch writes up to a thousand records, as many audit entries and as many outbox
events. SQLAlchemy's ``executemany`` spends more time per row preparing parameters than the
database spends storing them, so the rows are sent the way each driver takes them fastest:

- PostgreSQL: ``COPY … FROM STDIN``; the ids of new records are drawn from the table's sequence
  beforehand, in one ``SELECT nextval(…) FROM generate_series(…)``;
- SQLite: multi-row ``INSERT … VALUES (…), (…) RETURNING`` handed to the driver with values
  already processed (SQLAlchemy's own preparation of each row cost more than SQLite's insert);
- MariaDB and any other: SQLAlchemy's multi-row ``INSERT … RETURNING`` for records;
- rows whose ids nobody needs (audit entries, events) are built as tuples straight from the
  values a batch shares and the few that differ (:func:`template`), then go in with ``COPY``
  on PostgreSQL and the driver's ``executemany`` elsewhere.

Every value goes through its column type's bind processor for the dialect first (JSON,
timestamps on SQLite, custom values' hooks), so the stored forms are those an ORM write leaves.
"""

from __future__ import annotations

from collections.abc import Callable
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
    defaults = [(key, kind == "scalar", arg) for key, kind, arg in columns if kind != "value"]
    plain = {key for key, kind, _arg in columns if kind == "value"}
    for row in rows:
        for key, scalar, argument in defaults:
            if row.get(key) is None:
                row[key] = argument if scalar else argument(None)
        if not plain <= row.keys():
            for key in plain - row.keys():
                row[key] = None


def _processed(the_plan: Plan) -> list[tuple[int, Any]]:
    """``(position, bind processor)`` of the plan's columns that have one."""
    return [(i, process) for i, process in enumerate(the_plan.processors) if process is not None]


def _tuples(the_plan: Plan, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows' values (complete) in the plan's column order, through their bind processors
    (``None`` too, as SQLAlchemy sends it: a JSON column stores it as JSON ``null``)."""
    keys = [key for key, _kind, _arg in the_plan.columns]
    processed = _processed(the_plan)
    out: list[tuple[Any, ...]] = []
    for row in rows:
        values = [row[key] for key in keys]
        for i, process in processed:
            values[i] = process(values[i])
        out.append(tuple(values))
    return out


def template(
    the_plan: Plan, constants: dict[str, Any], varying: tuple[str, ...]
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A maker of rows of the plan's table that share ``constants`` and differ in the columns
    ``varying`` (given in that order), ready to send: each value through its bind processor,
    a missing or ``None`` value replaced by its column's Python default as :func:`complete`
    does. Constants are processed once."""
    base: list[Any] = []
    per_row: list[tuple[int, Any, Any]] = []  # (position, callable default, processor)
    at: dict[str, int] = {}
    for i, ((key, kind, argument), process) in enumerate(
        zip(the_plan.columns, the_plan.processors, strict=True)
    ):
        at[key] = i
        value = constants.get(key)
        if value is None and kind == "callable" and key not in varying:
            per_row.append((i, argument, process))
            base.append(None)
            continue
        if value is None and kind == "scalar":
            value = argument
        base.append(value if process is None else process(value))
    slots = []
    for key in varying:
        i = at[key]
        _key, kind, argument = the_plan.columns[i]
        slots.append((i, the_plan.processors[i], kind, argument))

    def make(values: tuple[Any, ...]) -> tuple[Any, ...]:
        row = base.copy()
        for i, argument, process in per_row:
            value = argument(None)
            row[i] = value if process is None else process(value)
        for (i, process, kind, argument), value in zip(slots, values, strict=True):
            if value is None and kind != "value":
                value = argument if kind == "scalar" else argument(None)
            row[i] = value if process is None else process(value)
        return tuple(row)

    return make


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
    if dialect.name == "sqlite":
        return _sqlite_returning(connection, the_plan, rows)
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


def _sqlite_returning(connection: Any, the_plan: Plan, rows: list[dict[str, Any]]) -> list[int]:
    """SQLite: multi-row ``INSERT … VALUES (…), (…) RETURNING`` sent to the driver with the
    rows' processed values, as many rows a statement as its limit of parameters allows; the
    answer checked as in :func:`_orm_returning`."""
    dialect = connection.dialect
    check = witness(the_plan.table)
    values = _tuples(the_plan, rows)
    width = len(the_plan.columns)
    per_statement = max(1, min(1000, dialect.insertmanyvalues_max_parameters // width))
    quote = dialect.identifier_preparer.quote
    head = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(the_plan.table)} "
        f"({_column_list(dialect, the_plan, False)}) VALUES "
    )
    one = f"({', '.join(['?'] * width)})"
    tail = f" RETURNING {quote(the_plan.pk.name)}, {quote(check.name)}"
    answered: list[Any] = []
    for start in range(0, len(values), per_statement):
        chunk = values[start : start + per_statement]
        sql = head + ", ".join([one] * len(chunk)) + tail
        flat = tuple(value for row in chunk for value in row)
        answered.extend(connection.exec_driver_sql(sql, flat).all())
    at = [key for key, _kind, _arg in the_plan.columns].index(check.key)
    if [a[1] for a in answered] != [v[at] for v in values]:
        raise OrderLost(the_plan.table.name)
    return [a[0] for a in answered]


# --------------------------------------------------------------------------- other rows


def insert_rows(connection: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (complete) into ``table`` where nobody needs their ids (audit entries,
    outbox events)."""
    if rows:
        insert_values(connection, table, _tuples(plan(table, connection.dialect), rows))


def insert_values(connection: Any, table: Table, values: list[tuple[Any, ...]]) -> None:
    """Insert rows given as processed values in the plan's column order (see
    :func:`template`) into ``table`` where nobody needs their ids."""
    if not values:
        return
    dialect = connection.dialect
    the_plan = plan(table, dialect)
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
