"""Alembic environment: always run with a connection handed over by the caller."""

from __future__ import annotations

from alembic import context

_connection = context.config.attributes["connection"]
if _connection is None:
    raise RuntimeError("run migrations through the renkei command, which passes a connection")

context.configure(
    connection=_connection,
    version_table=context.config.attributes["version_table"],
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
