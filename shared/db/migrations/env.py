"""Alembic environment: runs on the connection the node hands over (no URL of its own)."""

from alembic import context

from mekong.shared.db import originals, ris_schema, schema_hub, schema_uplink  # noqa: F401  (registers their tables)
from mekong.shared.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
