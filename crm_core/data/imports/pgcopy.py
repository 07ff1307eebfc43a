"""PostgreSQL's ``COPY … FROM STDIN`` for an import's new rows (psycopg2).

Rows arrive as tuples of values already through their columns' bind processors (JSON as text);
they are written in COPY's text format: tab-separated, ``\\N`` for NULL, backslash escapes for
backslashes, tabs and line breaks. New records get their ids from their table's sequence first,
in one statement, so the caller knows each row's id without ``RETURNING``.
"""

from __future__ import annotations

import io
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, Numeric, String, Table, Text
from sqlalchemy.types import TypeDecorator

from .errors import driver_errors

_TYPES = (String, Text, Integer, Numeric, Boolean, DateTime, Date, JSON)
_SPECIAL = re.compile(r"[\\\t\n\r]").search


def _escaped(text: str) -> str:
    if _SPECIAL(text) is None:
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def suitable(plan: Any) -> bool:
    """Whether every column of ``plan`` holds a type COPY's text format is written for here,
    on psycopg2."""
    for column in plan.table.columns:
        kind = column.type
        if isinstance(kind, TypeDecorator):
            kind = kind.impl_instance
        if not isinstance(kind, _TYPES):
            return False
    return True


def _field(value: Any) -> str:
    if value.__class__ is str:
        return _escaped(value)
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise TypeError("COPY writes timezone-naive timestamps only")
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"COPY cannot write {type(value).__name__}")


def lines(rows: list[tuple[Any, ...]]) -> list[str]:
    """Each row as a line of COPY's text format (without its line break); ``TypeError`` for a
    value it cannot hold."""
    return ["\t".join([_field(v) for v in row]) for row in rows]


def next_ids(connection: Any, table: Table, pk: Any, count: int) -> list[int] | None:
    """``count`` new ids of ``table`` from its sequence, ascending; ``None`` when the key has
    no sequence."""
    preparer = connection.dialect.identifier_preparer
    statement = (
        "SELECT nextval(q.s) FROM (SELECT pg_get_serial_sequence(%s, %s) AS s) q, "
        "generate_series(1, %s) WHERE q.s IS NOT NULL"
    )
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        with driver_errors(connection, statement):
            cursor.execute(statement, (preparer.format_table(table), pk.name, count))
            ids = sorted(row[0] for row in cursor.fetchall())
    finally:
        cursor.close()
    return ids if len(ids) == count else None


def copy(connection: Any, table: Table, column_list: str, rows: list[str]) -> None:
    """Send ``rows`` (from :func:`lines`) into ``table``'s ``column_list``."""
    if not rows:
        return
    preparer = connection.dialect.identifier_preparer
    data = io.StringIO("\n".join(rows) + "\n")
    statement = f"COPY {preparer.format_table(table)} ({column_list}) FROM STDIN"
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        with driver_errors(connection, statement):
            cursor.copy_expert(statement, data)
    finally:
        cursor.close()
