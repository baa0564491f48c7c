"""Schema migrations with Alembic, driven from code (no alembic.ini needed)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from usermessages.store.engine import translated

LOG = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # env.py takes the engine from here rather than building its own.
    config.attributes["engine"] = engine
    return config


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
