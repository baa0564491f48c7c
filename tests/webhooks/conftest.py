"""An engine on a migrated PostgreSQL store, for tests that run a server process on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from usermessages.store import engine as store_engine
from usermessages.store import migrate


@pytest.fixture
def engine_pg(postgresql_url: str) -> Iterator[Engine]:
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
