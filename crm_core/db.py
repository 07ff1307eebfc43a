"""Database helpers shared by every model: the session, common columns, engine set-up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import Boolean, DateTime, Integer, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column


def utcnow() -> datetime:
    """The current time, timezone-naive in UTC, as every timestamp column stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


def session() -> Session:
    """The request's (or app context's) SQLAlchemy session."""
    return current_app.appbuilder.session  # type: ignore[attr-defined,no-any-return]


_classes: tuple[int, dict[str, type]] = (-1, {})


def model_class(name: str) -> type | None:
    """The mapped class called ``name`` (``Customer``), else ``None``; the first mapped when
    two modules use one name. Read from the mappers again only when their number changes
    (automation rules ask on every event)."""
    from flask_appbuilder import Model

    global _classes
    mappers = Model.registry.mappers
    if _classes[0] != len(mappers):
        found: dict[str, type] = {}
        for mapper in mappers:
            found.setdefault(mapper.class_.__name__, mapper.class_)
        _classes = (len(mappers), found)
    return _classes[1].get(name)


class TimestampMixin:
    """``created_at`` and an indexed ``updated_at``, which sync clients query with
    ``updated_since``."""

    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    @declared_attr
    def updated_at(cls) -> Mapped[datetime]:  # noqa: N805
        return mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False, index=True)


class BusinessMixin(TimestampMixin):
    """Columns every business record carries: timestamps, archive flag and an optimistic-lock
    ``version`` (a stale write fails with 409 instead of overwriting a colleague's change)."""

    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


def configure_engine(engine: Engine) -> None:
    """Per-connection settings: WAL and enforced foreign keys on SQLite, UTC elsewhere."""
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

    elif engine.dialect.name == "mysql":
        # MariaDB has sequences, so SQLAlchemy would use the ones Flask-AppBuilder's security
        # models name; the tables use AUTO_INCREMENT instead. The dialect reads the server
        # version on first connect, so connect once before switching sequences off.
        with engine.connect():
            pass
        engine.dialect.supports_sequences = False


def statistics_missing(connection: Any, table: str) -> bool:
    """Whether the query planner has never been given statistics of ``table`` (PostgreSQL
    before its first ANALYZE, SQLite without a ``sqlite_stat1`` row). MariaDB keeps InnoDB's
    statistics itself: never missing."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        tuples = connection.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%(t)s)", {"t": table}
        ).scalar()
        return tuples is not None and tuples < 0
    if dialect == "sqlite":
        present = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).scalar()
        if not present:
            return True
        return not connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_stat1 WHERE tbl = ? LIMIT 1", (table,)
        ).scalar()
    return False


def analyze(connection: Any, table: str) -> None:
    """Refresh the planner's statistics of ``table`` from a sample (a few rows per index on
    SQLite, PostgreSQL's default sample): a table that grew a lot since its last analysis
    would otherwise be read with plans made for its old size, such as a full scan in place of
    an index lookup. MariaDB's ``ANALYZE TABLE`` ends the current transaction: call it between
    transactions."""
    dialect = connection.dialect
    quoted = dialect.identifier_preparer.quote(table)
    if dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA analysis_limit = 1000")
        connection.exec_driver_sql(f"ANALYZE {quoted}")
        connection.exec_driver_sql("PRAGMA analysis_limit = 0")  # the connection's default
    elif dialect.name == "postgresql":
        connection.exec_driver_sql(f"ANALYZE {quoted}")
    elif dialect.name == "mysql":
        connection.exec_driver_sql(f"ANALYZE TABLE {quoted}").all()
