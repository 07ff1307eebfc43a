"""Picklists: the enumerations admins edit (customer source, industry, tier, lifecycle stage …).

A picklist has ordered values, each with a Chinese and an English label, a colour and an active
flag. Modules declare theirs with defaults (``register_picklists``); ``crm upgrade`` adds the
lists and values that are missing and never touches what admins changed. A model binds columns
to picklists with ``__crm_picklists__ = {"source": "customer_source"}``: forms offer the active
values, lists show the labels, and every write is checked (:func:`install`): a new or changed
value must be an active value of its list, while records keep a value deactivated later.

Values in use are deactivated, never deleted ("delete" on the screen deactivates).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import g, has_request_context
from flask_appbuilder import Model
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    event,
    inspect,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from ..db import utcnow
from ..errors import FieldError


class Picklist(Model):
    """One list of values, e.g. ``customer_source`` (客户来源)."""

    __tablename__ = "crm_picklist"
    __crm_audit__ = "picklist"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True, nullable=False)
    label_zh: Mapped[str] = mapped_column(String(100), nullable=False)
    label_en: Mapped[str | None] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(40), default="core", nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    values = relationship(
        "PicklistValue", back_populates="picklist", order_by="PicklistValue.position"
    )

    def __str__(self) -> str:
        return label_in_language(self.label_zh, self.label_en)


class PicklistValue(Model):
    """One value of a picklist: what records store (``value``) and what users read."""

    __tablename__ = "crm_picklist_value"
    __crm_audit__ = "picklist_value"
    __table_args__ = (UniqueConstraint("picklist_id", "value", name="uq_crm_picklist_value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    picklist_id: Mapped[int] = mapped_column(ForeignKey("crm_picklist.id"), nullable=False)
    value: Mapped[str] = mapped_column(String(50), nullable=False)
    label_zh: Mapped[str] = mapped_column(String(100), nullable=False)
    label_en: Mapped[str | None] = mapped_column(String(100))
    color: Mapped[str | None] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=100, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    picklist = relationship("Picklist", back_populates="values")

    def __str__(self) -> str:
        return label_in_language(self.label_zh, self.label_en)


def label_in_language(zh: str, en: str | None) -> str:
    """``zh`` for Chinese users, ``en`` (or ``zh`` when missing) for the others."""
    try:
        language = str(get_locale() or "zh")
    except (RuntimeError, KeyError, AttributeError):
        language = "zh"
    return zh if language.startswith("zh") or not en else en


def bound_columns(cls: type) -> dict[str, str]:
    """The model's columns bound to picklists: column -> picklist name."""
    found = getattr(cls, "__crm_picklists__", None)
    return dict(found) if isinstance(found, dict) else {}


@dataclass(frozen=True)
class Option:
    """A picklist value as screens and checks read it."""

    value: str
    label_zh: str
    label_en: str | None
    color: str | None
    active: bool

    def __str__(self) -> str:
        return label_in_language(self.label_zh, self.label_en)


_task_cache: ContextVar[dict[str, list[Option]] | None] = ContextVar(
    "crm_picklist_cache", default=None
)


@contextmanager
def read_once() -> Iterator[None]:
    """Read each picklist once in the block, outside requests too (a long import)."""
    token = _task_cache.set({})
    try:
        yield
    finally:
        _task_cache.reset(token)


def values_of(session: Session, name: str) -> list[Option]:
    """The values of picklist ``name`` in order (active and inactive), read once per
    request (or per :func:`read_once` block)."""
    cache: dict[str, list[Option]] | None = _task_cache.get()
    if cache is None and has_request_context():
        cache = g.setdefault("_crm_picklists", {})
    if cache is not None and name in cache:
        return cache[name]
    query = (
        select(
            PicklistValue.value,
            PicklistValue.label_zh,
            PicklistValue.label_en,
            PicklistValue.color,
            PicklistValue.active,
        )
        .join(Picklist)
        .where(Picklist.name == name)
        .order_by(PicklistValue.position, PicklistValue.id)
    )
    with session.no_autoflush:
        found = [Option(*row) for row in session.execute(query)]
    if cache is not None:
        cache[name] = found
    return found


def _by_value(session: Session, name: str) -> dict[str, Option]:
    cache = _task_cache.get()
    if cache is not None:
        key = f"{name}\x00by_value"
        if key not in cache:
            cache[key] = {v.value: v for v in values_of(session, name)}  # type: ignore[assignment]
        return cache[key]  # type: ignore[return-value]
    return {v.value: v for v in values_of(session, name)}


def forget() -> None:
    """Drop this request's cached values (after a picklist changed)."""
    if has_request_context():
        g.pop("_crm_picklists", None)


def choices(session: Session, name: str, keep: Any = None) -> list[tuple[str, str]]:
    """``(value, label)`` of the active values, and of ``keep`` when it is an inactive one
    (``keep=...``: every inactive one, marked)."""
    out = [("", "")]
    for v in values_of(session, name):
        if v.active or keep is ... or v.value == keep:
            out.append((v.value, str(v) if v.active else _("%(label)s (inactive)", label=v)))
    return out


def label(session: Session, name: str, value: Any) -> Any:
    """What users read for ``value`` of picklist ``name`` (the value itself if unknown)."""
    if value in (None, ""):
        return value
    for v in values_of(session, name):
        if v.value == value:
            return str(v)
    return value


# --------------------------------------------------------------------------- defaults


def sync_defaults(session: Session, specs: list[tuple[str, Any]]) -> int:
    """Add the picklists and values ``specs`` (``(owner, PicklistSpec)``) declare and the
    database lacks; returns how many rows were added. Existing ones are left as admins made
    them (relabelled, reordered, deactivated). The caller commits."""
    added = 0
    for owner, spec in specs:
        picklist = session.scalar(select(Picklist).where(Picklist.name == spec.name))
        if picklist is None:
            picklist = Picklist(
                name=spec.name, label_zh=spec.label_zh, label_en=spec.label_en, owner=owner
            )
            session.add(picklist)
            session.flush()
            added += 1
        present = set(
            session.scalars(
                select(PicklistValue.value).where(PicklistValue.picklist_id == picklist.id)
            )
        )
        for position, item in enumerate(spec.values, start=1):
            value, label_zh, label_en, color = (*item, None, None, None)[:4]
            if value in present:
                continue
            session.add(
                PicklistValue(
                    picklist_id=picklist.id,
                    value=value,
                    label_zh=label_zh or value,
                    label_en=label_en,
                    color=color,
                    position=position * 10,
                )
            )
            added += 1
    return added


# --------------------------------------------------------------------------- checks


def check(session: Session, obj: Any, new: bool) -> None:
    """A new or changed value of a picklist column must be an active value of its list."""
    bound = bound_columns(type(obj))
    if not bound:
        return
    state = inspect(obj)
    errors: dict[str, list[str]] = {}
    for column, name in bound.items():
        value = getattr(obj, column)
        if value in (None, ""):
            continue
        if not new and not state.attrs[column].history.has_changes():
            continue
        found = _by_value(session, name).get(value)
        if found is None or not found.active:
            errors[column] = [_("Not one of the choices: %(value)s", value=value)]
    if errors:
        raise FieldError(errors)


def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in list(session.new):
        check(session, obj, new=True)
    for obj in list(session.dirty):
        if obj not in session.deleted:
            check(session, obj, new=False)


def install() -> None:
    """Check picklist columns before every flush (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
