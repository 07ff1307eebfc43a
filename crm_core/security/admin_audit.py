"""Logins, roles and settings in the audit trail.

Flask-AppBuilder's ``User`` and ``Role`` are not business records (they raise no domain
events), and settings are keyed by name, not by id; yet who made a login, gave it a role,
switched it off or reset its password, who changed what a role may do and who lowered the
password policy are what an audit is read for. Every write of them, from the screens, the APIs,
``crm users``, ``crm upgrade`` or code, leaves an entry with model ``user``, ``role`` or
``setting`` and an operation of its own (``audit.ADMIN_OPERATIONS``), in the same transaction.

What an entry holds:
- a login's name, e-mail, first and last name and active flag as ``[old, new]``;
- its roles as the sorted lists of their stored names before and after;
- ``password: ["***", "***"]`` when the password changed (never the hash);
- a role's name, and the permissions it gained and lost, each ``"can list on CustomerView"``;
- the settings changed, ``{key: [old, new]}``, in one entry (record id 0); a value no declared
  setting shows (a notification channel's password or webhook address) as ``***``.

A login's counters (last login, login count, failed logins) change at every login and are not
a change of the account. Entries are written when the transaction commits, one per login or
role and one for the settings: a screen that flushes several times (the user screen writes the
fields, then the roles; the settings screen a setting at a time) leaves one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, has_app_context
from flask_appbuilder.security.sqla.models import Role, User
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from ..settings.models import Setting
from . import audit

HIDDEN = "***"
USER_FIELDS = ("username", "first_name", "last_name", "email", "active")
ROLE_FIELDS = ("name",)
_PENDING_KEY = "crm_admin_audit"


def install(session_factory: Any) -> None:
    """Attach the listeners to the app's session class (or scoped session)."""

    @event.listens_for(session_factory, "before_flush")
    def _capture(session: Session, _ctx: Any, _instances: Any) -> None:
        if not has_app_context():
            return
        pending = session.info.setdefault(_PENDING_KEY, {})
        settings: dict[str, tuple[Any, Any]] = {}
        for obj in (*session.new, *session.dirty, *session.deleted):
            if isinstance(obj, Setting):
                settings.update(_setting_change(session, obj))
            elif isinstance(obj, User | Role):
                state = "new" if obj in session.new else "del" if obj in session.deleted else "edit"
                _note(pending, obj, state, _changes(obj, state))
        if settings:
            _note(pending, "setting", "edit", settings)

    @event.listens_for(session_factory, "before_commit")
    def _write(session: Session) -> None:
        if session.new or session.dirty or session.deleted:
            session.flush()  # the commit's own flush comes after this hook: note it now
        for key, entry in session.info.pop(_PENDING_KEY, {}).items():
            changes = {
                field: _shown(key, field, old, new)
                for field, (old, new) in entry["changes"].items()
                if old != new
            }
            if not changes and entry["state"] == "edit":
                continue
            if key == "setting":
                model, record_id, operation = "setting", 0, "setting"
            else:
                model = "user" if isinstance(key, User) else "role"
                prefix = "acct" if model == "user" else "role"
                record_id, operation = key.id, f"{prefix}_{entry['state']}"
            audit.write_entry(session, model, record_id, operation, changes, actor=entry["actor"])

    @event.listens_for(session_factory, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_PENDING_KEY, None)


def _note(
    pending: dict[Any, dict[str, Any]], key: Any, state: str, changes: dict[str, tuple[Any, Any]]
) -> None:
    """Add a flush's changes of one record (or of the settings) to what the transaction will
    write at commit: the first old value and the last new one of each field, what a role gained
    and lost all together; a record made and deleted in one transaction leaves nothing."""
    entry = pending.get(key)
    if entry is None:
        if changes or state != "edit":
            actor = audit.current_actor()  # before the flush: reading the user may load it
            pending[key] = {"state": state, "changes": dict(changes), "actor": actor}
        return
    if state == "del":
        if entry["state"] == "new":
            del pending[key]
            return
        entry["state"] = "del"
    merged = entry["changes"]
    for field, (old, new) in changes.items():
        if field.endswith((" added", " removed")) and field in merged:
            side = 1 if field.endswith(" added") else 0
            pair = list(merged[field])
            pair[side] = sorted({*pair[side], *(new if side else old)})
            merged[field] = tuple(pair)
        elif field in merged:
            merged[field] = (merged[field][0], new)
        else:
            merged[field] = (old, new)


def _shown(key: Any, field: str, old: Any, new: Any) -> tuple[Any, Any]:
    """A change as the entry shows it: a password (its hash) and a value no declared setting
    shows (a notification channel's password or webhook address) as ``***``."""
    if key == "setting":
        secret = field not in current_app.extensions["crm"].settings
    else:
        secret = isinstance(key, User) and field == "password"
    if not secret:
        return old, new
    return (None if old in (None, "") else HIDDEN, None if new in (None, "") else HIDDEN)


def _setting_change(session: Session, row: Setting) -> dict[str, tuple[Any, Any]]:
    """``{key: (old, new)}`` of a setting written (a new row's old value is the default)."""
    spec = current_app.extensions["crm"].settings.get(row.key)
    if row in session.new:  # was the default
        old, new = (spec.default if spec is not None else None), row.value
    elif row in session.deleted:
        old, new = row.value, None
    else:
        old, new = _old_and_new(inspect(row).attrs.value.history)
    return {} if old == new else {row.key: (old, new)}


def _old_and_new(history: Any) -> tuple[Any, Any]:
    """A column's value before and after the flush, from its attribute history."""
    return (
        history.deleted[0] if history.deleted else None,
        history.added[0] if history.added else None,
    )


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
            old, new = _old_and_new(insp.attrs[key].history)
            if old != new:
                out[key] = (old, new)
    if isinstance(obj, User):
        if state == "new" and insp.dict.get("password"):
            out["password"] = (None, insp.dict["password"])
        elif state == "edit" and insp.attrs.password.history.has_changes():
            out["password"] = _old_and_new(insp.attrs.password.history)
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
