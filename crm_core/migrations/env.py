"""Alembic environment shared by the core's and every plugin's lineage.

The caller (:mod:`crm_core.plugins.migrations`) passes the connection, the version table and the
table prefixes the lineage owns; autogenerate then only sees that lineage's tables.
"""

from alembic import context
from flask_appbuilder import Model

config = context.config
prefixes: tuple[str, ...] = config.attributes["table_prefixes"]


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    table_name = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
    if table_name.startswith("alembic_version"):
        return False
    if type_ == "index" and str(name or "").startswith("ix_cf_"):
        return False  # indexes of searchable custom fields (crm_core.lowcode.indexes)
    return table_name.startswith(prefixes)


connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Model.metadata,
    version_table=config.attributes["version_table"],
    include_object=include_object,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
