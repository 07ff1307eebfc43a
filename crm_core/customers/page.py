"""The customer 360° page: header, contacts, plugin panels, one merged timeline and the
customer's change history (its newest audit entries)."""

from __future__ import annotations

import logging

from flask import abort, current_app, flash, g, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import select

from ..db import session
from ..errors import CrmError
from ..lowcode.layout_screen import record_sections
from ..org.display import display_user
from ..security.audit import CHANNEL_LABELS, OPERATION_LABELS, record_history
from ..specs import TimelineEntry
from . import pool
from .history import changed_rows
from .models import Contact, Customer
from .views import CUSTOMER_LABELS

log = logging.getLogger(__name__)

TIMELINE_LIMIT = 50
#: How the history names a changed column: the form's labels, foreign keys by their relation.
HISTORY_LABELS = {
    **CUSTOMER_LABELS,
    "owner_id": CUSTOMER_LABELS["owner"],
    "team_id": CUSTOMER_LABELS["team"],
}


def merged_timeline(customer: Customer, limit: int = TIMELINE_LIMIT) -> list[TimelineEntry]:
    """Every enabled plugin's ``customer_timeline`` entries, newest first."""
    registry = current_app.extensions["crm"]
    entries: list[TimelineEntry] = []
    for owner, items in registry.collect(
        "customer_timeline", customer=customer, since=None, limit=limit
    ):
        for entry in items:
            if not entry.source:
                entry = TimelineEntry(**{**entry.__dict__, "source": owner})
            entries.append(entry)
    entries.sort(key=lambda e: e.when, reverse=True)
    return entries[:limit]


def rendered_panels(customer: Customer) -> list[tuple[str, str, Markup]]:
    """``(id, title, html)`` of every enabled plugin's panel; a failing panel shows its error."""
    registry = current_app.extensions["crm"]
    out = []
    for owner, spec in sorted(registry.panels, key=lambda p: p[1].order):
        if not registry.is_enabled(owner):
            continue
        try:
            html = Markup(spec.render(customer))
        except Exception as exc:  # noqa: BLE001 - one panel must not break the page
            registry.record_error(owner, f"panel {spec.id}: {exc!r}")
            html = Markup('<p class="text-danger">{}</p>').format(
                _l("This panel could not be shown; the administrator has been told.")
            )
        out.append((spec.id, str(spec.title), html))
    return out


class CustomerPageView(BaseView):
    """``/customer/<id>``: everything about one customer on one page."""

    route_base = "/customer"
    default_view = "show"
    method_permission_name = {"show": "show", "claim": "claim", "release": "release"}

    def _customer(self, pk: int) -> Customer:
        customer = session().get(Customer, pk)
        if customer is None:
            abort(404)
        return customer

    @expose("/<int:pk>")
    @has_access
    def show(self, pk: int):  # type: ignore[no-untyped-def]
        customer = self._customer(pk)
        contacts = (
            session()
            .scalars(
                select(Contact)
                .where(Contact.customer_id == pk, Contact.active.is_(True))
                .order_by(Contact.id)
                .limit(100)
            )
            .all()
        )
        return self.render_template(
            "crm/customer360.html",
            customer=customer,
            sections=record_sections("Customer", customer),  # the user's layout, if any
            merged_into=customer.merged_into_id
            and session().get(Customer, customer.merged_into_id),
            contacts=contacts,
            panels=rendered_panels(customer),
            timeline=merged_timeline(customer),
            history=record_history("customer", pk),
            operation_labels=OPERATION_LABELS,
            channel_labels=CHANNEL_LABELS,
            history_rows=lambda entry: changed_rows(
                Customer, "customer", entry.changes, HISTORY_LABELS
            ),
            display_user=display_user,
        )

    def _pool_action(self, pk: int, action: str):  # type: ignore[no-untyped-def]
        customer = self._customer(pk)
        try:
            if action == "claim":
                pool.claim(customer, g.user)
                message = _l("You are now the owner of this customer.")
            else:
                pool.release(customer, g.user)
                message = _l("The customer is back in the shared pool.")
            session().commit()
            flash(str(message), "success")
        except CrmError as exc:
            session().rollback()
            flash(str(exc), "danger")
        return redirect(url_for("CustomerPageView.show", pk=pk))

    @expose("/<int:pk>/claim", methods=["POST"])
    @has_access
    def claim(self, pk: int):  # type: ignore[no-untyped-def]
        return self._pool_action(pk, "claim")

    @expose("/<int:pk>/release", methods=["POST"])
    @has_access
    def release(self, pk: int):  # type: ignore[no-untyped-def]
        return self._pool_action(pk, "release")
