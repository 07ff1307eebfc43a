"""Values of a backup: their kinds, their portable JSON form and their canonical form.

Every column of an archived table has a *kind* (``int``, ``str``, ``bool``, ``datetime``,
``date``, ``time``, ``decimal``, ``float``, ``json``, ``bytes``). A value goes into the archive
as JSON: datetimes, dates and times in ISO 8601, decimals as strings, bytes in base64, JSON
columns as JSON, booleans as booleans.

The canonical form is what the per-table checksum hashes, so the same rows read from SQLite,
PostgreSQL or MariaDB give the same digest: datetimes without time zone (in UTC) and to the
second, as MariaDB's ``DATETIME`` keeps them; decimals normalised (``1.50`` is ``1.5``); JSON
parsed, with a whole float equal to its integer (PostgreSQL's JSONB writes ``1.0`` as ``1``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    Time,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

KINDS = ("int", "str", "bool", "datetime", "date", "time", "decimal", "float", "json", "bytes")


def kind_of(type_: TypeEngine[Any]) -> str:
    """The kind of a column type (a custom type counts as what it stores)."""
    if isinstance(type_, TypeDecorator):
        return kind_of(type_.impl_instance)
    checks: tuple[tuple[type, str], ...] = (
        (JSON, "json"),
        (Boolean, "bool"),
        (DateTime, "datetime"),
        (Date, "date"),
        (Time, "time"),
        (Float, "float"),
        (Numeric, "decimal"),
        (Integer, "int"),
        (LargeBinary, "bytes"),
    )
    for cls, kind in checks:
        if isinstance(type_, cls):
            return kind
    return "str"


def column_type(kind: str, dialect: str, scale: int | None = None) -> TypeEngine[Any]:
    """The plain type a column of ``kind`` is read and written with: no custom processing, so
    an encrypted custom value passes as it is stored."""
    if kind == "json":
        return JSONB(none_as_null=True) if dialect == "postgresql" else JSON(none_as_null=True)
    types: dict[str, TypeEngine[Any]] = {
        "int": BigInteger(),
        "bool": Boolean(create_constraint=False),
        "datetime": DateTime(),
        "date": Date(),
        "time": Time(),
        "decimal": Numeric(precision=38, scale=scale, asdecimal=True),
        "float": Float(),
        "bytes": LargeBinary(),
    }
    return types.get(kind, Text())


def plain_table(
    name: str, columns: list[dict[str, Any]], primary_key: list[str], dialect: str
) -> Table:
    """A Core table of ``name`` with the archive's columns and plain types."""
    return Table(
        name,
        MetaData(),
        *(
            Column(
                c["name"],
                column_type(c["kind"], dialect, c.get("scale")),
                primary_key=c["name"] in primary_key,
                autoincrement=False,
            )
            for c in columns
        ),
    )


def to_json(kind: str, value: Any) -> Any:
    """The archive's form of a value read from the database."""
    if value is None:
        return None
    if kind in ("datetime", "date", "time"):
        return value.isoformat()
    if kind == "decimal":
        return str(value)
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    return value


def from_json(kind: str, value: Any) -> Any:
    """The Python value to write for an archived value."""
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "time":
        return time.fromisoformat(value)
    if kind == "decimal":
        return Decimal(value)
    if kind == "bytes":
        return base64.b64decode(value)
    return value


def _canonical_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_json(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical(kind: str, value: Any) -> Any:
    """The form of a value the checksum hashes (see the module's docstring)."""
    if value is None:
        return None
    if kind == "datetime":
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat()
    if kind == "time":
        if isinstance(value, str):
            value = time.fromisoformat(value)
        return value.replace(microsecond=0, tzinfo=None).isoformat()
    if kind == "date":
        return value if isinstance(value, str) else value.isoformat()
    if kind == "decimal":
        number = Decimal(str(value)).normalize()
        return "0" if number.is_zero() else format(number, "f")
    if kind == "float":
        return format(float(value), ".15g")
    if kind == "json":
        return _canonical_json(value)
    if kind == "bytes":
        return value if isinstance(value, str) else base64.b64encode(bytes(value)).decode()
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    return str(value)


class TableDigest:
    """Row count and SHA-256 of a table's rows in primary-key order, each row canonicalised.

    Feed rows with :meth:`add` (as read from the database, or as archived: both give the same
    digest).
    """

    def __init__(self, columns: list[dict[str, Any]]) -> None:
        self._columns = sorted((c["name"], c["kind"]) for c in columns)
        self._hash = hashlib.sha256()
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        line = {name: canonical(kind, row.get(name)) for name, kind in self._columns}
        text = json.dumps(line, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        self._hash.update(text.encode("utf-8") + b"\n")
        self.count += 1

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()
