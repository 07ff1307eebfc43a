"""Load N realistic customers into a CRM database, fast, for the list benchmarks.

    .venv/bin/python bench/generate.py --url sqlite:////tmp/bench.db --customers 1000000
    .venv/bin/python bench/generate.py \\
        --url postgresql+psycopg2://postgres@127.0.0.1:5432/crm_bench --customers 1000000

The database is migrated with the core's Alembic lineage (so it has exactly the production
indexes), an administrator ``bench_admin`` / ``Bench-pass-1`` and ~80 sales reps in 12 teams are
created, then the customers are bulk-loaded: PostgreSQL through ``COPY`` (psycopg2
``copy_expert``), other backends through SQLAlchemy Core ``executemany`` in chunks. The
customer table's secondary indexes are dropped during the load and rebuilt after it (one sort
per index instead of a million random inserts), then statistics are refreshed (``VACUUM
ANALYZE`` on PostgreSQL, which also lets index-only scans skip the heap; ``ANALYZE`` on SQLite).

Data: Chinese company names (city + brand + trade + legal form) and some persons, valid
mainland mobiles in E.164, unique codes ``C`` + 9 digits, provinces/cities, industries, sources,
tiers, owners and teams (10 % in the shared pool), 3 % archived, timestamps over three years.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ADMIN_USER, ADMIN_PASSWORD = "bench_admin", "Bench-pass-1"

CITIES = [
    ("上海", "上海"), ("北京", "北京"), ("广东", "深圳"), ("广东", "广州"), ("广东", "东莞"),
    ("浙江", "杭州"), ("浙江", "宁波"), ("浙江", "温州"), ("江苏", "苏州"), ("江苏", "南京"),
    ("江苏", "无锡"), ("四川", "成都"), ("湖北", "武汉"), ("陕西", "西安"), ("天津", "天津"),
    ("重庆", "重庆"), ("山东", "青岛"), ("山东", "济南"), ("福建", "厦门"), ("福建", "福州"),
    ("湖南", "长沙"), ("河南", "郑州"), ("安徽", "合肥"), ("辽宁", "大连"), ("辽宁", "沈阳"),
    ("云南", "昆明"), ("广西", "南宁"), ("河北", "石家庄"), ("江西", "南昌"), ("山西", "太原"),
]  # fmt: skip
BRAND_CHARS = (
    "华恒信鑫达金石宏泰昌盛源通远腾飞瑞丰安康博雅中天嘉德创新联合永新星海智云立隆兴"
    "晨光正大东方宇辰凯旋百川汇明锦程铭阳佳禾诚亿卓越万邦"
)
TRADES = [
    ("精密机械", "制造"), ("电子科技", "电子"), ("新材料", "化工"), ("生物医药", "医药"),
    ("国际贸易", "贸易"), ("信息技术", "软件"), ("建筑工程", "建筑"), ("食品", "食品"),
    ("物流", "物流"), ("环保科技", "环保"), ("汽车零部件", "汽车"), ("纺织", "纺织"),
    ("家具", "家居"), ("文化传媒", "传媒"), ("医疗器械", "医药"), ("能源", "能源"),
]  # fmt: skip
FORMS = ["有限公司", "有限公司", "有限公司", "股份有限公司", "集团有限公司", "科技有限公司"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉文斌宇浩然欣怡子涵"
MOBILE_PREFIXES = [
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "177", "180", "181", "182", "183", "185",
    "186", "187", "188", "189", "199",
]  # fmt: skip
SOURCES = ["展会", "官网", "转介绍", "电话营销", "广告", "合作伙伴", "老客户"]
TIERS = ["A", "B", "C", "D"]
STAGES = ["lead", "prospect", "customer", "vip", "churned"]
COLUMNS = [
    "code", "name", "kind", "phone", "email", "website", "province", "city", "district",
    "address", "industry", "source", "tier", "lifecycle_stage", "uscc", "credit_limit",
    "owner_id", "team_id", "last_activity_at", "pooled_at", "notes", "custom", "active",
    "version", "created_at", "updated_at",
]  # fmt: skip


def _valid_prefixes() -> list[str]:
    """Mobile prefixes whose numbers libphonenumber accepts, as the app's validation does."""
    good = []
    for prefix in MOBILE_PREFIXES:
        number = phonenumbers.parse(f"+86{prefix}12345678", None)
        if phonenumbers.is_valid_number(number):
            good.append(prefix)
    return good


def customer_rows(
    count: int, owners: list[tuple[int, int]], seed: int
) -> Iterator[tuple[Any, ...]]:
    """``count`` customer rows as tuples in :data:`COLUMNS` order."""
    rnd = random.Random(seed)
    prefixes = _valid_prefixes()
    codes = rnd.sample(range(10**9), count)
    now = datetime(2026, 11, 1, 12, 0, 0)
    span = 3 * 365 * 24 * 3600
    for i in range(count):
        province, city = rnd.choice(CITIES)
        trade, industry = rnd.choice(TRADES)
        if rnd.random() < 0.15:
            kind = "person"
            name = rnd.choice(SURNAMES) + "".join(rnd.choices(GIVEN, k=rnd.choice((1, 2))))
            website = None
        else:
            kind = "company"
            brand = rnd.choice(BRAND_CHARS) + rnd.choice(BRAND_CHARS)
            name = f"{city}{brand}{trade}{rnd.choice(FORMS)}"
            website = f"https://www.c{codes[i]:09d}.cn" if rnd.random() < 0.3 else None
        phone = f"+86{rnd.choice(prefixes)}{rnd.randrange(10**8):08d}"
        created = now - timedelta(seconds=rnd.randrange(span))
        updated = created + timedelta(
            seconds=rnd.randrange(int((now - created).total_seconds()) + 1)
        )
        pooled = rnd.random() < 0.10
        owner_id, team_id = (None, None) if pooled else rnd.choice(owners)
        yield (
            f"C{codes[i]:09d}",
            name,
            kind,
            phone,
            f"contact{i}@example.cn" if rnd.random() < 0.4 else None,
            website,
            province,
            city,
            None,
            f"{city}市{rnd.randrange(1, 999)}号" if rnd.random() < 0.5 else None,
            industry,
            rnd.choice(SOURCES),
            rnd.choice(TIERS),
            rnd.choice(STAGES),
            None,
            rnd.randrange(0, 500) * 1000 if rnd.random() < 0.3 else None,
            owner_id,
            team_id,
            updated if rnd.random() < 0.7 else None,
            updated if pooled else None,
            None,
            None,
            rnd.random() >= 0.03,
            1,
            created,
            updated,
        )


def ensure_database(url: str, fresh: bool) -> None:
    """Create the database (PostgreSQL, MariaDB) or remove the file (SQLite, with --fresh)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if fresh and parsed.database:
            for suffix in ("", "-wal", "-shm"):
                Path(parsed.database + suffix).unlink(missing_ok=True)
        return
    server = parsed.set(database="postgres" if backend == "postgresql" else None)
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    name = parsed.database
    with engine.connect() as conn:
        if backend == "postgresql":
            if fresh:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
        else:
            if fresh:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            conn.execute(
                text(
                    f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 "
                    "COLLATE utf8mb4_unicode_ci"
                )
            )
    engine.dispose()


def make_app(url: str):  # type: ignore[no-untyped-def]
    """The CRM app on ``url``, without plugins or site hooks (the benchmark measures the core)."""
    from crm_core import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "CRM_HOOKS_DIR": None,
            "CRM_PLUGINS": "",
            "SECRET_KEY": "bench-secret",
            "WTF_CSRF_ENABLED": False,
        }
    )


def prepare(url: str, teams: int, reps: int) -> list[tuple[int, int]]:
    """Migrate, create the administrator, teams and reps; returns (owner id, team id) pairs."""
    from werkzeug.security import generate_password_hash

    from crm_core.cli.db import upgrade_all
    from crm_core.cli.users import ensure_user
    from crm_core.db import session
    from crm_core.org.models import Team, UserProfile

    app = make_app(url)
    with app.app_context():
        upgrade_all()
        ensure_user(ADMIN_USER, ADMIN_PASSWORD, "bench_admin@example.cn", "Admin", first="压测")
        s = session()
        sm = app.appbuilder.sm  # type: ignore[attr-defined]
        existing = s.query(UserProfile).count()
        if existing == 0:
            team_rows = [Team(name=f"销售{n + 1}部", path="") for n in range(teams)]
            s.add_all(team_rows)
            s.flush()
            for team in team_rows:
                team.path = f"/{team.id}/"
            role = sm.find_role("Sales Rep")
            hashed = generate_password_hash(ADMIN_PASSWORD)  # once: hashing is slow on purpose
            for n in range(reps):
                user = sm.add_user(
                    f"rep{n + 1:03d}",
                    f"销售{n + 1}",
                    "代表",
                    f"rep{n + 1:03d}@example.cn",
                    role,
                    hashed_password=hashed,
                )
                s.add(UserProfile(user_id=user.id, team_id=team_rows[n % teams].id))
            s.commit()
        pairs = [(p.user_id, p.team_id) for p in s.query(UserProfile).order_by(UserProfile.id)]
        s.commit()
        app.extensions["crm_db"].engine.dispose()
    return pairs


def _secondary_indexes() -> list[Any]:
    from crm_core.customers.models import Customer

    return sorted(Customer.__table__.indexes, key=lambda i: i.name)  # type: ignore[attr-defined]


def _csv_chunk(rows: list[tuple[Any, ...]]) -> io.StringIO:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(
            ["t" if v is True else "f" if v is False else ("" if v is None else v) for v in row]
        )
    buffer.seek(0)
    return buffer


def load(engine: Engine, rows: Iterator[tuple[Any, ...]], total: int, chunk: int) -> None:
    """Insert the rows in chunks: COPY on PostgreSQL, executemany elsewhere."""
    from crm_core.customers.models import Customer

    table = Customer.__table__  # type: ignore[attr-defined]
    done, started = 0, time.perf_counter()
    batch: list[tuple[Any, ...]] = []

    def flush() -> None:
        nonlocal done, batch
        if not batch:
            return
        if engine.dialect.name == "postgresql":
            raw = engine.raw_connection()
            try:
                with raw.cursor() as cursor:
                    cursor.copy_expert(
                        f"COPY crm_customer ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)",
                        _csv_chunk(batch),
                    )
                raw.commit()
            finally:
                raw.close()
        else:
            with engine.begin() as conn:
                conn.execute(
                    table.insert(), [dict(zip(COLUMNS, row, strict=True)) for row in batch]
                )
        done += len(batch)
        batch = []
        rate = done / (time.perf_counter() - started)
        print(f"\r  {done:>10,} / {total:,} customers  ({rate:,.0f} rows/s)", end="", flush=True)

    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            flush()
    flush()
    print()


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy database URL")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--teams", type=int, default=12)
    parser.add_argument("--reps", type=int, default=80)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--fresh", action="store_true", help="drop the database first")
    parser.add_argument(
        "--keep-indexes", action="store_true", help="load with every index in place (slower)"
    )
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    ensure_database(args.url, args.fresh)
    owners = prepare(args.url, args.teams, args.reps)
    engine = create_engine(args.url)
    if engine.dialect.name == "sqlite":
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _fast(dbapi_connection: Any, _record: Any) -> None:
            # A throw-away bulk load: no fsync per commit.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-400000")
            cursor.close()

    with engine.connect() as conn:
        already = conn.scalar(text("SELECT count(*) FROM crm_customer"))
    if already:
        print(f"crm_customer already holds {already:,} rows; adding {args.customers:,} more")
    # MariaDB keeps the indexes: it needs them for the foreign keys.
    keep = args.keep_indexes or engine.dialect.name == "mysql"
    indexes = [] if keep else _secondary_indexes()
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn, checkfirst=True)
    print(f"loading {args.customers:,} customers into {engine.url.render_as_string()}")
    t1 = time.perf_counter()
    load(
        engine,
        customer_rows(args.customers, owners, args.seed + (already or 0)),
        args.customers,
        args.chunk,
    )
    t2 = time.perf_counter()
    for index in indexes:
        t = time.perf_counter()
        with engine.begin() as conn:
            index.create(conn, checkfirst=True)
        print(f"  index {index.name}: {time.perf_counter() - t:.1f} s")
    t3 = time.perf_counter()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE crm_customer"))
    elif engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE TABLE crm_customer"))
    t4 = time.perf_counter()
    engine.dispose()
    print(
        f"done in {t4 - t0:.0f} s: insert {t2 - t1:.0f} s "
        f"({args.customers / max(t2 - t1, 1e-9):,.0f} rows/s), indexes {t3 - t2:.0f} s, "
        f"statistics {t4 - t3:.0f} s"
    )


if __name__ == "__main__":
    main()
