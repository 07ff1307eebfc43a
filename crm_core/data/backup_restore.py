"""``crm restore``: a backup archive loaded into an empty database, on any backend.

In order: the archive is checked (every table against its count and checksum) and the target
must be empty (no tables, an empty files directory); the schema is made by the same migrations
``crm init`` runs, for the core and each plugin of the archive, at the archived revisions; the
rows the migrations seeded are replaced by the archive's, loaded in foreign-key order in
batches (one transaction per batch) with Core statements, which is also how the append-only
audit log is written back; self references and cycles get their values in a second pass;
PostgreSQL's sequences move past the restored ids; each table is compared with the manifest
again; the files go into ``CRM_FILES_DIR``. Custom values are written back as archived
(ciphertext stays ciphertext), so they read in plain with the same encryption keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Table, and_, bindparam, func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..config import PACKAGE_DIR
from ..db import session
from ..lowcode import indexes
from ..plugins import lifecycle, migrations
from .backup import BATCH, Reporter, Silent
from .backup_archive import Archive
from .backup_tables import BackupError, LoadPlan, TableSpec, load_plan, read_rows, reset_counters
from .backup_values import TableDigest, from_json


@dataclass
class RestoreReport:
    """What a restore did, and every table that differs from the archive afterwards."""

    tables: int = 0
    rows: int = 0
    files: int = 0
    differences: list[str] = field(default_factory=list)
    behind: list[str] = field(default_factory=list)
    encrypted_fields: int = 0


def _engine() -> Engine:
    return session().get_bind()  # type: ignore[return-value]


def check_empty(engine: Engine, files_dir: Path) -> None:
    """Refuse a target that already holds tables or files."""
    tables = inspect(engine).get_table_names()
    if tables:
        raise BackupError(
            _(
                "the database is not empty (%(count)s tables, such as %(example)s); restore "
                "only into a new, empty database",
                count=len(tables),
                example=", ".join(sorted(tables)[:3]),
            )
        )
    if files_dir.is_dir() and any(files_dir.iterdir()):
        raise BackupError(
            _(
                "the files directory %(folder)s is not empty; restore only into an empty one",
                folder=files_dir,
            )
        )


def _known(lineage: migrations.Lineage, revision: str) -> bool:
    scripts = ScriptDirectory(str(PACKAGE_DIR / "migrations"), version_locations=[lineage.versions])
    try:
        return scripts.get_revision(revision) is not None
    except (RevisionError, CommandError):
        return False


def plan_lineages(manifest: dict[str, Any]) -> list[tuple[migrations.Lineage, list[str]]]:
    """The lineages to migrate, core first then plugins in dependency order, each with its
    archived revisions; refuses a plugin missing here or a schema newer than this code."""
    registry = current_app.extensions["crm"]
    revisions: dict[str, list[str]] = manifest.get("lineages", {})
    plugins: dict[str, dict[str, str]] = manifest.get("plugins", {})
    for name in sorted(set(plugins) | (set(revisions) - {"core"})):
        info = registry.plugins.get(name)
        if info is None or not info.loaded:
            version = plugins.get(name, {}).get("version", "")
            raise BackupError(
                _(
                    "the archive needs plugin %(name)s %(version)s, which is not installed "
                    "here; install it with pip and run the restore again",
                    name=name,
                    version=version,
                )
            )
    planned: list[tuple[migrations.Lineage, list[str]]] = [
        (migrations.CORE_LINEAGE, revisions.get("core", []))
    ]
    for info in registry.ordered():
        lin = lifecycle.lineage(info) if info.loaded else None
        if lin is not None and info.name in revisions:
            planned.append((lin, revisions[info.name]))
    for lin, revs in planned:
        for revision in revs:
            if not _known(lin, revision):
                raise BackupError(
                    _(
                        "the archive's schema of %(lineage)s (revision %(revision)s) is newer "
                        "than this CRM; upgrade the CRM and its plugins first",
                        lineage=lin.name,
                        revision=revision,
                    )
                )
    return planned


def _write(engine: Engine, name: str, statement: Any, rows: list[dict[str, Any]]) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(statement, rows)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc.__class__.__name__).splitlines()[0]
        raise BackupError(
            _(
                "restore stopped at table %(table)s (%(reason)s); the database is partly "
                "restored: drop it, create it empty and run the restore again",
                table=name,
                reason=reason,
            )
        ) from None


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _values(spec: TableSpec, archive: Archive, entry: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kinds = spec.kinds()
    for row in archive.rows(entry):
        yield {name: from_json(kinds[name], value) for name, value in row.items()}


def _clear(engine: Engine, specs: dict[str, TableSpec], plan: LoadPlan) -> None:
    """Remove what the migrations seeded, children first (a self reference let go first)."""
    dialect = engine.dialect.name
    with engine.begin() as conn:
        for name in reversed(plan.order):
            table = specs[name].table(dialect)
            for column in plan.deferred.get(name, []):
                conn.execute(table.update().values({column: None}))
            conn.execute(table.delete())


def _load(
    engine: Engine, archive: Archive, entry: dict[str, Any], later: list[str], reporter: Reporter
) -> int:
    spec = Archive.spec(entry)
    table = spec.table(engine.dialect.name)
    reporter.table(spec.name, int(entry["rows"]))
    count = 0
    for batch in _batches(_values(spec, archive, entry)):
        for row in batch:
            row.update(dict.fromkeys(later))
        _write(engine, spec.name, table.insert(), batch)
        count += len(batch)
        reporter.advance(len(batch))
    return count


def _link(engine: Engine, archive: Archive, entry: dict[str, Any], columns: list[str]) -> None:
    """The second pass: the deferred foreign-key values, by primary key."""
    spec = Archive.spec(entry)
    table: Table = spec.table(engine.dialect.name)
    statement = (
        table.update()
        .where(and_(*(table.c[k] == bindparam(f"key_{k}") for k in spec.primary_key)))
        .values({c: bindparam(f"new_{c}") for c in columns})
    )
    rows = (
        {
            **{f"key_{k}": row[k] for k in spec.primary_key},
            **{f"new_{c}": row[c] for c in columns},
        }
        for row in _values(spec, archive, entry)
        if any(row[c] is not None for c in columns)
    )
    for batch in _batches(rows):
        _write(engine, spec.name, statement, batch)


def compare(engine: Engine, archive: Archive) -> list[str]:
    """Tables of the database whose rows differ from the archive's count and checksum."""
    differences = []
    with engine.connect() as conn:
        for entry in archive.tables:
            digest = TableDigest(entry["columns"])
            for row in read_rows(conn, Archive.spec(entry), BATCH):
                digest.add(row)
            if (digest.count, digest.sha256) != (entry["rows"], entry["sha256"]):
                differences.append(
                    _(
                        "table %(table)s: %(count)s rows restored, %(rows)s archived; "
                        "checksum %(found)s, archived %(sha)s",
                        table=entry["name"],
                        count=digest.count,
                        rows=entry["rows"],
                        found=digest.sha256[:12],
                        sha=entry["sha256"][:12],
                    )
                )
    return differences


def _schema_matches(engine: Engine, archive: Archive) -> None:
    inspector = inspect(engine)
    present = set(inspector.get_table_names())
    for entry in archive.tables:
        if entry["name"] not in present:
            raise BackupError(
                _(
                    "the migrations made no table %(table)s, which the archive holds",
                    table=entry["name"],
                )
            )
        columns = {c["name"] for c in inspector.get_columns(entry["name"])}
        extra = [c["name"] for c in entry["columns"] if c["name"] not in columns]
        if extra:
            raise BackupError(
                _(
                    "table %(table)s here has no column %(columns)s, which the archive holds",
                    table=entry["name"],
                    columns=", ".join(extra),
                )
            )


def _encrypted_fields(engine: Engine, archive: Archive) -> int:
    entry = next((t for t in archive.tables if t["name"] == "crm_field_def"), None)
    if entry is None or "encrypted" not in {c["name"] for c in entry["columns"]}:
        return 0
    table = Archive.spec(entry).table(engine.dialect.name)
    with engine.connect() as conn:
        query = select(func.count()).select_from(table).where(table.c.encrypted.is_(True))
        return int(conn.execute(query).scalar_one())


def restore(path: Path, reporter: Reporter | None = None) -> RestoreReport:
    """Load the archive at ``path`` into the app's empty database and files directory."""
    reporter = reporter or Silent()
    engine = _engine()
    files_dir = Path(current_app.config["CRM_FILES_DIR"])
    report = RestoreReport()
    with Archive(path) as archive:
        damaged = archive.check()
        if damaged:
            raise BackupError(
                _("the archive is damaged; nothing was restored:") + "\n  " + "\n  ".join(damaged)
            )
        archive.files()  # refuses unsafe names before anything is written
        check_empty(engine, files_dir)
        planned = plan_lineages(archive.manifest)
        session().close()
        for lineage, revisions in planned:
            for revision in revisions:
                migrations.upgrade(engine, lineage, revision)
            if migrations.head(lineage) not in revisions:
                report.behind.append(lineage.name)
        current_app.extensions["crm"].forget_cached_states()
        _schema_matches(engine, archive)
        entries = {t["name"]: t for t in archive.tables}
        specs = {name: Archive.spec(entry) for name, entry in entries.items()}
        plan = load_plan(inspect(engine), list(entries))
        deferred = {t: c for t, c in plan.deferred.items() if specs[t].primary_key}
        plan = LoadPlan(plan.order, deferred)
        _clear(engine, specs, plan)
        for name in plan.order:
            report.rows += _load(engine, archive, entries[name], deferred.get(name, []), reporter)
        for name, columns in deferred.items():
            _link(engine, archive, entries[name], columns)
        reset_counters(engine, list(entries))
        report.tables = len(entries)
        report.differences = compare(engine, archive)
        files_dir.mkdir(parents=True, exist_ok=True)
        report.files = archive.extract_files(files_dir)
        report.encrypted_fields = _encrypted_fields(engine, archive)
    if not report.behind:
        indexes.sync_indexes()  # the indexes of searchable custom fields
        session().rollback()
    return report
