"""Errors of statements an import sends to the driver directly (past SQLAlchemy)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import DBAPIError


@contextmanager
def driver_errors(connection: Any, statement: str) -> Iterator[None]:
    """The driver's errors of statements sent past SQLAlchemy, as SQLAlchemy's (an
    ``IntegrityError`` stays one, so the caller can retry the rows one by one)."""
    base = connection.dialect.loaded_dbapi.Error
    try:
        yield
    except base as exc:
        raise DBAPIError.instance(statement, None, exc, base, dialect=connection.dialect) from exc
