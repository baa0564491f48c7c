"""An engine on a migrated PostgreSQL store; deliverers closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from usermessages.config import Settings
from usermessages.store import engine as store_engine
from usermessages.store import migrate
from usermessages.webhooks.deliverer import Deliverer


@pytest.fixture
def engine_pg(postgresql_url: str) -> Iterator[Engine]:
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def make_deliverer() -> Iterator[Callable[[Settings, Engine], Deliverer]]:
    """Deliverers for ``pass_once``, closed (pool and HTTP loop) when the test ends."""
    made: list[Deliverer] = []

    def make(settings: Settings, engine: Engine) -> Deliverer:
        made.append(Deliverer(settings, engine))
        return made[-1]

    yield make
    for deliverer in made:
        deliverer.close()
