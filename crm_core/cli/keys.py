"""``crm keys``: API keys of integration users, and the keys of encrypted custom fields."""

from __future__ import annotations

from datetime import date

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_appbuilder.security.sqla.models import ApiKey
from sqlalchemy import select

from ..db import session
from ..security.api_keys import ApiKeyError, create_key, is_usable, revoke
from ..security.encryption import current_state
from ..security.keyring import KeyringError, new_key_line
from ..security.rotation import BATCH_SIZE, Counts, RotationError, sync


@click.group("keys")
def keys_group() -> None:
    """API keys for integrations; encryption keys of encrypted fields."""


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


@keys_group.command("encryption-new")
@click.option("--id", "key_id", default=None, help="The key's id. Default: k and today's date.")
def encryption_new(key_id: str | None) -> None:
    """Print a new encryption key as an item of CRM_ENCRYPTION_KEYS.

    Put it first in CRM_ENCRYPTION_KEYS to make it the current key (keep the older keys after
    it), restart the CRM, then run `crm keys rotate`.
    """
    try:
        click.echo(new_key_line(key_id or "k" + date.today().strftime("%Y%m%d")))
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None


def _summary(counts: Counts) -> str:
    return (
        f"{counts.records} records looked at, {counts.written} written "
        f"({counts.encrypted} encrypted, {counts.reencrypted} re-encrypted, "
        f"{counts.decrypted} decrypted), {counts.index_rows} index rows changed, "
        f"{counts.copies} history entries and events rewritten, {counts.skipped} skipped, "
        f"{counts.unreadable} unreadable"
    )


@keys_group.command("rotate")
@click.option("--model", default=None, help="Only this record type (e.g. Customer).")
@click.option("--field", default=None, help="Only this custom field of --model.")
@click.option("--batch-size", type=click.IntRange(min=1), default=BATCH_SIZE, show_default=True)
@with_appcontext
def rotate(model: str | None, field: str | None, batch_size: int) -> None:
    """Re-encrypt stored custom values under the current key.

    Values of fields marked encrypted end up under the first key of CRM_ENCRYPTION_KEYS
    (plain ones are encrypted), values of fields no longer marked are decrypted, and the
    blind index is rebuilt to match. Works in batches, each committed: safe to stop and run
    again. Remove an old key from CRM_ENCRYPTION_KEYS only after a run that reports no
    unreadable value.
    """
    if field is not None and model is None:
        raise click.UsageError("--field needs --model")
    ring = current_state().keyring()
    if not ring:
        raise click.ClickException("no encryption key is configured (CRM_ENCRYPTION_KEYS)")
    click.echo(f"current key {ring.current_id}; configured: {', '.join(ring.ids)}")

    def progress(name: str, counts: Counts) -> None:
        click.echo(f"{name}: {counts.records} records looked at, {counts.written} written")

    try:
        counts = sync(model=model, field=field, batch_size=batch_size, progress=progress)
    except RotationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("done: " + _summary(counts))
    if counts.skipped:
        click.echo("some records changed during the run: run it again to check them")
    if counts.unreadable:
        raise click.ClickException(
            f"{counts.unreadable} values could not be read: their key is not in "
            "CRM_ENCRYPTION_KEYS (add it back and run again before removing it)"
        )


COMMANDS = [keys_group]
