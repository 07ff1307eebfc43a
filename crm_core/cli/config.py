"""``crm config``: customisations as a YAML bundle, exported, compared and imported."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from ..db import session
from ..lowcode import bundle


@click.group("config")
def config_group() -> None:
    """Customisations (custom fields, picklists, roles, record rules, settings) as YAML."""


@config_group.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@with_appcontext
def export_command(output: Path | None) -> None:
    """Write every customisation as one YAML document (to stdout, or OUTPUT)."""
    text = bundle.dump(bundle.export(session()))
    session().rollback()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"configuration written to {output}", err=True)


def _read(path: Path) -> dict[str, object]:
    try:
        return bundle.load(path.read_text(encoding="utf-8"))
    except bundle.BundleError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


def _problems(exc: bundle.BundleError) -> click.ClickException:
    return click.ClickException(
        "nothing was changed; the bundle has problems:\n  " + "\n  ".join(exc.problems)
    )


@config_group.command("diff")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def diff_command(path: Path) -> None:
    """What importing PATH would change here, and what only this instance has."""
    data = _read(path)
    try:
        changes = bundle.apply(session(), data, dry_run=True)
    except bundle.BundleError as exc:
        raise _problems(exc) from None
    extra = bundle.only_here(session(), data)
    session().rollback()
    for line in changes:
        click.echo(f"~ {line}")
    for line in extra:
        click.echo(f"  {line}")
    if not changes:
        click.echo("no changes")


@config_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@with_appcontext
def import_command(path: Path, dry_run: bool) -> None:
    """Apply PATH here: add and update, all or nothing."""
    data = _read(path)
    try:
        changes = bundle.apply(session(), data, dry_run=dry_run)
    except bundle.BundleError as exc:
        raise _problems(exc) from None
    for line in changes:
        click.echo(f"~ {line}")
    verb = "would change" if dry_run else "changed"
    click.echo(f"{len(changes)} {'entry' if len(changes) == 1 else 'entries'} {verb}")


COMMANDS = [config_group]
