"""Alembic environment: runs against the engine handed over by migrate.py."""

from alembic import context

from usermessages.store import migrate
from usermessages.store.schema import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=migrate.include_name,
        include_object=migrate.include_object(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
