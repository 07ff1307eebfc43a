"""Screens and API of consents, and the export and erase actions of the 360° page."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from flask import abort, current_app, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.api import protect, safe
from flask_appbuilder.fieldwidgets import DateTimePickerWidget, Select2Widget
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from wtforms import DateTimeField, SelectField
from wtforms.validators import DataRequired, Optional

from ..activities.models import Activity
from ..customers.models import Contact, Customer
from ..db import session, utcnow
from ..errors import ConflictError, CrmError
from ..security.rules import unrestricted
from ..web.crud import CrmInterface, CrmModelRestApi, CrmModelView
from ..web.display import display_datetime
from ..web.write_errors import in_range
from . import erase as erasing
from . import export as exporting
from .models import CHANNEL_LABELS, CHANNELS, PURPOSE_LABELS, PURPOSES, Consent

#: The permission view of exporting and erasing a person's data.
PERSONAL_DATA = "Personal data"
#: Consents shown on a customer's 360° page.
PAGE_LIMIT = 100

CONSENT_LABELS = {
    "customer": _l("Customer"),
    "contact": _l("Contact"),
    "contact_name": _l("Contact"),
    "purpose": _l("Purpose"),
    "channel": _l("Consent channel"),
    "granted_at": _l("Granted at"),
    "source": _l("Source"),
    "withdrawn_at": _l("Withdrawn at"),
    "note": _l("Notes"),
    "active": _l("Active"),
    "created_at": _l("Created"),
    "updated_at": _l("Updated"),
}


def _form_fields() -> dict[str, Any]:
    return {
        "purpose": SelectField(
            _l("Purpose"),
            choices=[(p, PURPOSE_LABELS[p]) for p in PURPOSES],
            default="data_processing",
            widget=Select2Widget(),
        ),
        "channel": SelectField(
            _l("Consent channel"),
            choices=[(c, CHANNEL_LABELS[c]) for c in CHANNELS],
            default="web",
            widget=Select2Widget(),
        ),
        "granted_at": DateTimeField(
            _l("Granted at"),
            format="%Y-%m-%d %H:%M:%S",
            default=utcnow,
            validators=[DataRequired()],
            widget=DateTimePickerWidget(),
        ),
        "withdrawn_at": DateTimeField(
            _l("Withdrawn at"),
            format="%Y-%m-%d %H:%M:%S",
            validators=[Optional()],
            widget=DateTimePickerWidget(),
        ),
    }


def withdraw(consent: Consent) -> bool:
    """Mark ``consent`` withdrawn now (an update, audited); ``False`` if it was already."""
    if consent.withdrawn_at is not None:
        return False
    consent.withdrawn_at = utcnow()
    return True


class ConsentView(CrmModelView):
    """Consents (个人信息授权): list, search, show, add, edit, withdraw, archive."""

    datamodel = CrmInterface(Consent)
    route_base = "/consents"
    list_title = _l("Consents")
    show_title = _l("Consent")
    add_title = _l("Add consent")
    edit_title = _l("Edit consent")
    label_columns = CONSENT_LABELS
    _fields = ["customer", "contact", "purpose", "channel", "granted_at", "source", "note"]
    add_columns = _fields
    edit_columns = [*_fields[:6], "withdrawn_at", "note"]
    show_columns = [*edit_columns, "created_at", "updated_at"]
    # The contact by name: a list that joins a child of the customer (eagerly, aliased) would
    # not get that child's record rule adapted to the alias.
    list_columns = [
        "customer",
        "contact_name",
        "purpose",
        "channel",
        "granted_at",
        "withdrawn_at",
        "source",
    ]
    search_columns = [
        "customer",
        "contact",
        "purpose",
        "channel",
        "granted_at",
        "withdrawn_at",
        "source",
    ]
    order_columns = ["granted_at", "withdrawn_at", "purpose"]
    base_order = ("granted_at", "desc")
    base_filters = [["active", FilterEqual, True]]
    add_form_extra_fields = _form_fields()
    edit_form_extra_fields = _form_fields()
    formatters_columns = {
        "purpose": lambda p: PURPOSE_LABELS.get(p, p),
        "channel": lambda c: CHANNEL_LABELS.get(c, c),
        "granted_at": display_datetime,
        "withdrawn_at": display_datetime,
        "created_at": display_datetime,
        "updated_at": display_datetime,
    }
    description_columns = {
        "source": _l("Where the consent was recorded, e.g. the form of a trade fair"),
        "contact": _l("Empty when the customer, a person, consented itself"),
    }

    @action(
        "withdraw",
        _l("Withdraw"),
        _l("Record that the person withdrew the selected consents?"),
        "fa-user-times",
        single=True,
    )
    def withdraw(self, items: Any) -> Any:
        """Set the withdrawal time of the selected consents (each an audited update)."""
        return self.apply_to_listed(
            items, withdraw, lambda n: _("%(count)s consents withdrawn", count=n)
        )


_API_FIELDS = [
    "customer_id",
    "contact_id",
    "purpose",
    "channel",
    "granted_at",
    "source",
    "withdrawn_at",
    "note",
]


class ConsentApi(CrmModelRestApi):
    """``/api/v1/consent/``: consents, and ``POST /<id>/withdraw``."""

    resource_name = "consent"
    datamodel = CrmInterface(Consent)
    list_columns = ["id", *_API_FIELDS, "updated_at", "version"]
    show_columns = ["id", *_API_FIELDS, "active", "created_at", "updated_at", "version"]
    add_columns = edit_columns = _API_FIELDS
    search_columns = [
        "customer_id",
        "contact_id",
        "purpose",
        "channel",
        "granted_at",
        "withdrawn_at",
        "updated_at",
    ]
    base_filters = [["active", FilterEqual, True]]
    base_order = ("id", "asc")

    @expose("/<int:pk>/withdraw", methods=["POST"])
    @protect()
    @safe
    @permission_name("withdraw")
    def withdraw(self, pk: int):  # type: ignore[no-untyped-def]
        """Record that the person withdrew a consent.
        ---
        post:
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          responses:
            200:
              description: The consent is withdrawn
            404:
              $ref: '#/components/responses/404'
            409:
              description: The consent was withdrawn already
        """

        def act(item: Consent) -> None:
            if not withdraw(item):
                raise ConflictError(
                    {"withdrawn_at": [_("This consent has already been withdrawn.")]}
                )

        return self.record_action(
            pk, act, lambda item: self._dump(self.show_model_schema, item), self._base_filters
        )


# ------------------------------------------------------------------------- the 360° page


@dataclass
class PrivacySection:
    """What the 360° page shows of a customer's consents and personal data actions."""

    consents: list[Consent] = field(default_factory=list)
    may_list_consents: bool = False
    may_add_consent: bool = False
    may_export: bool = False
    may_erase: bool = False
    erased: bool = False
    erased_contacts: set[int] = field(default_factory=set)
    purpose_labels: dict[str, Any] = field(default_factory=lambda: PURPOSE_LABELS)
    channel_labels: dict[str, Any] = field(default_factory=lambda: CHANNEL_LABELS)


def privacy_section(customer: Customer, contacts: list[Contact] | None = None) -> PrivacySection:
    """The consents of ``customer`` (newest first) and what the user may do with its personal
    data; a template global, ``crm_privacy``."""
    sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
    section = PrivacySection(
        may_list_consents=bool(sm.has_access("can_list", "ConsentView")),
        may_add_consent=bool(sm.has_access("can_add", "ConsentView")),
        may_export=bool(sm.has_access("can_export", PERSONAL_DATA)),
        may_erase=bool(sm.has_access("can_erase", PERSONAL_DATA)),
    )
    if section.may_list_consents:
        query = (
            select(Consent)
            .where(Consent.customer_id == customer.id, Consent.active.is_(True))
            .order_by(Consent.granted_at.desc(), Consent.id.desc())
            .limit(PAGE_LIMIT)
        )
        section.consents = list(session().scalars(query.options(selectinload(Consent.contact))))
    if section.may_export or section.may_erase:
        section.erased = erasing.is_erased("customer", customer.id)
        section.erased_contacts = erasing.erased_ids("contact", [c.id for c in contacts or []])
    return section


def _count(column: Any, value: int) -> int:
    return int(session().scalar(select(func.count()).where(column == value)) or 0)


def _fits(pk: int) -> bool:
    """Whether ``pk`` can be a record id at all (a bigger number finds nothing: 404)."""
    return in_range(Customer.__table__.c.id, pk)


class PersonalDataView(BaseView):
    """``/privacy``: a person's data export (JSON download) and erasure by anonymisation, for
    a person customer and for each contact; both audited."""

    route_base = "/privacy"
    class_permission_name = PERSONAL_DATA
    method_permission_name = {
        "export_customer": "export",
        "export_contact": "export",
        "erase_customer": "erase",
        "erase_contact": "erase",
    }

    def _contact(self, pk: int) -> Contact:
        contact = session().get(Contact, pk) if _fits(pk) else None
        if contact is None:
            abort(404)
        return contact

    def _back(self, customer_id: int):  # type: ignore[no-untyped-def]
        return redirect(url_for("CustomerPageView.show", pk=customer_id))

    def _export(self, customer_id: int, contact_id: int | None):  # type: ignore[no-untyped-def]
        try:
            document = exporting.export_person(customer_id, contact_id)
            session().commit()
        except exporting.NotFound:
            session().rollback()
            abort(404)
        except CrmError as exc:
            session().rollback()
            flash(str(exc), "danger")
            return self._back(customer_id)
        body = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
        return send_file(
            io.BytesIO(body),
            mimetype="application/json",
            as_attachment=True,
            download_name=exporting.filename(document),
            max_age=0,
        )

    @expose("/customer/<int:pk>/export", methods=["POST"])
    @has_access
    def export_customer(self, pk: int):  # type: ignore[no-untyped-def]
        """The JSON document of a person customer, as a download."""
        if not _fits(pk):
            abort(404)
        return self._export(pk, None)

    @expose("/contact/<int:pk>/export", methods=["POST"])
    @has_access
    def export_contact(self, pk: int):  # type: ignore[no-untyped-def]
        """The JSON document of one contact, as a download."""
        contact = self._contact(pk)
        return self._export(contact.customer_id, contact.id)

    def _erase(self, customer: Customer, contact: Contact | None):  # type: ignore[no-untyped-def]
        code = customer.code
        try:
            if contact is None:
                erasing.check_customer(customer)
            else:
                erasing.check_contact(contact)
            if request.form.get("confirm") != "yes":
                return self._confirm(customer, contact)
            if contact is None:
                done = erasing.erase_customer(customer)
            else:
                done = erasing.erase_contact(contact)
            session().commit()
        except CrmError as exc:
            session().rollback()
            flash(str(exc), "danger")
            return self._back(customer.id)
        if contact is None:
            message = _(
                "The personal data of customer %(code)s has been erased: the customer, "
                "%(contacts)s contacts, %(activities)s follow-ups and %(consents)s consents "
                "are anonymised; the figures stay.",
                code=code,
                contacts=done.contacts,
                activities=done.activities,
                consents=done.consents,
            )
        else:
            message = _(
                "The personal data of contact #%(id)s has been erased: the contact, "
                "%(activities)s follow-ups and %(consents)s consents are anonymised.",
                id=contact.id,
                activities=done.activities,
                consents=done.consents,
            )
        flash(message, "success")
        return self._back(customer.id)

    def _confirm(self, customer: Customer, contact: Contact | None):  # type: ignore[no-untyped-def]
        """The confirmation step: what will be erased, and the button that does it."""
        with unrestricted():
            if contact is None:
                counts = {
                    "contacts": _count(Contact.customer_id, customer.id),
                    "activities": _count(Activity.customer_id, customer.id),
                    "consents": _count(Consent.customer_id, customer.id),
                }
                action_url = url_for("PersonalDataView.erase_customer", pk=customer.id)
            else:
                counts = {
                    "activities": _count(Activity.contact_id, contact.id),
                    "consents": _count(Consent.contact_id, contact.id),
                }
                action_url = url_for("PersonalDataView.erase_contact", pk=contact.id)
        return self.render_template(
            "crm/privacy/erase_confirm.html",
            customer=customer,
            contact=contact,
            action_url=action_url,
            **counts,
        )

    @expose("/customer/<int:pk>/erase", methods=["POST"])
    @has_access
    def erase_customer(self, pk: int):  # type: ignore[no-untyped-def]
        """Erase a person customer: a confirmation page first, then (``confirm=yes``) the
        erasure."""
        customer = session().get(Customer, pk) if _fits(pk) else None
        if customer is None:
            abort(404)
        return self._erase(customer, None)

    @expose("/contact/<int:pk>/erase", methods=["POST"])
    @has_access
    def erase_contact(self, pk: int):  # type: ignore[no-untyped-def]
        """Erase one contact: a confirmation page first, then (``confirm=yes``) the erasure."""
        contact = self._contact(pk)
        customer = session().get(Customer, contact.customer_id)
        if customer is None:
            abort(404)
        return self._erase(customer, contact)
