"""Importing a company's old customer list: rows per second with every check, beside a raw
``executemany`` of the same rows in the same run.

    .venv/bin/python bench/bench_import.py --url sqlite:////tmp/bench_import.db
    .venv/bin/python bench/bench_import.py \\
        --url postgresql+psycopg2://postgres@127.0.0.1:5432/crm_bench_import

The database is made afresh (file removed, or database dropped and created), migrated, and
given ``--existing`` customers (default 20,000) and a blocking duplicate rule on the phone. The
file is a GBK CSV with Chinese headers (客户编号, 客户名称, 手机, 邮箱, 省份, 城市, 行业, 来源,
负责人) of ``--rows`` rows (default 100,000): 2 % invalid (no name, a bad phone, a bad e-mail,
an unknown owner, in turn) and 3 % with the phone of an existing customer under a new code.

Measured, each as rows per second of the whole file:

- ``check``: the dry run (``crm_core.data.imports.engine.check_job``), every row checked;
- ``import``: the import itself, keyed by 客户编号 (upsert): checks, duplicate rules against
  the database and the file, record rules, writes, audit entries and domain events;
- ``again``: the same file imported a second time (every row matched, nothing written);
- ``raw executemany``: the rows the import wrote, as already-clean dicts, inserted with Core
  ``executemany`` in batches of the same size into a copy of the customer table with the
  same indexes, in one transaction: what the database costs for the records alone, with no
  check, audit or event;
- ``database floor``: everything the import wrote (the customers, their audit entries and
  their events) written again into copies of the three tables with their indexes, in the
  same batches each committed as the import commits them, the fastest way the driver takes
  rows (``COPY`` on PostgreSQL, the driver's ``executemany`` of ready tuples elsewhere): what
  the import would cost if checking and building the rows took no time at all.

The run checks the outcome too: the import adds exactly the valid rows, refuses the invalid
and the duplicates naming each, and the second run adds nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import MetaData, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

console = Console()
CITIES = [("浙江", "杭州"), ("上海", "上海"), ("广东", "深圳"), ("江苏", "苏州"), ("北京", "北京")]
INDUSTRIES = ["制造业", "批发零售", "信息技术", "物流", "建筑"]
SOURCES = ["展会", "官网", "老客户介绍", "电话营销"]
BRANDS = "恒信华东精密瑞丰新世纪宏达永盛金鼎天成博远中科"
HEADER = ["客户编号", "客户名称", "手机", "邮箱", "省份", "城市", "行业", "来源", "负责人"]


def fresh_database(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return url
    server = parsed.set(database="postgres" if parsed.get_backend_name() == "postgresql" else "")
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if parsed.get_backend_name() == "postgresql":
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
            conn.execute(
                text(f"CREATE DATABASE \"{parsed.database}\" ENCODING 'UTF8' TEMPLATE template0")
            )
        else:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{parsed.database}`"))
            conn.execute(text(f"CREATE DATABASE `{parsed.database}` CHARACTER SET utf8mb4"))
    engine.dispose()
    return url


def mobile(n: int) -> str:
    return f"139{n:08d}"


def make_file(path: Path, rows: int, existing: int, seed: int) -> dict[str, int]:
    """The CSV; returns how many rows of each kind it holds."""
    rng = random.Random(seed)
    kinds = {"valid": 0, "invalid": 0, "duplicate": 0}
    with path.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            province, city = rng.choice(CITIES)
            brand = "".join(rng.sample(BRANDS, 2))
            row = [
                f"N{i:08d}",
                f"{city}{brand}{i}号贸易有限公司",
                mobile(50_000_000 + i),
                f"buyer{i}@example.cn",
                province,
                city,
                rng.choice(INDUSTRIES),
                rng.choice(SOURCES),
                "bench_rep",
            ]
            roll = i % 100
            if roll < 2:  # 2 % invalid, four kinds in turn
                kind = (i // 100) % 4
                if kind == 0:
                    row[1] = ""
                elif kind == 1:
                    row[2] = "12345"
                elif kind == 2:
                    row[3] = "not-an-address"
                else:
                    row[8] = "nobody"
                kinds["invalid"] += 1
            elif roll < 5:  # 3 % duplicates of existing customers, by phone
                row[2] = mobile(rng.randrange(existing))
                kinds["duplicate"] += 1
            else:
                kinds["valid"] += 1
            writer.writerow(row)
    return kinds


def setup(app: Any, existing: int) -> None:
    from crm_core.cli.db import upgrade_all
    from crm_core.cli.users import ensure_user
    from crm_core.customers.models import Customer
    from crm_core.db import session, utcnow
    from crm_core.lowcode.duplicates import DuplicateRule

    with app.app_context():
        upgrade_all()
        ensure_user("bench_admin", "Bench-pass-1", "bench_admin@example.cn", "Admin", first="admin")
        ensure_user("bench_rep", "Bench-pass-1", "bench_rep@example.cn", "Sales Rep", first="rep")
        now = utcnow()
        rows = [
            {
                "code": f"E{n:08d}",
                "name": f"老客户{n}号有限公司",
                "kind": "company",
                "phone": "+86" + mobile(n),
                "active": True,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(existing)
        ]
        connection = session().connection()
        for start in range(0, len(rows), 5000):
            connection.execute(insert(Customer.__table__), rows[start : start + 5000])
        session().add(
            DuplicateRule(
                model="Customer", name="电话相同", field="phone", method="exact", action="block"
            )
        )
        session().commit()


def _copy_of(table: Any, engine: Any, name: str) -> Any:
    copy = table.to_metadata(MetaData(), name=name)
    for index in copy.indexes:
        index.name = f"{name}_{index.name}"
    for constraint in list(copy.constraints):
        if constraint.__class__.__name__ == "ForeignKeyConstraint":
            copy.constraints.discard(constraint)
        elif isinstance(constraint.name, str):
            constraint.name = f"{name}_{constraint.name}"
    copy.drop(engine, checkfirst=True)
    copy.create(engine)
    return copy


def raw_baseline(app: Any, written: list[dict[str, Any]], batch: int) -> float:
    """Seconds to insert ``written`` into a copy of the customer table with Core executemany."""
    from crm_core.customers.models import Customer
    from crm_core.db import session

    with app.app_context():
        engine = session().get_bind()
        copy = _copy_of(Customer.__table__, engine, "bench_raw_customer")
        rows = [{k: v for k, v in row.items() if k != "id"} for row in written]
        started = time.perf_counter()
        with engine.begin() as conn:
            for start in range(0, len(rows), batch):
                conn.execute(insert(copy), rows[start : start + batch])
        took = time.perf_counter() - started
        copy.drop(engine)
        return took


def database_floor(app: Any, first_ids: dict[str, int], batch: int) -> float:
    """Seconds to write again, batch by batch with a commit each, the rows the import added
    to each table (ids from ``first_ids[table]`` on) into copies with the same indexes."""
    from crm_core.db import session

    with app.app_context():
        engine = session().get_bind()
        session().rollback()
    metadata = MetaData()
    metadata.reflect(engine, only=list(first_ids))
    loaded: list[tuple[Any, Any, list[Any]]] = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for name, first in first_ids.items():
            table = metadata.tables[name]
            copy = _copy_of(table, engine, f"floor_{name}")
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            if engine.dialect.name == "postgresql":
                buffer = io.StringIO()
                cursor.copy_expert(
                    f"COPY (SELECT {columns} FROM {name} WHERE id >= {first} ORDER BY id) "
                    "TO STDOUT",
                    buffer,
                )
                rows: list[Any] = buffer.getvalue().splitlines()
            else:
                quoted = columns.replace('"', "`") if engine.dialect.name == "mysql" else columns
                cursor.execute(f"SELECT {quoted} FROM {name} WHERE id >= {first} ORDER BY id")
                rows = list(cursor.fetchall())
            loaded.append((copy, columns, rows))
        raw.commit()
        marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        started = time.perf_counter()
        for copy, columns, rows in loaded:
            for start in range(0, len(rows), batch):
                chunk = rows[start : start + batch]
                if engine.dialect.name == "postgresql":
                    cursor.copy_expert(
                        f"COPY {copy.name} ({columns}) FROM STDIN",
                        io.StringIO("\n".join(chunk) + "\n"),
                    )
                else:
                    quoted = (
                        columns.replace('"', "`") if engine.dialect.name == "mysql" else columns
                    )
                    cursor.executemany(
                        f"INSERT INTO {copy.name} ({quoted}) VALUES "
                        f"({', '.join([marker] * len(copy.columns))})",
                        chunk,
                    )
                raw.commit()
        took = time.perf_counter() - started
    finally:
        raw.close()
    for copy, _columns, _rows in loaded:
        copy.drop(engine)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--existing", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ["CRM_IMPORT_BATCH"] = str(args.batch)

    from crm_core.customers.models import Customer
    from crm_core.data.imports import engine
    from crm_core.db import session

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generate import make_app

    url = fresh_database(args.url)
    app = make_app(url)
    app.config["CRM_IMPORT_BATCH"] = args.batch
    app.config["CRM_FILES_DIR"] = f"/tmp/bench_import_files_{os.getpid()}"
    setup(app, args.existing)
    path = Path(f"/tmp/bench_import_{os.getpid()}.csv")
    kinds = make_file(path, args.rows, args.existing, args.seed)
    console.print(f"{args.rows:,} rows: {kinds}; {args.existing:,} existing customers; {url}")
    console.print(f"load average {os.getloadavg()[0]:.2f}")

    timings: dict[str, float] = {}
    with app.app_context():
        from flask_appbuilder.security.sqla.models import User

        from crm_core.events.models import OutboxEvent
        from crm_core.security.audit import AuditLog

        rep = session().scalar(select(User).where(User.username == "bench_admin"))
        first_ids = {
            model.__tablename__: (session().scalar(select(func.max(model.id))) or 0) + 1
            for model in (Customer, AuditLog, OutboxEvent)
        }
        job = engine.create_job(path, "customer", rep, key="code")
        started = time.perf_counter()
        checked = engine.check_job(job.id)
        timings["check"] = time.perf_counter() - started
        figures = dict(checked.checked or {})
        started = time.perf_counter()
        done = engine.run_job(job.id)
        timings["import"] = time.perf_counter() - started
        result = {n: getattr(done, n) for n in ("created", "updated", "failed", "warned")}
        again = engine.create_job(path, "customer", rep, key="code")
        started = time.perf_counter()
        repeat = engine.run_job(again.id)
        timings["again"] = time.perf_counter() - started
        second = {n: getattr(repeat, n) for n in ("created", "updated", "unchanged", "failed")}
        written = [
            dict(row._mapping)
            for row in session().execute(
                select(Customer.__table__).where(Customer.code.like("N%")).order_by(Customer.id)
            )
        ]
        total = session().scalar(select(func.count()).select_from(Customer))
        session().rollback()
    timings["raw executemany"] = raw_baseline(app, written, args.batch)
    timings["database floor"] = database_floor(app, first_ids, args.batch)

    table = Table("step", "seconds", "rows/s", "× raw", "× floor")
    raw_rate = len(written) / timings["raw executemany"]
    floor_rate = len(written) / timings["database floor"]
    for name, seconds in timings.items():
        rows = len(written) if name in ("raw executemany", "database floor") else args.rows
        rate = rows / seconds
        table.add_row(
            name,
            f"{seconds:.2f}",
            f"{rate:,.0f}",
            f"{rate / raw_rate:.2f}",
            f"{rate / floor_rate:.2f}",
        )
    console.print(table)
    console.print(f"dry run: {figures}")
    console.print(f"import: {result}; second run: {second}; customers now {total:,}")
    expected_refused = kinds["invalid"] + kinds["duplicate"]
    ok = (
        result["created"] == kinds["valid"]
        and result["failed"] == expected_refused
        and figures.get("created") == kinds["valid"]
        and figures.get("failed") == expected_refused
        and second["created"] == 0
        and total == args.existing + kinds["valid"]
    )
    console.print("[green]outcome as expected[/green]" if ok else "[red]outcome differs[/red]")
    path.unlink(missing_ok=True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
