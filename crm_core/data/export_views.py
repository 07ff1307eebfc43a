"""``/export/<Screen>/<csv|xlsx>``: a list screen's rows as a file, for users who may export.

Every generated list screen (:class:`~crm_core.web.crud.CrmModelView`, core or plugin) has a
``can_export`` permission of its own (Administration → roles), next to ``can_list``. The list
shows an 导出 (Export) menu to users who hold both; its links carry the list's arguments
(filters, order), so the file holds what the list selects, all pages of it. Refusals: no
permission is a 403, a screen of a disabled plugin a 404, more rows than the
``data.export_max_rows`` setting allows a message on the list asking for a filter. Each export
writes one audit entry (operation ``exportlist``).
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from flask import abort, current_app, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.exceptions import FABException
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import SQLAlchemyError

from ..db import session
from ..web.crud import CrmModelView
from . import export

PERMISSION = "can_export"
LABELS = {"csv": _l("CSV file"), "xlsx": _l("Excel workbook (XLSX)")}
ICONS = {"csv": "fa-file-text-o", "xlsx": "fa-file-excel-o"}


def export_screens(appbuilder: Any) -> list[CrmModelView]:
    """The list screens that offer exports: every generated screen with a list."""
    return [
        v
        for v in appbuilder.baseviews
        if isinstance(v, CrmModelView) and "can_list" in (v.base_permissions or [])
    ]


def add_permission(appbuilder: Any) -> None:
    """Give every list screen its ``can_export`` permission (created by ``crm upgrade``)."""
    for view in export_screens(appbuilder):
        if PERMISSION not in view.base_permissions:
            view.base_permissions = [*view.base_permissions, PERMISSION]


def _screen(name: str) -> CrmModelView | None:
    appbuilder = current_app.appbuilder  # type: ignore[attr-defined]
    found = next((v for v in export_screens(appbuilder) if v.__class__.__name__ == name), None)
    if found is None:
        return None
    registry = current_app.extensions["crm"]
    owner = registry.owner_of_endpoint.get(found.endpoint)
    if owner is not None and not registry.is_enabled(owner):
        return None  # a disabled plugin's screen: as if it did not exist
    return found


def may_export(view: Any) -> bool:
    """Whether this request's user may list ``view``'s records and export them."""
    sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
    name = view.class_permission_name
    return bool(
        PERMISSION in (view.base_permissions or [])
        and sm.has_access("can_list", name)
        and sm.has_access(PERMISSION, name)
    )


def _list_arguments() -> list[tuple[str, str]]:
    """This request's arguments that say what a list selects (not its page)."""
    return [
        (key, value)
        for key, values in request.args.lists()
        if not key.startswith(("page_", "psize_"))
        for value in values
    ]


def export_links(view_name: str) -> list[dict[str, str]]:
    """The export menu of a list screen (a template global, ``crm_export_links``): one link
    per format, carrying the list's filters and order; empty when the user may not export."""
    view = _screen(view_name)
    if view is None or not may_export(view):
        return []
    query = urlencode(_list_arguments())
    links = []
    for fmt in export.FORMATS:
        url = url_for("ListExportView.export", view_name=view_name, fmt=fmt)
        links.append(
            {
                "url": f"{url}?{query}" if query else url,
                "label": str(LABELS[fmt]),
                "icon": ICONS[fmt],
            }
        )
    return links


def _disposition(fmt: str, view: Any) -> str:
    """``attachment`` with the file's name, in ASCII and in UTF-8 (RFC 6266 / RFC 5987)."""
    shown, ascii_name = export.filenames(view, fmt, datetime.now())
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(shown, safe='')}"


def _back_to_list(view: Any, message: str, category: str):  # type: ignore[no-untyped-def]
    """The list again, with its filters and order, and ``message`` on top."""
    flash(message, category)
    back = url_for(f"{view.endpoint}.list")
    arguments = urlencode(_list_arguments())
    return redirect(f"{back}?{arguments}" if arguments else back)


class ListExportView(BaseView):
    """Downloads of list screens as CSV or XLSX; the screen's own ``can_export`` permission
    decides (see :func:`may_export`), so this view has no permission of its own."""

    route_base = "/export"
    default_view = "export"

    @expose("/<view_name>/<fmt>")
    def export(self, view_name: str, fmt: str):  # type: ignore[no-untyped-def]
        """The file of one list screen, with the list's filters and order."""
        if fmt not in export.FORMATS:
            abort(404)
        user = g.get("user")
        if user is None or not user.is_authenticated:
            login = self.appbuilder.sm.auth_view.__class__.__name__ + ".login"
            return redirect(url_for(login, next=request.url))
        view = _screen(view_name)
        if view is None:
            abort(404)
        if not may_export(view):
            abort(403)
        query = export.list_query(view)
        limit = export.max_rows()
        try:
            count = export.count_upto(query, limit)
        except (SQLAlchemyError, FABException, ValueError):
            session().rollback()  # a value the database cannot compare with the column
            fields = "、".join(export.filter_labels(query))
            message = _(
                "A filter of the list holds a value that does not fit its field (%(fields)s). "
                "Correct it and export again.",
                fields=fields,
            )
            return _back_to_list(view, message, "danger")
        if count > limit:
            message = _(
                "This list holds more than %(limit)s records, more than one export may "
                "hold. Narrow it with a filter (for example by city, owner or date) and "
                "export again.",
                limit=limit,
            )
            return _back_to_list(view, message, "warning")
        columns = export.columns(view)
        header = [c.header for c in columns]
        body = export.Counted(export.rows(query, columns, limit=limit))
        # The file is written whole before it is sent (to a temporary file, row by row, in
        # constant memory): a workbook is a zip archive, complete only when saved, and a failure
        # half-way must give an error page, not a cut file.
        target = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it
        try:
            if fmt == "csv":
                for chunk in export.csv_chunks(header, body):
                    target.write(chunk)
            else:
                sheet = str(getattr(view.datamodel.obj, "__crm_label__", None) or view_name)
                export.write_xlsx(target, sheet, header, body)
        except BaseException:
            target.close()
            raise
        export.record_export(query, fmt, body.count)
        session().commit()
        target.seek(0)
        response = send_file(target, mimetype=export.MIME_TYPES[fmt], max_age=0)
        response.headers["Content-Disposition"] = _disposition(fmt, view)
        response.headers["Cache-Control"] = "no-store"
        return response
