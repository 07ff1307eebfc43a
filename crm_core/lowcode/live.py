"""Custom fields go live without a restart.

Screens and APIs build their forms, filters and schemas once; a model's custom fields are
added to them from the definitions this process last read (:func:`current`). Before each
request, a cheap query compares the definitions' version (count, newest change) with the one
the process holds; on a change the definitions are read again and every registered screen and
API rebuilds its custom parts under a lock (:func:`register`), so the next request, in every
process, sees the change.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, has_app_context, request
from flask_babel import get_locale
from sqlalchemy import event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .fields import FieldDefinition

PREFIX = "custom__"
log = logging.getLogger(__name__)


@dataclass
class _State:
    """One app's view of the definitions, and the screens and APIs built from them."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    version: tuple[Any, ...] | None = None
    definitions: dict[str, list[FieldDefinition]] = field(default_factory=dict)
    refreshers: list[Callable[[], None]] = field(default_factory=list)


def _state(app: Flask | None = None) -> _State | None:
    if app is None:
        if not has_app_context():
            return None
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions.get("crm_live")  # type: ignore[no-any-return]


class Label:
    """A field's label in the language of the current request (Chinese or English)."""

    def __init__(self, defn: FieldDefinition) -> None:
        self.zh, self.en = defn.label_zh, defn.label_en or defn.label_zh

    def __str__(self) -> str:
        try:
            language = str(get_locale() or "zh")
        except (RuntimeError, KeyError):
            language = "zh"
        return self.zh if language.startswith("zh") else self.en

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))

    def __len__(self) -> int:
        return len(str(self))


def column_name(name: str) -> str:
    """The name screens and the REST API use for custom field ``name``: ``custom__name``."""
    return PREFIX + name


def field_of(model: type, column: str) -> FieldDefinition | None:
    """The active definition behind a ``custom__…`` column of ``model``, or ``None``."""
    if not column.startswith(PREFIX):
        return None
    key = column[len(PREFIX) :]
    return next((d for d in current(model) if d.name == key), None)


def current(model: type | str) -> list[FieldDefinition]:
    """The active custom fields of ``model`` as this app last read them, in form order.
    The objects are detached copies: read them, never change them."""
    name = model if isinstance(model, str) else model.__name__
    pending = _pending.get()
    if pending is not None:
        return pending.get(name, [])
    state = _state()
    return state.definitions.get(name, []) if state else []


#: The definitions as a session sees them, uncommitted ones included (:func:`as_in`).
_pending: ContextVar[dict[str, list[FieldDefinition]] | None] = ContextVar(
    "crm_pending_definitions", default=None
)


@contextmanager
def as_in(session: Session) -> Iterator[Callable[[], None]]:
    """Inside the block, :func:`current` answers from ``session``'s view of the definitions,
    those it wrote and has not committed included (a configuration bundle adding a field and
    a rule that names it). The block gets a function to call after writing definitions."""

    def reread() -> None:
        _pending.set(_by_model(session))

    token = _pending.set(None)
    try:
        reread()
        yield reread
    finally:
        _pending.reset(token)


VERSION_KEY = "lowcode.definitions_version"


def version(session: Session) -> tuple[Any, ...]:
    """What changes whenever a definition is added, changed or removed: a token every write
    of a definition renews (:func:`_renew_token`), with the table's size and newest change
    for definitions written around the ORM."""
    from ..settings.models import Setting

    token = select(Setting.value).where(Setting.key == VERSION_KEY).scalar_subquery()
    row = session.execute(
        select(
            func.count(FieldDefinition.id),
            func.max(FieldDefinition.updated_at),
            func.max(FieldDefinition.id),
            token,
        )
    ).one()
    return tuple(row)


def _renew_token(session: Session, _ctx: Any, _instances: Any) -> None:
    from ..settings.models import Setting

    touched = (*session.new, *session.dirty, *session.deleted)
    if not any(isinstance(obj, FieldDefinition) for obj in touched):
        return
    with session.no_autoflush:
        row = session.get(Setting, VERSION_KEY)
        if row is None:
            row = Setting(key=VERSION_KEY, plugin="core")
            session.add(row)
        row.value = uuid.uuid4().hex


def install_token() -> None:
    """Renew the definitions' version token in every flush that writes a definition
    (idempotent)."""
    if not event.contains(Session, "before_flush", _renew_token):
        event.listen(Session, "before_flush", _renew_token)


def _read(engine: Any) -> tuple[tuple[Any, ...], dict[str, list[FieldDefinition]]]:
    with Session(engine) as fresh:
        seen = version(fresh)
        by_model = _by_model(fresh)
        fresh.expunge_all()  # detached, loaded: safe to share between threads
    return seen, by_model


def _by_model(session: Session) -> dict[str, list[FieldDefinition]]:
    """The active definitions ``session`` sees, by model, in form order."""
    query = select(FieldDefinition).where(FieldDefinition.active.is_(True))
    by_model: dict[str, list[FieldDefinition]] = {}
    for row in session.scalars(query.order_by(FieldDefinition.position, FieldDefinition.id)):
        by_model.setdefault(row.model, []).append(row)
    return by_model


def refresh(app: Flask, *, force: bool = False) -> bool:
    """Read the definitions again if they changed (or ``force``) and rebuild every registered
    screen and API of ``app``; whether anything was rebuilt."""
    state = _state(app)
    if state is None:
        return False
    engine = app.extensions["crm_db"].engine
    try:
        with Session(engine) as probe:
            seen = version(probe)
    except SQLAlchemyError:  # not upgraded yet: no definitions table
        log.warning("custom field definitions cannot be read; run `crm upgrade`")
        return False
    if seen == state.version and not force:
        return False
    with state.lock:
        if seen == state.version and not force:
            return False
        seen, state.definitions = _read(engine)
        for rebuild in list(state.refreshers):
            try:
                rebuild()
            except Exception:  # noqa: BLE001 - one broken screen must not stop the others
                log.exception("custom fields could not be added to %r", rebuild)
        state.version = seen
    return True


def install(app: Flask, views: list[Any]) -> None:
    """Give ``app``'s screens and APIs that take custom fields (those with a
    ``refresh_custom_fields`` method) the current definitions, and check the definitions'
    version before every request."""
    install_token()
    state = _State()
    app.extensions["crm_live"] = state
    state.refreshers = [
        v.refresh_custom_fields for v in views if hasattr(v, "refresh_custom_fields")
    ]
    refresh(app, force=True)

    def check_definitions() -> None:
        if request.endpoint in (None, "static", "appbuilder.static"):
            return
        refresh(current_app._get_current_object())  # type: ignore[attr-defined]

    app.before_request(check_definitions)
