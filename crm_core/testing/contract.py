"""The contract every plugin must meet, as one call a plugin's own tests can make."""

from __future__ import annotations

from typing import Any, cast

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from flask_appbuilder import Model
from sqlalchemy import Engine, inspect

from ..db import session
from ..plugins import lifecycle, migrations


def schema_diff(engine: Engine, prefixes: tuple[str, ...]) -> list[Any]:
    """Differences between the models and the database for tables starting with ``prefixes``:
    empty when a lineage's migrations create exactly what its models declare."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_object": lambda obj, name, type_, *_: (
                    (name if type_ == "table" else obj.table.name).startswith(prefixes)
                    and not (type_ == "index" and str(name or "").startswith("ix_cf_"))
                ),
                "compare_type": False,
            },
        )
        return list(compare_metadata(ctx, Model.metadata))


def check_plugin_contract(app: Flask, name: str) -> None:
    """Assert that plugin ``name`` loads, has a sound manifest, migrates down and up again on
    this app's database, owns only tables with its prefix, that its migrations create what its
    models declare, and that its declarative hooks return lists of specs without raising.
    """
    registry = app.extensions["crm"]
    info = registry.plugins.get(name)
    assert info is not None, f"plugin {name!r} is not discovered (entry point crm.plugins)"
    assert info.error is None, f"plugin {name!r} failed to load:\n{info.error}"
    manifest = info.manifest
    assert manifest is not None and manifest.name == name
    with app.app_context():
        lin = lifecycle.lineage(info)
        if lin is not None:
            engine = cast(Engine, session().get_bind())
            migrations.upgrade(engine, lin)
            tables = set(inspect(engine).get_table_names())
            owned = {t for t in tables if t.startswith(manifest.table_prefix)}
            assert owned, f"{name}: migrations created no table with prefix {manifest.table_prefix}"
            migrations.downgrade(engine, lin, "base")
            left = {
                t for t in inspect(engine).get_table_names() if t.startswith(manifest.table_prefix)
            }
            assert not left, f"{name}: downgrade to base left tables {sorted(left)}"
            migrations.upgrade(engine, lin)
            assert migrations.current(engine, lin) == migrations.head(lin)
            diff = schema_diff(engine, (manifest.table_prefix,))
            assert not diff, f"{name}: models and migrations disagree: {diff}"
        for hook in (
            "register_models",
            "register_views",
            "register_apis",
            "register_menu",
            "register_roles",
            "register_jobs",
            "register_settings",
            "register_event_types",
            "register_customer_panels",
        ):
            for impl in getattr(registry.pm.hook, hook).get_hookimpls():
                if impl.plugin_name != name:
                    continue
                result = impl.function()
                assert isinstance(result, list), f"{name}.{hook} must return a list"
