"""Settings an admin changes at run time, stored per database (so per tenant)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import utcnow


class Setting(Model):
    """One setting value; the default lives in the ``SettingSpec`` that declared it."""

    __tablename__ = "crm_setting"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    plugin: Mapped[str] = mapped_column(String(40), default="core", nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    def __str__(self) -> str:
        return self.key
