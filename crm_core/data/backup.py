"""``crm backup``: the whole CRM in one portable archive, readable on any backend.

The archive is a zip file::

    manifest.json        format version, crm_core version, time, source backend, the schema
                         revision of the core and of each plugin, the plugins and their
                         versions, and per table its columns, row count and checksum
    tables/<name>.jsonl  one JSON object per row, in primary-key order (see backup_values)
    config.yaml          the configuration bundle, as ``crm config export`` writes it
    files/...            every file under ``CRM_FILES_DIR`` (attachments, uploaded imports)

Tables are read in one repeatable-read transaction (a consistent snapshot while the CRM goes
on working), in keyset batches, and written as they are read. Custom values are archived as
stored: a field encrypted at rest stays ciphertext, and its keys travel separately.
Restoring is :mod:`crm_core.data.backup_restore`; reading an archive is
:mod:`crm_core.data.backup_archive`.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Connection, Engine

from .. import __version__
from ..db import session
from ..lowcode import bundle
from ..plugins import lifecycle
from ..plugins.migrations import CORE_LINEAGE, Lineage
from .backup_archive import FILES, FORMAT, FORMAT_VERSION, MANIFEST
from .backup_tables import (
    EXCLUDED,
    VERSION_TABLE,
    BackupError,
    TableSpec,
    describe,
    lineage_of,
    read_rows,
)
from .backup_values import TableDigest, to_json

CONFIG = "config.yaml"
BATCH = 1000


class Reporter(Protocol):
    """Progress of a backup or restore: a table (with its row count) starts, rows are done."""

    def table(self, name: str, total: int) -> None: ...

    def advance(self, rows: int) -> None: ...


class Silent:
    """A reporter that reports nothing."""

    def table(self, name: str, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass


def default_name(now: datetime | None = None) -> str:
    """``crm-backup-20261126-093000.zip``: the archive's name when none is given."""
    return f"crm-backup-{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}.zip"


def _engine() -> Engine:
    return session().get_bind()  # type: ignore[return-value]


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection reading one consistent state of the database until it is closed."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")  # a WAL read transaction: one snapshot throughout
            yield conn
            conn.rollback()
        return
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        yield conn
        conn.rollback()


def lineages() -> list[Lineage]:
    """The core's lineage and that of every plugin loaded here that has tables."""
    found = [CORE_LINEAGE]
    for info in current_app.extensions["crm"].ordered():
        if info.loaded:
            lin = lifecycle.lineage(info)
            if lin is not None:
                found.append(lin)
    return found


def _revisions(conn: Connection, names: list[str]) -> dict[str, list[str]]:
    """Lineage -> its revisions, for every version table that has one."""
    known = lineages()
    revisions: dict[str, list[str]] = {}
    for name in names:
        if not name.startswith(VERSION_TABLE):
            continue
        rows = [r[0] for r in conn.execute(text(f"SELECT version_num FROM {name}"))]
        if not rows:
            continue  # a plugin that was uninstalled
        owner = lineage_of(name, known)
        if owner is None:
            plugin = name[len(VERSION_TABLE) + 1 :]
            raise BackupError(
                _(
                    "plugin %(name)s has tables in this database but is not loaded here; "
                    "back up where it is installed",
                    name=plugin,
                )
            )
        revisions[owner] = sorted(rows)
    return revisions


def _plugins(conn: Connection, names: list[str]) -> dict[str, dict[str, str]]:
    """Plugins installed in the database (any state but available) with their versions."""
    if "crm_plugin_state" not in names:
        return {}
    rows = conn.execute(text("SELECT name, state, version FROM crm_plugin_state"))
    registry = current_app.extensions["crm"]
    plugins = {}
    for name, state, version in rows:
        if state == "available":
            continue
        info = registry.plugins.get(name)
        plugins[str(name)] = {
            "state": str(state),
            "version": str(version or (info.version if info else "")),
        }
    return plugins


def table_specs(conn: Connection) -> tuple[list[TableSpec], list[str]]:
    """The tables a backup holds, and those of the database it leaves out."""
    inspector = inspect(conn)
    known = lineages()
    specs, skipped = [], []
    for name in sorted(inspector.get_table_names()):
        owner = lineage_of(name, known)
        if owner is None or name in EXCLUDED:
            skipped.append(name)
            continue
        specs.append(describe(inspector, name, owner))
    return specs, skipped


def _write_table(
    archive: zipfile.ZipFile, conn: Connection, spec: TableSpec, reporter: Reporter
) -> dict[str, Any]:
    total = conn.execute(select(func.count()).select_from(spec.table(conn.dialect.name)))
    reporter.table(spec.name, int(total.scalar_one()))
    digest = TableDigest(spec.columns)
    kinds = spec.kinds()
    member = f"tables/{spec.name}.jsonl"
    pending = 0
    with archive.open(member, "w", force_zip64=True) as raw:
        out = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
        for row in read_rows(conn, spec, BATCH):
            digest.add(row)
            values = {name: to_json(kinds[name], value) for name, value in row.items()}
            out.write(json.dumps(values, ensure_ascii=False, separators=(",", ":")) + "\n")
            pending += 1
            if pending == BATCH:
                reporter.advance(pending)
                pending = 0
        out.flush()
        out.detach()
    reporter.advance(pending)
    return {
        "name": spec.name,
        "lineage": spec.lineage,
        "file": member,
        "columns": spec.columns,
        "primary_key": spec.primary_key,
        "rows": digest.count,
        "sha256": digest.sha256,
    }


def _files(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every regular file under ``folder`` with its path inside it (``/``-separated)."""
    if not folder.is_dir():
        return
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                yield path, path.relative_to(folder).as_posix()


def write_backup(path: Path, reporter: Reporter | None = None) -> dict[str, Any]:
    """Write the archive of the app's database and files to ``path``; returns the manifest."""
    reporter = reporter or Silent()
    engine = _engine()
    config_text = bundle.dump(bundle.export(session()))
    session().rollback()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "crm_core_version": __version__,
        "created_at": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z",
        "source_dialect": engine.dialect.name,
    }
    tmp = path.with_name(path.name + ".part")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            with snapshot(engine) as conn:
                names = inspect(conn).get_table_names()
                manifest["lineages"] = _revisions(conn, names)
                manifest["plugins"] = _plugins(conn, names)
                specs, skipped = table_specs(conn)
                manifest["tables"] = [_write_table(archive, conn, s, reporter) for s in specs]
            manifest["excluded"] = {
                name: EXCLUDED.get(name, "not a table of the CRM or of a plugin")
                for name in skipped
            }
            archive.writestr(CONFIG, config_text)
            count = size = 0
            for file, relative in _files(Path(current_app.config["CRM_FILES_DIR"])):
                archive.write(file, FILES + relative)
                count += 1
                size += file.stat().st_size
            manifest["files"] = {"count": count, "bytes": size}
            archive.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest
