"""The inbox rows, their deliveries to other channels, and who wants which channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ...db import utcnow


class Notification(Model):
    """One message in one user's inbox (收件箱); ``read_at`` is empty while it is unread."""

    __tablename__ = "crm_notification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str | None] = mapped_column(String(80))
    record_model: Mapped[str | None] = mapped_column(String(60))
    record_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    read_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[Any] = relationship("User", lazy="joined")

    __table_args__ = (
        Index("ix_crm_notification_user", "user_id", "id"),
        Index("ix_crm_notification_unread", "user_id", "read_at"),
    )

    def __str__(self) -> str:
        return self.title


class NotificationDelivery(Model):
    """One notification sent through one channel other than the inbox, with every attempt's
    outcome: ``pending`` until sent (``done``) or given up on (``failed``)."""

    __tablename__ = "crm_notification_delivery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("crm_notification.id", ondelete="CASCADE"), nullable=False
    )
    channel: Mapped[str] = mapped_column(String(40), nullable=False)
    status: Mapped[str] = mapped_column(String(10), default="pending", nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)

    notification: Mapped[Notification] = relationship(Notification, lazy="joined")

    __table_args__ = (
        Index("ix_crm_notification_delivery_notification", "notification_id"),
        Index("ix_crm_notification_delivery_status", "status", "id"),
    )

    def __str__(self) -> str:
        return f"{self.channel} #{self.notification_id}"


class NotificationPreference(Model):
    """The channels used for one kind of notification: a user's own choice, or with no user
    the site default an admin set."""

    __tablename__ = "crm_notification_pref"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    channels: Mapped[list[str]] = mapped_column(JSON, nullable=False)

    __table_args__ = (
        UniqueConstraint("user_id", "kind", name="uq_crm_notification_pref_user_kind"),
    )
