"""Error pages and JSON errors that never carry SQL, paths or stack traces."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from ..errors import CrmError

log = logging.getLogger(__name__)


def _page(code: int, message: str):  # type: ignore[no-untyped-def]
    try:
        html = render_template(
            "crm/error.html",
            code=code,
            message=message,
            appbuilder=current_app.appbuilder,  # type: ignore[attr-defined]
        )
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        log.exception("error page failed")
        html = f"<h1>{code}</h1><p>{escape(message)}</p>"
    return html, code


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def install(app: Flask) -> None:
    """Register the handlers on ``app``."""

    @app.errorhandler(CrmError)
    def _crm_error(exc: CrmError):  # type: ignore[no-untyped-def]
        if _wants_json():
            return jsonify(message=exc.messages), exc.status
        return _page(exc.status, str(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        code = exc.code or 500
        messages = {
            400: _("The request could not be understood."),
            403: _("You do not have permission to do this."),
            404: _("Not found."),
            405: _("This method is not allowed here."),
        }
        message = messages.get(code, exc.name)
        if _wants_json():
            return jsonify(message=message), code
        return _page(code, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error on %s %s", request.method, request.path)
        from ..db import session

        session().rollback()
        message = _("Something went wrong; the error has been logged.")
        if _wants_json():
            return jsonify(message=message), 500
        return _page(500, message)
