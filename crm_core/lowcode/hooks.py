"""The low-code engine's screens, registered like any module's."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..hookimpl import hookimpl
from ..specs import ViewSpec
from .fields import FieldDefinition
from .views import FieldDefinitionView


@hookimpl
def register_models() -> list[type]:
    return [FieldDefinition]


@hookimpl
def register_views() -> list[ViewSpec]:
    return [
        ViewSpec(
            FieldDefinitionView,
            "Custom fields",
            _l("Custom fields"),
            icon="fa-list-alt",
            category="Administration",
            category_label=_l("Administration"),
            category_icon="fa-cogs",
        )
    ]
