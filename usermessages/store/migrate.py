"""Schema migrations with Alembic, driven from code (no alembic.ini needed)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from usermessages.store import partitions
from usermessages.store.engine import translated
from usermessages.store.schema import MARIADB_ONLY_COLUMNS

LOG = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # env.py takes the engine from here rather than building its own.
    config.attributes["engine"] = engine
    return config


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """The daily partitions of messages (PostgreSQL's are tables), and their indexes, are
    data, not schema."""
    table = name if type_ == "table" else (parent_names or {}).get("table_name")
    return partitions.day_of_name(table or "") is None


def include_object(dialect: str) -> Callable[..., bool]:
    """What autogenerate and the drift check compare on this store: the models.

    MariaDB's tables have a column the models do not (message_seq's invisible
    key, schema.MARIADB_ONLY_COLUMNS): left out there.
    """

    def include(_obj: Any, name: str | None, type_: str, _reflected: bool,
                _compare_to: Any) -> bool:
        return not (dialect == "mysql" and type_ == "column" and name in MARIADB_ONLY_COLUMNS)

    return include


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (idempotent)."""
    before = current(engine)
    with translated("cannot upgrade the database"):
        command.upgrade(_config(engine), revision)
    after = current(engine)
    if after != before:
        LOG.info("upgraded the schema from revision %s to %s", before or "(none)", after)


def downgrade(engine: Engine, revision: str) -> None:
    with translated("cannot downgrade the database"):
        command.downgrade(_config(engine), revision)


def head() -> str:
    script = ScriptDirectory.from_config(_config(None))  # type: ignore[arg-type]
    return str(script.get_current_head())


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with translated("cannot read the database's schema revision"), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_at_head(engine: Engine) -> bool:
    return current(engine) == head()


def is_known(revision: str) -> bool:
    """Is ``revision`` one of this release's (at or before its head)?"""
    script = ScriptDirectory.from_config(_config(None))  # type: ignore[arg-type]
    return any(found.revision == revision for found in script.walk_revisions())
