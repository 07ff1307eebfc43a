"""The core's privacy features (PIPL), registered through the same hooks as any plugin:
consents, and a person's data export and erasure."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from ..hookimpl import hookimpl
from ..specs import ApiSpec, EventTypeSpec, ViewSpec
from .models import Consent
from .views import ConsentApi, ConsentView, PersonalDataView, privacy_section


@hookimpl
def register_models() -> list[type]:
    return [Consent]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(
            ConsentView,
            "Consents",
            _l("Consents"),
            category="Customers",
            category_label=_l("Customers"),
            icon="fa-user-check",
        ),
        ViewSpec(PersonalDataView, "Personal data", _l("Personal data")),
    ]


@hookimpl
def register_apis() -> list[ApiSpec]:
    return [ApiSpec(ConsentApi)]


@hookimpl
def register_event_types() -> list[EventTypeSpec]:
    return [
        EventTypeSpec("consent.created", _l("Consent recorded")),
        EventTypeSpec("consent.updated", _l("Consent changed or withdrawn")),
        EventTypeSpec("customer.erased", _l("Personal data of a customer erased")),
        EventTypeSpec("contact.erased", _l("Personal data of a contact erased")),
    ]


@hookimpl
def app_configured(app: Flask) -> None:
    """The 360° page reads a customer's consents and personal data actions through
    ``crm_privacy(customer, contacts)``."""
    app.jinja_env.globals["crm_privacy"] = privacy_section
