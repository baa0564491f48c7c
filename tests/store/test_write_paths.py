"""Every way in writes through the store's one Writer: a storm is limited and counted
alike whether it comes through the bus and its collector, through Zaqar and its
collector, or through the SDK's direct database sink, each set up from the same
settings as a deployment would."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text

from usermessages import Action, Detail, Messenger, RequestContext, bus, metrics
from usermessages.collector import Collector
from usermessages.config import Settings
from usermessages.zaqar.collector import ZaqarCollector

N, PER_EVENT, EXEMPLARS = 240, 25, 3
VOLUME = "0c0ffee0-0000-4000-8000-00000000d00d"


def _settings(db_url: str, **options: object) -> Settings:
    return Settings(database_connection=db_url, collector_storm_rows_per_event=PER_EVENT,
                    collector_storm_rows_per_project=1000, collector_storm_window=3600,
                    collector_series_exemplars=EXEMPLARS, collector_flush_interval=0.05,
                    **options)  # type: ignore[arg-type]


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _series(engine: Engine) -> tuple[int, int, str]:
    with engine.connect() as conn:
        found = conn.execute(text("SELECT coalesce(sum(count), 0), coalesce(sum(suppressed), 0),"
                                  " max(request_ids) FROM message_series")).one()
    return int(found[0]), int(found[1]), found[2]


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM messages")).scalar_one()


@contextlib.contextmanager
def _running(target: Callable[[threading.Event], None]) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


@pytest.fixture
def bus_path(db_url: str, engine: Engine) -> Iterator[Messenger]:
    settings = _settings(db_url, bus_url="memory://", sdk_sink="bus")
    with bus.connect(settings.bus_url) as connection:  # process-wide: start empty
        bus.declare(connection)
        bus.messages_queue()(connection.default_channel).purge()
    collector = Collector.from_settings(settings, engine)
    messenger = Messenger.from_settings(settings)
    with _running(collector.run):
        yield messenger
    messenger.close()


@pytest.fixture
def zaqar_path(db_url: str, engine: Engine, zaqar, tmp_path) -> Iterator[Messenger]:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    settings = _settings(db_url, sdk_sink="zaqar", zaqar_url=zaqar.url, zaqar_queue=f"q_{tag}",
                         zaqar_admin_project=f"admin_{tag}", zaqar_index_queue="",
                         zaqar_projects=PROJECT, zaqar_poll_interval=0.05,
                         sdk_spool_path=str(tmp_path / "spool.sqlite"))
    collector = ZaqarCollector.from_settings(settings, engine)
    messenger = Messenger.from_settings(settings)
    with _running(collector.run):
        yield messenger
    messenger.close()
    collector.close()


@pytest.fixture
def direct_path(db_url: str, engine: Engine) -> Iterator[Messenger]:
    messenger = Messenger.from_settings(_settings(db_url, sdk_sink="db"))
    yield messenger
    messenger.close()


PROJECT = "5707a11e"


@pytest.mark.parametrize("path", ["bus_path", "zaqar_path", "direct_path"])
def test_a_storm_is_limited_and_counted_alike_on_every_path(path: str, engine: Engine,
                                                           request: pytest.FixtureRequest):
    messenger: Messenger = request.getfixturevalue(path)
    stored, suppressed = metrics.STORED._value.get(), metrics.SUPPRESSED._value.get()
    for i in range(N):
        assert messenger.create(
            RequestContext(project_id=PROJECT, user_id="u", request_id=f"req-{i:04d}"),
            Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid=VOLUME,
            detail=Detail.NO_BACKEND_AVAILABLE)
    _wait(lambda: _series(engine)[0] == N, 60, f"{N} occurrences counted")
    count, kept_out, exemplars = _series(engine)
    assert (count, kept_out) == (N, N - PER_EVENT)
    assert _rows(engine) == PER_EVENT
    assert sorted(json.loads(exemplars)) == [f"req-{i:04d}" for i in range(N - EXEMPLARS, N)]
    # Counted once, by the writer, whatever the path.
    assert metrics.STORED._value.get() - stored == PER_EVENT
    assert metrics.SUPPRESSED._value.get() - suppressed == N - PER_EVENT
