"""Administration → 页面布局: the layouts of record types per role, and the designer where admins
drag fields into sections and columns into the list."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, jsonify, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import SelectField, ValidationError
from wtforms.validators import DataRequired

from ..db import session
from ..web.crud import CrmInterface, CrmModelView
from ..web.display import display_datetime
from . import layout_screen
from .layout_design import designer_data, read_design
from .layouts import Layout, stored_sections

LABELS = {
    "model": _l("Record type"),
    "role": _l("Role"),
    "updated_at": _l("Changed"),
}


class LayoutIsNew:
    """Form validator: the record type has no layout for this role yet."""

    def __call__(self, form: Any, field: Any) -> None:
        role = form.role.data
        query = select(Layout.id).where(Layout.model == field.data)
        query = query.where(Layout.role_id.is_(None) if role is None else Layout.role_id == role.id)
        if session().scalar(query) is not None:
            raise ValidationError(str(_l("This record type already has a layout for this role.")))


def _role_name(role: Any) -> str:
    return str(role) if role is not None else str(_l("Every role"))


class LayoutView(CrmModelView):
    """Layouts per record type and role; "edit" opens the designer."""

    datamodel = CrmInterface(Layout)
    route_base = "/layouts"
    list_title = _l("Layouts")
    show_title = add_title = edit_title = _l("Layout")
    label_columns = LABELS
    list_columns = ["model", "role", "updated_at"]
    add_columns = ["model", "role"]
    search_columns = ["model", "role"]
    order_columns = ["model", "updated_at"]
    base_order = ("model", "asc")
    base_permissions = ["can_list", "can_add", "can_edit", "can_delete"]
    description_columns = {
        "role": _l("Empty: the layout of every role without a layout of its own"),
    }
    formatters_columns = {
        "model": lambda m: dict(layout_screen.layout_models()).get(m, m),
        "role": _role_name,
        "updated_at": display_datetime,
    }

    def _init_forms(self) -> None:
        self.add_form_extra_fields = {
            "model": SelectField(
                LABELS["model"],
                choices=layout_screen.layout_models,  # type: ignore[arg-type]
                validators=[DataRequired(), LayoutIsNew()],
                widget=Select2Widget(),
            ),
        }
        super()._init_forms()

    def post_add(self, item: Layout) -> None:
        g.crm_new_layout = item.id

    def post_add_redirect(self):  # type: ignore[no-untyped-def]
        """A new layout opens in the designer."""
        pk = g.pop("crm_new_layout", None)
        if pk is None:
            return super().post_add_redirect()
        return redirect(url_for(".designer", pk=pk))

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk: Any):  # type: ignore[no-untyped-def]
        return redirect(url_for(".designer", pk=pk))

    def _layout_and_screen(self, pk: int) -> tuple[Layout, Any]:
        layout = session().get(Layout, pk)
        if layout is None:
            abort(404)
        screen = layout_screen.layout_screens().get(layout.model)
        return layout, screen

    @expose("/design/<int:pk>", methods=["GET"])
    @has_access
    @permission_name("edit")
    def designer(self, pk: int):  # type: ignore[no-untyped-def]
        """The designer of one layout."""
        layout, screen = self._layout_and_screen(pk)
        if screen is None:
            flash(
                str(_l("This record type has no screen here (is its module enabled?).")), "danger"
            )
            return redirect(url_for(".list"))
        self.update_redirect()
        return self.render_template(
            "crm/layout_designer.html",
            title=self.edit_title,
            model_label=dict(layout_screen.layout_models()).get(layout.model, layout.model),
            role_label=_role_name(layout.role),
            data=designer_data(layout, screen, url_for(".save_design", pk=pk)),
        )

    @expose("/design/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("edit")
    def save_design(self, pk: int):  # type: ignore[no-untyped-def]
        """Store the designer's layout (JSON): 200, or 422 with every problem in the user's
        language."""
        layout, screen = self._layout_and_screen(pk)
        if screen is None:
            abort(404)
        body = request.get_json(silent=True)
        try:
            design = read_design(body)
        except ValueError as exc:
            return jsonify(errors=[str(exc)]), 400
        offer = layout_screen.live_offer(screen)
        problems = layout_screen.problems(
            offer,
            design.sections,
            design.list_columns,
            design.order_column,
            design.order_direction,
        )
        if problems:
            return jsonify(errors=problems), 422
        layout.sections = stored_sections(design.sections) or None
        # Without sections the forms and record page are the screen's own: nothing is hidden.
        hidden = layout_screen.hidden_fields(offer, design.sections) if design.sections else []
        layout.hidden = hidden or None
        layout.list_columns = list(design.list_columns) or None
        layout.order_column = design.order_column or None
        layout.order_direction = design.order_direction if design.order_column else None
        session().commit()
        g.pop("_crm_layouts", None)
        return jsonify(message=str(_l("Layout saved.")))
