"""Security headers on every response, and the session cookie's flags.

Every asset is served by the CRM itself, so the Content-Security-Policy allows only this site.
Scripts run only from files of this site or inline with the request's nonce: templates write
``<script nonce="{{ baselib.get_nonce() }}">`` (Flask-AppBuilder's templates all do). Inline
``style`` attributes are allowed, because Flask-AppBuilder's templates use them.

With ``CRM_HTTPS=1`` (or ``PREFERRED_URL_SCHEME=https``) cookies are sent over HTTPS only and
browsers are told to use HTTPS for a year (HSTS).
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g

_NONCE_KEY = "crm_csp_nonce"

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
HSTS = "max-age=31536000; includeSubDomains"


def csp_nonce() -> str:
    """This request's script nonce (templates call it through ``baselib.get_nonce()``)."""
    nonce: str | None = g.get(_NONCE_KEY)
    if nonce is None:
        nonce = secrets.token_urlsafe(18)
        setattr(g, _NONCE_KEY, nonce)
    return nonce


def content_security_policy(nonce: str | None) -> str:
    """The policy of one response; ``nonce`` allows the inline scripts the page was given."""
    scripts = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def uses_https(app: Flask) -> bool:
    return bool(app.config.get("CRM_HTTPS")) or app.config.get("PREFERRED_URL_SCHEME") == "https"


def install(app: Flask) -> None:
    """Set the cookie flags and add the headers to every response of ``app``."""
    https = uses_https(app)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config["REMEMBER_COOKIE_HTTPONLY"] = True
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    if https:
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
        app.config["PREFERRED_URL_SCHEME"] = "https"

    # A global, not a context processor: widgets render their templates outside
    # render_template.
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault(
            "Content-Security-Policy", content_security_policy(g.get(_NONCE_KEY))
        )
        if https:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response
