"""The three database backends tests run on, each in a database of its own made per run."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

BACKENDS = ("sqlite", "postgresql", "mysql")

SERVER_URLS = {
    "postgresql": os.environ.get(
        "CRM_TEST_POSTGRESQL_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get(
        "CRM_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
    ),
}


def reachable(backend: str) -> bool:
    """True when the backend's server answers (SQLite always does)."""
    if backend == "sqlite":
        return True
    try:
        engine = create_engine(SERVER_URLS[backend])
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except (OperationalError, ImportError):
        return False


def backend_url(backend: str, name: str, tmp_dir: Path) -> str:
    """A fresh, empty database named ``name`` on ``backend``; an old one of that name is
    dropped first."""
    if backend == "sqlite":
        path = tmp_dir / f"{name}.db"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    server = make_url(SERVER_URLS[backend])
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if backend == "postgresql":
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
        else:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            conn.execute(
                text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            )
    engine.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def drop(url: str) -> None:
    """Drop a database made by :func:`backend_url` (SQLite files are left to the tmp dir)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return
    backend = "postgresql" if parsed.get_backend_name() == "postgresql" else "mysql"
    engine = create_engine(SERVER_URLS[backend], isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if backend == "postgresql":
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        else:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{parsed.database}`"))
    engine.dispose()
