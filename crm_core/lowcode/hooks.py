"""The low-code engine's screens, registered like any module's."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from ..hookimpl import hookimpl
from ..specs import JobSpec, ViewSpec
from .duplicate_views import DuplicateRuleView
from .duplicates import DuplicateRule
from .fields import FieldDefinition
from .indexes import sync_indexes
from .layout_views import LayoutView
from .layouts import Layout
from .picklist_views import PicklistValueView, PicklistView
from .picklists import Picklist, PicklistValue
from .validation import ValidationRule
from .validation_views import ValidationRuleView
from .views import FieldDefinitionView


@hookimpl
def register_models() -> list[type]:
    return [FieldDefinition, Picklist, PicklistValue, ValidationRule, DuplicateRule, Layout]


def _administration(view: type, name: str, label: Any, icon: str) -> ViewSpec:
    """A screen under Administration."""
    return ViewSpec(
        view,
        name,
        label,
        icon=icon,
        category="Administration",
        category_label=_l("Administration"),
        category_icon="fa-cogs",
    )


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        _administration(FieldDefinitionView, "Custom fields", _l("Custom fields"), "fa-list-alt"),
        _administration(PicklistView, "Picklists", _l("Picklists"), "fa-list-ol"),
        ViewSpec(PicklistValueView, "Picklist values", _l("Picklist values")),
        _administration(
            ValidationRuleView, "Validation rules", _l("Validation rules"), "fa-check-square"
        ),
        _administration(DuplicateRuleView, "Duplicate rules", _l("Duplicate rules"), "fa-clone"),
        _administration(LayoutView, "Layouts", _l("Layouts"), "fa-columns"),
    ]


@hookimpl
def register_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            "core.custom_field_indexes",
            sync_indexes,
            "interval",
            {"minutes": 1},
            title="Index searchable custom fields",
        )
    ]
