"""A person's data export (个人信息副本): everything the CRM holds about one person, as JSON.

:func:`export_person` builds the document for a data subject access request: for a person
customer its fields, contacts, follow-ups, consents and change history; for a contact its
fields, the follow-ups linked to it, its consents and its change history. Values are as stored,
never masked: the document is the person's own data. Plugins add their records through the
``export_personal_data`` hook. Each export writes an audit entry (operation ``export``) for the
exported record; the caller commits.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import inspect, select

from ..activities.models import Activity
from ..customers.models import Contact, Customer
from ..db import session, utcnow
from ..errors import CrmError
from ..events.outbox import _jsonable
from ..security import audit
from ..security.encrypted_copies import reveal_changes
from ..security.rules import unrestricted
from .models import Consent

FORMAT = "crm-personal-data"
FORMAT_VERSION = 1
#: Rows per section: a person's records, not a company's whole history.
SECTION_LIMIT = 10_000


class NotFound(CrmError):
    """No such customer or contact (or one the user may not see)."""

    status = 404


class NotAPerson(CrmError):
    """A company customer: its people are its contacts."""

    status = 422


def record_dict(obj: Any) -> dict[str, Any]:
    """Every column of ``obj`` as stored, in JSON types (times as ISO 8601)."""
    state = inspect(obj)
    return {attr.key: _jsonable(getattr(obj, attr.key)) for attr in state.mapper.column_attrs}


def _history(model: str, record_id: int) -> list[dict[str, Any]]:
    query = (
        select(audit.AuditLog)
        .where(audit.AuditLog.model == model, audit.AuditLog.record_id == record_id)
        .order_by(audit.AuditLog.id)
        .limit(SECTION_LIMIT)
    )
    return [
        {
            "occurred_at": _jsonable(entry.occurred_at),
            "username": entry.username,
            "channel": entry.channel,
            "operation": entry.operation,
            "changes": reveal_changes(model, entry.changes),
        }
        for entry in session().scalars(query)
    ]


def _rows(query: Any) -> list[dict[str, Any]]:
    return [record_dict(obj) for obj in session().scalars(query.limit(SECTION_LIMIT))]


def find_person(customer_id: int, contact_id: int | None = None) -> tuple[Customer, Contact | None]:
    """The customer (and its contact) to export or erase, as the current user may see them.

    Raises :class:`NotFound` for a record that does not exist, is hidden by the record rules or
    (for a contact) belongs to another customer.
    """
    customer = session().get(Customer, customer_id)
    if customer is None:
        raise NotFound(_("No customer with id %(value)s", value=customer_id))
    if contact_id is None:
        return customer, None
    contact = session().get(Contact, contact_id)
    if contact is None or contact.customer_id != customer.id:
        raise NotFound(_("No contact with id %(value)s at this customer", value=contact_id))
    return customer, contact


def export_person(customer_id: int, contact_id: int | None = None) -> dict[str, Any]:
    """The JSON document of a person customer (or, with ``contact_id``, of one of the
    customer's contacts), and an audit entry ``export`` for it in the session.

    Raises :class:`NotFound` for a record the user may not see and :class:`NotAPerson` for a
    company customer without ``contact_id``.
    """
    customer, contact = find_person(customer_id, contact_id)
    if contact is None and customer.kind != "person":
        raise NotAPerson(
            _(
                "%(name)s is a company: export the personal data of one of its contacts.",
                name=customer.name,
            )
        )
    user_id, username, _ip = audit.current_actor()
    document: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": _jsonable(utcnow()),
        "exported_by": username,
        "exported_by_id": user_id,
        "channel": audit.current_channel(),
        "subject": {
            "type": "contact" if contact is not None else "customer",
            "id": contact.id if contact is not None else customer.id,
            "customer_id": customer.id,
            "customer_code": customer.code,
        },
    }
    # The user may see the record: the document holds all of it, whatever narrower rules a
    # plugin's records or the follow-ups of colleagues would otherwise put on the user's view.
    with unrestricted():
        if contact is None:
            document["customer"] = {
                **record_dict(customer),
                "tags": sorted(tag.name for tag in customer.tags),
            }
            document["contacts"] = _rows(
                select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)
            )
            document["activities"] = _rows(
                select(Activity).where(Activity.customer_id == customer.id).order_by(Activity.id)
            )
            document["consents"] = _rows(
                select(Consent).where(Consent.customer_id == customer.id).order_by(Consent.id)
            )
            document["history"] = _history("customer", customer.id)
        else:
            document["contact"] = record_dict(contact)
            document["activities"] = _rows(
                select(Activity).where(Activity.contact_id == contact.id).order_by(Activity.id)
            )
            document["consents"] = _rows(
                select(Consent).where(Consent.contact_id == contact.id).order_by(Consent.id)
            )
            document["history"] = _history("contact", contact.id)
        document["modules"] = _plugin_sections(customer, contact)
    if contact is None:
        audit.write_entry(session(), "customer", customer.id, "export", {})
    else:
        audit.write_entry(session(), "contact", contact.id, "export", {})
    return document


def _plugin_sections(customer: Customer, contact: Contact | None) -> dict[str, Any]:
    """What every enabled plugin's ``export_personal_data`` adds, by plugin name; a plugin
    that fails is left out (and its error recorded), never the whole export."""
    registry = current_app.extensions["crm"]
    out: dict[str, Any] = {}
    for owner, sections in registry.collect(
        "export_personal_data", customer=customer, contact=contact
    ):
        if not isinstance(sections, dict):
            registry.record_error(owner, "export_personal_data must return a dict")
            continue
        merged = out.setdefault(owner, {})
        for name, rows in sections.items():
            merged.setdefault(str(name), []).extend(_jsonable(list(rows)))
    return out


def filename(document: dict[str, Any]) -> str:
    """``personal-data-C1234ABCD.json``, or ``personal-data-C1234ABCD-contact-12.json``."""
    subject = document["subject"]
    name = f"personal-data-{subject['customer_code']}"
    if subject["type"] == "contact":
        name += f"-contact-{subject['id']}"
    return name + ".json"
