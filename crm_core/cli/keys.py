"""``crm keys``: API keys of integration users."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_appbuilder.security.sqla.models import ApiKey
from sqlalchemy import select

from ..db import session
from ..security.api_keys import ApiKeyError, create_key, is_usable, revoke


@click.group("keys")
def keys_group() -> None:
    """API keys for integrations."""


@keys_group.command("api-create")
@click.option("--user", "username", required=True, help="The user the key acts as.")
@click.option("--role", default=None, help="One of the user's roles. Default: its only role.")
@click.option("--name", default=None, help="What the key is for. Default: the user name.")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Default: until revoked.")
@with_appcontext
def api_create(username: str, role: str | None, name: str | None, days: int | None) -> None:
    """Make an API key and print it (it is shown only this once)."""
    user = current_app.appbuilder.sm.find_user(username=username)  # type: ignore[attr-defined]
    if user is None:
        raise click.ClickException(f"user {username!r} does not exist")
    if role is None:
        if len(user.roles) != 1:
            names = ", ".join(sorted(r.name for r in user.roles)) or "none"
            raise click.ClickException(f"{username} has the roles {names}: choose one with --role")
        role = user.roles[0].name
    try:
        key, raw = create_key(user, role, name or username, days)
    except ApiKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    session().commit()
    click.echo(f"key {key.id} for {username} ({role}); shown only now:")
    click.echo(raw)


@keys_group.command("list")
@with_appcontext
def list_keys() -> None:
    """Every API key with its user, role, last use and state."""
    for key in session().scalars(select(ApiKey).order_by(ApiKey.id)):
        used = key.last_used_on.strftime("%Y-%m-%d %H:%M") if key.last_used_on else "never used"
        state = "active" if is_usable(key) else "inactive"
        click.echo(f"{key.id}\t{key.name}\t{key.user.username}\t{key.scopes}\t{used}\t{state}")


@keys_group.command("revoke")
@click.argument("key_id", type=int)
@with_appcontext
def revoke_key(key_id: int) -> None:
    """Stop an API key at once (audited)."""
    key = session().get(ApiKey, key_id)
    if key is None:
        raise click.ClickException(f"no API key {key_id}")
    if revoke(key):
        session().commit()
        click.echo(f"key {key_id} is revoked")
    else:
        click.echo(f"key {key_id} was revoked already")


COMMANDS = [keys_group]
