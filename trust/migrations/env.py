"""Alembic environment: migrations run only through ``trust.db.upgrade``, which hands over
a connection already inside a transaction. Migrations are written by hand, so no
target metadata is needed here."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with trust.db.upgrade(engine) (or `trustctl init`)")

context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
