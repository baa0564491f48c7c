"""One real Zaqar (on a throwaway Redis) for every test in tests/zaqar."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests import servers
from tests.zaqar_server import Zaqar
from usermessages import Action, Detail, Messenger, RequestContext
from usermessages.spool import Spool
from usermessages.store import engine as store_engine
from usermessages.store import migrate
from usermessages.zaqar.client import QueuedMessage, ZaqarClient
from usermessages.zaqar.sink import Layout, ZaqarSink

SLOW = "test_a_collector_killed_between_store_and_delete_stores_nothing_twice"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the redelivery test after the other Zaqar tests.

    Zaqar will not expire a claim in less than 60 s. The collector it checks
    is killed when the first Zaqar test starts (``collector_killed_after_store``),
    so the claim expires while the other tests run, not in a wait of its own.
    """
    slow = [item for item in items if item.name == SLOW]
    ours = [item for item in items if "tests/zaqar/" in item.nodeid and item.name != SLOW]
    if slow and ours:
        items.remove(slow[0])
        items.insert(items.index(ours[-1]) + 1, slow[0])


CRASHING_COLLECTOR = textwrap.dedent("""
    import os, signal, sys
    from usermessages.store import engine as store_engine
    from usermessages.zaqar.sink import Layout
    from usermessages.zaqar.source import ZaqarCollector

    class DiesBeforeDeleting(ZaqarCollector):
        def _delete(self, claims):
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
    ids: list[str]
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
    died = subprocess.run(
        [sys.executable, "-c", CRASHING_COLLECTOR, zaqar.url, db_url, layout.queue,
         layout.admin_project, project], capture_output=True, text=True, timeout=120)
    killed_at = time.monotonic()
    assert died.returncode == -9, died.stderr
    assert died.stdout.split() == ["stored", "60"]
    with ZaqarClient(zaqar.url, timeout=5) as client:
        # Stored, and still claimed: nothing to read until the claim expires.
        assert client.read_all(project, layout.queue) == []
    return Crash(project, [i for i in ids if i], db_url, layout, killed_at)


@pytest.fixture
def zaqar_client(zaqar: Zaqar) -> Iterator[ZaqarClient]:
    with ZaqarClient(zaqar.url, timeout=5) as client:
        yield client


@pytest.fixture
def new_project() -> Callable[[], str]:
    """Fresh project ids, so tests sharing the session's Zaqar never see each other."""
    return lambda: uuid.uuid4().hex


def read_queue(client: ZaqarClient, project: str, queue: str) -> list[QueuedMessage]:
    """Every unclaimed message in a queue."""
    return client.read_all(project, queue)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
