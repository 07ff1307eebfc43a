"""How people's names are shown: Chinese names surname first, with no space."""

from __future__ import annotations

from typing import Any


def _is_cjk(text: str) -> bool:
    return bool(text) and all("\u3400" <= ch <= "\u9fff" for ch in text.strip())


def display_user(user: Any) -> str:
    """``王芳`` for a user with last name 王 and first name 芳; ``Ada Lovelace`` otherwise.

    Flask-AppBuilder shows first name then last name with a space, which reads wrongly in
    Chinese. ``None`` (a customer in the shared pool) shows as an empty string.
    """
    if user is None:
        return ""
    first = (getattr(user, "first_name", "") or "").strip()
    last = (getattr(user, "last_name", "") or "").strip()
    if last in ("", "-"):
        return first
    if _is_cjk(first) and _is_cjk(last):
        return f"{last}{first}"
    return f"{first} {last}".strip()
