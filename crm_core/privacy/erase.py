"""Erasure by anonymisation (删除个人信息): the person goes, the figures stay.

:func:`erase_customer` (a person customer, with its contacts) and :func:`erase_contact` replace
the person's name with a placeholder (已匿名化 #12), clear every personal field, replace the
subject and details of the person's follow-ups with a neutral text and drop the source and note
of the person's consents. Everything that counts stays: the customer code, owner, team, region,
industry and tags; each follow-up's kind, times, owner and customer; each consent's purpose,
channel and times. Nothing is archived.

The change history must not keep what was erased either. Once the anonymising write and its
own audit entries are flushed, the values of the personal fields in every audit entry of the
erased records (and of their contacts, follow-ups and consents) are replaced by ``***`` with
Core ``UPDATE`` statements in the same transaction: the one change ever made to audit entries
(see :mod:`crm_core.security.audit`). The domain events of the write carry no erased value
either. Then one audit entry ``erase`` per erased person names the cleared fields, and a
``customer.erased`` or ``contact.erased`` event lets plugins erase their own copies. The caller
commits; a rollback leaves everything as it was.

Erasing a record twice is refused, and so is erasing a company customer (its people are its
contacts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, object_session

from ..activities.models import Activity
from ..customers.models import Contact, Customer
from ..db import session
from ..errors import CrmError
from ..events.outbox import NEW_EVENTS_KEY, emit
from ..lowcode.fields import custom_column, definitions
from ..security import audit
from ..security.rules import unrestricted
from .export import NotAPerson
from .models import Consent

REDACTED = "***"
#: The personal fields of each audited model: cleared on erasure (``name`` is replaced by the
#: placeholder, a follow-up's subject by the neutral text) and redacted in the history.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "customer": (
        "name",
        "phone",
        "email",
        "website",
        "address",
        "district",
        "notes",
        "uscc",
    ),
    "contact": ("name", "mobile", "phone", "email", "wechat", "birthday", "notes"),
    "activity": ("subject", "body"),
    "consent": ("source", "note"),
}


class AlreadyErased(CrmError):
    """The person's data was erased before."""

    status = 409


@dataclass
class Erasure:
    """What one erasure changed: ids per model, and how many history entries it redacted."""

    records: dict[str, set[int]] = field(
        default_factory=lambda: {model: set() for model in PERSONAL_FIELDS}
    )
    people: list[tuple[str, int]] = field(default_factory=list)  # ("customer"|"contact", id)
    redacted_entries: int = 0
    written: set[str] = field(default_factory=set)  # placeholders: not personal, kept
    #: Per model: the custom fields holding personal data (marked sensitive or encrypted).
    custom_keys: dict[str, set[str]] = field(default_factory=dict)

    @property
    def activities(self) -> int:
        return len(self.records["activity"])

    @property
    def consents(self) -> int:
        return len(self.records["consent"])

    @property
    def contacts(self) -> int:
        return len(self.records["contact"])


def _default_locale() -> str:
    return str(current_app.config.get("BABEL_DEFAULT_LOCALE") or "zh_CN")


def placeholder_name(record_id: int) -> str:
    """``已匿名化 #12``: the name an erased person keeps, in the installation's language (the
    name is stored, so it does not follow the language of whoever erased it)."""
    with force_locale(_default_locale()):
        return _("Anonymised #%(id)s", id=record_id)


def neutral_subject() -> str:
    """What an erased person's follow-up is called instead of its subject."""
    with force_locale(_default_locale()):
        return _("Content removed (personal data erased)")


def is_erased(model: str, record_id: int) -> bool:
    """Whether the person record ``model`` #``record_id`` was erased (it has an ``erase``
    entry in the audit log)."""
    query = select(audit.AuditLog.id).where(
        audit.AuditLog.model == model,
        audit.AuditLog.record_id == record_id,
        audit.AuditLog.operation == "erase",
    )
    return session().scalar(query.limit(1)) is not None


def erased_ids(model: str, record_ids: Iterable[int]) -> set[int]:
    """Which of ``record_ids`` were erased."""
    ids = list(record_ids)
    if not ids:
        return set()
    query = select(audit.AuditLog.record_id).where(
        audit.AuditLog.model == model,
        audit.AuditLog.record_id.in_(ids),
        audit.AuditLog.operation == "erase",
    )
    return set(session().scalars(query))


def check_customer(customer: Customer) -> None:
    """Raise :class:`NotAPerson` for a company and :class:`AlreadyErased` for a customer
    erased before."""
    if customer.kind != "person":
        raise NotAPerson(
            _(
                "%(name)s is a company, not a person: erase the personal data of its contacts "
                "instead.",
                name=customer.name,
            )
        )
    if is_erased("customer", customer.id):
        raise AlreadyErased(_("The personal data of this customer has already been erased."))


def check_contact(contact: Contact) -> None:
    """Raise :class:`AlreadyErased` for a contact erased before."""
    if is_erased("contact", contact.id):
        raise AlreadyErased(_("The personal data of this contact has already been erased."))


def erase_customer(customer: Customer) -> Erasure:
    """Anonymise a person customer, its contacts, its follow-ups and its consents (see the
    module's description). Raises :class:`NotAPerson` for a company and
    :class:`AlreadyErased` for a customer erased before."""
    check_customer(customer)
    erasure = Erasure()
    s = session()
    with unrestricted():  # the whole person, whatever the user's view of colleagues' records
        contacts = list(s.scalars(select(Contact).where(Contact.customer_id == customer.id)))
        contact_ids = [c.id for c in contacts]
        activity_filter = Activity.customer_id == customer.id
        if contact_ids:
            activity_filter = or_(activity_filter, Activity.contact_id.in_(contact_ids))
        activities = list(s.scalars(select(Activity).where(activity_filter)))
        consents = list(s.scalars(select(Consent).where(Consent.customer_id == customer.id)))
        already = erased_ids("contact", contact_ids)
    cleared = {"customer": {customer.id: _anonymise(customer, "customer", erasure)}}
    cleared["contact"] = {c.id: _anonymise(c, "contact", erasure) for c in contacts}
    for activity in activities:
        _anonymise(activity, "activity", erasure)
    for consent in consents:
        _anonymise(consent, "consent", erasure)
    people = [("customer", customer.id)] + [
        ("contact", c.id) for c in contacts if c.id not in already
    ]
    _finish(s, erasure, cleared, people, customer.id)
    return erasure


def erase_contact(contact: Contact) -> Erasure:
    """Anonymise one contact, the follow-ups linked to it and its consents. Raises
    :class:`AlreadyErased` for a contact erased before."""
    check_contact(contact)
    erasure = Erasure()
    s = session()
    with unrestricted():
        activities = list(s.scalars(select(Activity).where(Activity.contact_id == contact.id)))
        consents = list(s.scalars(select(Consent).where(Consent.contact_id == contact.id)))
    cleared = {"contact": {contact.id: _anonymise(contact, "contact", erasure)}}
    for activity in activities:
        _anonymise(activity, "activity", erasure)
    for consent in consents:
        _anonymise(consent, "consent", erasure)
    _finish(s, erasure, cleared, [("contact", contact.id)], contact.customer_id)
    return erasure


def _anonymise(obj: Any, model: str, erasure: Erasure) -> list[str]:
    """Clear the personal fields of ``obj``; returns the names of those that held a value."""
    erasure.records[model].add(obj.id)
    had = [f for f in PERSONAL_FIELDS[model] if getattr(obj, f) not in (None, "")]
    for name in PERSONAL_FIELDS[model]:
        if name == "name":
            value: Any = placeholder_name(obj.id)
        elif model == "activity" and name == "subject":
            value = neutral_subject()
        else:
            value = None
        if isinstance(value, str):
            erasure.written.add(value)
        if getattr(obj, name) != value:
            setattr(obj, name, value)
    column = custom_column(type(obj))
    if column:
        keys = _personal_custom_keys(obj, model, erasure)
        values = dict(getattr(obj, column) or {})
        gone = [key for key in keys if values.get(key) not in (None, "", [])]
        if gone:
            had.append(column)
            setattr(obj, column, {k: v for k, v in values.items() if k not in keys} or None)
    return had


def _personal_custom_keys(obj: Any, model: str, erasure: Erasure) -> set[str]:
    """The custom fields of ``obj``'s model that hold personal data: those marked sensitive
    or encrypted (active or not)."""
    if model not in erasure.custom_keys:
        defs = definitions(object_session(obj) or session(), type(obj).__name__, active_only=False)
        erasure.custom_keys[model] = {
            d.name for d in defs if d.sensitive or getattr(d, "encrypted", False)
        }
    return erasure.custom_keys[model]


def _finish(
    s: Session,
    erasure: Erasure,
    cleared: dict[str, dict[int, list[str]]],
    people: list[tuple[str, int]],
    customer_id: int,
) -> None:
    s.flush()  # the anonymising write; its audit entries and events are added to the session
    _redact_new_events(s, erasure)
    s.flush()  # ... and written, so the redaction below covers them too
    erasure.redacted_entries = _redact_history(s, erasure)
    for model, record_id in people:
        fields = cleared[model].get(record_id, [])
        changes: dict[str, list[Any]] = {
            name: [REDACTED, placeholder_name(record_id) if name == "name" else None]
            for name in fields
        }
        audit.write_entry(s, model, record_id, "erase", changes)  # type: ignore[arg-type]
        emit(s, f"{model}.erased", {"id": record_id, "customer_id": customer_id})
        erasure.people.append((model, record_id))


def _redacted(
    changes: Any, fields: tuple[str, ...], keep: set[str], custom: set[str] | None = None
) -> Any:
    """``changes`` with the values of ``fields``, and of the ``custom`` keys inside the custom
    values, replaced by ``***`` (``None`` and the values the erasure wrote stay); the same
    object when nothing needed redacting."""
    if not isinstance(changes, dict):
        return changes
    out = dict(changes)
    for name in fields:
        pair = out.get(name)
        if not isinstance(pair, list):
            continue
        new = [v if v is None or (isinstance(v, str) and v in keep) else REDACTED for v in pair]
        if new != pair:
            out[name] = new
    for name, pair in changes.items():
        if not custom or not isinstance(pair, list) or not any(isinstance(v, dict) for v in pair):
            continue
        values: list[Any] = [
            {k: REDACTED if k in custom and x not in (None, "") else x for k, x in v.items()}
            if isinstance(v, dict)
            else v
            for v in pair
        ]
        if values != pair:
            out[name] = values
    return out if out != changes else changes


def _redact_new_events(s: Session, erasure: Erasure) -> None:
    """The events of the anonymising write carry the old values: not any more."""
    for row in s.info.get(NEW_EVENTS_KEY, []):
        prefix = str(row.type).split(".", 1)[0]
        payload = row.payload if isinstance(row.payload, dict) else {}
        if prefix not in erasure.records or payload.get("id") not in erasure.records[prefix]:
            continue
        changes = payload.get("changes")
        custom = erasure.custom_keys.get(prefix)
        redacted = _redacted(changes, PERSONAL_FIELDS[prefix], erasure.written, custom)
        if redacted is not changes:
            row.payload = {**payload, "changes": redacted}


def _redact_history(s: Session, erasure: Erasure) -> int:
    """Redact the personal values of every audit entry of the erased records; returns how
    many entries changed. Core statements on the session's connection: the ORM refuses any
    change to an audit entry (the single, deliberate exception to the append-only log)."""
    table = audit.AuditLog.__table__
    wanted = [
        and_(table.c.model == model, table.c.record_id.in_(sorted(ids)))
        for model, ids in erasure.records.items()
        if ids
    ]
    if not wanted:
        return 0
    connection = s.connection()
    rows = connection.execute(
        select(table.c.id, table.c.model, table.c.changes).where(or_(*wanted))
    ).all()
    count = 0
    for entry_id, model, changes in rows:
        personal = PERSONAL_FIELDS.get(model, ())
        redacted = _redacted(changes, personal, erasure.written, erasure.custom_keys.get(model))
        if redacted is not changes:
            connection.execute(update(table).where(table.c.id == entry_id).values(changes=redacted))
            count += 1
    for obj in list(s.identity_map.values()):
        if isinstance(obj, audit.AuditLog):
            s.expire(obj)  # loaded before the redaction: read it again if asked
    return count


__all__ = [
    "AlreadyErased",
    "Erasure",
    "check_contact",
    "check_customer",
    "NotAPerson",
    "erase_contact",
    "erase_customer",
    "erased_ids",
    "is_erased",
]
