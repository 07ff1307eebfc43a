"""Import jobs: create one from a file, check it (dry run), run it in batches, resume it.

Each batch of :data:`BATCH` rows is checked (:mod:`.rows`, column by column where it can), then
its accepted records are written and committed together with the rows' problems and the job's
new checkpoint (``next_row``). A process killed mid-file leaves the job ``running`` at its last
checkpoint; running the job again (``crm import`` with the same file, or the scheduler's
``core.imports`` job once the heartbeat is stale) goes on from there, and because re-imported
rows are matched by the job's key, even a batch written twice would create nothing twice.
New records go in with multi-row inserts (:mod:`.bulk`, ``COPY`` on PostgreSQL) together with
their audit entries (channel ``import``, as the importing user) and domain events, as an ORM
write would leave them; changed records and models with encrypted custom fields go through the
ORM.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from ...db import session as current_session
from ...db import utcnow
from ...errors import CrmError, FieldError
from ...lowcode import duplicates, picklists
from ...security import rules
from ...security.audit import audit_channel
from . import bulk
from . import mapping as column_mapping
from .collector import older_objects_set_aside
from .models import ImportJob, ImportProblem
from .rows import RowChecker, RowResult, _messages
from .source import Source, checksum, file_format
from .statistics import TableStatistics
from .targets import ImportField, fields_of, specs

BATCH = 1000
#: A running job whose last batch is older than this is taken over (its process died).
STALE_AFTER = timedelta(minutes=5)
Progress = Callable[[int, int], None]


class ImportJobError(CrmError):
    """The job cannot run as asked (unknown model, missing file, running elsewhere)."""

    status = 400


def files_dir() -> Path:
    path = Path(current_app.config["CRM_FILES_DIR"]) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _spec_and_fields(model: str) -> tuple[Any, list[ImportField]]:
    found = specs().get(model)
    if found is None:
        raise ImportJobError(
            _(
                "%(model)s cannot be imported (choose one of: %(models)s).",
                model=model,
                models=", ".join(sorted(specs())),
            )
        )
    return found, fields_of(found)


def create_job(
    path: Path,
    model: str,
    user: Any,
    *,
    filename: str | None = None,
    mapping: dict[int, str] | None = None,
    key: str | None = None,
    mode: str = "upsert",
    encoding: str | None = None,
    check_mapping: bool = True,
) -> ImportJob:
    """A job for the file at ``path`` (copied under ``CRM_FILES_DIR``); the mapping is the
    suggested one unless given. ``FieldError`` for a mapping that cannot work (unless
    ``check_mapping`` is off: the screen shows the suggestion for the user to complete)."""
    session = current_session()
    _spec, fields = _spec_and_fields(model)
    name = filename or path.name
    fmt = file_format(name)
    source = Source(path, fmt, encoding)
    chosen = column_mapping.suggest(source.header, fields) if mapping is None else mapping
    if check_mapping:
        _check_choice(chosen, source.header, fields, key, mode)
    digest = checksum(path)
    job = ImportJob(
        model=model,
        filename=name[:255],
        stored_path="",
        checksum=digest,
        file_format=fmt,
        encoding=source.encoding,
        mapping={str(k): v for k, v in sorted(chosen.items())},
        key_field=key,
        mode=mode,
        status="new",
        user_id=getattr(user, "id", None),
        total_rows=source.count(),
    )
    session.add(job)
    session.flush()
    stored = files_dir() / f"{job.id}-{digest[:12]}.{fmt}"
    shutil.copyfile(path, stored)
    job.stored_path = str(stored.relative_to(Path(current_app.config["CRM_FILES_DIR"])))
    session.commit()
    return job


def _check_choice(
    chosen: dict[int, str], header: list[str], fields: list[ImportField], key: str | None, mode: str
) -> None:
    if mode not in ("upsert", "create", "update"):
        raise FieldError({"mode": [_("Choose how existing records are treated.")]})
    if mode != "create" and not key:
        raise FieldError({"key_field": [_("Choose the field that finds existing records.")]})
    column_mapping.check(chosen, header, fields, key)
    missing = column_mapping.missing_required(chosen, fields)
    if missing and mode != "update":
        raise FieldError(
            {
                "mapping": [
                    _(
                        "Map a column to %(fields)s: new records need it.",
                        fields="、".join(f.label for f in missing),
                    )
                ]
            }
        )


def update_mapping(job: ImportJob, chosen: dict[int, str], key: str | None, mode: str) -> None:
    """Change a job's mapping, key and mode before it starts (a check is then out of date)."""
    session = current_session()
    _spec, fields = _spec_and_fields(job.model)
    source = Source(stored_file(job), job.file_format, job.encoding)
    _check_choice(chosen, source.header, fields, key, mode)
    job.mapping = {str(k): v for k, v in sorted(chosen.items())}
    job.key_field = key
    job.mode = mode
    job.status = "new"
    job.checked = None
    session.execute(delete(ImportProblem).where(ImportProblem.job_id == job.id))
    session.commit()


def queue(job: ImportJob) -> None:
    """Mark ``job`` to be run: a thread starts it now, the scheduler should the thread die."""
    session = current_session()
    source = Source(stored_file(job), job.file_format, job.encoding)
    _spec, fields = _spec_and_fields(job.model)
    _check_choice(
        {int(k): v for k, v in job.mapping.items()}, source.header, fields, job.key_field, job.mode
    )
    job.status = "queued"
    job.runner = None
    session.commit()


def progress_of(job: ImportJob) -> dict[str, Any]:
    """What the screen's progress bar shows."""
    total = job.total_rows or 0
    if job.status in ("checking", "checked"):
        figures = job.checked or {}
        done = sum(figures.get(k, 0) for k in ("created", "updated", "unchanged", "failed"))
    else:
        figures = {
            n: getattr(job, n) for n in ("created", "updated", "unchanged", "failed", "warned")
        }
        done = max(job.next_row - 2, 0) if job.status != "done" else total
    return {
        "status": job.status,
        "done": min(done, total) if total else done,
        "total": total,
        "figures": figures,
        "finished": job.status in ("checked", "done", "failed", "new"),
        "error": job.error,
    }


def unfinished_job(checksum_: str, model: str, key: str | None, mode: str) -> ImportJob | None:
    """The newest job of the same file, model, key and mode that has not finished."""
    query = (
        select(ImportJob)
        .where(
            ImportJob.checksum == checksum_,
            ImportJob.model == model,
            ImportJob.key_field == key if key else ImportJob.key_field.is_(None),
            ImportJob.mode == mode,
            ImportJob.status.in_(("new", "checked", "queued", "running", "checking", "failed")),
        )
        .order_by(ImportJob.id.desc())
        .limit(1)
    )
    return current_session().scalar(query)


def stored_file(job: ImportJob) -> Path:
    path = Path(current_app.config["CRM_FILES_DIR"]) / job.stored_path
    if not path.exists():
        raise ImportJobError(_("The file of import %(id)s is gone.", id=job.id))
    return path


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


def _alive(runner: str | None) -> bool:
    """Whether the process that took a job still runs (known only on this host)."""
    host, _sep, pid = (runner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(job_id: int, statuses: tuple[str, ...], status: str) -> bool:
    """Take the job for this process: one process runs a job at a time. A job another
    process took is taken over once that process is gone or its heartbeat is stale."""
    session = current_session()
    row = session.execute(
        select(ImportJob.status, ImportJob.updated_at, ImportJob.runner).where(
            ImportJob.id == job_id
        )
    ).first()
    session.rollback()
    if row is None:
        raise ImportJobError(_("There is no import %(id)s.", id=job_id))
    old_status, heartbeat, runner = row
    if old_status not in statuses:
        taken_over = old_status == status and (
            heartbeat < utcnow() - STALE_AFTER or not _alive(runner)
        )
        if not taken_over:
            return False
    result = session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.status == old_status,
            ImportJob.updated_at == heartbeat,
        )
        .values(status=status, updated_at=utcnow(), error=None, runner=_runner())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _checker(job: ImportJob, user: Any) -> RowChecker:
    spec, fields = _spec_and_fields(job.model)
    positions = {int(k): v for k, v in job.mapping.items()}
    return RowChecker(
        current_session(), spec.model, fields, positions, job.key_field, job.mode, user
    )


def _problems(job: ImportJob, results: list[RowResult], dry_run: bool) -> list[ImportProblem]:
    out = []
    for r in results:
        for name, message in r.errors:
            out.append(
                ImportProblem(
                    job_id=job.id,
                    dry_run=dry_run,
                    row_number=r.row.number,
                    level="error",
                    field=name or None,
                    message=message,
                )
            )
        for message in r.warnings:
            out.append(
                ImportProblem(
                    job_id=job.id,
                    dry_run=dry_run,
                    row_number=r.row.number,
                    level="warning",
                    message=message,
                )
            )
    return out


def _tally(results: list[RowResult]) -> dict[str, int]:
    counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0, "warned": 0}
    for r in results:
        counts["failed" if r.errors else r.outcome] += 1
        if r.warnings and not r.errors:
            counts["warned"] += 1
    return counts


def _batches(source: Source, start: int) -> Any:
    size = int(current_app.config.get("CRM_IMPORT_BATCH") or BATCH)
    batch: list[Any] = []
    for row in source.rows(start):
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _user(job: ImportJob) -> Any:
    return current_session().get(User, job.user_id) if job.user_id else None


def claim_check(job_id: int) -> None:
    """Mark ``job_id`` as being checked by this process (before a thread runs the check)."""
    if not _claim(job_id, ("new", "checked", "failed"), "checking"):
        raise ImportJobError(_("Import %(id)s is running; wait for it to finish.", id=job_id))


def check_job(job_id: int, progress: Progress | None = None, *, claimed: bool = False) -> ImportJob:
    """The dry run: every row checked as the import would, nothing written but the problems
    found (``dry_run`` problems, replacing an earlier check's) and the figures. ``claimed``:
    :func:`claim_check` was called already."""
    session = current_session()
    if not claimed:
        claim_check(job_id)
    job = session.get(ImportJob, job_id)
    assert job is not None
    user = _user(job)
    session.execute(
        delete(ImportProblem).where(ImportProblem.job_id == job_id, ImportProblem.dry_run.is_(True))
    )
    session.commit()
    totals = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0, "warned": 0}
    done = 0
    with rules.acting_as(user), picklists.read_once(), older_objects_set_aside():
        checker = _checker(job, user)
        TableStatistics(session, checker.model)
        job = session.get(ImportJob, job_id)  # type: ignore[assignment]
        assert job is not None
        source = Source(stored_file(job), job.file_format, job.encoding)
        checker.dry_run = True
        for batch in _batches(source, 2):
            results = []
            rest = batch
            while rest:
                done_rows, rest = checker.check(rest)
                results.extend(done_rows)
            session.rollback()  # nothing of the check is kept but what it found
            job = session.get(ImportJob, job_id)  # type: ignore[assignment]
            assert job is not None
            session.add_all(_problems(job, results, dry_run=True))
            for name, n in _tally(results).items():
                totals[name] += n
            done += len(batch)
            job.checked = dict(totals)
            session.commit()
            if progress:
                progress(done, job.total_rows or done)
    job.status = "checked"
    job.checked = totals
    session.commit()
    return job


def run_job(job_id: int, progress: Progress | None = None) -> ImportJob:
    """Import the job's rows from its checkpoint on; see the module's description."""
    session = current_session()
    if not _claim(job_id, ("new", "checked", "failed", "queued"), "running"):
        raise ImportJobError(_("Import %(id)s is running; wait for it to finish.", id=job_id))
    job = session.get(ImportJob, job_id)
    assert job is not None
    user = _user(job)
    try:
        with (
            rules.acting_as(user),
            audit_channel("import"),
            picklists.read_once(),
            older_objects_set_aside(),
        ):
            checker = _checker(job, user)
            statistics = TableStatistics(session, checker.model)
            job = session.get(ImportJob, job_id)  # type: ignore[assignment]
            assert job is not None
            source = Source(stored_file(job), job.file_format, job.encoding)
            done = max(job.next_row - 2, 0)
            for batch in _batches(source, job.next_row):
                results = _write_batch(checker, batch, job_id)
                job = session.get(ImportJob, job_id)  # type: ignore[assignment]
                assert job is not None
                session.add_all(_problems(job, results, dry_run=False))
                tally = _tally(results)
                for name, n in tally.items():
                    setattr(job, name, getattr(job, name) + n)
                job.next_row = batch[-1].number + 1
                job.updated_at = utcnow()
                session.commit()  # the records, their problems and the checkpoint at once
                checker.committed()
                statistics.grew(tally["created"])
                done += len(batch)
                if progress:
                    progress(done, job.total_rows or done)
    except Exception as exc:
        session.rollback()
        failed = session.get(ImportJob, job_id)
        if failed is not None:
            failed.status = "failed"
            failed.error = (
                str(exc)
                if isinstance(exc, CrmError)
                else _("The import stopped: %(error)s", error=type(exc).__name__)
            )
            session.commit()
        raise
    job = session.get(ImportJob, job_id)  # type: ignore[assignment]
    assert job is not None
    job.status = "done"
    job.finished_at = utcnow()
    session.commit()
    return job


def _write(checker: RowChecker, rows: list[Any], written: list[bulk.Written]) -> list[RowResult]:
    """Check and write ``rows``: changed records in one flush, new ones in one insert."""
    session = current_session()
    results: list[RowResult] = []
    rest = rows
    while rest:
        done, rest = checker.check(rest)
        session.flush()
        if checker.bulk:
            fresh = [r.record for r in done if r.outcome == "created" and r.record is not None]
            written.append(bulk.insert_new(session, checker.model, fresh))
        duplicates.pop_warnings(session)
        results.extend(done)
    return results


def _write_batch(checker: RowChecker, batch: list[Any], job_id: int) -> list[RowResult]:
    """Check and write one batch at once; if the database refuses it (a constraint the
    checks could not foresee, a record changed meanwhile), row by row, each in its own
    savepoint, so only the rows at fault are refused. Nothing is committed here: the caller
    commits the batch with its checkpoint."""
    session = current_session()
    # The job's heartbeat first: on SQLite this write is what opens the transaction, so the
    # savepoints below nest in it (a savepoint opened first would commit on release).
    session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    written: list[bulk.Written] = []
    try:
        with session.begin_nested():
            results = _write(checker, batch, written)
        bulk.note(session, written)
        return results
    except (CrmError, IntegrityError, OperationalError, StaleDataError, bulk.OrderLost):
        pass
    results = []
    for row in batch:
        written = []
        try:
            with session.begin_nested():
                [result] = _write(checker, [row], written)
            bulk.note(session, written)
        except (CrmError, IntegrityError, StaleDataError) as exc:
            result = RowResult(row)
            if isinstance(exc, CrmError):
                result.errors.extend(_messages(exc))
            else:
                result.errors.append((None, _("The row conflicts with a record saved meanwhile.")))
        results.append(result)
    return results
