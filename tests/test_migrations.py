"""The core's migrations go down to nothing and up again on every backend, and match the models."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, inspect

from crm_core.plugins import migrations
from crm_core.plugins.migrations import CORE_LINEAGE
from crm_core.testing import schema_diff
from crm_core.testing.databases import backend_url, drop


def test_core_migrations_down_and_up(crm_backend, tmp_path):
    import crm_core  # noqa: F401 - registers every core model on Model.metadata

    url = backend_url(crm_backend, f"crm_mig_{os.getpid()}", tmp_path)
    engine = create_engine(url)
    try:
        migrations.upgrade(engine, CORE_LINEAGE)
        tables = set(inspect(engine).get_table_names())
        assert {"crm_customer", "crm_contact", "crm_outbox", "ab_user", "alembic_version"} <= tables
        assert migrations.current(engine, CORE_LINEAGE) == migrations.head(CORE_LINEAGE)
        assert schema_diff(engine, CORE_LINEAGE.prefixes) == [], "models and migrations disagree"
        migrations.downgrade(engine, CORE_LINEAGE, "base")
        left = [t for t in inspect(engine).get_table_names() if t.startswith(("ab_", "crm_"))]
        assert left == []
        migrations.upgrade(engine, CORE_LINEAGE)
        assert "crm_customer" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
        drop(url)
