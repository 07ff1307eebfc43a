"""``crm plugins list|install|enable|disable|uninstall``."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from rich.console import Console
from rich.table import Table

from ..plugins import lifecycle


@click.group("plugins")
def plugins_group() -> None:
    """Modules: list them and change their state."""


@plugins_group.command("list")
@with_appcontext
def list_plugins() -> None:
    """Every plugin found, with version, phase, state, dependencies and errors."""
    registry = current_app.extensions["crm"]
    table = Table("name", "title", "version", "phase", "state", "depends", "error")
    errors = registry.errors()
    for info in registry.ordered():
        m = info.manifest
        error = errors.get(info.name, "")
        table.add_row(
            info.name,
            info.title,
            info.version,
            str(m.phase) if m else "",
            registry.state_of(info.name),
            ", ".join(f"{k}{v}" for k, v in (m.depends if m else {}).items()),
            error.strip().splitlines()[-1] if error else "",
        )
    Console(width=160).print(table)


def _run(action: str, name: str, **kwargs: object) -> None:
    try:
        getattr(lifecycle, action)(name, **kwargs)
    except lifecycle.LifecycleError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name}: {current_app.extensions['crm'].state_of(name)}")


@plugins_group.command("install")
@click.argument("name")
@with_appcontext
def install_plugin(name: str) -> None:
    """Create or upgrade a plugin's tables (restart the CRM afterwards to show its screens)."""
    _run("install", name)


@plugins_group.command("enable")
@click.argument("name")
@with_appcontext
def enable_plugin(name: str) -> None:
    """Show a plugin's screens, APIs and jobs (no restart needed)."""
    _run("enable", name)


@plugins_group.command("disable")
@click.argument("name")
@with_appcontext
def disable_plugin(name: str) -> None:
    """Hide a plugin's screens, APIs and jobs; its data stays."""
    _run("disable", name)


@plugins_group.command("uninstall")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm that the plugin's tables and data go.")
@with_appcontext
def uninstall_plugin(name: str, yes: bool) -> None:
    """Drop a plugin's tables and data (asks for --yes)."""
    _run("uninstall", name, confirm=yes)


COMMANDS = [plugins_group]
