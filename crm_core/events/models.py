"""The transactional outbox: events written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import utcnow


class OutboxEvent(Model):
    """A domain event. ``dispatched_at`` is set once every handler's delivery has been made or
    given up on; until then any dispatcher may pick it up, so a crash loses nothing."""

    __tablename__ = "crm_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_crm_outbox_pending", "dispatched_at", "id"),)


class EventDelivery(Model):
    """One handler's delivery of one event, with retries and the last error."""

    __tablename__ = "crm_event_delivery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("crm_outbox.id"), nullable=False)
    handler: Mapped[str] = mapped_column(String(80), nullable=False)
    status: Mapped[str] = mapped_column(String(10), default="pending", nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("uq_crm_event_delivery", "event_id", "handler", unique=True),
        Index("ix_crm_event_delivery_due", "status", "next_attempt_at"),
    )
