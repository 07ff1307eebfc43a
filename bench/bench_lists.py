"""Customer lists and search at scale: the CRM beside a naive Flask-AppBuilder app, same data,
same process, same run.

    .venv/bin/python bench/bench_lists.py --url sqlite:////tmp/bench.db
    .venv/bin/python bench/bench_lists.py \\
        --url postgresql+psycopg2://postgres@127.0.0.1:5432/crm_bench

Load the data first with ``bench/generate.py``. Two apps are built on the database: the CRM
(``crm_core.create_app``) and a plain Flask-AppBuilder app with a ``ModelView`` and a
``ModelRestApi`` over the same ``Customer`` model, FAB defaults, and the same list columns, base
filter (active) and order as the CRM's screens, so both answer the same question. Each case is
requested through a logged-in test client (full request: routing, permission checks, query,
serialisation, templates), ``--repeat`` times after a warm-up; prefix searches rotate through
prefixes taken from the data. Naive cases that take seconds run ``--slow-repeat`` times.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import prison
from flask import Flask
from flask.testing import FlaskClient
from rich.console import Console
from rich.table import Table
from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import ADMIN_PASSWORD, ADMIN_USER, make_app  # noqa: E402

console = Console(width=200)
SLOW_MS = 1000  # a naive case slower than this per request runs --slow-repeat times


def make_naive_app(url: str) -> Flask:
    """A plain Flask-AppBuilder app over the CRM's Customer model: ModelView + ModelRestApi."""
    from flask_appbuilder import AppBuilder, ModelRestApi, ModelView
    from flask_appbuilder.models.sqla.base import SQLA
    from flask_appbuilder.models.sqla.filters import FilterEqual
    from flask_appbuilder.models.sqla.interface import SQLAInterface

    from crm_core.customers.api import CustomerApi
    from crm_core.customers.models import Customer
    from crm_core.customers.views import CustomerView

    class NaiveCustomerView(ModelView):
        datamodel = SQLAInterface(Customer)
        route_base = "/naive/customers"
        page_size = 25  # as the CRM's, so both list the same rows
        list_columns = CustomerView.list_columns
        search_columns = CustomerView.search_columns
        order_columns = CustomerView.order_columns
        base_order = CustomerView.base_order
        base_filters = [["active", FilterEqual, True]]

    class NaiveCustomerApi(ModelRestApi):
        resource_name = "naive_customer"
        datamodel = SQLAInterface(Customer)
        allow_browser_login = True
        page_size = 25
        list_columns = CustomerApi.list_columns
        search_columns = CustomerApi.search_columns
        order_columns = CustomerApi.order_columns
        base_order = CustomerApi.base_order
        base_filters = [["active", FilterEqual, True]]

    app = Flask("naive_fab")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url,
        SECRET_KEY="bench-secret",
        WTF_CSRF_ENABLED=False,
        FAB_CREATE_DB=False,  # the tables exist; the metadata is shared with the CRM
        FAB_UPDATE_PERMS=True,  # adds the naive views' permissions to Admin
        FAB_API_MAX_PAGE_SIZE=100,
        AUTH_ROLE_ADMIN="Admin",
    )
    with app.app_context():
        db = SQLA()
        db.init_app(app)
        appbuilder = AppBuilder()
        appbuilder.init_app(app, db.session)
        appbuilder.add_view(NaiveCustomerView, "Naive customers")
        appbuilder.add_api(NaiveCustomerApi)
        engine = db.engine
    app.extensions["bench_engine"] = engine
    return app


def login(app: Flask, username: str = ADMIN_USER) -> FlaskClient:
    """A test client logged in as the benchmark's administrator (or one of its reps)."""
    client = app.test_client()
    response = client.post("/login/", data={"username": username, "password": ADMIN_PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"login failed on {app.name}: run bench/generate.py first")
    return client


def count_statements(engine: Any) -> list[int]:
    """A one-element counter of the SQL statements ``engine`` runs."""
    counter = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        counter[0] += 1

    return counter


@dataclass
class Side:
    """One app under test: its client and statement counter."""

    app: Flask
    client: FlaskClient
    statements: list[int]


@dataclass
class Result:
    """Timings (ms) of one case on one side."""

    times: list[float] = field(default_factory=list)
    statements: float = 0.0
    note: str = ""

    def pct(self, p: float) -> float:
        ordered = sorted(self.times)
        if not ordered:
            return float("nan")
        k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[k]


def request(side: Side, url: str) -> tuple[float, int]:
    """One GET (200 expected): milliseconds and SQL statements."""
    before = side.statements[0]
    t = time.perf_counter()
    response = side.client.get(url)
    elapsed = (time.perf_counter() - t) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{url} -> {response.status_code}: {response.get_data(True)[:300]}")
    return elapsed, side.statements[0] - before


def measure(
    ours: Side,
    case: Case,
    naive: Side | None,
    repeat: int,
    warmup: int,
    slow_repeat: int,
) -> tuple[Result, Result]:
    """Time one case on both apps, their requests interleaved so that load from other
    processes on the machine falls on both alike. A naive case slower than ``SLOW_MS`` runs
    ``slow_repeat`` times (its first, probing request counts, no warm-up)."""
    from crm_core.web import anchors

    our_urls, naive_urls = case.ours, case.naive
    mine, theirs = Result(), Result()
    naive_runs = repeat
    if naive is not None:
        first, stmts = request(naive, naive_urls[0])
        if first > SLOW_MS:
            naive_runs = slow_repeat - 1
            theirs.times.append(first)
            theirs.statements = stmts
            theirs.note = f"n={slow_repeat}"
    for n in range(warmup + repeat):
        if case.cold:
            with ours.app.app_context():
                anchors.forget()
        if case.after:
            request(ours, case.after)
        ms, stmts = request(ours, our_urls[n % len(our_urls)])
        if n >= warmup:
            mine.times.append(ms)
            mine.statements = stmts
        if naive is None:
            continue
        k = n - warmup
        if theirs.note and 0 <= k < naive_runs:
            ms, stmts = request(naive, naive_urls[(k + 1) % len(naive_urls)])
        elif not theirs.note:
            ms, stmts = request(naive, naive_urls[n % len(naive_urls)])
        else:
            continue
        if theirs.note or n >= warmup:
            theirs.times.append(ms)
            theirs.statements = stmts
    return mine, theirs


def rest(base: str, q: dict[str, Any] | None = None, **params: Any) -> str:
    """A REST list URL with a rison ``q`` and plain query arguments."""
    args = [f"q={quote(prison.dumps(q))}"] if q else []
    args += [f"{k}={quote(str(v))}" for k, v in params.items()]
    return base + ("?" + "&".join(args) if args else "")


def sample_inputs(app: Flask, n: int, seed: int, deep_page: int) -> dict[str, Any]:
    """Prefixes people would type, taken from random customers, and a deep keyset cursor."""
    from crm_core.customers.models import Customer
    from crm_core.db import session
    from crm_core.web.listing import Position, encode_cursor

    rnd = random.Random(seed)
    with app.app_context():
        s = session()
        top = s.query(Customer.id).order_by(Customer.id.desc()).limit(1).scalar() or 0
        rows: list[Any] = []
        while len(rows) < n:
            probe = rnd.randrange(1, top + 1)
            row = s.query(Customer).filter(Customer.id >= probe, Customer.active.is_(True))
            row = row.order_by(Customer.id).first()
            if row is not None and row.kind == "company" and row.phone:
                rows.append(row)
        deep = (
            s.query(Customer.name, Customer.id)
            .filter(Customer.active.is_(True))
            .order_by(Customer.name, Customer.id)
            .offset(deep_page * 25 - 1)
            .limit(1)
            .one()
        )
        inputs = {
            # City + two brand characters, e.g. 上海恒信: a user looking for one company.
            "names": [r.name[: len(r.city) + 2] for r in rows],
            # "C" + 5 digits: about ten codes of a million share such a prefix.
            "codes": [r.code[:6] for r in rows],
            # The first 7 digits as typed locally (1381234); the naive app needs the stored
            # form, as its users would have to type it.
            "phones_typed": [r.phone[3:10] for r in rows],
            "phones_stored": [r.phone[:10] for r in rows],
            # After the last row of page deep_page - 1: the cursor of FAB's page deep_page.
            "deep_cursor": encode_cursor(Position("name", "asc", key=(deep.name, deep.id))),
            "deep_page": deep_page,
        }
        s.rollback()
    return inputs


@dataclass
class Case:
    """One measured request kind, on both apps."""

    label: str
    target: float  # ms, p95
    ours: list[str]
    naive: list[str]
    cold: bool = False  # forget remembered page anchors before each request
    after: str | None = None  # request this (untimed) first: "next page" after it


def cases(inputs: dict[str, Any]) -> list[Case]:
    """Every measured case."""
    api, naive_api = "/api/v1/customer/", "/api/v1/naive_customer/"
    html, naive_html = "/customers/list/", "/naive/customers/list/"
    names, codes = inputs["names"], inputs["codes"]
    by_name = {"order_column": "name", "order_direction": "asc"}
    page = inputs["deep_page"]
    deep = {**by_name, "page": page, "page_size": 25}
    after = {**by_name, "page": page + 1, "page_size": 25}

    def sw(column: str, values: list[str], base: str) -> list[str]:
        return [rest(base, {"filters": [{"col": column, "opr": "sw", "value": v}]}) for v in values]

    def html_page(base: str, view: str, n: int) -> str:
        return f"{base}?page_{view}={n}"

    return [
        Case("REST first page", 15, [api], [naive_api]),
        Case(f"REST page {page:,} by name (page=, cold)", 50, [rest(api, deep)],
             [rest(naive_api, deep)], cold=True),
        Case(f"REST page {page + 1:,} after {page:,} (page=)", 50, [rest(api, after)],
             [rest(naive_api, after)], cold=True, after=rest(api, deep)),
        Case("REST deep page by name (cursor)", 20,
             [rest(api, by_name, cursor=inputs["deep_cursor"], page_size=25)],
             [rest(naive_api, deep)]),
        Case("REST name prefix", 20, sw("name", names, api), sw("name", names, naive_api)),
        Case("REST code prefix", 20, sw("code", codes, api), sw("code", codes, naive_api)),
        Case("REST phone prefix", 50, sw("phone", inputs["phones_typed"], api),
             sw("phone", inputs["phones_stored"], naive_api)),
        Case("HTML list first page", 40, [html], [naive_html]),
        Case(f"HTML page {page:,} (cold)", 50, [html_page(html, "CustomerView", page)],
             [html_page(naive_html, "NaiveCustomerView", page)], cold=True),
        Case(f"HTML page {page + 1:,} after {page:,}", 50,
             [html_page(html, "CustomerView", page + 1)],
             [html_page(naive_html, "NaiveCustomerView", page + 1)], cold=True,
             after=html_page(html, "CustomerView", page)),
        Case("HTML name prefix search", 40,
             [html + "?_flt_0_name=" + quote(v) for v in names],
             [naive_html + "?_flt_0_name=" + quote(v) for v in names]),
    ]  # fmt: skip


def same_rows(ours: Side, naive: Side, our_url: str, naive_url: str) -> bool | None:
    """Whether both apps list the same ids for a REST case (None for HTML cases)."""
    if "/api/" not in our_url:
        return None
    a = ours.client.get(our_url).get_json()
    b = naive.client.get(naive_url).get_json()
    return bool(a["ids"] == b["ids"] or (sorted(a["ids"]) == sorted(b["ids"]) and "sw" in our_url))


def fmt(value: float) -> str:
    return "-" if value != value else f"{value:,.1f}"  # noqa: PLR0124 - NaN check


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--slow-repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--deep-page", type=int, default=20_000, help="the deep page measured")
    args = parser.parse_args(argv)

    ours_app = make_app(args.url)
    with ours_app.app_context():
        engine = ours_app.extensions["crm_db"].engine
        total = (
            ours_app.extensions["crm_db"]
            .session.execute(text("SELECT count(*) FROM crm_customer"))
            .scalar()
        )
        ours_app.extensions["crm_db"].session.remove()
    with ours_app.app_context():
        from crm_core.web.anchor_job import refresh_list_anchors

        started = time.perf_counter()
        refreshed = refresh_list_anchors()
        anchor_seconds = time.perf_counter() - started
        ours_app.extensions["crm_db"].session.remove()
    ours = Side(ours_app, login(ours_app), count_statements(engine))
    naive: Side | None = None
    if not args.skip_naive:
        naive_app = make_naive_app(args.url)
        naive_engine = naive_app.extensions["bench_engine"]
        naive = Side(naive_app, login(naive_app), count_statements(naive_engine))
    deep_page = min(args.deep_page, int(total or 0) // 25 // 2)
    inputs = sample_inputs(ours_app, max(args.repeat, 10), args.seed, deep_page)
    console.print(
        f"[bold]{engine.dialect.name}[/bold] {engine.url.render_as_string()}: "
        f"{total:,} customers; {args.repeat} requests per case (naive cases slower than "
        f"{SLOW_MS:,} ms: {args.slow_repeat}), after {args.warmup} warm-up; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    console.print(
        f"the core.list_anchors job stored {refreshed['anchors']:,} anchors of "
        f"{refreshed['lists']} lists in {anchor_seconds:.1f} s"
    )

    table = Table(title=f"Customer lists, {engine.dialect.name}, {total:,} customers (ms)")
    for column in ("case", "ours p50", "ours p95", "ours max", "stmts"):
        table.add_column(column, justify="right" if column != "case" else "left")
    for column in ("naive p50", "naive p95", "naive max", "stmts", "naive/ours p95"):
        table.add_column(column, justify="right")
    table.add_column("target p95")
    table.add_column("same rows")
    figures: list[dict[str, Any]] = []
    for case in cases(inputs):
        label, target = case.label, case.target
        mine, theirs = measure(ours, case, naive, args.repeat, args.warmup, args.slow_repeat)
        same = same_rows(ours, naive, case.ours[0], case.naive[0]) if naive else None
        p95, n95 = mine.pct(95), theirs.pct(95)
        ok = "[green]✓[/green]" if p95 <= target else "[red]✗[/red]"
        table.add_row(
            label,
            fmt(mine.pct(50)),
            fmt(p95),
            fmt(max(mine.times)),
            f"{mine.statements:.0f}",
            fmt(theirs.pct(50)),
            fmt(n95) + (f" ({theirs.note})" if theirs.note else ""),
            fmt(max(theirs.times)) if theirs.times else "-",
            f"{theirs.statements:.0f}" if theirs.times else "-",
            f"{n95 / p95:,.1f}×" if theirs.times else "-",
            f"≤ {target} {ok}",
            {True: "yes", False: "[red]no[/red]", None: ""}[same],
        )
        figures.append(
            {
                "case": label,
                "target_ms": target,
                "ours": {"p50": mine.pct(50), "p95": p95, "max": max(mine.times)},
                "naive": {"p50": theirs.pct(50), "p95": n95, "n": len(theirs.times)}
                if theirs.times
                else None,
                "same_rows": same,
            }
        )
        console.print(f"  {label}: ours p95 {fmt(p95)} ms, naive p95 {fmt(n95)} ms")
    console.print(table)
    console.print(deep_page_strategies(ours_app, ours, args.repeat, args.warmup, deep_page))
    console.print(rules_cost(ours_app, ours, inputs, args.repeat, args.warmup))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, ensure_ascii=False))


def rules_cost(app: Flask, admin: Side, inputs: dict[str, Any], repeat: int, warmup: int) -> Table:
    """The same requests as a sales rep (record rules: own customers and the pool) and as the
    administrator (no rules), interleaved."""
    rep = Side(app, login(app, "rep001"), admin.statements)
    table = Table(title="Record rules: a rep (own customers + pool) beside the admin (ms)")
    for column in ("case", "rep p50", "rep p95", "stmts", "admin p50", "admin p95", "stmts"):
        table.add_column(column, justify="right" if column != "case" else "left")
    api, html = "/api/v1/customer/", "/customers/list/"
    prefixes = [
        rest(api, {"filters": [{"col": "name", "opr": "sw", "value": v}]}) for v in inputs["names"]
    ]
    by_name = {"order_column": "name", "order_direction": "asc", "page": 200, "page_size": 25}
    variants = [
        Case("REST first page", 50, [api], [api]),
        Case("REST name prefix", 50, prefixes, prefixes),
        Case("REST page 200 by name", 50, [rest(api, by_name)], [rest(api, by_name)], cold=True),
        Case("HTML list first page", 50, [html], [html]),
    ]
    for case in variants:
        mine, theirs = measure(rep, case, admin, max(repeat // 2, 5), warmup, 0)
        table.add_row(
            case.label,
            fmt(mine.pct(50)),
            fmt(mine.pct(95)),
            f"{mine.statements:.0f}",
            fmt(theirs.pct(50)),
            fmt(theirs.pct(95)),
            f"{theirs.statements:.0f}",
        )
    return table


def deep_page_strategies(app: Flask, ours: Side, repeat: int, warmup: int, page: int) -> Table:
    """A deep page by FAB's page argument with neither remembered nor stored anchors, read
    with a deferred join and with a plain OFFSET."""
    table = Table(
        title=f"Deep pages (page {page:,} of 25 rows): deferred join vs OFFSET, no anchors (ms)"
    )
    for column in ("case", "deferred p50", "deferred p95", "offset p50", "offset p95"):
        table.add_column(column, justify="right" if column != "case" else "left")
    by_name = {"order_column": "name", "order_direction": "asc", "page": page, "page_size": 25}
    by_id = {"order_column": "id", "order_direction": "asc", "page": page, "page_size": 25}
    variants: list[tuple[str, Callable[[], list[str]]]] = [
        ("REST by name", lambda: [rest("/api/v1/customer/", by_name)]),
        ("REST by id", lambda: [rest("/api/v1/customer/", by_id)]),
        ("HTML newest first", lambda: [f"/customers/list/?page_CustomerView={page}"]),
    ]
    app.config["CRM_LIST_ANCHOR_STEP"] = 10**12  # no stored anchor is near enough
    for label, urls in variants:
        row = [label]
        for strategy in ("deferred", "offset"):
            app.config["CRM_LIST_DEEP_PAGES"] = strategy
            case = Case(label, 50, urls(), [], cold=True)
            result, _ = measure(ours, case, None, max(repeat // 2, 5), warmup, 0)
            row += [fmt(result.pct(50)), fmt(result.pct(95))]
        table.add_row(*row)
    app.config["CRM_LIST_DEEP_PAGES"] = "deferred"
    app.config.pop("CRM_LIST_ANCHOR_STEP")
    return table


if __name__ == "__main__":
    main()
