"""Per-lineage Alembic migrations: the core's and each plugin's, each with its own version table.

Plugins ship only a ``versions`` folder (named by ``Manifest.migrations``); the environment is the
core's, so every lineage runs the same way on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from ..config import PACKAGE_DIR

CORE_VERSIONS = PACKAGE_DIR / "migrations" / "versions"


@dataclass(frozen=True)
class Lineage:
    """One migration history: who owns it, where its scripts are, which tables it may touch."""

    name: str
    versions: str
    prefixes: tuple[str, ...]

    @property
    def version_table(self) -> str:
        return "alembic_version" if self.name == "core" else f"alembic_version_{self.name}"


CORE_LINEAGE = Lineage("core", str(CORE_VERSIONS), ("ab_", "crm_"))


def _config(lineage: Lineage) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(PACKAGE_DIR / "migrations"))
    cfg.set_main_option("version_locations", lineage.versions)
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["version_table"] = lineage.version_table
    cfg.attributes["table_prefixes"] = lineage.prefixes
    return cfg


@contextmanager
def _bound(engine: Engine, lineage: Lineage) -> Iterator[Config]:
    cfg = _config(lineage)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        yield cfg


def upgrade(engine: Engine, lineage: Lineage, revision: str = "heads") -> None:
    """Apply the lineage's migrations up to ``revision``."""
    with _bound(engine, lineage) as cfg:
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, lineage: Lineage, revision: str = "base") -> None:
    """Revert the lineage's migrations down to ``revision`` (``base`` drops its tables)."""
    with _bound(engine, lineage) as cfg:
        command.downgrade(cfg, revision)


def revision(engine: Engine, lineage: Lineage, message: str, autogenerate: bool = True) -> None:
    """Write a new migration script into the lineage's versions folder."""
    Path(lineage.versions).mkdir(parents=True, exist_ok=True)
    with _bound(engine, lineage) as cfg:
        command.revision(cfg, message=message, autogenerate=autogenerate)


def current(engine: Engine, lineage: Lineage) -> str | None:
    """The revision the database is at for this lineage, or ``None`` before the first."""
    with engine.connect() as connection:
        ctx = MigrationContext.configure(connection, opts={"version_table": lineage.version_table})
        return ctx.get_current_revision()


def head(lineage: Lineage) -> str | None:
    """The newest revision the lineage's scripts define."""
    return ScriptDirectory.from_config(_config(lineage)).get_current_head()
