"""A plugin that breaks on import or in its event handler never takes the app or the user's write
down with it; its error is shown to the admin. A plugin's veto stops a write cleanly."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from plugins_support import engine_of, install_and_enable, plugin_row
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from crm_core.app import StrictPluginError
from crm_core.customers.models import Customer
from crm_core.db import utcnow
from crm_core.events.dispatch import dispatch_pending
from crm_core.events.models import EventDelivery, OutboxEvent
from crm_core.testing.plugin import make_test_app

PLUGINS = "testplugin,brokenplugin,hooks_flaky"
BROKEN = "RuntimeError: crm_brokenplugin is broken on purpose"
FLAKY = "RuntimeError: flaky handler fails on customer.created on purpose"


def _deliveries(app: Flask, event_id: int) -> dict[str, EventDelivery]:
    """The event's deliveries by handler, read in a transaction of their own."""
    with Session(engine_of(app), expire_on_commit=False) as s:
        rows = s.scalars(select(EventDelivery).where(EventDelivery.event_id == event_id))
        return {d.handler: d for d in rows}


def _seen(app: Flask) -> list[tuple[int, str, int]]:
    with engine_of(app).connect() as conn:
        rows = conn.execute(text("SELECT event_id, type, record_id FROM tp_seen_event"))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_broken_import_and_failing_handler_leave_the_app_and_the_write_alone(plugin_site):
    site = plugin_site(PLUGINS, hooks=["flaky"])
    crm = site.crm
    crm("upgrade")  # the broken plugin does not stop the upgrade
    crm("plugins", "enable", "testplugin")
    listing = crm("plugins", "list")
    assert BROKEN in plugin_row(listing, "brokenplugin")
    assert "enabled" in plugin_row(listing, "hooks_flaky")  # the site hooks file is loaded

    app = site.start()  # the app starts without the broken plugin
    registry = app.extensions["crm"]
    assert BROKEN in (registry.plugins["brokenplugin"].error or "")
    assert registry.pm.get_plugin("brokenplugin") is None
    assert registry.pm.get_plugin("hooks_flaky") is not None
    admin = site.client(app)

    response = admin.post("/api/v1/customer/", json={"name": "苏州工业园区精工机械"})
    assert response.status_code == 201, response.get_json()
    customer_id = response.get_json()["id"]
    with Session(engine_of(app)) as s:
        assert s.get(Customer, customer_id) is not None
        event_id = s.scalar(select(OutboxEvent.id).where(OutboxEvent.type == "customer.created"))
    assert event_id is not None
    # The healthy plugin got the event although the flaky one failed on it.
    assert _seen(app) == [(event_id, "customer.created", customer_id)]
    deliveries = _deliveries(app, event_id)
    assert deliveries["testplugin"].status == "done"
    flaky = deliveries["hooks_flaky"]
    assert (flaky.status, flaky.attempts) == ("pending", 1)
    assert FLAKY in (flaky.last_error or "")
    assert flaky.next_attempt_at is not None and flaky.next_attempt_at > utcnow()

    with app.app_context():
        assert dispatch_pending() == 0  # backing off: not retried yet
        assert _deliveries(app, event_id)["hooks_flaky"].attempts == 1
        with engine_of(app).begin() as conn:
            conn.execute(
                update(EventDelivery)
                .where(EventDelivery.id == flaky.id)
                .values(next_attempt_at=datetime(2000, 1, 1))
            )
        assert dispatch_pending() == 0  # retried, failed again: the event stays pending
    retried = _deliveries(app, event_id)
    assert retried["hooks_flaky"].attempts == 2
    assert retried["hooks_flaky"].next_attempt_at > flaky.next_attempt_at  # backs off longer
    assert retried["testplugin"].attempts == 1  # a done delivery is not repeated
    assert len(_seen(app)) == 1

    modules = admin.get("/modules/")
    assert modules.status_code == 200
    page = modules.get_data(as_text=True)
    assert BROKEN in page and FLAKY in page
    reader = site.client(app, "Sales Rep")
    denied = reader.get("/modules/")
    assert denied.status_code != 200 and BROKEN not in denied.get_data(as_text=True)
    # A new process (here: a `crm` command's app) sees the failure too: it is stored.
    assert FLAKY in plugin_row(crm("plugins", "list"), "hooks_flaky")


def test_a_veto_answers_422_with_its_message_and_writes_nothing(plugin_site):
    from crm_testplugin import VETO_MESSAGE

    site = plugin_site("testplugin")
    app = site.start()
    install_and_enable(app, "testplugin")
    admin = site.client(app)
    with Session(engine_of(app)) as s:
        events_before = s.scalar(select(func.count()).select_from(OutboxEvent))

    vetoed = admin.post("/api/v1/customer/", json={"name": "VETO ME"})
    assert vetoed.status_code == 422
    assert vetoed.get_json()["message"] == {"_schema": [VETO_MESSAGE]}
    allowed = admin.post("/api/v1/customer/", json={"name": "Not vetoed"})
    assert allowed.status_code == 201
    renamed = admin.put(f"/api/v1/customer/{allowed.get_json()['id']}", json={"name": "VETO ME"})
    assert renamed.status_code == 422

    with Session(engine_of(app)) as s:
        names = s.scalars(select(Customer.name)).all()
        assert names == ["Not vetoed"]
        events = s.scalar(select(func.count()).select_from(OutboxEvent))
        assert events == events_before + 1  # only the allowed customer's
    assert len(_seen(app)) == 1


def test_strict_mode_refuses_to_start_with_a_broken_plugin(plugin_wheels, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'strict.db'}"
    with pytest.raises(StrictPluginError, match="broken on purpose"):
        make_test_app(url, CRM_PLUGINS="brokenplugin", CRM_STRICT_PLUGINS=True)
