"""The test plugin's tables: gadgets that belong to a customer, and the events it has seen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core import BusinessMixin, CustomValues, utcnow


class Gadget(BusinessMixin, Model):
    """A gadget a customer owns; admins may give gadgets custom fields."""

    __tablename__ = "tp_gadget"
    __crm_custom_fields__ = "custom"
    __crm_label__ = "Gadget"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("crm_customer.id"), index=True)
    custom: Mapped[dict[str, Any] | None] = mapped_column(CustomValues("Gadget"))

    customer = relationship("Customer")

    def __str__(self) -> str:
        return self.name


class SeenEvent(Model):
    """One domain event delivered to this plugin's ``on_event`` (one row per event)."""

    __tablename__ = "tp_seen_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    record_id: Mapped[int | None] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
