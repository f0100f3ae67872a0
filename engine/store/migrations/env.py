"""
Alembic environment for the store's migrations.

Run through ``aiguillage db upgrade`` (engine/store/migrate.py), which hands over an open
connection in ``config.attributes["connection"]``; no alembic.ini is needed.
"""
from alembic import context

from engine.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
