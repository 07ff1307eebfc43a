"""Logins and roles in the audit trail.

Flask-AppBuilder's ``User`` and ``Role`` are not business records (they raise no domain
events), yet who made a login, gave it a role, switched it off or reset its password, and who
changed what a role may do, are what an audit is read for. Every write of them, from the user
and role screens, ``crm users``, ``crm upgrade`` or code, leaves an entry with model ``user`` or
``role`` and an operation of its own (``audit.ACCESS_OPERATIONS``), in the same transaction.

What an entry holds:
- a login's name, e-mail, first and last name and active flag as ``[old, new]``;
- its roles as the sorted lists of their stored names before and after;
- ``password: ["***", "***"]`` when the password changed (never the hash);
- a role's name, and the permissions it gained and lost, each ``"can list on CustomerView"``.

A login's counters (last login, login count, failed logins) change at every login and are not
a change of the account. A form that flushes twice (the user screen writes the fields, then the
roles) still leaves one entry: a change flushed while the record's entry is not yet written
joins that entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import has_app_context
from flask_appbuilder.security.sqla.models import Role, User
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from . import audit

HIDDEN = "***"
USER_FIELDS = ("username", "first_name", "last_name", "email", "active")
ROLE_FIELDS = ("name",)
_PENDING_KEY = "crm_account_audit"
_ROWS_KEY = "crm_account_audit_rows"


def install(session_factory: Any) -> None:
    """Attach the listeners to the app's session class (or scoped session)."""

    @event.listens_for(session_factory, "before_flush")
    def _capture(session: Session, _ctx: Any, _instances: Any) -> None:
        if not has_app_context():
            return
        found = []
        rows = session.info.get(_ROWS_KEY, {})
        for obj in (*session.new, *session.dirty, *session.deleted):
            if not isinstance(obj, User | Role):
                continue
            state = "new" if obj in session.new else "del" if obj in session.deleted else "edit"
            changes = _changes(obj, state)
            row = rows.get((_model(obj), obj.id))
            if state == "edit" and row is not None and row in session.new:
                row.changes = _joined(row.changes, changes)  # not written yet: one entry
            elif changes or state != "edit":
                found.append((obj, _model(obj), state, changes))
        if found:
            actor = audit.current_actor()  # before the flush: reading the user may load it
            session.info.setdefault(_PENDING_KEY, []).extend((*entry, actor) for entry in found)

    @event.listens_for(session_factory, "after_flush")
    def _write(session: Session, _ctx: Any) -> None:
        rows = session.info.setdefault(_ROWS_KEY, {})
        for obj, model, state, changes, actor in session.info.pop(_PENDING_KEY, []):
            prefix = "acct" if model == "user" else "role"
            rows[(model, obj.id)] = audit.write_entry(
                session, model, obj.id, f"{prefix}_{state}", changes, actor=actor
            )

    @event.listens_for(session_factory, "after_commit")
    @event.listens_for(session_factory, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_PENDING_KEY, None)
        session.info.pop(_ROWS_KEY, None)


def _joined(written: dict[str, list[Any]], later: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """An entry's changes with a later flush's: the first old value, the last new one; what a
    role gained or lost, together."""
    out = dict(written)
    for key, (old, new) in later.items():
        if key.endswith((" added", " removed")) and key in out:
            side = 1 if key.endswith(" added") else 0
            pair = list(out[key])
            pair[side] = sorted({*pair[side], *(new if side else old)})
            out[key] = pair
        elif key in out:
            out[key] = [out[key][0], audit.jsonable(new)]
        else:
            out[key] = [audit.jsonable(old), audit.jsonable(new)]
    return out


def _model(obj: User | Role) -> str:
    return "user" if isinstance(obj, User) else "role"


def _changes(obj: User | Role, state: str) -> dict[str, tuple[Any, Any]]:
    fields = USER_FIELDS if isinstance(obj, User) else ROLE_FIELDS
    insp = inspect(obj)
    out: dict[str, tuple[Any, Any]] = {}
    for key in fields:
        if state == "new":
            value = insp.dict.get(key)
            if value not in (None, ""):
                out[key] = (None, value)
        elif state == "del":
            out[key] = (insp.dict.get(key), None)
        else:
            history = insp.attrs[key].history
            if history.has_changes():
                old = history.deleted[0] if history.deleted else None
                new = history.added[0] if history.added else None
                if old != new:
                    out[key] = (old, new)
    if isinstance(obj, User):
        if insp.attrs.password.history.has_changes() and state != "del":
            out["password"] = (None if state == "new" else HIDDEN, HIDDEN)
        _link(out, insp, "roles", lambda r: r.name, full=True, state=state)
    else:
        _link(out, insp, "permissions", repr, full=False, state=state)
    return out


def _link(
    out: dict[str, tuple[Any, Any]],
    insp: Any,
    key: str,
    name: Callable[[Any], str],
    *,
    full: bool,
    state: str,
) -> None:
    """A collection's change: the whole lists before and after (``full``), else what was lost
    and what was gained under ``<key> removed`` and ``<key> added``."""
    history = insp.attrs[key].history
    if state == "edit" and not (history.added or history.deleted):
        return
    added = sorted(name(x) for x in history.added)
    removed = sorted(name(x) for x in history.deleted)
    if full:
        kept = sorted(name(x) for x in history.unchanged)
        before = None if state == "new" else sorted(kept + removed)
        after = None if state == "del" else sorted(kept + added)
        if before != after and (before or after):
            out[key] = (before, after)
        return
    if removed:
        out[f"{key} removed"] = (removed, None)
    if added:
        out[f"{key} added"] = (None, added)
