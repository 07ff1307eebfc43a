"""``crm init`` and ``crm upgrade``: migrations and permission sync for the core and plugins."""

from __future__ import annotations

from typing import cast

import click
from flask import current_app
from flask.cli import with_appcontext
from rich.console import Console
from sqlalchemy import Engine

from ..db import session
from ..lowcode import picklists
from ..plugins import lifecycle, migrations
from ..plugins.models import AVAILABLE
from ..roles import sync_roles

console = Console()


def upgrade_all() -> list[str]:
    """Migrate the core, then every loadable plugin in dependency order, then sync permissions.

    A newly pip-installed plugin becomes ``installed`` (or ``enabled`` if its manifest says so).
    Returns the names of plugins that moved out of ``available``.
    """
    registry = current_app.extensions["crm"]
    migrations.upgrade(cast(Engine, session().get_bind()), migrations.CORE_LINEAGE)
    registry.forget_cached_states()
    newly = []
    for info in registry.ordered():
        if not info.loaded:
            continue
        before = registry.state_of(info.name)
        lifecycle.install(info.name)
        if before == AVAILABLE:
            newly.append(info.name)
    sync_roles()
    sync_picklists()
    return newly


def sync_picklists() -> int:
    """Add the picklists and values modules declare that the database lacks (see
    :mod:`crm_core.lowcode.picklists`); returns how many rows were added."""
    registry = current_app.extensions["crm"]
    specs = list(registry.collect_specs("register_picklists"))
    added = picklists.sync_defaults(session(), specs)
    session().commit()
    return added


@click.command("upgrade")
@with_appcontext
def upgrade_command() -> None:
    """Apply migrations of the core and every plugin, and sync permissions."""
    newly = upgrade_all()
    registry = current_app.extensions["crm"]
    for info in registry.ordered():
        state = registry.state_of(info.name)
        mark = "[red]error[/red]" if info.error else state
        console.print(f"  {info.name:<20} {info.version:<10} {mark}")
    if newly:
        console.print(
            f"[yellow]Restart the CRM to show the screens of: {', '.join(newly)}[/yellow]"
        )
    console.print("[green]Database is up to date.[/green]")


@click.command("init")
@click.option("--admin-user", default="admin", show_default=True)
@click.option("--admin-password", default=None, help="Default: generated and printed.")
@click.option("--admin-email", default="admin@example.com", show_default=True)
@with_appcontext
def init_command(admin_user: str, admin_password: str | None, admin_email: str) -> None:
    """Create or upgrade the database and make sure an administrator exists."""
    from .users import ensure_user

    upgrade_all()
    created, password = ensure_user(
        admin_user, admin_password, admin_email, "Admin", first="管理员", last="系统"
    )
    if created:
        console.print(f"Administrator [bold]{admin_user}[/bold] / [bold]{password}[/bold]")
    console.print("[green]The CRM is ready.[/green]")


COMMANDS = [upgrade_command, init_command]
