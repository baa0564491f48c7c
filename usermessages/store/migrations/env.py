"""Alembic environment: runs against the engine handed over by migrate.py."""

from alembic import context

from usermessages.store import partitions
from usermessages.store.schema import metadata


def _include_name(name, type_, _parent_names) -> bool:
    # The daily partitions of messages (PostgreSQL) are data, not schema.
    return not (type_ == "table" and partitions.day_of_name(name or "") is not None)


engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=_include_name,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
