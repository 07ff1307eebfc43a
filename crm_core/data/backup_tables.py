"""Which tables a backup holds, how their rows are read in batches, and in which order they are
loaded back.

A table belongs to a migration lineage: ``alembic_version`` and the ``ab_``/``crm_`` tables to
the core, ``alembic_version_<plugin>`` and the plugin's ``table_prefix`` tables to that plugin.
Tables of no lineage are not the CRM's and stay out; so does the scheduler's job store
(:data:`EXCLUDED`), which ``crm scheduler`` fills again from the registered jobs when it starts.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask_appbuilder import Model
from flask_babel import gettext as _
from sqlalchemy import Table, and_, false, or_, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.sql.elements import ColumnElement

from ..errors import CrmError
from ..jobs.scheduler import JOB_TABLE
from ..plugins.migrations import CORE_LINEAGE, Lineage
from .backup_values import kind_of, plain_table

#: Tables a backup leaves out, with the reason given in its report and in docs/backup.md.
EXCLUDED = {JOB_TABLE: "the scheduler's job store, made again by `crm scheduler` on start"}
VERSION_TABLE = "alembic_version"


class BackupError(CrmError):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class TableSpec:
    """One archived table: its lineage, its columns (name, kind, scale) and primary key."""

    name: str
    lineage: str
    columns: list[dict[str, Any]]
    primary_key: list[str]

    def table(self, dialect: str) -> Table:
        return plain_table(self.name, self.columns, self.primary_key, dialect)

    def kinds(self) -> dict[str, str]:
        return {c["name"]: c["kind"] for c in self.columns}


def lineage_of(table: str, lineages: list[Lineage]) -> str | None:
    """The lineage owning ``table``: a version table by its name, others by the longest
    prefix."""
    if table.startswith(VERSION_TABLE):
        owner = table[len(VERSION_TABLE) + 1 :] or CORE_LINEAGE.name
        return owner if any(lin.name == owner for lin in lineages) else None
    best: tuple[int, str] | None = None
    for lin in lineages:
        for prefix in lin.prefixes:
            if table.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), lin.name)
    return best[1] if best else None


def describe(inspector: Inspector, name: str, lineage: str) -> TableSpec:
    """The archive's description of ``name``: kinds from the models where they know the
    column (a custom values column is JSON; a MariaDB boolean is a boolean), else from the
    database's own description."""
    model_table = Model.metadata.tables.get(name)
    columns = []
    for col in inspector.get_columns(name):
        known = model_table.c.get(col["name"]) if model_table is not None else None
        type_ = known.type if known is not None else col["type"]
        spec: dict[str, Any] = {"name": col["name"], "kind": kind_of(type_)}
        if spec["kind"] == "decimal" and getattr(type_, "scale", None) is not None:
            spec["scale"] = type_.scale  # type: ignore[union-attr,attr-defined]
        columns.append(spec)
    primary_key = list(inspector.get_pk_constraint(name).get("constrained_columns") or [])
    return TableSpec(name, lineage, columns, primary_key)


def _sortable(table: Table, name: str, kinds: dict[str, str], dialect: str) -> Any:
    """A key column in an order every backend agrees on: text compares by code point (the
    databases' own collations differ), so keyset batches and checksums match everywhere."""
    column = table.c[name]
    if kinds[name] != "str":
        return column
    if dialect == "postgresql":
        return column.collate("C")
    if dialect == "mysql":
        return column.collate("utf8mb4_bin")
    return column


def _after(keys: list[Any], last: list[Any]) -> ColumnElement[bool]:
    """``keys > last`` as ORs of equalities, which every backend answers from the key index."""
    clauses = []
    for i, key in enumerate(keys):
        equal = [keys[j] == last[j] for j in range(i)]
        clauses.append(and_(*equal, key > last[i]))
    return or_(false(), *clauses)


def read_rows(conn: Connection, spec: TableSpec, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every row of the table in primary-key order, read ``batch`` rows at a time by keyset
    (never the whole table at once)."""
    dialect = conn.dialect.name
    table = spec.table(dialect)
    kinds = spec.kinds()
    if not spec.primary_key:  # no key to page on: one ordered query, streamed from the server
        order = [_sortable(table, c, kinds, dialect) for c in kinds if kinds[c] != "json"]
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(
            select(table).order_by(*order)
        )
        for row in result.mappings():
            yield dict(row)
        return
    keys = [_sortable(table, c, kinds, dialect) for c in spec.primary_key]
    last: list[Any] | None = None
    while True:
        query = select(table).order_by(*keys).limit(batch)
        if last is not None:
            query = query.where(_after(keys, last))
        rows = conn.execute(query).mappings().all()
        for row in rows:
            yield dict(row)
        if len(rows) < batch:
            return
        last = [rows[-1][c] for c in spec.primary_key]


@dataclass(frozen=True)
class LoadPlan:
    """Tables in an order where each row's references exist before it, and the foreign-key
    columns written in a second pass (self references and the links that close a cycle)."""

    order: list[str]
    deferred: dict[str, list[str]]


def load_plan(inspector: Inspector, tables: list[str]) -> LoadPlan:
    """Order ``tables`` by their foreign keys in the target database."""
    wanted = set(tables)
    deferred: dict[str, list[str]] = {}
    edges: dict[str, dict[str, list[dict[str, Any]]]] = {t: {} for t in tables}
    nullable = {t: {c["name"]: c["nullable"] for c in inspector.get_columns(t)} for t in tables}
    for name in tables:
        for fk in inspector.get_foreign_keys(name):
            target = fk["referred_table"]
            if target == name:
                deferred.setdefault(name, []).extend(fk["constrained_columns"])
            elif target in wanted:
                edges[name].setdefault(target, []).append(dict(fk))
    while True:
        sorter = graphlib.TopologicalSorter({t: set(edges[t]) for t in tables})
        try:
            order = list(sorter.static_order())
            break
        except graphlib.CycleError as exc:
            cycle: list[str] = exc.args[1]
            for child, parent in zip(cycle[1:], cycle, strict=False):
                # the cycle lists each table after one it depends on
                fks = edges[child].get(parent, [])
                cols = [c for fk in fks for c in fk["constrained_columns"]]
                if cols and all(nullable[child].get(c) for c in cols):
                    deferred.setdefault(child, []).extend(cols)
                    del edges[child][parent]
                    break
            else:
                raise BackupError(
                    _(
                        "tables %(tables)s refer to each other with required columns",
                        tables=", ".join(cycle),
                    )
                ) from None
    for name, cols in deferred.items():
        deferred[name] = [c for c in dict.fromkeys(cols) if nullable[name].get(c)]
    return LoadPlan(order, {t: c for t, c in deferred.items() if c})


def reset_counters(engine: Engine, tables: list[str]) -> None:
    """Move PostgreSQL's sequences past the restored ids, so the next insert gets a new one.
    MariaDB's AUTO_INCREMENT and SQLite's rowids follow inserted ids by themselves."""
    if engine.dialect.name != "postgresql":
        return
    query = text(
        "SELECT table_name, column_name, "
        "pg_get_serial_sequence(quote_ident(table_name), column_name) AS seq "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL"
    )
    with engine.begin() as conn:
        for table, column, sequence in conn.execute(query).all():
            if table not in tables:
                continue
            conn.execute(
                text(
                    f'SELECT setval(:seq, COALESCE((SELECT MAX("{column}") FROM "{table}"), 0)'
                    f" + 1, false)"
                ),
                {"seq": sequence},
            )
