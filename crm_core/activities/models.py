"""The generic timeline entry (跟进记录, note, task) that any module may write."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
    or_,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from ..customers.models import Customer
from ..db import BusinessMixin, utcnow
from ..errors import FieldError
from ..lowcode.column import CustomValues
from ..specs import RuleColumns

ACTIVITY_KINDS = ("call", "visit", "wechat", "email", "meeting", "note", "task")


class Activity(BusinessMixin, Model):
    """A call, visit, message, note or task on a customer (and optionally one of its contacts).

    ``ref_model``/``ref_id`` let a plugin tie the entry to its own record (an opportunity, a
    ticket) without the core knowing that model.
    """

    __tablename__ = "crm_activity"
    __crm_event__ = "activity"
    __crm_record_rules__ = RuleColumns(owner="owner_id", parent="customer")
    __crm_label__ = _l("Follow-up")
    __crm_custom_fields__ = "custom"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="note", nullable=False)
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("crm_customer.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("crm_contact.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    due_at: Mapped[datetime | None] = mapped_column(DateTime)
    done: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    ref_model: Mapped[str | None] = mapped_column(String(50))
    ref_id: Mapped[int | None] = mapped_column(Integer)
    custom: Mapped[dict[str, Any] | None] = mapped_column(CustomValues(__qualname__))

    customer = relationship("Customer")
    contact = relationship("Contact")
    owner = relationship("User", foreign_keys=[owner_id])

    __table_args__ = (Index("ix_crm_activity_customer_time", "customer_id", "occurred_at"),)

    def __str__(self) -> str:
        return self.subject

    @validates("kind")
    def _check_kind(self, key: str, value: str | None) -> str:
        if value not in ACTIVITY_KINDS:
            raise FieldError(
                {key: [str(_l("Must be one of: %(choices)s", choices=", ".join(ACTIVITY_KINDS)))]}
            )
        return value

    @validates("subject")
    def _check_subject(self, key: str, value: str | None) -> str:
        value = (value or "").strip()
        if not value:
            raise FieldError({key: [str(_l("This field is required."))]})
        return value


@event.listens_for(Activity, "after_insert")
def _touch_customer(_mapper, connection, target: Activity) -> None:  # type: ignore[no-untyped-def]
    """A follow-up keeps its customer out of the pool's idle reclaim."""
    if target.customer_id is not None:
        when = target.occurred_at or utcnow()
        table = Customer.__table__
        connection.execute(
            update(table)
            .where(
                table.c.id == target.customer_id,
                or_(table.c.last_activity_at.is_(None), table.c.last_activity_at < when),
            )
            .values(last_activity_at=when)
        )
