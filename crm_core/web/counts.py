"""Counts for list pages that stay cheap on big tables, flagged when they are estimates.

Flask-AppBuilder counts every list with ``count(*)``: on a million rows that costs more than
the page itself, on every page. :func:`cheap_count` is exact when that is cheap — small tables,
and filters matching at most ``CRM_LIST_COUNT_CAP`` rows (a count that stops at cap + 1, which
an index range answers quickly) — and otherwise an estimate: the planner's row estimate on
PostgreSQL and MariaDB, the table size elsewhere.

Exact counts run through the ORM session, so session-wide record rules (``do_orm_execute``)
apply to them. Estimates read catalogue statistics and query plans only: they do not see
record rules, and say no more than roughly how big a table is.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import func, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Query
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

from ..security import rules

#: Settings (app config keys) and their defaults.
DEFAULTS: dict[str, Any] = {
    # Tables estimated at most this big are counted exactly, as FAB does.
    "CRM_LIST_EXACT_COUNT_MAX": 20_000,
    # Bigger tables: count exactly up to this many matching rows, estimate beyond.
    "CRM_LIST_COUNT_CAP": 1_000,
    # Seconds a table-size estimate is reused.
    "CRM_LIST_STATS_TTL": 60,
}


_MAX_CACHED = 10_000  # cached figures per app before the cache starts over


def setting(key: str) -> Any:
    """A count setting from the app config, or its default."""
    if has_app_context():
        return current_app.config.get(key, DEFAULTS[key])
    return DEFAULTS[key]


class _Explain(Executable, ClauseElement):
    """``EXPLAIN`` of a statement, rendered by the dialect (binds handled as usual)."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _explain_pg(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


@compiles(_Explain, "mysql")
def _explain_mysql(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


def _stats_cache() -> dict[Any, tuple[float, int | None]]:
    # Per app (and so per database): hosted setups run one app per tenant database.
    if not has_app_context():
        return {}
    return current_app.extensions.setdefault("crm_listing_stats", {})  # type: ignore[no-any-return]


def list_signature(interface: Any, filters: Any) -> tuple[Any, ...]:
    """What makes two list requests select the same rows: database, model, filters and user
    (record rules make lists differ per user)."""
    user = getattr(g, "user", None) if has_request_context() else None
    bind = interface.session.get_bind()
    parts = filter_parts(filters)
    return (str(bind.url), interface.obj.__name__, parts, getattr(user, "id", None))


def filter_parts(filters: Any) -> tuple[tuple[str, str, str], ...]:
    """A filter set as plain text: (column, filter class, value) per filter."""
    return tuple(
        (flt.column_name, type(flt).__name__, repr(value))
        for flt, value in zip(
            getattr(filters, "filters", []), getattr(filters, "values", []), strict=True
        )
    )


def table_estimate(session: Any, table: Any) -> int | None:
    """About how many rows ``table`` holds, from cheap sources, cached for a minute.

    PostgreSQL: ``pg_class.reltuples`` (kept by autovacuum; ``None`` before the first
    ANALYZE). SQLite: ``max(rowid)``, an index lookup that is current (``sqlite_stat1`` goes
    stale between ANALYZE runs) and close because business records are archived, not deleted.
    MariaDB: ``information_schema.tables.table_rows``.
    """
    bind = session.get_bind()
    key = (str(bind.url), table.name)
    cache = _stats_cache()
    now = time.monotonic()
    hit = cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    dialect = bind.dialect.name
    value: Any = None
    conn = session.connection()
    if dialect == "postgresql":
        value = conn.scalar(
            text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:t)"),
            {"t": table.name},
        )
        value = None if value is None or value < 0 else value
    elif dialect == "sqlite":
        quoted = bind.dialect.identifier_preparer.quote(table.name)
        value = conn.scalar(text(f"SELECT max(rowid) FROM {quoted}")) or 0
    elif dialect == "mysql":
        value = conn.scalar(
            text(
                "SELECT table_rows FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = :t"
            ),
            {"t": table.name},
        )
    result = None if value is None else int(value)
    cache[key] = (now + float(setting("CRM_LIST_STATS_TTL")), result)
    return result


def plan_estimate(session: Any, query: Query[Any]) -> int | None:
    """The planner's row estimate for ``query`` (PostgreSQL, MariaDB), else ``None``.

    Runs on the session's connection, not through the ORM session, so no ORM event rewrites
    the EXPLAIN: callers add the user's record rules to ``query`` themselves (``_count``).
    """
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "mysql"):
        return None
    result = session.connection().execute(_Explain(query.statement))
    if dialect == "postgresql":
        plan = result.scalar()
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])
    row = result.mappings().first()
    if row is None or row.get("rows") is None:
        return None
    return int(int(row["rows"]) * float(row.get("filtered") or 100) / 100)


def cheap_count(interface: Any, filters: Any) -> tuple[int, bool]:
    """The number of rows ``filters`` select, and whether it is an estimate.

    Exact for tables of at most ``CRM_LIST_EXACT_COUNT_MAX`` rows (FAB's own count) and when
    at most ``CRM_LIST_COUNT_CAP`` rows match (a count that stops at cap + 1, cheap when an
    index finds the matches). Otherwise an estimate, at least cap + 1, reused for
    ``CRM_LIST_STATS_TTL`` seconds for the same list (model, filters, user).
    """
    session = interface.session
    total = table_estimate(session, interface.obj.__table__)
    if total is not None and total <= int(setting("CRM_LIST_EXACT_COUNT_MAX")):
        return interface.query_count(session.query(interface.obj), filters), False
    cache, key, now = (
        _stats_cache(),
        ("estimate", *list_signature(interface, filters)),
        time.monotonic(),
    )
    hit = cache.get(key)
    if hit is not None and hit[0] > now and hit[1] is not None:
        # An estimate is reused for a while: paging through a big list would otherwise ask
        # the planner (or count to the cap) again on every page, for the same rough figure.
        return hit[1], True
    counted, estimated = _count(interface, filters, total)
    if estimated:
        if len(cache) > _MAX_CACHED:
            cache.clear()
        cache[key] = (now + float(setting("CRM_LIST_STATS_TTL")), counted)
    return counted, estimated


def _count(interface: Any, filters: Any, total: int | None) -> tuple[int, bool]:
    session = interface.session
    cap = int(setting("CRM_LIST_COUNT_CAP"))
    filtered = interface._apply_inner_all(session.query(interface.obj), filters, aliases_mapping={})
    # Count first, up to the cap: searches usually match few rows, and then this one
    # statement is the exact answer. Only lists with more matches ask for an estimate (and
    # cheap_count keeps that for a while).
    capped = filtered.with_entities(interface.get_pk()).limit(cap + 1).subquery()
    found = int(session.query(func.count()).select_from(capped).scalar() or 0)
    if found <= cap:
        return found, False
    restriction = rules.read_criteria(interface.obj)
    if restriction is not None:
        # The planner is asked through the connection, which the rules' ORM event never
        # sees: the estimate must not count records the user may not see.
        filtered = filtered.filter(restriction)
        total = None
    planned = plan_estimate(session, filtered)
    estimate = planned if planned is not None else total
    return max(estimate or 0, cap + 1), True
