"""The audit trail: one append-only entry per changed record per flush.

Every model that declares ``__crm_event__`` (a business record) or ``__crm_audit__`` (a piece of
configuration: record rules, teams, custom fields, picklists, layouts, rules, modules) is audited
wherever it is written from (screens, API, ``crm`` commands, jobs, imports): the outbox's flush
listeners (:mod:`crm_core.events.outbox`) hand each flush's changes to :func:`write_entries`,
which adds the entries to the same transaction, so a rolled-back write leaves no entry and a
committed one always has its entry.

An entry records who (user id and a copy of the username), from where (channel and IP), when,
which record, the operation and the changed fields as ``{field: [old, new]}``. ``updated_at`` and
``version`` alone are not a change. Entries are never updated or deleted through the ORM.

The one exception is the erasure of a person's data (:mod:`crm_core.privacy.erase`): in the
erasing transaction, after the anonymising write and its own entries are flushed, the values of
the person's personal fields in every entry of the erased records are replaced by ``***`` with
Core ``UPDATE`` statements on the session's connection (the ORM keeps refusing). The entries
themselves, their operations, users and times stay, and an ``erase`` entry records the erasure.

Custom values in entries are stored as the record's column stores them: a field encrypted at
rest stays encrypted here (:mod:`crm_core.security.encrypted_copies`). Key rotation
(:mod:`crm_core.security.rotation`) re-encrypts them the same way, with Core statements: how
such a value is stored changes, never what an entry says.

Security events about an account (locked after too many wrong passwords, unlocked, an API key
made or revoked) are entries too, with model ``user`` and the user's id, written by
:func:`write_entry`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from flask import g, has_app_context, has_request_context, request
from flask_appbuilder import Model
from flask_babel import lazy_pgettext
from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, event, inspect, select
from sqlalchemy.orm import Mapped, Mapper, Session, mapped_column, relationship

from ..db import session as current_session
from ..db import utcnow
from ..errors import CrmError
from .encrypted_copies import protect_changes, reveal_changes

CHANNELS = ("web", "api", "cli", "job", "import", "automation", "system")
#: What happened to a business record (one entry per changed record per flush).
RECORD_OPERATIONS = ("create", "update", "archive", "restore", "delete")
#: Security events about a user account, written by :func:`write_entry`.
ACCOUNT_OPERATIONS = ("lock", "unlock", "key_new", "key_revoke")
#: A login or a role made, changed or deleted, settings changed (crm_core.security.admin_audit).
ADMIN_OPERATIONS = (
    "acct_new",
    "acct_edit",
    "acct_del",
    "role_new",
    "role_edit",
    "role_del",
    "setting",
)
#: A masked value of a record shown in full on request (crm_core.security.reveal), and a
#: list exported as a file (crm_core.data.export; at most 10 characters, as the column holds).
READ_OPERATIONS = ("reveal", "exportlist")
#: A person's data exported or erased (crm_core.privacy), written by :func:`write_entry`.
PRIVACY_OPERATIONS = ("export", "erase")
OPERATIONS = (
    RECORD_OPERATIONS + ACCOUNT_OPERATIONS + ADMIN_OPERATIONS + READ_OPERATIONS + PRIVACY_OPERATIONS
)
OPERATION_LABELS = {
    "create": lazy_pgettext("audit operation", "Created"),
    "update": lazy_pgettext("audit operation", "Changed"),
    "archive": lazy_pgettext("audit operation", "Archived"),
    "restore": lazy_pgettext("audit operation", "Restored"),
    "delete": lazy_pgettext("audit operation", "Deleted"),
    "lock": lazy_pgettext("audit operation", "Account locked"),
    "unlock": lazy_pgettext("audit operation", "Account unlocked"),
    "key_new": lazy_pgettext("audit operation", "API key created"),
    "key_revoke": lazy_pgettext("audit operation", "API key revoked"),
    "acct_new": lazy_pgettext("audit operation", "Login created"),
    "acct_edit": lazy_pgettext("audit operation", "Login changed"),
    "acct_del": lazy_pgettext("audit operation", "Login deleted"),
    "role_new": lazy_pgettext("audit operation", "Role created"),
    "role_edit": lazy_pgettext("audit operation", "Role changed"),
    "role_del": lazy_pgettext("audit operation", "Role deleted"),
    "setting": lazy_pgettext("audit operation", "Settings changed"),
    "reveal": lazy_pgettext("audit operation", "Sensitive value shown"),
    "exportlist": lazy_pgettext("audit operation", "List exported"),
    "export": lazy_pgettext("audit operation", "Personal data exported"),
    "erase": lazy_pgettext("audit operation", "Personal data erased"),
}
CHANNEL_LABELS = {
    "web": lazy_pgettext("audit channel", "Web"),
    "api": lazy_pgettext("audit channel", "REST API"),
    "cli": lazy_pgettext("audit channel", "Command line"),
    "job": lazy_pgettext("audit channel", "Scheduled job"),
    "import": lazy_pgettext("audit channel", "Import"),
    "automation": lazy_pgettext("audit channel", "Automation rule"),
    "system": lazy_pgettext("audit channel", "System"),
}
#: Columns whose change alone is not worth an entry (bumped by every write).
IGNORED_FIELDS = frozenset({"updated_at", "version"})
HISTORY_LIMIT = 20

_channel: ContextVar[str | None] = ContextVar("crm_audit_channel", default=None)
_ACTOR_KEY = "crm_audit_actor"


class AuditLog(Model):
    """One create, update, archive, restore or delete of one business record."""

    __tablename__ = "crm_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, nullable=False, index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL"), index=True
    )
    username: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    ip: Mapped[str | None] = mapped_column(String(45))
    model: Mapped[str] = mapped_column(String(40), nullable=False)
    record_id: Mapped[int] = mapped_column(Integer, nullable=False)
    operation: Mapped[str] = mapped_column(String(10), nullable=False)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)

    user = relationship("User", foreign_keys=[user_id])

    __table_args__ = (Index("ix_crm_audit_log_record", "model", "record_id", "id"),)

    def plain_changes(self) -> Any:
        """The changes with encrypted custom values read in plain (for admins' screens)."""
        return reveal_changes(self.model, self.changes)

    def __repr__(self) -> str:
        return f"<AuditLog {self.model}#{self.record_id} {self.operation}>"


class AuditLogImmutableError(CrmError):
    """Raised on any attempt to change or delete an audit entry."""

    status = 403


@event.listens_for(AuditLog, "before_update")
@event.listens_for(AuditLog, "before_delete")
def _append_only(_mapper: Mapper[Any], _connection: Any, _target: AuditLog) -> None:
    raise AuditLogImmutableError("Audit log entries cannot be changed or deleted")


@contextmanager
def audit_channel(name: str) -> Iterator[None]:
    """Mark the writes made inside the block as coming from ``name`` (``cli``, ``job``)."""
    token = _channel.set(name)
    try:
        yield
    finally:
        _channel.reset(token)


def audited_name(cls: Any) -> str | None:
    """The model name audit entries give records of ``cls``: its ``__crm_event__`` (business
    records) or ``__crm_audit__`` (configuration, audited without events); ``None`` when its
    writes are not record writes of the audit log."""
    return getattr(cls, "__crm_event__", None) or getattr(cls, "__crm_audit__", None)


def current_channel() -> str:
    """The channel :func:`audit_channel` set (the CLI, the job runner, an import), else
    ``api`` or ``web`` in a request (by path), else ``system``."""
    if _channel.get():
        return _channel.get()  # type: ignore[return-value]
    if has_request_context():
        return "api" if request.path.startswith("/api/") else "web"
    return "system"


def _current_user() -> Any:
    """The signed-in user, only when it is already loaded: never runs the user loader."""
    if not has_app_context():
        return None
    from .rules import acting_user

    user = acting_user() or g.get("user")
    if user is None:
        return None
    if getattr(user, "_get_current_object", None) is not None:  # Flask-Login's proxy
        user = g.get("_login_user")
        if user is None:
            return None
    if not getattr(user, "is_authenticated", False) or inspect(user, raiseerr=False) is None:
        return None
    return user


def current_actor() -> tuple[int | None, str | None, str | None]:
    """``(user_id, username, ip)`` of the current write."""
    user = _current_user()
    ip = request.remote_addr if has_request_context() else None
    if user is None:
        return None, None, ip
    return user.id, user.username, ip


def jsonable(value: Any) -> Any:
    """``value`` as an entry stores it (dates as ISO text, decimals as text)."""
    from ..events.outbox import _jsonable as outbox_jsonable

    return outbox_jsonable(value)


def _blank_to_none(value: Any) -> Any:
    """An empty string is no value: a form's blank field is not a change from ``None``."""
    return None if value == "" else value


def record_changes(obj: Any, operation: str) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` of ``obj`` in the flush that just ran (call from ``after_flush``):
    every set column for a create, every loaded column for a delete, the changed ones else;
    many-to-many links (tags) as sorted lists of names. Empty strings count as no value."""
    state = inspect(obj)
    out: dict[str, list[Any]] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in IGNORED_FIELDS:
            continue
        if operation == "create":
            value = _blank_to_none(state.dict.get(key))
            if value is not None and key != "id":
                out[key] = [None, jsonable(value)]
        elif operation == "delete":
            value = _blank_to_none(state.dict.get(key))
            if value is not None and key != "id":
                out[key] = [jsonable(value), None]
        else:
            hist = state.attrs[key].history
            if not hist.has_changes():
                continue
            old = _blank_to_none(hist.deleted[0] if hist.deleted else None)
            new = _blank_to_none(hist.added[0] if hist.added else None)
            if old != new:
                out[key] = [jsonable(old), jsonable(new)]
    if operation in ("create", "update"):
        from ..events.outbox import link_changes

        for key, (before, after) in link_changes(obj, created=operation == "create").items():
            out[key] = [before, after]
    return out


def entry_operation(operation: str, changes: dict[str, list[Any]]) -> str:
    """The outbox's operation, with a re-activation told apart as ``restore``."""
    if operation == "update" and changes.get("active") == [False, True]:
        return "restore"
    return operation


def capture_actor(session: Session) -> None:
    """Remember who writes, before the flush (reading the user may load it)."""
    session.info[_ACTOR_KEY] = current_actor()


def write_entries(session: Session, pending: list[tuple[Any, str, str, Any]]) -> list[AuditLog]:
    """Add one entry per changed record of the flush; ``pending`` is the outbox's list of
    ``(record, model name, operation, changes)``. Called from ``after_flush``."""
    if not pending:
        return []
    user_id, username, ip = session.info.pop(_ACTOR_KEY, None) or current_actor()
    channel = current_channel()
    now = utcnow()
    rows = []
    for obj, prefix, op, _changes in pending:
        changes = record_changes(obj, op)
        if not changes and op not in ("create", "delete"):
            continue  # only updated_at / version moved, or nothing at all
        operation = entry_operation(op, changes)
        # Custom values as their column stores them: encrypted fields stay encrypted here.
        changes = protect_changes(type(obj), changes)
        row = AuditLog(
            occurred_at=now,
            user_id=user_id,
            username=username,
            channel=channel,
            ip=ip,
            model=prefix,
            record_id=getattr(obj, "id", None),
            operation=operation,
            changes=changes,
        )
        session.add(row)
        rows.append(row)
    return rows


def write_entry(
    session: Session,
    model: str,
    record_id: int,
    operation: str,
    changes: dict[str, Any],
    actor: tuple[int | None, str | None, str | None] | None = None,
) -> AuditLog:
    """Add one entry for an event that is not a record write (an account locked or unlocked, an
    API key made or revoked, a login or role changed), with the current user (or ``actor``, as
    :func:`current_actor` gave it), channel and IP; the caller commits."""
    user_id, username, ip = actor or current_actor()
    row = AuditLog(
        occurred_at=utcnow(),
        user_id=user_id,
        username=username,
        channel=current_channel(),
        ip=ip,
        model=model,
        record_id=record_id,
        operation=operation,
        changes={key: [jsonable(old), jsonable(new)] for key, (old, new) in changes.items()},
    )
    session.add(row)
    return row


def _noop_set(_target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
    return value


@event.listens_for(Mapper, "mapper_configured")
def _active_history(mapper: Mapper[Any], cls: type) -> None:
    """Audited columns load their old value when set while expired, so the diff is right."""
    if audited_name(cls) is None or mapper.inherits is not None:
        return
    for attr in mapper.column_attrs:
        if attr.key not in IGNORED_FIELDS:
            event.listen(getattr(cls, attr.key), "set", _noop_set, active_history=True, retval=True)


def install(session_factory: Any) -> None:
    """Refuse bulk UPDATE/DELETE statements on the audit table through the app's session."""

    @event.listens_for(session_factory, "do_orm_execute")
    def _no_bulk_changes(state: Any) -> None:
        if (state.is_update or state.is_delete) and any(
            m.class_ is AuditLog for m in state.all_mappers
        ):
            raise AuditLogImmutableError("Audit log entries cannot be changed or deleted")


def record_history(model: str, record_id: int, limit: int = HISTORY_LIMIT) -> list[AuditLog]:
    """The newest ``limit`` entries of one record (served by ``ix_crm_audit_log_record``)."""
    query = (
        select(AuditLog)
        .where(AuditLog.model == model, AuditLog.record_id == record_id)
        .order_by(AuditLog.id.desc())
        .limit(limit)
    )
    return list(current_session().scalars(query))
