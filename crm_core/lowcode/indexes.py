"""Indexes on searchable custom fields, made and dropped as admins mark fields.

A field marked *searchable* gets an index on the expression lists filter and sort it by
(:func:`crm_core.lowcode.query.expression`), named ``ix_cf_<table>_<field>``: on PostgreSQL
built ``CONCURRENTLY`` (writes go on meanwhile), on SQLite as an ordinary expression index.
MariaDB 10.11 cannot index a JSON expression without a generated column, and does not use
such a column for the expression anyway; there custom fields are filtered by scanning.

The ``core.custom_field_indexes`` job (every minute) makes the indexes of newly marked fields
and drops those of fields no longer searchable; migrations leave every ``ix_cf_`` index alone.
"""

from __future__ import annotations

import logging
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import Index, select, text
from sqlalchemy.engine import Engine

from ..db import session
from .fields import FieldDefinition, custom_column
from .query import expression, is_encrypted

log = logging.getLogger(__name__)
PREFIX = "ix_cf_"
INDEXED_KINDS = (
    "text",
    "url",
    "phone",
    "email",
    "integer",
    "decimal",
    "money",
    "date",
    "datetime",
    "choice",
    "bool",
    "user",
    "customer",
)


def index_name(table: str, field: str) -> str:
    return f"{PREFIX}{table}_{field}"[:63]


def indexable(defn: FieldDefinition) -> bool:
    return bool(
        defn.active and defn.searchable and defn.kind in INDEXED_KINDS and not is_encrypted(defn)
    )


def _models() -> dict[str, type]:
    return {m.class_.__name__: m.class_ for m in Model.registry.mappers if custom_column(m.class_)}


def wanted(engine: Engine) -> dict[str, tuple[str, Index]]:
    """Index name -> (table, index) for every searchable field of every model."""
    models = _models()
    found: dict[str, tuple[str, Index]] = {}
    defs = session().scalars(select(FieldDefinition).where(FieldDefinition.searchable.is_(True)))
    for defn in defs:
        model = models.get(defn.model)
        if model is None or not indexable(defn):
            continue
        table = model.__table__.name  # type: ignore[attr-defined]
        name = index_name(table, defn.name)
        options: dict[str, Any] = {}
        if engine.dialect.name == "postgresql":
            options["postgresql_concurrently"] = True
        index = Index(name, expression(model, defn), **options)
        # Made at run time, not part of the models: off the table's metadata again, so
        # migrations and schema checks never see it.
        model.__table__.indexes.discard(index)  # type: ignore[attr-defined]
        found[name] = (table, index)
    return found


def present(engine: Engine) -> dict[str, str]:
    """Index name -> table of every ``ix_cf_`` index in the database (read from the catalog:
    SQLAlchemy's reflection skips expression indexes)."""
    if engine.dialect.name == "postgresql":
        query = text(
            "SELECT indexname, tablename FROM pg_indexes "
            "WHERE schemaname = current_schema() AND indexname LIKE 'ix/_cf/_%' ESCAPE '/'"
        )
    elif engine.dialect.name == "sqlite":
        query = text(
            "SELECT name, tbl_name FROM sqlite_master "
            "WHERE type = 'index' AND name LIKE 'ix/_cf/_%' ESCAPE '/'"
        )
    else:
        return {}
    with engine.connect() as conn:
        return {str(name): str(table) for name, table in conn.execute(query)}


def sync_indexes(_app: Any = None) -> dict[str, int]:
    """Make the missing indexes of searchable fields and drop those no field needs."""
    engine = session().get_bind()
    assert isinstance(engine, Engine)
    if engine.dialect.name not in ("postgresql", "sqlite"):
        return {"created": 0, "dropped": 0}
    needed = wanted(engine)
    session().rollback()  # no transaction held while indexes are built
    existing = present(engine)
    created = dropped = 0
    for name, (table, index) in needed.items():
        if name in existing:
            continue
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            index.create(conn)
            # The planner knows an indexed expression's values only once it is analysed:
            # without this it misjudges filters on it (and PostgreSQL's estimated counts).
            target = table if engine.dialect.name == "postgresql" else name
            conn.execute(text(f'ANALYZE "{target}"'))
        log.info("custom field index %s created and analysed", name)
        created += 1
    for name, table in existing.items():
        if name in needed:
            continue
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"'))
            else:
                conn.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
        log.info("custom field index %s on %s dropped", name, table)
        dropped += 1
    return {"created": created, "dropped": dropped}
