"""Customers (companies or persons), their contacts, and tags."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask_appbuilder import Model
from flask_appbuilder.security.sqla import models as _fab_models  # noqa: F401 - User
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from ..db import BusinessMixin
from ..errors import FieldError
from ..lowcode.column import CustomValues
from ..org import models as _org_models  # noqa: F401 - Team
from ..specs import RuleColumns
from .validation import normalise_email, normalise_phone

KINDS = ("company", "person")


def new_customer_code() -> str:
    """A fresh customer code (``C`` + 9 base-32 characters) for customers entered without one."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "C" + "".join(secrets.choice(alphabet) for _ in range(9))


customer_tag = Table(
    "crm_customer_tag",
    Model.metadata,
    Column("customer_id", ForeignKey("crm_customer.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("crm_tag.id", ondelete="CASCADE"), primary_key=True),
)


class Tag(Model):
    """A free label on customers (重点客户, 展会2026)."""

    __tablename__ = "crm_tag"
    __crm_audit__ = "tag"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True, nullable=False)
    color: Mapped[str | None] = mapped_column(String(20))

    def __str__(self) -> str:
        return self.name


class Customer(BusinessMixin, Model):
    """A company (企业客户) or a person (个人客户).

    ``owner_id`` is NULL while the customer sits in the shared pool (公海). Phones are stored in
    E.164 (``+8613812345678``); ``custom`` holds admin-defined fields.
    """

    __tablename__ = "crm_customer"
    __crm_event__ = "customer"
    __crm_record_rules__ = RuleColumns(owner="owner_id", team="team_id", pool=True)
    __crm_label__ = _l("Customer")
    __crm_sensitive__ = {"phone": "phone", "email": "email"}
    __crm_custom_fields__ = "custom"
    __crm_picklists__ = {
        "source": "customer_source",
        "industry": "industry",
        "tier": "customer_tier",
        "lifecycle_stage": "lifecycle_stage",
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(10), default="company", nullable=False)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    website: Mapped[str | None] = mapped_column(String(200))
    province: Mapped[str | None] = mapped_column(String(30))
    city: Mapped[str | None] = mapped_column(String(30))
    district: Mapped[str | None] = mapped_column(String(30))
    address: Mapped[str | None] = mapped_column(String(300))
    industry: Mapped[str | None] = mapped_column(String(50))
    source: Mapped[str | None] = mapped_column(String(50))
    tier: Mapped[str | None] = mapped_column(String(20))
    lifecycle_stage: Mapped[str | None] = mapped_column(String(20))
    uscc: Mapped[str | None] = mapped_column(String(18))
    credit_limit: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("crm_team.id"), index=True)
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    pooled_at: Mapped[datetime | None] = mapped_column(DateTime)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("crm_customer.id"), index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict[str, Any] | None] = mapped_column(CustomValues(__qualname__))

    owner = relationship("User", foreign_keys=[owner_id])
    team = relationship("Team")
    tags = relationship("Tag", secondary=customer_tag, backref="customers")
    contacts = relationship(
        "Contact", back_populates="customer", order_by="Contact.id", lazy="select"
    )

    __table_args__ = (
        Index("ix_crm_customer_owner_name", "owner_id", "name"),
        Index("ix_crm_customer_city", "province", "city"),
        # The list orders, newest first (the screen's default) and by name, led by ``active``
        # because every list filters on it: first pages, keyset pages and the id-only scans of
        # deep pages (crm_core.web.listing) then never touch the table.
        Index("ix_crm_customer_active_updated", "active", "updated_at", "id"),
        Index("ix_crm_customer_active_name", "active", "name", "id"),
    )

    @property
    def in_pool(self) -> bool:
        return self.owner_id is None

    @validates("phone")
    def _check_phone(self, key: str, value: str | None) -> str | None:
        return normalise_phone(key, value)

    @validates("email")
    def _check_email(self, key: str, value: str | None) -> str | None:
        return normalise_email(key, value)

    @validates("kind")
    def _check_kind(self, key: str, value: str | None) -> str:
        if value not in KINDS:
            raise FieldError(
                {key: [str(_l("Must be one of: %(choices)s", choices=", ".join(KINDS)))]}
            )
        return value

    @validates("code")
    def _check_code(self, key: str, value: str | None) -> str:
        value = (value or "").strip().upper()
        return value or new_customer_code()

    @validates("name")
    def _check_name(self, key: str, value: str | None) -> str:
        value = (value or "").strip()
        if not value:
            raise FieldError({key: [str(_l("This field is required."))]})
        return value

    def __str__(self) -> str:
        return self.name


@event.listens_for(Customer, "before_insert")
def _fill_code(_mapper, _connection, target: Customer) -> None:  # type: ignore[no-untyped-def]
    """Customers entered without a code get one (not a column default: forms would show it)."""
    if not target.code:
        target.code = new_customer_code()


class Contact(BusinessMixin, Model):
    """A person at a customer: decision makers (决策人), key people (关键人), users."""

    __tablename__ = "crm_contact"
    __crm_event__ = "contact"
    __crm_record_rules__ = RuleColumns(owner=None, parent="customer")
    __crm_label__ = _l("Contact")
    __crm_sensitive__ = {"mobile": "phone", "phone": "phone", "email": "email", "wechat": "text"}
    __crm_custom_fields__ = "custom"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("crm_customer.id"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    title: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str | None] = mapped_column(String(30))
    mobile: Mapped[str | None] = mapped_column(String(32), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    wechat: Mapped[str | None] = mapped_column(String(64))
    birthday: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict[str, Any] | None] = mapped_column(CustomValues(__qualname__))

    customer = relationship("Customer", back_populates="contacts")

    @validates("mobile", "phone")
    def _check_phone(self, key: str, value: str | None) -> str | None:
        return normalise_phone(key, value)

    @validates("email")
    def _check_email(self, key: str, value: str | None) -> str | None:
        return normalise_email(key, value)

    def __str__(self) -> str:
        return self.name
