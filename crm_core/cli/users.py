"""``crm users``: create login users with a role."""

from __future__ import annotations

import secrets

import click
from flask import current_app
from flask.cli import with_appcontext


def ensure_user(
    username: str,
    password: str | None,
    email: str,
    role: str,
    first: str = "",
    last: str = "",
) -> tuple[bool, str | None]:
    """Create ``username`` with ``role`` unless it exists; returns (created, password used)."""
    sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
    if sm.find_user(username=username) is not None:
        return False, None
    role_row = sm.find_role(role)
    if role_row is None:
        raise click.ClickException(f"role {role!r} does not exist; run `crm upgrade` first")
    password = password or secrets.token_urlsafe(9)
    user = sm.add_user(username, first or username, last or "-", email, role_row, password)
    if not user:
        raise click.ClickException(f"could not create user {username!r} (is {email} taken?)")
    return True, password


@click.group("users")
def users_group() -> None:
    """Login users."""


@users_group.command("create")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--role", default="Sales Rep", show_default=True)
@click.option("--password", default=None, help="Default: generated and printed.")
@with_appcontext
def create_user(username: str, email: str, role: str, password: str | None) -> None:
    """Create a login user."""
    created, password = ensure_user(username, password, email, role)
    if not created:
        raise click.ClickException(f"user {username!r} already exists")
    click.echo(f"{username} / {password} ({role})")


COMMANDS = [users_group]
