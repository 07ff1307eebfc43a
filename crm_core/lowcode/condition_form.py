"""The form fields every rule screen shares: the record type, and the condition lines with how
they join (validation rules, assignment rules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget, Select2Widget
from wtforms import Field, SelectField, TextAreaField
from wtforms.validators import DataRequired

from .validation import JOINS


def condition_fields(
    labels: dict[str, Any],
    models: Callable[[], list[tuple[str, str]]],
    description: Any,
    usable: Any,
) -> dict[str, Field]:
    """``model``, ``join`` and ``conditions`` fields: ``models`` offers the record types,
    ``usable`` is the validator that checks the condition lines for the chosen type."""
    return {
        "model": SelectField(
            labels["model"],
            choices=models,  # type: ignore[arg-type]
            validators=[DataRequired()],
            widget=Select2Widget(),
        ),
        "join": SelectField(labels["join"], choices=list(JOINS.items()), widget=Select2Widget()),
        "conditions": TextAreaField(
            labels["conditions"],
            description=description,
            validators=[usable],
            widget=BS3TextAreaFieldWidget(),
        ),
    }
