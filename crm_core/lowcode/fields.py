"""Custom fields: definitions admins edit, and the checks every stored value passes.

A model takes custom fields by naming its JSON column: ``__crm_custom_fields__ = "custom"``.
Each :class:`FieldDefinition` names one key of that column. Before every flush, the values of
new and changed records are checked and brought to their stored form (:func:`clean`):

========================  ===================================================================
kind                      stored as
========================  ===================================================================
text, long_text           the text, stripped; ``max_length`` and ``pattern`` apply
integer                   a JSON integer; ``min_value`` / ``max_value`` apply
decimal, money            a string (``"1234.50"`` for money: no binary rounding); bounds apply
date, datetime            ISO text (``2026-11-26``, ``2026-11-26T09:30:00``)
bool                      ``true`` / ``false``
choice, multi_choice      a value (a sorted list of values) among ``choices``
user, customer            the id of a user / of a customer the writing user may see
url, phone, email         ``http(s)://…``; E.164 (``+8613812345678``); a normalised address
========================  ===================================================================

A problem is a :class:`~crm_core.errors.FieldError` naming ``custom.<name>`` in the user's
language. A field made required later does not make older records unwritable: it is required
on new records, and on a change that empties it. Values of a field that is deactivated stay in
the records (and come back if it is reactivated); keys no active definition names are refused.

A field marked ``encrypted`` is checked here in plain like any other; its column type stores it
encrypted (:mod:`crm_core.security.encryption`), and uniqueness is then checked through the
blind index.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from flask_appbuilder import Model
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..db import utcnow
from ..errors import FieldError

KINDS = {
    "text": _l("Text"),
    "long_text": _l("Long text"),
    "integer": _l("Whole number"),
    "decimal": _l("Decimal number"),
    "money": _l("Amount of money"),
    "date": _l("Date"),
    "datetime": _l("Date and time"),
    "bool": _l("Yes / no"),
    "choice": _l("Single choice"),
    "multi_choice": _l("Multiple choice"),
    "user": _l("User"),
    "customer": _l("Customer"),
    "url": _l("Web address"),
    "phone": _l("Phone number"),
    "email": _l("E-mail address"),
}
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFAULT_MAX_LENGTH = {"text": 255, "long_text": 10_000}
#: ``hook(session, model, definitions)``, called when a flush reads a model's definitions (all
#: of them, active or not) to check its custom values; encryption keeps its map of encrypted
#: fields up to date from here.
DEFINITIONS_READ: list[Callable[[Session, str, list[Any]], None]] = []


class FieldDefinition(Model):
    """One admin-defined field of a model, stored under ``name`` in its JSON column."""

    __tablename__ = "crm_field_def"
    __crm_audit__ = "custom_field"
    __table_args__ = (UniqueConstraint("model", "name", name="uq_crm_field_def_model_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    name: Mapped[str] = mapped_column(String(40), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    label_zh: Mapped[str] = mapped_column(String(100), nullable=False)
    label_en: Mapped[str | None] = mapped_column(String(100))
    help: Mapped[str | None] = mapped_column(String(300))
    required: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    default: Mapped[Any] = mapped_column(JSON, nullable=True)
    min_value: Mapped[str | None] = mapped_column(String(40))
    max_value: Mapped[str | None] = mapped_column(String(40))
    max_length: Mapped[int | None] = mapped_column(Integer)
    pattern: Mapped[str | None] = mapped_column(String(200))
    choices: Mapped[Any] = mapped_column(JSON, nullable=True)
    #: A choice field whose choices are a picklist's values (``industry``) instead of its own.
    picklist: Mapped[str | None] = mapped_column(String(60))
    unique: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    searchable: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    #: Values stored encrypted (crm_core.security.encryption); text-like kinds only.
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    #: Set when ``encrypted`` changes: stored values may still be in the other form until the
    #: job ``core.encryption_sync`` (or ``crm keys rotate``) has brought them over and clears it.
    encryption_pending: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    position: Mapped[int] = mapped_column(Integer, default=100, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    def __str__(self) -> str:
        return f"{self.model}.{self.name}"

    def choice_values(self) -> list[str]:
        """The values a choice field offers, in their order."""
        return [value for value, _label in choice_pairs(self)]


def choice_pairs(defn: Any, *, every: bool = False) -> list[tuple[str, str]]:
    """``(value, label)`` of a choice field's choices in order: its picklist's active values
    when it takes them from one (``every``: the deactivated ones too, which records may still
    hold), else its own."""
    if getattr(defn, "picklist", None):
        from ..db import session
        from .picklists import values_of

        options = values_of(session(), defn.picklist)
        return [(o.value, str(o)) for o in options if every or o.active]
    return [
        (str(c["value"]), str(c.get("label") or c["value"]))
        if isinstance(c, dict)
        else (str(c), str(c))
        for c in (defn.choices or [])
    ]


def custom_column(cls: type) -> str | None:
    """The JSON column holding ``cls``'s custom fields, or ``None`` if it takes none."""
    name = getattr(cls, "__crm_custom_fields__", None)
    return name if isinstance(name, str) else None


def definitions(session: Session, model: str, *, active_only: bool = True) -> list[Any]:
    """The field definitions of ``model`` in form order."""
    query = select(FieldDefinition).where(FieldDefinition.model == model)
    if active_only:
        query = query.where(FieldDefinition.active.is_(True))
    order = (FieldDefinition.position, FieldDefinition.id)
    with session.no_autoflush:
        return list(session.scalars(query.order_by(*order)))


# --------------------------------------------------------------------------- values


def _number(defn: FieldDefinition, raw: Any, integer: bool) -> Any:
    if isinstance(raw, bool):
        raise ValueError(_("Enter a number."))
    try:
        value = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(_("Enter a number.")) from None
    if not value.is_finite():
        raise ValueError(_("Enter a number."))
    if integer and value != value.to_integral_value():
        raise ValueError(_("Enter a whole number."))
    for bound, too in ((defn.min_value, "min"), (defn.max_value, "max")):
        if bound in (None, ""):
            continue
        limit = Decimal(str(bound))
        if too == "min" and value < limit:
            raise ValueError(_("At least %(limit)s.", limit=bound))
        if too == "max" and value > limit:
            raise ValueError(_("At most %(limit)s.", limit=bound))
    if integer:
        if abs(value) >= 2**53:
            raise ValueError(_("Number out of range"))
        return int(value)
    if defn.kind == "money":
        return str(value.quantize(Decimal("0.01")))
    return str(value.normalize()) if value == value.to_integral_value() else str(value)


def _text(defn: FieldDefinition, raw: Any) -> str:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ValueError(_("Enter text."))
    value = str(raw).strip()
    limit = defn.max_length or DEFAULT_MAX_LENGTH.get(defn.kind, 255)
    if len(value) > limit:
        raise ValueError(_("At most %(limit)s characters.", limit=limit))
    if defn.pattern and value and not re.fullmatch(defn.pattern, value):
        raise ValueError(_("Not in the expected format."))
    return value


def _choice(defn: FieldDefinition, raw: Any) -> Any:
    allowed = defn.choice_values()
    if defn.kind == "multi_choice":
        values = raw if isinstance(raw, list) else [raw]
        picked = [str(v) for v in values]
        bad = [v for v in picked if v not in allowed]
        if bad:
            raise ValueError(_("Not one of the choices: %(value)s", value=", ".join(bad)))
        return sorted(set(picked), key=allowed.index)
    if str(raw) not in allowed:
        raise ValueError(_("Not one of the choices: %(value)s", value=raw))
    return str(raw)


def _record(session: Session, defn: FieldDefinition, raw: Any) -> int:
    from flask_appbuilder.security.sqla.models import User

    from ..customers.models import Customer

    target = User if defn.kind == "user" else Customer
    try:
        pk = int(raw)
    except (TypeError, ValueError):
        raise ValueError(_("Enter an id.")) from None
    if isinstance(raw, bool) or not 0 < pk < 2**31:
        raise ValueError(_("No record with id %(value)s", value=raw))
    with session.no_autoflush:
        if session.get(target, pk) is None:  # record rules apply: hidden is not found
            raise ValueError(_("No record with id %(value)s", value=pk))
    return pk


def _when(defn: FieldDefinition, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(_("Enter a date."))
    try:
        if defn.kind == "date":
            return date.fromisoformat(raw.strip()).isoformat()
        return datetime.fromisoformat(raw.strip()).replace(tzinfo=None).isoformat()
    except ValueError:
        raise ValueError(_("Enter a date as 2026-11-26.")) from None


def _url(raw: Any) -> str:
    value = str(raw).strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > 2000:
        raise ValueError(_("Enter a web address starting with http:// or https://."))
    return value


def clean_value(session: Session, defn: FieldDefinition, raw: Any) -> Any:
    """``raw`` in the stored form of ``defn``'s kind; ``ValueError`` with the user's message."""
    kind = defn.kind
    if kind in ("text", "long_text"):
        return _text(defn, raw)
    if kind in ("integer", "decimal", "money"):
        return _number(defn, raw, integer=kind == "integer")
    if kind in ("date", "datetime"):
        return _when(defn, raw)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "1", "y", "yes", "on"):
            return True
        if str(raw).lower() in ("false", "0", "n", "no", "off"):
            return False
        raise ValueError(_("Enter yes or no."))
    if kind in ("choice", "multi_choice"):
        return _choice(defn, raw)
    if kind in ("user", "customer"):
        return _record(session, defn, raw)
    if kind == "url":
        return _url(raw)
    from ..customers.validation import normalise_email, normalise_phone

    try:
        if kind == "phone":
            return normalise_phone(defn.name, str(raw))
        return normalise_email(defn.name, str(raw))
    except FieldError as exc:
        raise ValueError(" ".join(exc.messages[defn.name])) from None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def clean(session: Session, obj: Any, new: bool, cache: dict[str, list[Any]] | None = None) -> None:
    """Check and normalise the custom values of ``obj`` (before a flush); ``FieldError``
    naming every bad ``custom.<name>``. ``cache`` keeps the definitions read for one flush."""
    column = custom_column(type(obj))
    if column is None:
        return
    state = inspect(obj)
    history = state.attrs[column].history
    if not new and not history.has_changes():
        return
    raw_values = getattr(obj, column)
    old = history.deleted[0] if history.deleted else None
    before = dict(old) if isinstance(old, dict) else {}
    identity = state.identity
    out = clean_values(
        session, type(obj), raw_values, before, new, cache, identity[0] if identity else None
    )
    values = raw_values or {}
    if out != values or any(v is not values.get(k) for k, v in out.items()):
        setattr(obj, column, out or None)


def clean_values(
    session: Session,
    cls: type,
    raw_values: Any,
    before: dict[str, Any],
    new: bool,
    cache: dict[str, list[Any]] | None = None,
    pk: Any = None,
) -> dict[str, Any]:
    """The custom values ``raw_values`` of a record of ``cls`` checked and in their stored
    form, given what the record had ``before``; ``FieldError`` naming every bad one."""
    column = custom_column(cls) or "custom"
    if raw_values is not None and not isinstance(raw_values, dict):
        raise FieldError({column: [_("Expected fields and their values.")]})
    values = dict(raw_values or {})
    model = cls.__name__
    cache = {} if cache is None else cache
    if model not in cache:
        cache[model] = definitions(session, model, active_only=False)
        for hook in DEFINITIONS_READ:
            hook(session, model, cache[model])
    all_defs = cache[model]
    by_name = {d.name: d for d in all_defs}
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for key, raw in values.items():
        defn = by_name.get(key)
        if defn is None and key in before and raw == before[key]:
            out[key] = before[key]  # a value whose definition was removed: kept, not lost
            continue
        if defn is None or (not defn.active and raw != before.get(key)):
            errors[f"{column}.{key}"] = [_("There is no such field.")]
            continue
        if not defn.active or _empty(raw):
            if not _empty(raw):
                out[key] = raw
            continue
        if key in before and raw == before[key]:
            # Unchanged: stored as it was checked then (the stored object itself, which for
            # an unreadable encrypted value is what keeps its stored form).
            out[key] = before[key]
            continue
        try:
            out[key] = clean_value(session, defn, raw)
        except ValueError as exc:
            errors[f"{column}.{key}"] = [str(exc)]
    for defn in all_defs:
        if not defn.active or not _empty(out.get(defn.name)):
            continue
        if new and not _empty(defn.default) and defn.name not in values:
            out[defn.name] = defn.default
        elif defn.required and (new or not _empty(before.get(defn.name))):
            errors[f"{column}.{defn.name}"] = [_("This field is required.")]
    if not errors:
        errors.update(_unique_errors(session, cls, pk, column, out, by_name))
    if errors:
        raise FieldError(errors)
    return out


def _unique_errors(
    session: Session, cls: type, pk: Any, column: str, values: dict[str, Any], defs: dict[str, Any]
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for key, value in values.items():
        defn = defs.get(key)
        if defn is None or not defn.unique or _empty(value):
            continue
        if defn.encrypted or defn.encryption_pending:
            from ..security.blind_index import match_value

            taken = match_value(cls, defn, value)  # ciphertexts differ: the blind index
        else:
            taken = getattr(cls, column)[key].as_string() == str(value)
        query: Any = select(inspect(cls).primary_key[0]).where(taken)
        if pk is not None:
            query = query.where(inspect(cls).primary_key[0] != pk)
        from ..security.rules import unrestricted

        with session.no_autoflush, unrestricted():  # taken is taken, seen or not
            if session.scalar(query.limit(1)) is not None:
                errors[f"{column}.{key}"] = [
                    _("%(value)s is already used by another record", value=value)
                ]
    return errors


def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    cache: dict[str, list[Any]] = {}  # one read of the definitions per model and flush
    for obj in list(session.new):
        clean(session, obj, new=True, cache=cache)
    for obj in list(session.dirty):
        if obj not in session.deleted:
            clean(session, obj, new=False, cache=cache)


def install() -> None:
    """Check custom values before every flush (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
