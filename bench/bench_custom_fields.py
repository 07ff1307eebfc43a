"""Custom fields at scale: filter and sort on an indexed custom field, beside the same question
asked of a native column, in the same run.

    .venv/bin/python bench/bench_custom_fields.py --url sqlite:////tmp/bench.db
    .venv/bin/python bench/bench_custom_fields.py \\
        --url postgresql+psycopg2://postgres@127.0.0.1:5432/crm_bench

Load the data first with ``bench/generate.py``. The set-up (idempotent, each step timed)
defines three searchable custom fields of customers — ``grade`` (choice A-D), ``manager``
(a user) and ``staff`` (an integer) — and fills them in one ``UPDATE`` from native columns:
grade is the row's ``tier``, manager its ``owner_id`` (no key in the pool), staff a number
derived from the id. Statistics are refreshed, the fields' expression indexes built with
``crm_core.lowcode.indexes.sync_indexes`` (the ``core.custom_field_indexes`` job), and the
statistics refreshed again so the planner knows the new expressions (see the README).

Each case asks one question of a custom field and of its native twin, as ``bench_admin``
through a logged-in test client (full request), the two URLs alternating ``--repeat`` times
after a warm-up. A second table repeats the custom cases with the ``ix_cf_`` indexes dropped
(then made again); cases slower than a second there run ``--slow-repeat`` times.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Flask
from rich.table import Table
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lists import (  # noqa: E402
    Result,
    Side,
    console,
    count_statements,
    fmt,
    login,
    request,
    rest,
)
from generate import make_app  # noqa: E402

SLOW_MS = 1000  # an unindexed case slower than this per request runs --slow-repeat times
FAR_SLOWER = 3.0  # custom p95 over native p95 beyond which the custom query is explained
GRADES = ["A", "B", "C", "D"]
FIELDS: list[dict[str, Any]] = [
    {
        "name": "grade",
        "kind": "choice",
        "label_zh": "客户等级",
        "label_en": "Grade",
        "choices": [{"value": v, "label": f"{v} 级"} for v in GRADES],
    },
    {"name": "manager", "kind": "user", "label_zh": "客户经理", "label_en": "Account manager"},
    {
        "name": "staff",
        "kind": "integer",
        "label_zh": "员工人数",
        "label_en": "Staff",
        "min_value": "0",
    },
]
API, HTML = "/api/v1/customer/", "/customers/list/"


# --------------------------------------------------------------------------- set-up


@contextmanager
def step(label: str) -> Iterator[dict[str, Any]]:
    """Print ``label``, run the block, print how long it took (and what it reported)."""
    console.print(f"  {label} …", end="")
    report: dict[str, Any] = {}
    started = time.perf_counter()
    yield report
    seconds = time.perf_counter() - started
    detail = f" {report['note']}" if report.get("note") else ""
    console.print(f" {seconds:,.1f} s{detail}")
    report["seconds"] = seconds


def define_fields(app: Flask) -> list[str]:
    """The benchmark's custom fields of Customer, added where missing; the names added."""
    from crm_core.db import session
    from crm_core.lowcode.fields import FieldDefinition

    added = []
    with app.app_context():
        s = session()
        have = {
            d.name: d for d in s.query(FieldDefinition).filter(FieldDefinition.model == "Customer")
        }
        for spec in FIELDS:
            found = have.get(spec["name"])
            if found is None:
                s.add(FieldDefinition(model="Customer", searchable=True, active=True, **spec))
                added.append(spec["name"])
            elif found.kind != spec["kind"]:
                raise SystemExit(f"Customer.{spec['name']} exists as {found.kind!r}")
            elif not (found.searchable and found.active):
                found.searchable = found.active = True
                added.append(spec["name"])
        s.commit()
        app.extensions["crm_db"].session.remove()
    return added


def fill_sql(dialect: str) -> tuple[str, str]:
    """(the test "some customer has no staff value", the one UPDATE filling every customer)."""
    staff = "(CAST(id AS BIGINT) * 7919) % 5000 + 1"  # no int4 overflow on PostgreSQL
    if dialect == "postgresql":
        missing = "SELECT 1 FROM crm_customer WHERE custom ->> 'staff' IS NULL LIMIT 1"
        update = (
            "UPDATE crm_customer SET custom = "
            "(coalesce(custom, CAST('{}' AS jsonb)) - 'manager') || jsonb_strip_nulls("
            f"jsonb_build_object('grade', tier, 'manager', owner_id, 'staff', {staff}))"
        )
    else:
        missing = "SELECT 1 FROM crm_customer WHERE json_extract(custom, '$.staff') IS NULL LIMIT 1"
        # json_patch is a merge patch: a null (a pooled customer's owner) removes the key.
        update = (
            "UPDATE crm_customer SET custom = json_patch(coalesce(custom, '{}'), "
            f"json_object('grade', tier, 'manager', owner_id, 'staff', {staff}))"
        )
    return missing, update


def analyze(engine: Engine) -> None:
    """Fresh planner statistics (PostgreSQL: also the visibility map, for index-only scans)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE crm_customer"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def custom_indexes(engine: Engine) -> list[str]:
    from crm_core.lowcode.indexes import present

    return sorted(name for name, table in present(engine).items() if table == "crm_customer")


def sync(app: Flask) -> dict[str, int]:
    from crm_core.lowcode.indexes import sync_indexes

    with app.app_context():
        try:
            return sync_indexes()
        finally:
            app.extensions["crm_db"].session.remove()


def drop_custom_indexes(engine: Engine) -> list[str]:
    names = custom_indexes(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in names:
            conn.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
    return names


def set_up(app: Flask, engine: Engine) -> dict[str, Any]:
    """Fields, values, statistics and indexes, each step timed; what was done."""
    console.print("[bold]set-up[/bold]")
    done: dict[str, Any] = {}
    with step("custom fields grade, manager, staff") as report:
        added = define_fields(app)
        report["note"] = f"(added or made searchable: {', '.join(added)})" if added else "(present)"
    missing, update = fill_sql(engine.dialect.name)
    with engine.connect() as conn:
        empty = conn.execute(text(missing)).first() is not None
    if empty:
        with step("custom values of every customer (one UPDATE)") as report, engine.begin() as conn:
            report["note"] = f"({conn.execute(text(update)).rowcount:,} rows)"
        done["fill_s"] = report["seconds"]
        with step("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE") as report:
            analyze(engine)
        done["analyze_s"] = report["seconds"]
    else:
        console.print("  custom values: already filled")
    with step("indexes of searchable fields (sync_indexes)") as report:
        outcome = sync(app)
        report["note"] = f"({outcome['created']} created, {outcome['dropped']} dropped)"
    done["index_s"] = report["seconds"]
    done["indexes_created"] = outcome["created"]
    return done


# --------------------------------------------------------------------------- cases


@dataclass
class Pair:
    """One question asked of a custom field and of its native twin."""

    label: str
    custom: list[str]
    native: list[str]
    twin: str  # the native question, as shown in the table
    native_index: str  # what the native column is indexed by
    same_rows: bool = False  # both answer the same question: compare the ids


def equal_filter_index(app: Flask, column: str) -> int:
    """The position of "equal" among the customer list screen's filters of ``column``
    (``_flt_<index>_<column>``)."""
    from flask_appbuilder.models.sqla.filters import FilterEqual

    views = app.appbuilder.baseviews  # type: ignore[attr-defined]
    view = next(v for v in views if type(v).__name__ == "CustomerView")
    filters = view._filters._search_filters[column]
    return next(i for i, f in enumerate(filters) if isinstance(f, FilterEqual))


def sample_owners(app: Flask, n: int, seed: int) -> list[int]:
    """``n`` sales reps that own customers."""
    from crm_core.db import session
    from crm_core.org.models import UserProfile

    with app.app_context():
        ids = sorted(row[0] for row in session().query(UserProfile.user_id))
        app.extensions["crm_db"].session.remove()
    return random.Random(seed).sample(ids, min(n, len(ids)))


def pairs(app: Flask, owners: list[int]) -> list[Pair]:
    def flt(column: str, value: Any) -> dict[str, Any]:
        return {"col": column, "opr": "eq", "value": value}

    by_staff = {"order_column": "custom__staff", "order_direction": "desc"}
    by_updated = {"order_column": "updated_at", "order_direction": "desc"}
    grade_html = equal_filter_index(app, "custom__grade")
    tier_html = equal_filter_index(app, "tier")
    return [
        Pair(
            "REST filter manager = a rep",
            [rest(API, {"filters": [flt("custom__manager", o)]}) for o in owners],
            [rest(API, {"filters": [flt("owner_id", o)]}) for o in owners],
            "owner_id = a rep",
            "owner_id",
            same_rows=True,
        ),
        Pair(
            "REST filter grade = A..D",
            [rest(API, {"filters": [flt("custom__grade", g)]}) for g in GRADES],
            [rest(API, {"filters": [flt("tier", g)]}) for g in GRADES],
            "tier = A..D",
            "none (tier has no index)",
            same_rows=True,
        ),
        Pair(
            "REST sort staff desc",
            [rest(API, by_staff)],
            [rest(API, by_updated)],
            "sort updated_at desc",
            "(active, updated_at, id)",
        ),
        Pair(
            "REST grade = A..D, sort staff desc",
            [rest(API, {"filters": [flt("custom__grade", g)], **by_staff}) for g in GRADES],
            [rest(API, {"filters": [flt("tier", g)], **by_updated}) for g in GRADES],
            "tier = A..D, sort updated_at desc",
            "(active, updated_at, id); tier none",
        ),
        Pair(
            "HTML list, grade = A..D",
            [f"{HTML}?_flt_{grade_html}_custom__grade={quote(g)}" for g in GRADES],
            [f"{HTML}?_flt_{tier_html}_tier={quote(g)}" for g in GRADES],
            "tier = A..D (newest first)",
            "(active, updated_at, id); tier none",
        ),
    ]


# --------------------------------------------------------------------------- measuring


@dataclass
class Timed(Result):
    """Timings of one case, with the statements of every measured request: lists whose
    count is estimated keep the estimate for ``CRM_LIST_STATS_TTL`` (a minute), so some
    requests of a case count and others do not."""

    per_request: list[int] = field(default_factory=list)

    def add(self, ms: float, statements: int) -> None:
        self.times.append(ms)
        self.per_request.append(statements)
        self.statements = statements

    def stmts(self) -> str:
        low, high = min(self.per_request), max(self.per_request)
        return f"{low}" if low == high else f"{low}-{high}"


def forget_counts(app: Flask) -> None:
    """Empty the app's cache of count estimates (kept a minute per list and user), so that
    every case is measured alike: the first measured request of each distinct URL counts."""
    app.extensions.get("crm_listing_stats", {}).clear()


def measure_pair(side: Side, pair: Pair, repeat: int, warmup: int) -> tuple[Timed, Timed]:
    """Both URLs of a pair, alternating (and alternating which goes first), so that load
    from other processes falls on both alike."""
    custom, native = Timed(), Timed()
    for n in range(warmup + repeat):
        if n == warmup:
            forget_counts(side.app)
        order = [(custom, pair.custom), (native, pair.native)]
        for result, urls in order if n % 2 == 0 else order[::-1]:
            ms, stmts = request(side, urls[n % len(urls)])
            if n >= warmup:
                result.add(ms, stmts)
    return custom, native


def measure_alone(side: Side, urls: list[str], repeat: int, warmup: int, slow: int) -> Timed:
    """One case alone. Its first request probes: when slower than ``SLOW_MS`` it counts,
    and ``slow`` requests are made in all (no warm-up); else it is the first warm-up."""
    result = Timed()
    forget_counts(side.app)
    ms, stmts = request(side, urls[0])
    if ms > SLOW_MS:
        result.note = f"n={slow}"
        result.add(ms, stmts)
        for n in range(1, slow):
            result.add(*request(side, urls[n % len(urls)]))
        return result
    if warmup == 0:
        result.add(ms, stmts)
    for n in range(1, warmup + repeat):
        if n == warmup:
            forget_counts(side.app)
        ms, stmts = request(side, urls[n % len(urls)])
        if n >= warmup:
            result.add(ms, stmts)
    return result


def listed(side: Side, url: str) -> tuple[list[int], str]:
    """The ids a REST list URL answers, and its count ("~" when estimated)."""
    data = side.client.get(url).get_json()
    return list(data["ids"]), ("~" if data.get("count_is_estimate") else "") + f"{data['count']:,}"


def same_rows(side: Side, pair: Pair) -> tuple[bool | None, str]:
    """Whether every custom URL lists the ids its native twin lists (REST pairs asking the
    same question), and the counts both report for the first URL (REST pairs)."""
    if "/api/" not in pair.custom[0]:
        return None, ""
    answers = [
        (listed(side, c), listed(side, n)) for c, n in zip(pair.custom, pair.native, strict=True)
    ]
    (_ids, custom_count), (_ids, native_count) = answers[0]
    counts = f"{custom_count} / {native_count}"
    if not pair.same_rows:
        return None, counts
    return all(mine[0] == theirs[0] for mine, theirs in answers), counts


# --------------------------------------------------------------------------- explaining


@dataclass
class Logged:
    """Statements one request ran, with their parameters and milliseconds."""

    rows: list[tuple[str, Any, float]] = field(default_factory=list)
    on: bool = False


def statement_log(engine: Engine) -> Logged:
    log = Logged()

    @event.listens_for(engine, "before_cursor_execute")
    def _before(
        conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _m: Any
    ) -> None:
        conn.info["bench_t"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(
        conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, _m: Any
    ) -> None:
        if log.on:
            ms = (time.perf_counter() - conn.info.pop("bench_t", time.perf_counter())) * 1000
            log.rows.append((statement, params, ms))

    return log


def explain(engine: Engine, statement: str, params: Any) -> str:
    """The plan of ``statement`` as the DBAPI ran it: PostgreSQL ``EXPLAIN (ANALYZE,
    BUFFERS)``, SQLite ``EXPLAIN QUERY PLAN``."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            lines = [row[0] for row in cursor.fetchall()]
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
            lines = [f"{'  ' * (parent > 0)}{detail}" for _id, parent, _n, detail in cursor]
        raw.rollback()
        return "\n".join(lines)
    finally:
        raw.close()


def customer_statements(side: Side, log: Logged, url: str) -> list[tuple[str, Any, float]]:
    """The statements reading customers that one request to ``url`` ran (rows and count;
    not the planner's estimate), with their parameters and milliseconds (on SQLite the
    time to the first row: a sort shows, a scan read row by row does not)."""
    forget_counts(side.app)  # show the count statements too
    log.rows, log.on = [], True
    try:
        request(side, url)
    finally:
        log.on = False
    return [
        row
        for row in log.rows
        if "FROM crm_customer" in row[0] and not row[0].startswith("EXPLAIN")
    ]


def short(statement: str) -> str:
    """A statement with its outermost select list left out."""
    return re.sub(r"^SELECT .*?\nFROM", "SELECT … FROM", statement, count=1, flags=re.S)


def show_plans(
    side: Side, engine: Engine, log: Logged, label: str, urls: list[str]
) -> list[dict[str, Any]]:
    """Print the customer statements of a request to ``urls[0]`` and their plans."""
    out = []
    console.print(f"[bold]{label}[/bold]")
    for statement, params, ms in customer_statements(side, log, urls[0]):
        plan = explain(engine, statement, params)
        console.print(f"{ms:,.1f} ms: {short(statement)}  {params}", markup=False, highlight=False)
        console.print(plan, markup=False, highlight=False)
        console.print()
        out.append({"case": label, "statement": statement, "ms": ms, "plan": plan})
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--slow-repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--explain", action="store_true", help="print every custom case's plan")
    parser.add_argument("--skip-unindexed", action="store_true")
    parser.add_argument(
        "--rebuild-indexes",
        action="store_true",
        help="drop the custom fields' indexes first, so that the set-up times their build",
    )
    args = parser.parse_args(argv)

    app = make_app(args.url)
    with app.app_context():
        engine: Engine = app.extensions["crm_db"].engine
    with engine.connect() as conn:
        total = int(conn.scalar(text("SELECT count(*) FROM crm_customer")) or 0)
    if args.rebuild_indexes:
        console.print(f"dropped {', '.join(drop_custom_indexes(engine)) or 'no index'}")
    setup = set_up(app, engine)
    side = Side(app, login(app), count_statements(engine))
    log = statement_log(engine)
    request(side, API)  # the app reads the new definitions before this request
    owners = sample_owners(app, 10, args.seed)
    cases = pairs(app, owners)
    console.print(
        f"[bold]{engine.dialect.name}[/bold] {engine.url.render_as_string()}: {total:,} "
        f"customers; {args.repeat} requests per case and side, after {args.warmup} warm-up; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )

    table = Table(
        title=f"Custom fields (indexed) beside native columns, {engine.dialect.name}, "
        f"{total:,} customers (ms)"
    )
    for column in ("case", "custom p50", "custom p95", "custom max", "stmts"):
        table.add_column(column, justify="left" if column == "case" else "right")
    table.add_column("native twin")
    for column in ("native p50", "native p95", "native max", "stmts", "custom/native p95"):
        table.add_column(column, justify="right")
    table.add_column("native index")
    table.add_column("count custom / native")
    table.add_column("same rows")
    figures: dict[str, Any] = {
        "dialect": engine.dialect.name,
        "customers": total,
        "setup": setup,
        "load_average": os.getloadavg()[0],
        "indexed": [],
        "unindexed": [],
        "plans": [],
    }
    indexed: dict[str, Timed] = {}
    far_slower: list[Pair] = []
    for pair in cases:
        custom, native = measure_pair(side, pair, args.repeat, args.warmup)
        indexed[pair.label] = custom
        same, counts = same_rows(side, pair)
        ratio = custom.pct(95) / native.pct(95)
        if ratio > FAR_SLOWER:
            far_slower.append(pair)
        table.add_row(
            pair.label,
            fmt(custom.pct(50)),
            fmt(custom.pct(95)),
            fmt(max(custom.times)),
            custom.stmts(),
            pair.twin,
            fmt(native.pct(50)),
            fmt(native.pct(95)),
            fmt(max(native.times)),
            native.stmts(),
            f"{ratio:,.1f}×" if ratio <= FAR_SLOWER else f"[red]{ratio:,.1f}×[/red]",
            pair.native_index,
            counts,
            {True: "yes", False: "[red]no[/red]", None: ""}[same],
        )
        figures["indexed"].append(
            {
                "case": pair.label,
                "native_twin": pair.twin,
                "custom": {"p50": custom.pct(50), "p95": custom.pct(95), "max": max(custom.times),
                           "statements": custom.stmts()},
                "native": {"p50": native.pct(50), "p95": native.pct(95), "max": max(native.times),
                           "statements": native.stmts()},
                "counts": counts,
                "same_rows": same,
            }
        )  # fmt: skip
        console.print(
            f"  {pair.label}: custom p95 {fmt(custom.pct(95))} ms, "
            f"native p95 {fmt(native.pct(95))} ms"
        )
    console.print(table)

    explained = cases if args.explain else far_slower
    if explained:
        console.print(
            "[bold]plans[/bold] of the custom cases"
            + ("" if args.explain else f" more than {FAR_SLOWER:.0f}× slower than their twin")
        )
    for pair in explained:
        figures["plans"] += show_plans(side, engine, log, pair.label, pair.custom)

    if not args.skip_unindexed:
        figures["unindexed"] = unindexed(app, engine, side, cases, indexed, args)
    figures["load_average_end"] = os.getloadavg()[0]
    console.print(f"load average at the end: {figures['load_average_end']:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, ensure_ascii=False))


def unindexed(
    app: Flask,
    engine: Engine,
    side: Side,
    cases: list[Pair],
    indexed: dict[str, Timed],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """The custom cases again without the ``ix_cf_`` indexes, then the indexes made again."""
    dropped = drop_custom_indexes(engine)
    console.print(f"dropped {', '.join(dropped) or 'no index'}")
    table = Table(
        title=f"Custom fields without their indexes, {engine.dialect.name} (ms; slower than "
        f"{SLOW_MS:,} ms: {args.slow_repeat} requests)"
    )
    for column in ("case", "indexed p50", "indexed p95", "unindexed p50", "unindexed p95"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for column in ("unindexed max", "stmts", "unindexed/indexed p95"):
        table.add_column(column, justify="right")
    out = []
    try:
        for pair in cases:
            bare = measure_alone(side, pair.custom, args.repeat, args.warmup, args.slow_repeat)
            with_index = indexed[pair.label]
            table.add_row(
                pair.label,
                fmt(with_index.pct(50)),
                fmt(with_index.pct(95)),
                fmt(bare.pct(50)),
                fmt(bare.pct(95)) + (f" ({bare.note})" if bare.note else ""),
                fmt(max(bare.times)),
                bare.stmts(),
                f"{bare.pct(95) / with_index.pct(95):,.1f}×",
            )
            out.append(
                {
                    "case": pair.label,
                    "p50": bare.pct(50),
                    "p95": bare.pct(95),
                    "max": max(bare.times),
                    "n": len(bare.times),
                    "statements": bare.stmts(),
                }
            )
            console.print(f"  {pair.label} without index: p95 {fmt(bare.pct(95))} ms")
    finally:
        started = time.perf_counter()
        outcome = sync(app)
        console.print(
            f"sync_indexes made {outcome['created']} indexes again in "
            f"{time.perf_counter() - started:,.1f} s"
        )
    console.print(table)
    return out


if __name__ == "__main__":
    main()
