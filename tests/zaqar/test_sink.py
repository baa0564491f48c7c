"""The SDK's zaqar sink against a real Zaqar: queues, envelope, TTL, outages."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
import time
import uuid

import httpx

from tests.zaqar.conftest import read_queue
from usermessages import Action, Detail, Messenger, RequestContext
from usermessages.catalog import Level
from usermessages.message import Message
from usermessages.sinks.zaqar import ZaqarSink
from usermessages.zaqar.client import MIN_TTL
from usermessages.zaqar.layout import Layout


def _metric(name: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(f"usermessages_sdk_{name}_total") or 0.0


def _context(project: str, n: int = 0) -> RequestContext:
    return RequestContext(project_id=project, user_id="alice", request_id=f"req-{n}")


def _create(messenger: Messenger, project: str, n: int = 0) -> str:
    message_id = messenger.create(_context(project, n), Action.SCHEDULE_ALLOCATE_VOLUME,
                                  detail=Detail.NO_BACKEND_AVAILABLE)
    assert message_id is not None
    return message_id


def test_each_project_gets_its_own_queue_with_the_envelope_and_a_zaqar_ttl(
        zaqar, zaqar_client, new_project):
    alice, bob = new_project(), new_project()
    queue = f"um_{new_project()[:8]}"
    layout = Layout(queue=queue, index_queue=f"idx_{queue}", admin_project=new_project())
    messenger = Messenger.from_url(zaqar.url, sink="zaqar", ttl=5,
                                   zaqar_options={"layout": layout})
    try:
        ids_a = {_create(messenger, alice, n) for n in range(3)}
        id_b = _create(messenger, bob)
        admin_id = messenger.create_system_message(Action.SCHEDULE_ALLOCATE_VOLUME,
                                                   Detail.NO_BACKEND_AVAILABLE)
        assert messenger.sink.flush(10)
    finally:
        messenger.close()
    in_a = read_queue(zaqar_client, alice, queue)
    in_b = read_queue(zaqar_client, bob, queue)
    # One queue per project, each holding only its own project's messages.
    assert {m.body["message"]["id"] for m in in_a} == ids_a
    assert [m.body["message"]["id"] for m in in_b] == [id_b]
    assert [m.body["message"]["id"] for m in read_queue(zaqar_client, layout.admin_project,
                                                          queue)] == [admin_id]
    # The body is the versioned envelope the collector decodes as it is.
    message = Message.from_wire(json.dumps(in_b[0].body), ttl=60)
    assert message.id == id_b and message.project_id == bob
    assert message.level is Level.ERROR
    # message_ttl of 5 s is raised to Zaqar's minimum.
    assert {m.ttl for m in in_a + in_b} == {MIN_TTL}
    # Producers announce the projects they post to, for collectors to find.
    announced = {m.body["project"] for m in read_queue(zaqar_client, layout.admin_project,
                                                         layout.index_queue)}
    assert announced == {alice, bob}  # collectors always read the admin project


def test_create_keeps_its_bound_while_zaqar_is_down_and_everything_arrives_once_after(
        zaqar, zaqar_client, new_project, tmp_path):
    from usermessages.sinks.spool import Spool

    project = new_project()
    queue = f"um_{new_project()[:8]}"
    layout = Layout(queue=queue, index_queue="", admin_project=new_project())
    sink = ZaqarSink(zaqar.url, Spool(tmp_path / "spool.sqlite"), ttl=3600, layout=layout,
                     timeout=1.0, max_backoff=0.5)
    messenger = Messenger(sink)
    created, timings = [], []
    before = {name: _metric(name) for name in ("spooled", "replayed", "published")}
    try:
        created += [_create(messenger, project, n) for n in range(20)]
        assert sink.flush(10)
        zaqar.stop()  # under the producer: the port closes
        try:
            for n in range(300):
                started = time.perf_counter()
                created.append(_create(messenger, project, n))
                timings.append(time.perf_counter() - started)
            assert sink.pending() > 0
        finally:
            zaqar.start()
        created += [_create(messenger, project, n) for n in range(20)]
        assert sink.flush(30), f"{sink.pending()} messages still spooled"
    finally:
        messenger.close()
    timings.sort()
    p99 = timings[int(len(timings) * 0.99) - 1]
    # One local SQLite insert each: far below one Zaqar timeout (1 s) even on a busy machine.
    assert timings[-1] < 0.5, f"max {timings[-1]:.3f}s p99 {p99:.4f}s"
    assert statistics.median(timings) < 0.05
    stored = [m.body["message"]["id"] for m in read_queue(zaqar_client, project, queue)]
    # Every message got through. A post whose answer was lost (a cold gunicorn worker
    # answering after the 1 s timeout) is posted again: Zaqar may hold a copy, which
    # the collector, inserting on the producer's id, stores once (test_collector.py).
    assert set(stored) == set(created)
    assert sink.stats.spooled >= 1 and sink.stats.replayed >= sink.stats.spooled
    assert sink.stats.dropped == 0
    assert sink.stats.published == len(created)
    # The same counters as the bus sink's, on /metrics.
    assert _metric("spooled") - before["spooled"] == sink.stats.spooled
    assert _metric("replayed") - before["replayed"] == sink.stats.replayed
    assert _metric("published") - before["published"] == len(created)


def test_create_keeps_its_bound_when_zaqar_accepts_and_never_answers(new_project, tmp_path):
    import socket
    import threading

    from usermessages.sinks.spool import Spool

    # A Zaqar that hangs: the port accepts connections and never says a word.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    sink = ZaqarSink(url, Spool(tmp_path / "spool.sqlite"), ttl=3600,
                     layout=Layout(index_queue=""), timeout=0.5, max_backoff=0.5)
    messenger = Messenger(sink)
    try:
        timings = []
        for n in range(200):
            started = time.perf_counter()
            _create(messenger, new_project(), n)
            timings.append(time.perf_counter() - started)
        # The forwarder is stuck on the network; the callers are not.
        deadline = time.monotonic() + 10
        while sink.stats.spooled == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.stats.spooled > 0 and sink.pending() == 200
    finally:
        started = time.perf_counter()
        messenger.close(timeout=1.0)  # bounded too: the forwarder's request times out
        closing = time.perf_counter() - started
        stop.set()
        acceptor.join()  # before the listener closes under its accept()
        for conn in held:
            conn.close()
        listener.close()
    assert max(timings) < 0.5, f"max {max(timings):.3f}s"
    assert closing < 1.0 + 1, f"close took {closing:.3f}s"


def test_close_with_zaqar_down_is_bounded_and_counts_what_it_lost(new_project, caplog):
    """Nothing listens where Zaqar should be: close() returns within its timeout and
    reports the in-memory spool's undelivered messages as lost, in stats and metrics."""
    from tests.harness import servers
    from usermessages import metrics

    messenger = Messenger.from_url(f"http://127.0.0.1:{servers.free_port()}", sink="zaqar",
                                   timeout=0.5)
    for n in range(300):
        _create(messenger, new_project(), n)
    lost_before = metrics.LOST._value.get()
    assert messenger.flush(0.5) == 300  # bounded, and says what waits
    started = time.perf_counter()
    lost = messenger.close(timeout=1.0)
    took = time.perf_counter() - started
    assert took < 1.0 + 1, f"close took {took:.3f}s"  # margin for a loaded machine
    assert lost == messenger.stats.lost == 300
    assert messenger.sink.stats.lost == 300  # type: ignore[attr-defined]
    assert metrics.LOST._value.get() - lost_before == 300
    assert "300 user messages undelivered: lost" in caplog.text
    # Created after close: refused and counted failed, never silently dropped.
    assert messenger.create(_context(new_project()), Action.SCHEDULE_ALLOCATE_VOLUME,
                            detail=Detail.NO_BACKEND_AVAILABLE) is None
    assert messenger.stats.failed == 1


def _limit_posts(url: str, project: str, queue: str, size: int) -> None:
    """Set the queue's own post-size limit, as any member of its project may."""
    headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        assert http.put(f"/v2/queues/{queue}", json={}).status_code in (201, 204)
        patched = http.patch(
            f"/v2/queues/{queue}",
            content=json.dumps([{"op": "add", "path": "/metadata/_max_messages_post_size",
                                 "value": size}]),
            headers={"Content-Type": "application/openstack-messaging-v2.0-json-patch"})
        assert patched.status_code == 200, patched.text


def test_a_post_zaqar_refuses_drops_only_the_message_it_refuses(
        zaqar, zaqar_client, new_project, tmp_path):
    """A member lowered their queue's post limit: posts are split until each message
    stands alone; the one message too large for it is dropped, its neighbours arrive."""
    from usermessages.sinks.spool import Spool

    project = new_project()
    layout = Layout(queue=f"um_{new_project()[:8]}", index_queue="", admin_project=new_project())
    _limit_posts(zaqar.url, project, layout.queue, 900)  # one short message, not two
    sink = ZaqarSink(zaqar.url, Spool(tmp_path / "spool.sqlite"), ttl=3600, layout=layout,
                     timeout=5)
    messenger = Messenger(sink)
    long_context = RequestContext(project_id=project, user_id="u" * 255, request_id="r" * 255)
    try:
        short = [_create(messenger, project, n) for n in range(6)]
        too_long = messenger.create(long_context, Action.SCHEDULE_ALLOCATE_VOLUME,
                                    detail=Detail.NO_BACKEND_AVAILABLE)
        short += [_create(messenger, project, n) for n in range(6, 12)]
        assert sink.flush(30)
    finally:
        messenger.close()
    arrived = [m.body["message"]["id"] for m in read_queue(zaqar_client, project, layout.queue)]
    assert sorted(arrived) == sorted(short) and too_long not in arrived
    assert sink.stats.dropped == 1 and sink.stats.published == len(short)


def test_create_does_not_wait_for_a_post_in_flight_to_a_frozen_zaqar(
        zaqar, zaqar_client, new_project, tmp_path):
    """Zaqar frozen (SIGSTOP) under a post: the forwarder waits out its timeout; the
    callers of create() must not wait with it (no lock of theirs is held across I/O)."""
    from usermessages.sinks.spool import Spool

    project = new_project()
    layout = Layout(queue=f"um_{new_project()[:8]}", index_queue="", admin_project=new_project())
    sink = ZaqarSink(zaqar.url, Spool(tmp_path / "spool.sqlite"), ttl=3600, layout=layout,
                     timeout=3.0, max_backoff=0.5)
    messenger = Messenger(sink)
    created = [_create(messenger, project, n) for n in range(20)]
    assert sink.flush(10)  # connected
    timings = []
    zaqar.freeze()
    try:
        frozen = time.monotonic()
        created.append(_create(messenger, project))  # the forwarder posts it, and hangs
        published = sink.stats.published
        for n in range(2000):
            started = time.perf_counter()
            created.append(_create(messenger, project, n))
            timings.append(time.perf_counter() - started)
        window = time.monotonic() - frozen
        stuck = sink.stats.published == published and sink.stats.spooled == 0
    finally:
        zaqar.thaw()
    try:
        assert sink.flush(60), f"{sink.pending()} still spooled"
    finally:
        messenger.close()
    timings.sort()
    assert timings[-1] < 0.25, f"max {timings[-1] * 1000:.1f} ms"
    assert statistics.median(timings) < 0.001
    # All of it while the forwarder's post hung: none returned, none timed out yet.
    assert window < 3.0 and stuck
    arrived = {m.body["message"]["id"] for m in read_queue(zaqar_client, project, layout.queue)}
    assert arrived == set(created)


KILLED_PRODUCER = textwrap.dedent("""
    import os, signal, sys
    from usermessages import Action, Detail, Messenger, RequestContext
    from usermessages.sinks.spool import Spool
    from usermessages.sinks.zaqar import ZaqarSink
    from usermessages.zaqar.layout import Layout

    url, spool_path, queue, project, count = sys.argv[1:]
    sink = ZaqarSink(url, Spool(spool_path), ttl=3600, timeout=30,
                     layout=Layout(queue=queue, index_queue=""))
    messenger = Messenger(sink)
    for n in range(int(count)):
        print(messenger.create(RequestContext(project_id=project, user_id="u", request_id="r"),
                               Action.SCHEDULE_ALLOCATE_VOLUME,
                               detail=Detail.NO_BACKEND_AVAILABLE), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # create() returned: the spool must hold it
""")


def test_a_producer_killed_with_zaqar_frozen_loses_nothing_it_created(
        zaqar, zaqar_client, new_project, tmp_path):
    """create() returned, the process died (SIGKILL) with its forwarder stuck on a frozen
    Zaqar: every message is in the spool file, and the next start delivers each once."""
    from usermessages.sinks.spool import Spool

    project, queue = new_project(), f"um_{new_project()[:8]}"
    spool_path = tmp_path / "spool.sqlite"
    zaqar.freeze()
    try:
        died = subprocess.run([sys.executable, "-c", KILLED_PRODUCER, zaqar.url, str(spool_path),
                               queue, project, "3000"], capture_output=True, text=True,
                              timeout=120)
    finally:
        zaqar.thaw()
    assert died.returncode == -9, died.stderr
    created = died.stdout.split()
    assert len(created) == 3000
    sink = ZaqarSink(zaqar.url, Spool(spool_path), ttl=3600, timeout=5,
                     layout=Layout(queue=queue, index_queue=""))
    try:
        assert sink.flush(60), f"{sink.pending()} still spooled"
    finally:
        sink.close()
    arrived = [m.body["message"]["id"] for m in read_queue(zaqar_client, project, queue)]
    # A post the dead forwarder had sent may have reached Zaqar; the collector stores it once.
    assert set(arrived) == set(created)


def test_a_project_id_no_header_can_carry_is_dropped_not_retried_forever(
        zaqar, zaqar_client, new_project, tmp_path):
    """A project id httpx cannot encode, with a control character, or with blanks HTTP
    would strip (posting into another project's queue): refused for good, dropped and
    counted, and the spool moves on to the others' messages."""
    from usermessages.sinks.spool import Spool

    good = new_project()
    layout = Layout(queue=f"um_{new_project()[:8]}", index_queue="", admin_project=new_project())
    sink = ZaqarSink(zaqar.url, Spool(tmp_path / "spool.sqlite"), ttl=3600, layout=layout,
                     timeout=5, max_backoff=0.5)
    messenger = Messenger(sink)
    try:
        created = [_create(messenger, good, 0)]
        for bad in ("projé", "a\nb", f" {good}", f"{good}\t"):
            _create(messenger, bad)
        created.append(_create(messenger, good, 1))
        assert sink.flush(30), f"{sink.pending()} still spooled"
    finally:
        messenger.close()
    assert sink.stats.dropped == 4 and sink.stats.published == 2
    arrived = [m.body["message"]["id"] for m in read_queue(zaqar_client, good, layout.queue)]
    assert sorted(arrived) == sorted(created)  # " good" did not land in good's queue
