"""Alembic environment for aiops: run from `aiops.store.upgrade` with a live connection.

aiops builds the Alembic config in code (no alembic.ini at the user's side); the connection
is handed over in `config.attributes["connection"]` inside the caller's transaction and lock.
"""

from __future__ import annotations

from alembic import context

from aiops.store.tables import metadata

config = context.config
target_metadata = metadata
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `aiops db upgrade` (aiops.store.upgrade)")

context.configure(connection=connection, target_metadata=target_metadata,
                  render_as_batch=connection.dialect.name == "sqlite",
                  transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
