"""``crm backup`` and ``crm restore``: the whole CRM in a portable archive, and back."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from ..data.backup import default_name, write_backup
from ..data.backup_restore import restore
from ..data.backup_tables import BackupError
from ..db import session

console = Console(stderr=True)


class ProgressReporter:
    """Rows done per table, as a progress bar on the console."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressReporter:
        self._progress.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def table(self, name: str, total: int) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(name, total=total or None)

    def advance(self, rows: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, rows)


@click.command("backup")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="The archive to write. Default: crm-backup-<date>-<time>.zip here.",
)
@with_appcontext
def backup_command(output: Path | None) -> None:
    """Write every table, the configuration and the files of the CRM into one archive."""
    target = output or Path(default_name())
    try:
        with ProgressReporter() as reporter:
            manifest = write_backup(target, reporter)
    except BackupError as exc:
        session().rollback()
        raise click.ClickException(str(exc)) from None
    rows = sum(t["rows"] for t in manifest["tables"])
    click.echo(
        _(
            "%(path)s: %(tables)s tables, %(rows)s rows, %(files)s files",
            path=target,
            tables=len(manifest["tables"]),
            rows=rows,
            files=manifest["files"]["count"],
        )
    )
    for name, reason in manifest["excluded"].items():
        click.echo(_("not included: %(table)s (%(reason)s)", table=name, reason=reason))
    if current_app.config.get("CRM_ENCRYPTION_KEYS"):
        click.echo(
            _("encrypted fields stay encrypted: keep CRM_ENCRYPTION_KEYS apart from the archive")
        )


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def restore_command(path: Path, yes: bool) -> None:
    """Load the archive PATH into this CRM's empty database and files directory."""
    url = session().get_bind().url.render_as_string(hide_password=True)  # type: ignore[union-attr]
    if not yes:
        click.confirm(_("Restore %(path)s into %(url)s?", path=path, url=url), abort=True)
    try:
        with ProgressReporter() as reporter:
            report = restore(path, reporter)
    except BackupError as exc:
        session().rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(
        _(
            "restored %(tables)s tables, %(rows)s rows and %(files)s files into %(url)s",
            tables=report.tables,
            rows=report.rows,
            files=report.files,
            url=url,
        )
    )
    if report.behind:
        click.echo(
            _(
                "the archive's schema of %(names)s is older than this CRM: run `crm upgrade`",
                names=", ".join(report.behind),
            )
        )
    if report.encrypted_fields and not current_app.config.get("CRM_ENCRYPTION_KEYS"):
        click.echo(
            _(
                "%(count)s custom fields are encrypted: set CRM_ENCRYPTION_KEYS to the keys of "
                "the backed-up CRM to read them",
                count=report.encrypted_fields,
            )
        )
    if report.differences:
        raise click.ClickException(
            _("the restored data differs from the archive:")
            + "\n  "
            + "\n  ".join(report.differences)
        )
    click.echo(_("every table matches the archive's row count and checksum"))


COMMANDS = [backup_command, restore_command]
