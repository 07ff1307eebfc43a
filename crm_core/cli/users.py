"""``crm users``: create login users with a role, unlock locked accounts."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_appbuilder.exceptions import PasswordComplexityValidationError

from ..db import session
from ..security.lockout import find_lock, is_locked, unlock
from ..security.names import role_named
from ..security.passwords import check_password, generate_password


def ensure_user(
    username: str,
    password: str | None,
    email: str,
    role: str,
    first: str = "",
    last: str = "",
    *,
    check_policy: bool = True,
) -> tuple[bool, str | None]:
    """Create ``username`` with ``role`` unless it exists; returns (created, password used).

    A given password must meet the password policy, unless ``check_policy`` is false (the demo
    data's documented passwords); a generated one always does.
    """
    sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
    if sm.find_user(username=username) is not None:
        return False, None
    role_row = sm.find_role(role_named(role))  # by its name or its label (销售代表)
    if role_row is None:
        raise click.ClickException(f"role {role!r} does not exist; run `crm upgrade` first")
    if password and check_policy:
        try:
            check_password(password, username)
        except PasswordComplexityValidationError as exc:
            raise click.ClickException(str(exc)) from exc
    password = password or generate_password()
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
@click.option(
    "--role", default="Sales Rep", show_default=True, help="A role's name or label (销售代表)."
)
@click.option("--password", default=None, help="Default: generated and printed.")
@with_appcontext
def create_user(username: str, email: str, role: str, password: str | None) -> None:
    """Create a login user."""
    created, password = ensure_user(username, password, email, role)
    if not created:
        raise click.ClickException(f"user {username!r} already exists")
    click.echo(f"{username} / {password} ({role})")


@users_group.command("unlock")
@click.argument("username")
@with_appcontext
def unlock_user(username: str) -> None:
    """Unlock an account locked after too many wrong passwords (audited)."""
    user = current_app.appbuilder.sm.find_user(username=username)  # type: ignore[attr-defined]
    lock = find_lock(user.username if user is not None else username)
    if lock is None or not is_locked(lock):
        if lock is not None:
            unlock([lock])  # forget the wrong passwords counted so far
            session().commit()
        click.echo(f"{username} is not locked")
        return
    unlock([lock])
    session().commit()
    click.echo(f"{username} is unlocked")


COMMANDS = [users_group]
