"""The whole-cloud drill (issue 25): every tier of docs/deployment.md's three-controller
layout on this machine, under a steady load, and one node of each tier killed with SIGKILL
in turn.

- three API nodes (`usermessages serve`) behind Debian's HAProxy and two `usermessages
  collector` processes, each started with the page's file, commands and stanza as written
  (only addresses and passwords made this machine's, and noauth for Keystone);
- a three-node RabbitMQ cluster with quorum queues; PostgreSQL;
- the load: producers (Messenger.create through the bus), API readers listing through
  HAProxy, an event stream read through HAProxy, a webhook receiver (a real HTTP server,
  its subscriptions made through the API) and a viewer in Chromium with its live list.

Killed in turn: the API node holding the streams, a collector, the broker leading the
messages queue (each brought back after, as an init system would). Asserted: every
message sent is stored once and delivered to the webhook; API reads fail only if they were
inside the API node as it died (HAProxy sends the rest to another node), none at the other
failures; the viewer's live list misses no row; the stream resumes by Last-Event-ID
through another node, without a gap or a repeat.

`make test` runs it short (a few seconds of load per failure); `make drill` runs it long
(USERMESSAGES_DRILL=long) and prints the figures docs/deployment.md quotes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import Engine, text

from tests.harness import deployment, servers
from tests.harness.haproxy import HAProxy
from tests.harness.rabbitmq_cluster import Cluster
from tests.reliability.cloud_load import (
    HEADERS,
    Checks,
    Load,
    Process,
    Reader,
    Stream,
    running,
    stop_all,
)
from tests.viewer.conftest import ARGS, CHROMIUM
from tests.viewer.test_viewer import sign_in
from tests.webhooks.receiver import Receiver, receiver
from usermessages import Action, Detail, Messenger, RequestContext
from usermessages.store import engine as store_engine

LONG = os.environ.get("USERMESSAGES_DRILL") == "long"
# Seconds of steady load before the first failure and after each; messages a second.
PHASE, RATE = (60.0, 40.0) if LONG else (4.0, 20.0)
API_PORT = 8776  # the documented port of the stanza's servers
# The stream's project (half the load), another, and the viewer's (a tenth: its live
# list stays a page a browser renders).
STREAMED, OTHER, VIEWED = "dddd0001", "dddd0002", "dddd0003"
PROJECTS = (STREAMED, OTHER, VIEWED)
# Where the drill's file differs from the page's: its load signs in with noauth tokens
# (Keystone across nodes is tests/test_nodes.py's), its webhook receiver is on loopback.
NOAUTH = ("auth_strategy = keystone", "auth_strategy = noauth")
DRILL_ONLY = "\n[webhooks]\nallowed_cidrs = 127.0.0.0/8\n"


def _stanza() -> str:
    """The HAProxy block of docs/deployment.md, as written."""
    [block] = deployment.blocks("haproxy")
    return block


def _checks(stanza: str) -> float:
    """Seconds HAProxy takes at most to mark a dead server down: fall x inter."""
    found = re.search(r"check inter (\d+)s fall (\d+)", stanza)
    assert found, "the stanza's servers are not health-checked"
    return int(found.group(1)) * int(found.group(2))


def _load_for(seconds: float) -> None:
    """Steady load for a while: the drill's length, not a synchronisation."""
    time.sleep(seconds)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for ``predicate`` with a deadline; when it held (monotonic)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic()


def _run(command: list[str], config: Path) -> list[str]:
    """One of the page's commands, on this controller's file, from this environment."""
    program, *args = command
    return [str(Path(sys.executable).parent / program),
            *(str(config) if arg == deployment.CONF else arg for arg in args)]


class Producer(Load):
    """A service calling Messenger.create through the bus at a steady pace."""

    def __init__(self, url: str, spool: Path, rate: float, offset: int) -> None:
        super().__init__()
        self.messenger = Messenger.from_url(url, queue_type="quorum", spool_path=str(spool))
        self.rate, self.offset = rate, offset
        self.created: list[tuple[str, str]] = []  # (project, id)
        self.at: dict[str, float] = {}  # id: when create() returned

    def loop(self) -> None:
        next_at, i = time.monotonic(), self.offset
        while not self.stopped.wait(max(0.0, next_at - time.monotonic())):
            project = STREAMED if i % 10 < 5 else OTHER if i % 10 < 9 else VIEWED
            message_id = self.messenger.create(
                RequestContext(project_id=project, request_id=f"req-{uuid.uuid4()}"),
                Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid=f"vol-{i % 50}",
                detail=Detail.NO_BACKEND_AVAILABLE)
            assert message_id is not None, "create() refused a message"
            self.created.append((project, message_id))
            self.at[message_id] = time.monotonic()
            next_at += 1 / self.rate
            i += 2


@dataclass
class Failure:
    tier: str
    victim: str
    at: float
    before: set[str] = field(default_factory=set)  # the messages created before it
    dead: float = 0.0  # when the victim was reaped: a read started before may have been in it
    caught_up: float = 0.0  # seconds until every one of them was stored
    until: float = 0.0  # the next failure's time (the end of this one's window)
    errors: list[tuple[float, float, int]] = field(default_factory=list)  # reads that failed


class Stored(Load):
    """The store as it fills, read by seq every 100 ms: says when each failure's
    messages (those created before it) were all stored."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.ids: set[str] = set()
        self.watched: list[Failure] = []
        self.cursor = 0

    def watch(self, failure: Failure) -> None:
        self.watched.append(failure)

    def loop(self) -> None:
        while not self.stopped.wait(0.1):
            with self.engine.connect() as conn:
                for seq, message_id in conn.execute(text(
                        "SELECT seq, id FROM messages WHERE seq > :cursor ORDER BY seq"),
                        {"cursor": self.cursor}):
                    self.ids.add(message_id)
                    self.cursor = seq
            now = time.monotonic()
            for failure in list(self.watched):
                if not failure.caught_up and failure.before <= self.ids:
                    failure.caught_up = now - failure.at


# --- the cloud -------------------------------------------------------------------------------


@dataclass
class Cloud:
    proxy: HAProxy
    backend: str
    nodes: dict[str, Process]  # by the stanza's server name
    collectors: list[Process]
    brokers: Cluster
    engine: Engine
    hook: Receiver
    base: str = ""
    figures: list[str] = field(default_factory=list)

    def server_of(self, port: int) -> str | None:
        """The API node HAProxy sends the client connection from ``port`` to."""
        for line in self.proxy.command("show sess").splitlines():
            if f"src=127.0.0.1:{port} " in line:
                found = re.search(r" srv=(\S+)", line)
                return found.group(1) if found else None
        return None

    def route_all_to(self, server: str | None) -> None:
        """Drain every node but ``server`` (None: none), through HAProxy's admin socket."""
        for name in self.nodes:
            state = "drain" if server is not None and name != server else "ready"
            self.proxy.command(f"set server {self.backend}/{name} state {state}")

    def stored(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return [(p, i) for p, i in conn.execute(text(
                "SELECT project_id, id FROM messages ORDER BY seq"))]

    def stored_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM messages")).scalar_one())

    def consumers(self) -> int:
        """The messages queue's consumers, as a live broker sees them."""
        for node in self.brokers.nodes:
            if node.process is not None and node.process.poll() is None:
                out = self.brokers.ctl(node, "list_queues", "name", "consumers",
                                       "--no-table-headers").stdout
                for line in out.splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == "usermessages.messages":
                        return int(parts[1])
        return 0


def _delivered(hook: Receiver) -> list[str]:
    return [json.loads(r.body)["data"]["message"]["id"] for r in list(hook.received)]


@pytest.fixture
def cloud(rabbitmq_cluster: Cluster, postgresql_admin_url: str,
          tmp_path: Path) -> Iterator[Cloud]:
    db_url = servers.create_database(postgresql_admin_url, f"drill_{secrets.token_hex(4)}")
    brokers = rabbitmq_cluster
    stanza = _stanza()
    names = re.findall(r"^\s*server\s+(\S+)", stanza, flags=re.M)
    [backend] = re.findall(r"^backend\s+(\S+)", stanza, flags=re.M)
    ports = [servers.free_port() for _ in names]
    proxy = HAProxy(ports, stanza, service=API_PORT)
    # Each controller's file: the page's, with this machine's addresses.
    files = {}
    for name, port in zip(names, ports, strict=True):
        files[name] = tmp_path / f"{name}.conf"
        ini = deployment.configuration(
            port=port, database=db_url, endpoint=f"http://127.0.0.1:{proxy.port}",
            brokers=[f"127.0.0.1:{node.port}" for node in brokers.nodes])
        assert NOAUTH[0] in ini and "[webhooks]" not in ini
        files[name].write_text(ini.replace(*NOAUTH) + DRILL_ONLY)
    upgrade, serve, collect = deployment.commands()
    subprocess.run(_run(upgrade, files[names[0]]), check=True, timeout=300)  # once
    nodes = {name: Process(name, _run(serve, files[name]), tmp_path / f"{name}.log")
             for name in names}
    collectors = [Process(f"collector on {name}", _run(collect, files[name]),
                          tmp_path / f"{name}-collector.log") for name in names[:2]]
    engine = store_engine.connect(db_url)
    with contextlib.ExitStack() as stack, receiver() as hook:
        stack.callback(engine.dispose)
        parts = [*collectors, *nodes.values()]
        stack.callback(stop_all, parts)
        for part in parts:
            part.start()
        stack.callback(proxy.remove)
        for part, port in zip(nodes.values(), ports, strict=True):
            assert part.process is not None
            servers.wait_serving(f"http://127.0.0.1:{port}", part.process, part.log, 120)
        proxy.start()
        site = Cloud(proxy, backend, nodes, collectors, brokers, engine, hook,
                     f"http://127.0.0.1:{proxy.port}")
        _wait(lambda: site.consumers() == 2, 120, "both collectors to consume")
        yield site


def _rotated(cluster: Cluster, first: int) -> str:
    nodes = cluster.nodes[first:] + cluster.nodes[:first]
    return "rabbit://" + ",".join(f"guest:guest@127.0.0.1:{n.port}" for n in nodes) + "/"


def _subscribe(base: str, hook: Receiver) -> None:
    """Each project subscribes the receiver through the API, as a user would."""
    for project in PROJECTS:
        answer = httpx.post(f"{base}/v3/{project}/messages-ext/webhooks",
                            json={"webhook": {"url": f"{hook.url}?p={project}"}},
                            headers={**HEADERS, "X-Auth-Token": f"alice:{project}"}, timeout=30)
        assert answer.status_code == 201, answer.text


# Installed in the viewer's page: when each row appeared in its live list (ms, wall clock).
SHOWN = """() => {
  window.shownAt = {};
  new MutationObserver((changes) => {
    for (const change of changes)
      for (const row of change.addedNodes)
        if (row.dataset && row.dataset.id) window.shownAt[row.dataset.id] = Date.now();
  }).observe(document.getElementById("rows"), {childList: true});
}"""


def _viewer_rows(page: Page) -> list[str]:
    return page.locator("#rows tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)")


@pytest.mark.drill
@pytest.mark.timeout(1500 if LONG else 300)
def test_kill_one_node_of_each_tier_in_turn_under_load(cloud: Cloud, tmp_path: Path):
    site = cloud
    _subscribe(site.base, site.hook)
    producers = [Producer(_rotated(site.brokers, n), tmp_path / f"spool{n}.sqlite", RATE / 2, n)
                 for n in (0, 1)]
    readers = [Reader(site.base, project) for project in (STREAMED, OTHER)]
    stream = Stream(site.base, STREAMED)
    store = Stored(site.engine)
    victim = next(iter(site.nodes))
    checks = Checks(site.proxy, victim)
    failures: list[Failure] = []

    def created() -> list[tuple[str, str]]:
        return [c for producer in producers for c in list(producer.created)]

    def at(message_id: str) -> float:
        return next(p.at[message_id] for p in producers if message_id in p.at)

    def fail(tier: str, who: str) -> Failure:
        """A failure now: it ends the previous one's window; the store watches for what
        was created before it."""
        failure = Failure(tier, who, time.monotonic(), before={i for _, i in created()})
        if failures:
            failures[-1].until = failure.at
        failures.append(failure)
        store.watch(failure)
        return failure

    def catch_up(failure: Failure) -> None:
        _wait(lambda: bool(failure.caught_up), 180,
              f"the messages created before the {failure.tier} failure to be stored")

    # Until the first failure, HAProxy sends everything to the first node (the others
    # drained): the browser's stream and the program's are on the node that dies.
    site.route_all_to(victim)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        sign_in(page, site.base, "carol", VIEWED)
        expect(page.locator("#live-status")).to_contain_text("Live:", timeout=30_000)
        with running(stream):
            _wait(lambda: bool(stream.connections), 30, "the stream to open")
            assert stream.connections[0].status == 200
            assert site.server_of(stream.connections[0].port) == victim
            with running(*producers, *readers, store, checks):
                _wait(lambda: len(stream.events) >= 5 and len(site.hook.received) >= 5
                      and len(_viewer_rows(page)) >= 1, 60, "the load to flow everywhere")
                _load_for(PHASE)

                # 1. The API node holding both streams.
                page.evaluate(SHOWN)
                site.route_all_to(None)
                failure = fail("API node", victim)
                killed_wall = time.time()
                site.nodes[victim].kill()
                failure.dead = time.monotonic()
                _wait(lambda: any(c.opened > failure.at and c.events
                                  for c in stream.connections), 60,
                      "the stream to resume through another node")
                resumed = next(c for c in stream.connections if c.opened > failure.at
                               and c.events)
                moved_to = site.server_of(resumed.port)
                assert moved_to not in (None, victim), moved_to
                # The viewer's live list goes on: a row created after the kill shows (only
                # another node can have sent it); when, the page's observer says.
                def viewer_back() -> float | None:
                    shown = page.evaluate("window.shownAt")
                    return min((shown[i] / 1000 - killed_wall for p, i in created()
                                if p == VIEWED and i in shown and at(i) > failure.at),
                               default=None)
                _wait(lambda: viewer_back() is not None, 60,
                      "the viewer's live list to go on after the kill")
                catch_up(failure)
                _load_for(PHASE)
                _wait(lambda: checks.seen("DOWN", failure.at), 30, "HAProxy to mark it down")
                restarted = time.monotonic()
                site.nodes[victim].start()  # back under load; HAProxy takes it when it answers
                site.figures.append(
                    f"API node {victim} killed: HAProxy marked it down "
                    f"{checks.first('DOWN', failure.at):.1f} s later; "
                    f"the stream resumed through {moved_to} by Last-Event-ID: connected again "
                    f"{resumed.opened - failure.at:.1f} s after the kill, its first event "
                    f"{resumed.first_event - failure.at:.1f} s after; the viewer's live list "
                    f"showed a row created after the kill {viewer_back():.1f} s after it")

                # 2. A collector.
                failure = fail("collector", site.collectors[0].name)
                site.collectors[0].kill()
                catch_up(failure)
                _load_for(PHASE)
                site.collectors[0].start()

                # 3. The broker leading the messages queue.
                leader = site.brokers.leader("usermessages.messages")
                failure = fail("broker", leader.name)
                site.brokers.kill(leader)
                catch_up(failure)
                _load_for(PHASE)
                failure.until = time.monotonic()
                _wait(lambda: checks.seen("UP", restarted), 120,
                      "HAProxy to take the API node back")
                site.figures.append(f"the API node, started again, was back in HAProxy "
                                    f"{checks.first('UP', restarted):.1f} s after "
                                    "its start")
                _wait(lambda: site.consumers() == 2, 120, "the collector to consume again")
            for producer in producers:
                assert producer.messenger.flush(120) == 0, "a producer kept messages"
                producer.messenger.close()
            sent = created()
            sent_ids = {i for _, i in sent}
            _wait(lambda: site.stored_count() >= len(sent), 180, "every message stored")
            _wait(lambda: sent_ids <= set(_delivered(site.hook)), 180,
                  "every message delivered to the webhook")
            streamed = {i for p, i in sent if p == STREAMED}
            _wait(lambda: streamed <= {i for _, i in stream.events}, 60,
                  "the stream to show every message of its project")
            viewed = {i for p, i in sent if p == VIEWED}
            _wait(lambda: viewed <= set(_viewer_rows(page)), 60,
                  "the viewer's live list to show every message of its project")
            rows = _viewer_rows(page)
        browser.close()
    site.brokers.restart(leader)  # the session's later tests get three brokers back
    _wait(lambda: len(site.brokers.running(site.brokers.nodes[0])) == 3, 120,
          "the broker to rejoin")

    for load in (*producers, *readers, stream):
        assert load.failure is None, repr(load.failure)
    # Sent, stored, delivered: equal, each stored once.
    stored = site.stored()
    assert len(sent) == len(sent_ids)
    assert len(stored) == len({i for _, i in stored}) == len(sent)
    assert set(stored) == set(sent)
    delivered = _delivered(site.hook)
    assert set(delivered) == sent_ids
    # The stream: every message of its project, once, in stored order, across nodes.
    assert [i for _, i in stream.events] == [i for p, i in stored if p == STREAMED]
    seqs = [s for s, _ in stream.events]
    assert seqs == sorted(set(seqs))
    # The viewer's live list: every row of its project, once.
    assert sorted(rows) == sorted(viewed)
    # Readers: errors only while the API node died, within HAProxy's detection bound.
    calls = [call for reader in readers for call in reader.calls]
    bound = _checks(_stanza()) + 2.0  # a request may have started just before the kill
    lines = []
    for failure in failures:
        window = [c for c in calls if failure.at - bound <= c[0] and c[1] <= failure.until
                  and c[1] >= failure.at]
        failure.errors = errors = [c for c in window if c[2] != 200]
        slowest = max((end - start for start, end, _ in window), default=0.0)
        failed = (f"{len(errors)} of {len(window)} reads failed (status "
                  f"{', '.join(str(e[2]) for e in errors)}; 0: no answer), the last "
                  f"{max(e[1] for e in errors) - failure.at:.1f} s after the kill"
                  if errors else f"none of {len(window)} reads failed")
        lines.append(f"{failure.tier} {failure.victim} killed: {failed}, the slowest took "
                     f"{slowest:.2f} s; every message created before the kill stored "
                     f"{failure.caught_up:.1f} s after it")
    duplicates = len(delivered) - len(set(delivered))
    print(f"\nwhole-cloud drill ({'long' if LONG else 'short'}: {PHASE:.0f} s of load per "
          f"phase, {RATE:.0f} messages/s): sent {len(sent)}, stored {len(stored)} (duplicate "
          f"ids 0), delivered to the webhook {len(set(delivered))} ({duplicates} redelivered "
          f"with the same webhook-id); the stream: {len(stream.events)} events over "
          f"{len(stream.connections)} connections, no gap, no repeat; the viewer's live list: "
          f"{len(rows)} rows of {len(viewed)}; {len(calls)} API reads (unanswered: "
          f"{sorted(e for reader in readers for e in reader.unanswered)})")
    for line in (*site.figures, *lines):
        print(" -", line)
    for failure in failures:
        if failure.tier != "API node":
            assert not failure.errors, (failure.tier, failure.errors)
        # Only reads already inside the node as it died fail with an answer: HAProxy
        # sends the others, refused by the dead node, to the next one (retries,
        # redispatch), before and after its checks take the node out. A read HAProxy put
        # on a kept-alive connection to the dead node is closed unanswered (status 0), as
        # HTTP lets a client retry it (HAProxy's `http-reuse safe`).
        assert all((start < (failure.dead or failure.at) or status == 0)
                   and end - failure.at <= bound
                   for start, end, status in failure.errors), (failure.tier, failure.at,
                                                               failure.dead, failure.errors)
