"""``crm import``: a CSV or XLSX file into customers, contacts or any importable model."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from flask_appbuilder.security.sqla.models import User
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select

from ..data.imports import engine
from ..data.imports.report import error_report_csv, problems_by_row
from ..data.imports.source import checksum
from ..data.imports.targets import fields_of, specs
from ..db import session
from ..errors import CrmError, FieldError

console = Console()


def _mapping(
    header: list[str], pairs: tuple[str, ...], suggested: dict[int, str]
) -> dict[int, str]:
    chosen = dict(suggested)
    for pair in pairs:
        title, sep, field = pair.partition("=")
        if not sep or title not in header:
            raise click.BadParameter(
                f"{pair!r}: give HEADER=FIELD with a header of the file", param_hint="--map"
            )
        position = header.index(title)
        chosen = {p: f for p, f in chosen.items() if f != field and p != position}
        if field:
            chosen[position] = field
    return chosen


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _run(action, job_id: int, label: str):  # type: ignore[no-untyped-def]
    with _progress(label) as bar:
        task = bar.add_task(label, total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return action(job_id, progress=step)


def _show_mapping(job: engine.ImportJob, header: list[str]) -> None:
    spec = specs()[job.model]
    labels = {f.key: f.label for f in fields_of(spec)}
    table = Table("column", "field")
    for position, key in sorted((int(p), k) for p, k in job.mapping.items()):
        table.add_row(header[position], f"{labels.get(key, key)} ({key})")
    console.print(table)


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "model", default="customer", show_default=True, help="What the rows are.")
@click.option("--key", default=None, help="The field that finds existing records (code, phone…).")
@click.option(
    "--mode",
    type=click.Choice(["upsert", "create", "update"]),
    default="upsert",
    show_default=True,
    help="Add and update, only add, or only update records.",
)
@click.option(
    "--user",
    "username",
    default=None,
    help="Import as this user: their rights apply and new records are theirs.",
)
@click.option(
    "--map",
    "pairs",
    multiple=True,
    help="HEADER=FIELD, to change the suggested mapping (HEADER= leaves a column out).",
)
@click.option(
    "--encoding",
    default=None,
    help="The CSV's encoding when it is not told apart (utf-8, gb18030).",
)
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the refused rows with their reasons to this CSV file.",
)
@with_appcontext
def import_command(
    path: Path,
    model: str,
    key: str | None,
    mode: str,
    username: str | None,
    pairs: tuple[str, ...],
    encoding: str | None,
    dry_run: bool,
    errors_path: Path | None,
) -> None:
    """Import PATH (CSV in UTF-8 or GBK, or XLSX). Rerunning the same command after an
    interruption goes on where the import stopped."""
    s = session()
    user = None
    if username:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"no user {username!r}")
    key = key if mode != "create" or key else None
    if mode != "create" and key is None:
        key = specs()[model].keys[0] if model in specs() and specs()[model].keys else None
    try:
        job = engine.unfinished_job(checksum(path), model, key, mode)
        if job is not None and not pairs:
            if job.next_row > 2:
                console.print(f"import {job.id}: going on from row {job.next_row}")
        else:
            from ..data.imports import mapping as column_mapping
            from ..data.imports.source import Source, file_format

            source = Source(path, file_format(path.name), encoding)
            spec = specs().get(model)
            suggested = column_mapping.suggest(source.header, fields_of(spec)) if spec else {}
            chosen = _mapping(source.header, pairs, suggested)
            job = engine.create_job(
                path, model, user, mapping=chosen, key=key, mode=mode, encoding=encoding
            )
            _show_mapping(job, source.header)
        if dry_run:
            job = _run(engine.check_job, job.id, "checking")
            figures = job.checked or {}
        else:
            job = _run(engine.run_job, job.id, "importing")
            figures = {
                n: getattr(job, n) for n in ("created", "updated", "unchanged", "failed", "warned")
            }
    except FieldError as exc:
        raise click.ClickException(
            "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.messages.items())
        ) from None
    except CrmError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(
        f"import {job.id}: "
        + ", ".join(
            f"{figures.get(n, 0)} {n}"
            for n in ("created", "updated", "unchanged", "failed", "warned")
        )
    )
    problems = problems_by_row(job, dry_run)
    for number in list(problems)[:20]:
        console.print(f"  row {number}: " + "; ".join(problems[number]), markup=False)
    if len(problems) > 20:
        console.print(f"  … and {len(problems) - 20} more rows")
    if errors_path is not None:
        with errors_path.open("w", encoding="utf-8", newline="") as handle:
            for chunk in error_report_csv(job, dry_run):
                handle.write(chunk)
        console.print(f"refused rows written to {errors_path}")


COMMANDS = [import_command]
