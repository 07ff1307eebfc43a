"""Layouts (页面布局): per record type and role, which fields appear in which section of the
add and edit forms and of the record page, and which columns and default order the list has.

A :class:`Layout` belongs to one record type (a model name) and one role, or to no role: the
default of every role. Which layout a request uses (:func:`for_request`): the layout of one of
the user's roles, the role with the lowest id winning when several have one (Flask-AppBuilder
numbers roles in the order they were made, so Admin and the default roles come first); else
the record type's default layout; else none, and the screen shows its own configuration. The
answer is kept for the rest of the request.

A layout names fields, never ids: ``sections`` (``[{"title_zh", "title_en", "fields"}]``) for
the forms and the record page, ``hidden`` (fields the layout leaves out on purpose: those the
screen offered when the layout was saved and no section holds), ``list_columns`` and the list's
default order. A field neither placed nor hidden (a custom field added later, a field a module
upgrade adds) is shown in a last section, so a new field is never invisible by accident. How a
screen applies a layout is in :mod:`crm_core.lowcode.layout_screen`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import g, has_request_context
from flask_appbuilder import Model
from flask_login import current_user
from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import session, utcnow
from .picklists import label_in_language

DIRECTIONS = ("asc", "desc")
_G_KEY = "_crm_layouts"


class Layout(Model):
    """The layout of record type ``model`` for users of ``role`` (``None``: every role)."""

    __tablename__ = "crm_layout"
    __crm_audit__ = "layout"
    __table_args__ = (UniqueConstraint("role_id", "model", name="uq_crm_layout_role_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    role_id: Mapped[int | None] = mapped_column(ForeignKey("ab_role.id", ondelete="CASCADE"))
    sections: Mapped[Any] = mapped_column(JSON, nullable=True)
    hidden: Mapped[Any] = mapped_column(JSON, nullable=True)
    list_columns: Mapped[Any] = mapped_column(JSON, nullable=True)
    order_column: Mapped[str | None] = mapped_column(String(80))
    order_direction: Mapped[str | None] = mapped_column(String(4))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    role = relationship("Role")

    def __str__(self) -> str:
        return f"{self.model} / {self.role.name if self.role else '*'}"


@dataclass(frozen=True)
class Section:
    """One titled group of fields."""

    title_zh: str
    title_en: str | None
    fields: tuple[str, ...]

    @property
    def title(self) -> str:
        """The title in the language of the current request."""
        return label_in_language(self.title_zh, self.title_en)


@dataclass(frozen=True)
class Design:
    """What a stored layout says, detached from the database (safe to keep for a request)."""

    sections: tuple[Section, ...]
    hidden: frozenset[str]
    list_columns: tuple[str, ...]
    order: tuple[str, str] | None

    @property
    def placed(self) -> set[str]:
        return {f for s in self.sections for f in s.fields}


def sections_of(data: Any) -> tuple[Section, ...]:
    """Sections from their stored form (entries that are not sections are skipped)."""
    out = []
    for item in data or []:
        if not isinstance(item, dict):
            continue
        fields = tuple(str(f) for f in item.get("fields") or [] if isinstance(f, str))
        title_en = item.get("title_en")
        out.append(
            Section(str(item.get("title_zh") or ""), str(title_en) if title_en else None, fields)
        )
    return tuple(out)


def stored_sections(sections: tuple[Section, ...] | list[Section]) -> list[dict[str, Any]]:
    """Sections in their stored (and exported) form."""
    return [
        {"title_zh": s.title_zh, "title_en": s.title_en, "fields": list(s.fields)} for s in sections
    ]


def design_of(row: Layout) -> Design:
    order = None
    if row.order_column:
        direction = row.order_direction if row.order_direction in DIRECTIONS else "asc"
        order = (row.order_column, direction)
    return Design(
        sections=sections_of(row.sections),
        hidden=frozenset(str(f) for f in row.hidden or [] if isinstance(f, str)),
        list_columns=tuple(str(c) for c in row.list_columns or [] if isinstance(c, str)),
        order=order,
    )


def pick(rows: list[Layout], role_ids: list[int]) -> Layout | None:
    """The layout of the user's role with the lowest id, else the default one (no role)."""
    for role_id in sorted(role_ids):
        found = next((r for r in rows if r.role_id == role_id), None)
        if found is not None:
            return found
    return next((r for r in rows if r.role_id is None), None)


def _role_ids() -> list[int]:
    user = current_user
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    return [int(r.id) for r in getattr(user, "roles", None) or []]


def for_request(model: str) -> Design | None:
    """The layout this request's user sees for record type ``model``, or ``None`` (the
    screen's own configuration); read once per request."""
    if not has_request_context():
        return None
    cache: dict[str, Design | None] = g.setdefault(_G_KEY, {})
    if model in cache:
        return cache[model]
    role_ids = _role_ids()
    rows = list(
        session().scalars(
            select(Layout).where(
                Layout.model == model,
                or_(Layout.role_id.is_(None), Layout.role_id.in_(role_ids or [-1])),
            )
        )
    )
    row = pick(rows, role_ids)
    cache[model] = design_of(row) if row is not None else None
    return cache[model]
