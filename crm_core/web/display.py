"""How values are shown on screens."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def display_datetime(value: Any) -> str:
    """``2026-11-26 09:30``: minutes are what people read; microseconds are noise."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)
