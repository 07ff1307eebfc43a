"""The persisted state of every plugin known to this database."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import utcnow

AVAILABLE, INSTALLED, ENABLED, DISABLED = "available", "installed", "enabled", "disabled"
STATES = (AVAILABLE, INSTALLED, ENABLED, DISABLED)


class PluginState(Model):
    """``available`` → ``installed`` (migrated) → ``enabled`` ⇄ ``disabled``."""

    __tablename__ = "crm_plugin_state"
    __crm_audit__ = "module"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    state: Mapped[str] = mapped_column(String(12), default=AVAILABLE, nullable=False)
    version: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )
