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
