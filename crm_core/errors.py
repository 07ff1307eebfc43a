"""Errors the core raises for users: each names the field and the problem, never SQL."""

from __future__ import annotations


class CrmError(Exception):
    """Base class; ``messages`` maps field names to lists of messages for the user."""

    status = 400

    def __init__(self, messages: dict[str, list[str]] | str) -> None:
        if isinstance(messages, str):
            messages = {"_schema": [messages]}
        self.messages = messages
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items()))

    def __str__(self) -> str:
        return "; ".join(
            " ".join(v) if k == "_schema" else f"{k}: {' '.join(v)}"
            for k, v in self.messages.items()
        )


class VetoError(CrmError):
    """A ``validate_change`` implementation refused the write."""

    status = 422


class FieldError(CrmError):
    """A value that is invalid for its field."""

    status = 422


class ConflictError(CrmError):
    """A unique value already taken, or a record changed by someone else since it was read."""

    status = 409


class PermissionDenied(CrmError):
    """The user may see the record but not make this change to it (a record rule)."""

    status = 403
