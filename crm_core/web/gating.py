"""Screens and APIs of a disabled plugin answer 404, at once and without a restart."""

from __future__ import annotations

from flask import Flask, abort, current_app, request


def install(app: Flask) -> None:
    """Check, before each request, that the plugin owning the endpoint is enabled."""

    @app.before_request
    def _gate() -> None:
        blueprint = request.blueprint
        if not blueprint:
            return
        registry = current_app.extensions["crm"]
        owner = registry.owner_of_endpoint.get(blueprint)
        if owner is not None and not registry.is_enabled(owner):
            abort(404)
