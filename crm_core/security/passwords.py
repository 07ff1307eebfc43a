"""The password policy: long enough, letters and digits, not the user name.

Flask-AppBuilder calls :func:`validate_password` (``FAB_PASSWORD_COMPLEXITY_VALIDATOR``) from
its add-user form and its password reset forms; ``crm users create`` and ``crm init`` call
:func:`check_password`. The minimum length is the setting ``security.password_min_length``.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from flask import current_app, g, has_app_context, has_request_context, request
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_babel import LazyString, gettext

MIN_LENGTH = "security.password_min_length"
DEFAULT_MIN_LENGTH = 10


def min_length() -> int:
    """The configured minimum length (the default without an app or settings table)."""
    if not has_app_context():
        return DEFAULT_MIN_LENGTH
    from ..settings.store import get_setting

    try:
        return max(1, int(get_setting(MIN_LENGTH)))
    except (KeyError, TypeError, ValueError):
        return DEFAULT_MIN_LENGTH


def problems(password: str, username: str | None, minimum: int) -> list[str]:
    """What ``password`` lacks, as messages naming the password (empty when it is good)."""
    out = []
    if len(password) < minimum:
        out.append(gettext("The password must have at least %(count)s characters.", count=minimum))
    if not (any(c.isalpha() for c in password) and any(c.isdigit() for c in password)):
        out.append(gettext("The password must contain both letters and digits."))
    if username and password.strip().lower() == username.strip().lower():
        out.append(gettext("The password must not be the same as the user name."))
    return out


def check_password(password: str, username: str | None = None) -> None:
    """Raise :class:`PasswordComplexityValidationError` naming what ``password`` lacks."""
    found = problems(password, username, min_length())
    if found:
        raise PasswordComplexityValidationError(" ".join(found))


def _username_of_request() -> str | None:
    """The user whose password a form sets: the add-user form's name, the user an admin resets
    (``?pk=``), else the signed-in user changing their own."""
    if not has_request_context():
        return None
    typed = request.form.get("username")
    if typed:
        return typed
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict) and isinstance(body.get("username"), str):
        return str(body["username"])
    sm: Any = current_app.appbuilder.sm  # type: ignore[attr-defined]
    pk = request.args.get("pk")
    if pk and pk.isdigit():
        target = sm.get_user_by_id(int(pk))
        return None if target is None else str(target.username)
    user = g.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.username)
    return None


def validate_password(password: str) -> None:
    """Flask-AppBuilder's password complexity hook (``FAB_PASSWORD_COMPLEXITY_VALIDATOR``)."""
    check_password(password or "", _username_of_request())


def _hint() -> str:
    return gettext(
        "At least %(count)s characters, with letters and digits, and not the user name.",
        count=min_length(),
    )


#: The policy in one sentence, for the description of password fields.
POLICY_HINT = LazyString(_hint)


def generate_password() -> str:
    """A random password that meets the policy."""
    alphabet = string.ascii_letters + string.digits
    length = max(16, min_length())
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if not problems(password, None, length):
            return password
