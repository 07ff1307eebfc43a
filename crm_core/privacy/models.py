"""Consent records (个人信息处理同意): who agreed to what, how, when and where it was recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, event, select
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from ..customers.models import Contact, Customer
from ..db import BusinessMixin, session, utcnow
from ..errors import FieldError
from ..specs import RuleColumns

#: What the person agreed to (the purposes PIPL asks a separate consent for).
PURPOSES = (
    "marketing",
    "data_processing",
    "third_party_sharing",
    "cross_border_transfer",
    "profiling",
)
PURPOSE_LABELS = {
    "marketing": _l("Marketing"),
    "data_processing": _l("Processing of personal information"),
    "third_party_sharing": _l("Sharing with third parties"),
    "cross_border_transfer": _l("Cross-border transfer"),
    "profiling": _l("Profiling"),
}
#: How the consent was given.
CHANNELS = ("web", "paper", "phone", "wechat", "email", "sms", "in_person", "import")
CHANNEL_LABELS = {
    "web": _l("Website form"),
    "paper": _l("Paper form"),
    "phone": _l("Telephone"),
    "wechat": _l("WeChat"),
    "email": _l("E-mail"),
    "sms": _l("SMS"),
    "in_person": _l("In person"),
    "import": _l("Import"),
}


class Consent(BusinessMixin, Model):
    """One consent of a customer (a person) or of one of its contacts to one purpose.

    A consent counts from ``granted_at`` until ``withdrawn_at``; a withdrawn consent stays as
    the record of what was agreed and when. Visibility follows the customer (record rules).
    """

    __tablename__ = "crm_consent"
    __crm_event__ = "consent"
    __crm_record_rules__ = RuleColumns(owner=None, parent="customer")
    __crm_label__ = _l("Consent")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("crm_customer.id"), nullable=False, index=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("crm_contact.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(30), nullable=False)
    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    granted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    source: Mapped[str | None] = mapped_column(String(200))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime)
    note: Mapped[str | None] = mapped_column(Text)

    customer = relationship("Customer")
    contact = relationship("Contact")

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    @property
    def contact_name(self) -> str:
        """The contact's name, or empty for the customer's own consent (lists show this rather
        than join the contact)."""
        return self.contact.name if self.contact is not None else ""

    def __str__(self) -> str:
        return str(PURPOSE_LABELS.get(self.purpose, self.purpose))

    @validates("purpose")
    def _check_purpose(self, key: str, value: str | None) -> str:
        return _one_of(key, value, PURPOSES)

    @validates("channel")
    def _check_channel(self, key: str, value: str | None) -> str:
        return _one_of(key, value, CHANNELS)


def _one_of(key: str, value: str | None, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise FieldError(
            {key: [str(_l("Must be one of: %(choices)s", choices=", ".join(choices)))]}
        )
    return value


@event.listens_for(Consent, "before_insert")
@event.listens_for(Consent, "before_update")
def _contact_of_the_customer(_mapper, connection, target: Consent) -> None:  # type: ignore[no-untyped-def]
    """A contact's consent belongs to that contact's customer."""
    if target.contact_id is None or target.customer_id is None:
        return
    table = Contact.__table__
    owner = connection.scalar(select(table.c.customer_id).where(table.c.id == target.contact_id))
    if owner is not None and owner != target.customer_id:
        raise FieldError({"contact_id": [str(_l("The contact belongs to another customer"))]})


def has_consent(person: Customer | Contact | Any, purpose: str) -> bool:
    """Whether ``person`` (a customer itself, or a contact) has granted ``purpose`` and not
    withdrawn it: an active consent granted by now, without ``withdrawn_at``.

    A customer's own consents are those recorded without a contact; a contact's are those
    recorded for that contact.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    query = select(Consent.id).where(
        Consent.purpose == purpose,
        Consent.active.is_(True),
        Consent.withdrawn_at.is_(None),
        Consent.granted_at <= utcnow(),
    )
    if isinstance(person, Contact):
        query = query.where(Consent.contact_id == person.id)
    elif isinstance(person, Customer):
        query = query.where(Consent.customer_id == person.id, Consent.contact_id.is_(None))
    else:
        raise TypeError(f"has_consent needs a customer or a contact, not {type(person).__name__}")
    return session().scalar(query.limit(1)) is not None
