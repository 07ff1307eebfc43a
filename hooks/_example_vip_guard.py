"""Example site hook: refuse to archive customers tagged 重点客户 (key account).

Copy this file to ``hooks/vip_guard.py`` (without the leading underscore) and restart the CRM.
It uses only what ``crm_core`` exports, like any plugin.
"""

from __future__ import annotations

import crm_core


@crm_core.hookimpl
def validate_change(change: crm_core.Change) -> str | None:
    """Veto archiving a key account; every other write passes."""
    if change.model != "customer" or change.operation != "update":
        return None
    old, new = change.changes.get("active", (None, None))
    if old is True and new is False and any(t.name == "重点客户" for t in change.record.tags):
        return "重点客户不能归档，请先移除该标签。"
    return None


@crm_core.hookimpl
def on_event(event: crm_core.Event) -> None:
    """Called after commit for every domain event; print the archived ones."""
    if event.type == "customer.archived":
        print(f"customer {event.payload['id']} archived")
