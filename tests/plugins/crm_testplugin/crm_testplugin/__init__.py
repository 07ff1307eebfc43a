"""A small but complete CRM plugin, built as a wheel and pip-installed by the core's tests.

It uses only what ``crm_core`` exports: a model with its own migrations, a screen, an API, a
customer panel, timeline entries, an event handler, a validation rule and an automation action.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

import crm_core

manifest = crm_core.Manifest(
    name="testplugin",
    version="1.0.0",
    title="Test plugin",
    phase=1,
    migrations=str(Path(__file__).resolve().parent / "migrations" / "versions"),
    table_prefix="tp_",
    description="Gadgets of customers (used by the core's tests)",
)

#: The automation action that gives the rule's customer a gadget.
GADGET_ACTION = "tp_add_gadget"
VETOED_NAME = "VETO ME"
VETO_MESSAGE = "The test plugin refuses customers named VETO ME"
#: A gadget with this name cannot change customers: merging its customer away fails.
BOLTED_NAME = "BOLTED"


@crm_core.hookimpl
def register_models() -> list[type]:
    from .models import Gadget, SeenEvent

    return [Gadget, SeenEvent]


@crm_core.hookimpl
def register_views() -> list[crm_core.ViewSpec]:
    from .views import GadgetView

    return [
        crm_core.ViewSpec(
            GadgetView,
            "Gadget list",
            "Gadgets",
            category="Gadgets",
            category_label="Gadgets",
            icon="fa-cube",
            category_icon="fa-cubes",
        )
    ]


@crm_core.hookimpl
def register_picklists() -> list[crm_core.PicklistSpec]:
    return [
        crm_core.PicklistSpec(
            "gadget_size", "尺寸", "Size", (("S", "小号", "Small"), ("L", "大号", "Large"))
        )
    ]


@crm_core.hookimpl
def register_apis() -> list[crm_core.ApiSpec]:
    from .views import GadgetApi

    return [crm_core.ApiSpec(GadgetApi)]


def _gadgets_of(customer: Any, limit: int) -> list[Any]:
    from .models import Gadget

    query = (
        select(Gadget)
        .where(Gadget.customer_id == customer.id, Gadget.active.is_(True))
        .order_by(Gadget.created_at.desc(), Gadget.id.desc())
        .limit(limit)
    )
    return list(crm_core.session().scalars(query))


def _render_panel(customer: Any) -> str:
    items = "".join(f"<li>{escape(g.name)}</li>" for g in _gadgets_of(customer, 20))
    return Markup(f'<ul class="tp-gadgets">{items}</ul>')


@crm_core.hookimpl
def register_customer_panels() -> list[crm_core.PanelSpec]:
    return [crm_core.PanelSpec("tp_gadgets", "Gadgets", _render_panel, order=50)]


@crm_core.hookimpl
def customer_timeline(customer: Any, since: Any, limit: int) -> list[crm_core.TimelineEntry]:
    return [
        crm_core.TimelineEntry(when=g.created_at, kind="gadget", title=f"Gadget {g.name}")
        for g in _gadgets_of(customer, limit)
        if since is None or g.created_at >= since
    ]


@crm_core.hookimpl
def on_event(event: crm_core.Event) -> None:
    """Remember each event once (a delivery may repeat), in a session of its own."""
    from .models import SeenEvent

    with Session(crm_core.session().get_bind()) as s, s.begin():
        if s.scalar(select(SeenEvent.id).where(SeenEvent.event_id == event.id)) is None:
            s.add(SeenEvent(event_id=event.id, type=event.type, record_id=event.payload.get("id")))


@crm_core.hookimpl
def merge_records(model: str, survivor: Any, loser: Any) -> int | None:
    """A merged customer's gadgets go to the customer that remains, one ORM write each."""
    from .models import Gadget

    if model != "customer":
        return None
    query = select(Gadget).where(Gadget.customer_id == loser.id).order_by(Gadget.id)
    moved = 0
    for gadget in crm_core.session().scalars(query).all():
        if gadget.name == BOLTED_NAME:
            raise RuntimeError(f"gadget {gadget.id} is bolted to customer {loser.id}")
        gadget.customer_id = survivor.id
        moved += 1
    return moved


@crm_core.hookimpl
def validate_change(change: crm_core.Change) -> str | None:
    if change.model == "customer" and getattr(change.record, "name", None) == VETOED_NAME:
        return VETO_MESSAGE
    return None


@crm_core.hookimpl
def register_importers() -> list[crm_core.ImportSpec]:
    """Gadgets come in from spreadsheets too, matched by name."""
    from .models import Gadget

    return [
        crm_core.ImportSpec(
            name="gadget",
            model=Gadget,
            keys=("name",),
            labels={"name": "名称", "customer": "客户"},
            label="Gadgets",
        )
    ]


def _add_gadget(ctx: Any, params: dict[str, str], write: bool) -> str:
    """Give the rule's customer a gadget named by ``name`` (filled from the record)."""
    from .models import Gadget

    name = ctx.render(params.get("name"))[:100]
    if write:
        ctx.session.add(Gadget(name=name, customer_id=ctx.record.id))
    return f"Gadget {name} for {ctx.record.name}"


@crm_core.hookimpl
def register_automation_actions() -> list[crm_core.ActionSpec]:
    """Automation rules may give a customer a gadget."""
    return [
        crm_core.ActionSpec(
            GADGET_ACTION,
            "Add a gadget",
            run=lambda ctx, p: _add_gadget(ctx, p, write=True),
            predict=lambda ctx, p: _add_gadget(ctx, p, write=False),
            params=(
                crm_core.ActionParam("name", "Name", "may use {{ record.name }}", required=True),
            ),
            models=("Customer",),
        )
    ]
