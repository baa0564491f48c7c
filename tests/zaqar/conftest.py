"""One real Zaqar (on a throwaway Redis) for every test in tests/zaqar."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine

from tests.harness import servers
from tests.harness.zaqar import Zaqar
from usermessages import Action, Detail, Messenger, RequestContext
from usermessages.message import Message
from usermessages.sinks.spool import Spool
from usermessages.sinks.zaqar import ZaqarSink
from usermessages.store import engine as store_engine
from usermessages.store import migrate
from usermessages.zaqar.client import QueuedMessage, ZaqarClient
from usermessages.zaqar.collector import ZaqarCollector
from usermessages.zaqar.layout import Layout

# Zaqar's shortest claim: MIN_CLAIM_TTL = 60 in zaqar/transport/validation.py, a
# constant no option lowers. A message claimed and not deleted is handed out again
# this long after its claim, and not before.
CLAIM_TTL = 60
SLOW = ("test_a_collector_killed_between_store_and_delete_stores_once_then_deletes",
        "test_a_crafted_message_is_dead_lettered_once_however_long_the_collector_runs")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that outlive a claim after the other Zaqar tests.

    What they check starts when the first Zaqar test starts (the session
    fixtures ``collector_killed_after_store`` and ``collector_running_long``),
    so the claims expire while the other tests run, not in waits of their own.
    """
    slow = [item for item in items if item.name in SLOW]
    ours = [item for item in items if "tests/zaqar/" in item.nodeid and item.name not in SLOW]
    if slow and ours:
        for item in slow:
            items.remove(item)
        at = items.index(ours[-1]) + 1
        items[at:at] = slow


CRASHING_COLLECTOR = textwrap.dedent("""
    import os, signal, sys
    from usermessages.store import engine as store_engine
    from usermessages.zaqar.layout import Layout
    from usermessages.zaqar.collector import ZaqarCollector

    class DiesBeforeDeleting(ZaqarCollector):
        def _delete(self, *_):
            # The rows are committed; the claims are not deleted: die as a kill -9 would.
            print("stored", self.stats.stored, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    url, db, queue, admin, project = sys.argv[1:]
    layout = Layout(queue=queue, admin_project=admin, index_queue="")
    collector = DiesBeforeDeleting(url, store_engine.connect(db), ttl=3600, layout=layout,
                                   projects=(project,), batch_size=1000, timeout=5)
    while True:
        collector.collect_once()
""")


@dataclass(frozen=True)
class Crash:
    project: str
    ids: list[str]  # the messages' own ids
    zaqar_ids: list[str]  # their ids in Zaqar
    db_url: str
    layout: Layout
    killed_at: float  # time.monotonic()


@pytest.fixture(scope="session", autouse=True)
def collector_killed_after_store(zaqar: Zaqar, postgresql_admin_url: str,
                                 tmp_path_factory: pytest.TempPathFactory) -> Crash:
    """A collector process killed (SIGKILL) after storing 60 messages, before deleting them."""
    tag = uuid.uuid4().hex[:8]
    project = uuid.uuid4().hex
    layout = Layout(queue=f"um_{tag}", admin_project=f"admin_{tag}", index_queue="")
    db_url = servers.create_database(postgresql_admin_url, f"zaqar_crash_{tag}")
    engine = store_engine.connect(db_url)
    migrate.upgrade(engine)
    engine.dispose()
    sink = ZaqarSink(zaqar.url, Spool(tmp_path_factory.mktemp("crash") / "spool.sqlite"),
                     ttl=3600, layout=layout, timeout=5)
    messenger = Messenger(sink)
    ids = [messenger.create(RequestContext(project_id=project, user_id="u", request_id=f"r{n}"),
                            Action.SCHEDULE_ALLOCATE_VOLUME, detail=Detail.NO_BACKEND_AVAILABLE)
           for n in range(60)]
    assert sink.flush(60)
    messenger.close()
    with ZaqarClient(zaqar.url, timeout=5) as client:
        zaqar_ids = [m.id for m in client.read_all(project, layout.queue)]
    assert len(zaqar_ids) == 60
    died = subprocess.run(
        [sys.executable, "-c", CRASHING_COLLECTOR, zaqar.url, db_url, layout.queue,
         layout.admin_project, project], capture_output=True, text=True, timeout=120)
    killed_at = time.monotonic()
    assert died.returncode == -9, died.stderr
    assert died.stdout.split() == ["stored", "60"]
    with ZaqarClient(zaqar.url, timeout=5) as client:
        # Stored, and still claimed: a listing shows nothing until the claim expires,
        assert client.read_all(project, layout.queue) == []
    # but every one of them is still in Zaqar.
    assert in_zaqar(zaqar.url, project, layout.queue, zaqar_ids) == zaqar_ids
    return Crash(project, [i for i in ids if i], zaqar_ids, db_url, layout, killed_at)


@dataclass(frozen=True)
class LongRun:
    """A collector that runs from the session's start until a test stops it."""

    collector: ZaqarCollector
    stop: threading.Event
    thread: threading.Thread
    engine: Engine
    project: str
    layout: Layout
    crafted: list[str]  # Zaqar ids of the envelopes it must dead-letter
    good: list[str]  # Zaqar ids of the envelopes it must store
    good_ids: list[str]  # the messages' own ids
    handled_at: float  # time.monotonic() once it had handled all of them: after its claims


@pytest.fixture(scope="session", autouse=True)
def collector_running_long(zaqar: Zaqar, postgresql_admin_url: str) -> Iterator[LongRun]:
    """A collector that has taken 3 crafted and 5 good messages and keeps running."""
    tag = uuid.uuid4().hex[:8]
    project = uuid.uuid4().hex
    layout = Layout(queue=f"um_{tag}", admin_project=f"admin_{tag}", index_queue="",
                    dead_letter_queue=f"dead_{tag}")
    engine = store_engine.connect(servers.create_database(postgresql_admin_url,
                                                          f"zaqar_long_{tag}"))
    migrate.upgrade(engine)
    good = built_messages(project, 5)
    crafted = [{"v": 99, "message": {}}, "just text",  # not an envelope; not even an object
               json.loads(good[0].to_wire()) | {"v": 0}]  # an envelope of no known version
    with ZaqarClient(zaqar.url, timeout=5) as client:
        crafted_ids = client.post(project, layout.queue,
                                  [{"ttl": 3600, "body": body} for body in crafted])
        good_ids = client.post(project, layout.queue,
                               [{"ttl": 3600, "body": json.loads(m.to_wire())} for m in good])
    # Short back-offs: other tests stop and freeze this Zaqar for a moment.
    collector = ZaqarCollector(zaqar.url, engine, ttl=3600, layout=layout, projects=(project,),
                               poll_interval=0.2, timeout=5, max_backoff=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: collector.stats.dead_lettered >= 3 and collector.stats.stored >= 5, 30,
                 "the first round")
        yield LongRun(collector, stop, thread, engine, project, layout, crafted_ids, good_ids,
                      [m.id for m in good], time.monotonic())
    finally:
        stop.set()
        thread.join(30)
        collector.close()
        engine.dispose()


@pytest.fixture
def zaqar_client(zaqar: Zaqar) -> Iterator[ZaqarClient]:
    with ZaqarClient(zaqar.url, timeout=5) as client:
        yield client


@pytest.fixture
def new_project() -> Callable[[], str]:
    """Fresh project ids, so tests sharing the session's Zaqar never see each other."""
    return lambda: uuid.uuid4().hex


def built_messages(project: str, count: int) -> list[Message]:
    """Messages as the SDK builds them, kept rather than sent."""
    built: list[Message] = []

    class Keep:
        def deliver(self, message: Message) -> None:
            built.append(message)

        def close(self) -> None:
            pass

    messenger = Messenger(Keep())
    for n in range(count):
        messenger.create(RequestContext(project_id=project, user_id="u", request_id=f"r{n}"),
                         Action.SCHEDULE_ALLOCATE_VOLUME, detail=Detail.NO_BACKEND_AVAILABLE)
    return built


def read_queue(client: ZaqarClient, project: str, queue: str) -> list[QueuedMessage]:
    """Every unclaimed message in a queue."""
    return client.read_all(project, queue)


def in_zaqar(url: str, project: str, queue: str, zaqar_ids: list[str]) -> list[str]:
    """Which of these messages Zaqar still holds, read one by one by id.

    Not a listing: a listing hides claimed messages, so a message a collector
    stored and never deleted would look gone. GET by id answers 200 (claimed or
    not) until the message is deleted or expires, then 404. Plain HTTP, apart
    from the ZaqarClient under test.
    """
    headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project}
    found = []
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        for zaqar_id in zaqar_ids:
            status = http.get(f"/v2/queues/{queue}/messages/{zaqar_id}").status_code
            assert status in (200, 404), status
            if status == 200:
                found.append(zaqar_id)
    return found


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
