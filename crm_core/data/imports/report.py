"""The error report of an import: the refused rows as they were in the file, with the reasons.

Users fix the rows in the report and import it again; with the job's key, rows that went in the
first time are matched, never doubled.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask_babel import gettext as _
from sqlalchemy import select

from ...db import session as current_session
from .engine import stored_file
from .models import ImportJob, ImportProblem
from .source import Source


def problems_by_row(
    job: ImportJob, dry_run: bool, level: str | None = None
) -> dict[int, list[str]]:
    """``{row number: ["field: message", ...]}`` of the job's run or dry run."""
    query = (
        select(ImportProblem.row_number, ImportProblem.field, ImportProblem.message)
        .where(ImportProblem.job_id == job.id, ImportProblem.dry_run.is_(dry_run))
        .order_by(ImportProblem.row_number, ImportProblem.id)
    )
    if level:
        query = query.where(ImportProblem.level == level)
    out: dict[int, list[str]] = {}
    for number, field, message in current_session().execute(query):
        out.setdefault(number, []).append(f"{field}: {message}" if field else message)
    return out


def error_rows(job: ImportJob, dry_run: bool) -> Iterator[list[str]]:
    """Header, then every refused row's cells followed by its line number and reasons."""
    problems = problems_by_row(job, dry_run, level="error")
    source = Source(stored_file(job), job.file_format, job.encoding)
    yield [*source.header, _("Row"), _("Problems")]
    if not problems:
        return
    last = max(problems)
    for row in source.rows():
        if row.number > last:
            break
        if row.number in problems:
            cells = row.cells + [""] * (len(source.header) - len(row.cells))
            yield [*cells, str(row.number), "；".join(problems[row.number])]


def error_report_csv(job: ImportJob, dry_run: bool) -> Iterator[str]:
    """The report as CSV text chunks, UTF-8 with BOM so Excel opens it in Chinese."""
    yield "\ufeff"
    for cells in error_rows(job, dry_run):
        buffer = io.StringIO()
        csv.writer(buffer).writerow(cells)
        yield buffer.getvalue()
