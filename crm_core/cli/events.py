"""``crm events``: deliver domain events left pending."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..events.dispatch import dispatch_pending


@click.group("events")
def events_group() -> None:
    """Domain events in the outbox."""


@events_group.command("dispatch")
@click.option("--limit", default=10000, show_default=True)
@with_appcontext
def dispatch_command(limit: int) -> None:
    """Deliver pending events to every enabled plugin's handler."""
    click.echo(f"{dispatch_pending(limit=limit)} events dispatched")


COMMANDS = [events_group]
