"""The broker's outage is announced once, however many processes notice it at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from blockstorage import busstatus, db
from usermessages.store import engine as store_engine

RACERS = 16


def test_each_transition_is_claimed_once_under_concurrency(db_url):
    engine = store_engine.connect(db_url)
    db.create_schema(engine)
    # Down (first ever: the row is inserted), down again, up, up again, down.
    states = (True, True, False, False, True)
    try:
        with ThreadPoolExecutor(RACERS) as pool:
            winners = [list(pool.map(lambda _, down=down: busstatus.claim(engine, "broker", down),
                                     range(RACERS))).count(True)
                       for down in states]
        assert winners == [1, 0, 1, 0, 1]
    finally:
        engine.dispose()
