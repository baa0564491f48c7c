"""The Zaqar collector against a real Zaqar and a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from tests.zaqar.conftest import CLAIM_TTL, built_messages, in_zaqar, read_queue, wait_for
from usermessages import Action, Detail, Messenger, RequestContext, envelope
from usermessages.message import Message
from usermessages.sinks.spool import Spool
from usermessages.sinks.zaqar import ZaqarSink
from usermessages.store import engine as store_engine
from usermessages.store import migrate
from usermessages.zaqar.client import MAX_POST_BYTES
from usermessages.zaqar.collector import ZaqarCollector
from usermessages.zaqar.layout import Layout


@pytest.fixture
def pg_engine(postgresql_url: str) -> Iterator[Engine]:
    eng = store_engine.connect(postgresql_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def layout(new_project) -> Layout:
    """Queues of this test only (the session's Zaqar is shared)."""
    tag = new_project()[:8]
    return Layout(queue=f"um_{tag}", admin_project=f"admin_{tag}", index_queue=f"idx_{tag}",
                  dead_letter_queue=f"dead_{tag}")


def _rows(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT id, project_id FROM messages")).all())


def _produce(zaqar_url: str, layout: Layout, projects: list[str], each: int,
             tmp_path) -> list[str]:
    sink = ZaqarSink(zaqar_url, Spool(tmp_path / f"spool-{time.monotonic_ns()}.sqlite"),
                     ttl=3600, layout=layout, timeout=5)
    messenger = Messenger(sink)
    ids: list[str] = []
    for n in range(each):
        for project in projects:
            context = RequestContext(project_id=project, user_id="u", request_id=f"req-{n}")
            created = messenger.create(context, Action.SCHEDULE_ALLOCATE_VOLUME,
                                       detail=Detail.NO_BACKEND_AVAILABLE)
            assert created, "the messenger refused the message"
            ids.append(created)
    assert sink.flush(60), f"{sink.pending()} still spooled"
    messenger.close()
    return ids


def test_collector_finds_projects_by_the_index_and_stores_each_message_once(
        zaqar, zaqar_client, layout, new_project, pg_engine, tmp_path):
    projects = [new_project() for _ in range(3)]
    ids = _produce(zaqar.url, layout, projects, 40, tmp_path)
    # A copy posted again (as when a producer's 201 was lost) is stored once.
    again = read_queue(zaqar_client, projects[0], layout.queue)[:5]
    zaqar_client.post(projects[0], layout.queue, [{"ttl": 3600, "body": m.body} for m in again])
    queued = {p: [m.id for m in read_queue(zaqar_client, p, layout.queue)] for p in projects}
    assert sum(map(len, queued.values())) == len(ids) + 5
    announcements = [m.id for m in read_queue(zaqar_client, layout.admin_project,
                                              layout.index_queue)]
    assert len(announcements) == 3
    collector = ZaqarCollector(zaqar.url, pg_engine, ttl=3600, layout=layout, batch_size=50,
                               poll_interval=0.1, refresh_interval=0.2, timeout=5)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(_rows(pg_engine)) >= len(ids), 60, "every message stored")
        wait_for(lambda: collector.stats.duplicates >= 5, 30, "the copies seen")
    finally:
        stop.set()
        thread.join(30)
        collector.close()
    rows = _rows(pg_engine)
    assert sorted(rows) == sorted(ids)
    assert {rows[i] for i in ids} == set(projects)
    assert collector.stats.stored == len(ids) and collector.stats.duplicates == 5
    for project in projects:  # stored, then deleted from Zaqar: gone by id, not just unlisted
        assert in_zaqar(zaqar.url, project, layout.queue, queued[project]) == []
    # The announcements were deleted once their queues were drained: the index stays small.
    assert in_zaqar(zaqar.url, layout.admin_project, layout.index_queue, announcements) == []
    # Another collector (nothing left in the index) finds the projects through the store.
    other = ZaqarCollector(zaqar.url, pg_engine, ttl=3600, layout=layout, timeout=5)
    try:
        assert set(projects) <= set(other.projects())
    finally:
        other.close()


def _envelope_for(project: str | None, kind: str = "API") -> dict:
    record = {
        "id": str(uuid.uuid4()),
        "kind": kind, "project_id": project, "user_id": "", "request_id": "",
        "resource_type": "VOLUME", "resource_uuid": "", "event_id": "VOLUME_VOLUME_001_006",
        "message_level": "ERROR", "action_id": "001", "detail_id": "006", "host": "h",
        "exception_class": "", "created_at": dt.datetime(2026, 1, 1).isoformat(),
    }
    return json.loads(envelope.pack(record))


def test_crafted_envelopes_go_to_the_projects_dead_letter_queue(
        zaqar, zaqar_client, layout, new_project, pg_engine):
    alice, bob = new_project(), new_project()
    good = _envelope_for(alice)
    Message.from_wire(json.dumps(good), 60)  # a valid envelope, so the others differ by one thing
    forged_project = _envelope_for(bob)
    forged_system = _envelope_for(None, kind="SYSTEM")
    posted = zaqar_client.post(alice, layout.queue, [{"ttl": 600, "body": b} for b in (
        good, forged_project, forged_system, {"v": 9}, "just text")])
    collector = ZaqarCollector(zaqar.url, pg_engine, ttl=3600, layout=layout,
                               projects=(alice,), timeout=5)
    try:
        assert collector.collect_once() == 5
    finally:
        collector.close()
    assert _rows(pg_engine) == {good["message"]["id"]: alice}  # nothing lands in bob's list
    letters = read_queue(zaqar_client, alice, layout.dead_letter_queue)
    reasons = sorted(letter.body["reason"] for letter in letters)
    assert len(reasons) == 4 and collector.stats.dead_lettered == 4
    assert any("names project" in r and bob in r for r in reasons)
    assert any("only come from the admin project" in r for r in reasons)
    assert any("version" in r for r in reasons)
    assert {json.dumps(letter.body["envelope"], sort_keys=True) for letter in letters} >= {
        json.dumps(forged_project, sort_keys=True)}
    assert in_zaqar(zaqar.url, alice, layout.queue, posted) == []  # every one deleted
    assert read_queue(zaqar_client, bob, layout.dead_letter_queue) == []


def test_a_dead_letter_too_large_for_zaqar_keeps_the_reason_and_the_queue_moves(
        zaqar, zaqar_client, layout, new_project, pg_engine):
    """A member can post a body just under Zaqar's 256 KiB limit to their own queue:
    wrapped in a dead letter it no longer fits, yet the queue must not stall on it."""
    project = new_project()
    good = built_messages(project, 3)
    # As large as Zaqar takes: 256 KiB for the whole post, {"messages":[...]} included.
    huge = "x" * (MAX_POST_BYTES - len('{"messages":[{"ttl":600,"body":""}]}'))
    posted = zaqar_client.post(project, layout.queue, [{"ttl": 600, "body": huge}])
    posted += zaqar_client.post(project, layout.queue, [
        {"ttl": 600, "body": json.loads(m.to_wire())} for m in good])
    collector = ZaqarCollector(zaqar.url, pg_engine, ttl=3600, layout=layout,
                               projects=(project,), timeout=5)
    try:
        assert collector.collect_once() == 4
    finally:
        collector.close()
    assert sorted(_rows(pg_engine)) == sorted(m.id for m in good)
    [letter] = read_queue(zaqar_client, project, layout.dead_letter_queue)
    assert letter.body["reason"] and letter.body["queue"] == layout.queue
    assert "envelope" not in letter.body  # it could not travel: its size and head instead
    assert letter.body["envelope_bytes"] == len(json.dumps(huge))
    assert letter.body["envelope_head"] == json.dumps(huge)[:len(letter.body["envelope_head"])]
    assert in_zaqar(zaqar.url, project, layout.queue, posted) == []


def test_a_collector_killed_between_store_and_delete_stores_once_then_deletes(
        collector_killed_after_store, zaqar, zaqar_client):
    crash = collector_killed_after_store  # killed at the session's start (see conftest)
    engine = store_engine.connect(crash.db_url)
    layout = crash.layout
    collector = ZaqarCollector(zaqar.url, engine, ttl=3600, layout=layout,
                               projects=(crash.project,), poll_interval=0.5, timeout=5)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        # Zaqar's minimum claim TTL is 60 s: the redelivery comes after it.
        left = CLAIM_TTL - (time.monotonic() - crash.killed_at)
        wait_for(lambda: collector.stats.duplicates >= len(crash.ids), max(left, 0) + 30,
                 "the claim to expire")
        assert time.monotonic() - crash.killed_at >= CLAIM_TTL - 1  # not before it expired
    finally:
        stop.set()
        thread.join(30)
        collector.close()
    try:
        assert collector.stats.stored == 0 and collector.stats.duplicates == len(crash.ids)
        assert sorted(_rows(engine)) == sorted(crash.ids)  # exactly once
        # and this time deleted: gone by id (they were all there after the kill)
        assert in_zaqar(zaqar.url, crash.project, layout.queue, crash.zaqar_ids) == []
    finally:
        engine.dispose()


def test_a_crafted_message_is_dead_lettered_once_however_long_the_collector_runs(
        collector_running_long, zaqar, zaqar_client):
    """A message the collector claimed and did not delete is handed out again
    CLAIM_TTL after its claim: a collector running past that must have
    dead-lettered each crafted message once, and stored and deleted the rest."""
    run = collector_running_long  # started at the session's start (see conftest)
    collector = run.collector
    wait_for(lambda: time.monotonic() > run.handled_at + CLAIM_TTL + 2, CLAIM_TTL + 30,
             "the first claims to expire")
    rounds = collector.stats.rounds
    wait_for(lambda: collector.stats.rounds >= rounds + 2, 30, "two rounds after that")
    run.stop.set()
    run.thread.join(30)
    assert collector.stats.dead_lettered == len(run.crafted)
    letters = read_queue(zaqar_client, run.project, run.layout.dead_letter_queue)
    assert len(letters) == len(run.crafted)
    assert collector.stats.stored == len(run.good) and collector.stats.duplicates == 0
    assert sorted(_rows(run.engine)) == sorted(run.good_ids)
    assert in_zaqar(zaqar.url, run.project, run.layout.queue, run.crafted + run.good) == []


def test_db_plus_zaqar_from_settings_and_the_zaqar_collector_command(
        zaqar, zaqar_client, new_project, server_url, tmp_path):
    """On PostgreSQL and MariaDB: the SDK's db+zaqar sink, then the zaqar-collector command."""
    from usermessages.config import Settings

    engine = store_engine.connect(server_url)
    migrate.upgrade(engine)

    project = new_project()
    tag = new_project()[:8]
    settings = Settings(sdk_sink="db+zaqar", zaqar_url=zaqar.url, zaqar_queue=f"um_{tag}",
                        zaqar_admin_project=f"admin_{tag}", zaqar_index_queue=f"idx_{tag}",
                        database_connection=server_url, message_ttl=3600)
    messenger = Messenger.from_settings(settings)
    try:
        ids = [messenger.create(RequestContext(project_id=project, user_id="u", request_id="r"),
                                Action.SCHEDULE_ALLOCATE_VOLUME,
                                detail=Detail.NO_BACKEND_AVAILABLE) for _ in range(5)]
        # db+zaqar: in the store at once, and in the project's Zaqar queue.
        assert sorted(_rows(engine)) == sorted(ids)
        assert messenger.sink._sinks[1].flush(10)  # the zaqar half of the fanout
    finally:
        messenger.close()
    queued = [m.id for m in read_queue(zaqar_client, project, settings.zaqar_queue)]
    assert len(queued) == 5
    config = tmp_path / "usermessages.conf"
    config.write_text(f"[zaqar]\nqueue = um_{tag}\nadmin_project = admin_{tag}\n"
                      f"index_queue = idx_{tag}\npoll_interval = 0.2\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "usermessages.cli.main", "zaqar-collector", "--zaqar", zaqar.url,
         "--db", server_url, "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Found through the index; already stored, so taken off the queue and nothing added.
        wait_for(lambda: in_zaqar(zaqar.url, project, settings.zaqar_queue, queued) == [], 30,
                 "the command to delete the queue's messages")
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert sorted(_rows(engine)) == sorted(ids)
    engine.dispose()


def test_store_down_releases_the_claims_at_once_and_loses_nothing(
        zaqar, zaqar_client, layout, new_project, pg_engine, tmp_path):
    from tests.harness.servers import free_port
    from usermessages.errors import StoreUnavailable

    project = new_project()
    ids = _produce(zaqar.url, Layout(queue=layout.queue, admin_project=layout.admin_project,
                                     index_queue=""), [project], 30, tmp_path)
    zaqar_client.post(project, layout.queue, [{"ttl": 600, "body": {"v": 9}}])  # crafted
    queued = [m.id for m in read_queue(zaqar_client, project, layout.queue)]
    down = store_engine.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    collector = ZaqarCollector(zaqar.url, down, ttl=3600, layout=layout, projects=(project,),
                               timeout=5)
    try:
        with pytest.raises(StoreUnavailable):
            collector.collect_once()
    finally:
        collector.close()
        down.dispose()
    assert collector.stats.db_retries == 1 and collector.stats.dead_lettered == 1
    # Released, not left to expire: claimable again at once. The crafted one was
    # dead-lettered and deleted: it does not come back to be dead-lettered again.
    assert len(read_queue(zaqar_client, project, layout.queue)) == 30
    collector = ZaqarCollector(zaqar.url, pg_engine, ttl=3600, layout=layout,
                               projects=(project,), timeout=5)
    try:
        while collector.collect_once():
            pass
    finally:
        collector.close()
    assert sorted(_rows(pg_engine)) == sorted(ids)
    assert collector.stats.dead_lettered == 0
    assert len(read_queue(zaqar_client, project, layout.dead_letter_queue)) == 1
    assert in_zaqar(zaqar.url, project, layout.queue, queued) == []


def test_busy_projects_do_not_starve_the_others(zaqar, layout, new_project, pg_engine,
                                                tmp_path):
    projects = [new_project() for _ in range(12)]
    quiet = Layout(queue=layout.queue, admin_project=layout.admin_project, index_queue="")
    _produce(zaqar.url, quiet, projects, 30, tmp_path)
    # Each round fills its batch from the first window of 4 projects.
    collector = ZaqarCollector(zaqar.url, pg_engine, ttl=3600, layout=quiet,
                               projects=tuple(projects), batch_size=40, concurrency=4,
                               timeout=5)
    try:
        for _ in range(4):  # 13 projects (with the admin one): 4 windows of 4
            collector.collect_once()
    finally:
        collector.close()
    assert set(_rows(pg_engine).values()) == set(projects)


def test_a_stored_project_id_zaqar_cannot_carry_does_not_stop_the_collector(
        zaqar, zaqar_client, layout, new_project, pg_engine, postgresql_url, tmp_path):
    """The collector reads the projects of every stored message, whatever path stored
    it: one whose id no HTTP header can carry must not stop it collecting the others."""
    project = new_project()
    direct = Messenger.from_url(postgresql_url)  # another way in: the direct sink
    try:
        direct.create(RequestContext(project_id="projé", user_id="u", request_id="r"),
                      Action.SCHEDULE_ALLOCATE_VOLUME, detail=Detail.NO_BACKEND_AVAILABLE)
    finally:
        direct.close()
    assert "projé" in _rows(pg_engine).values()
    quiet = Layout(queue=layout.queue, admin_project=layout.admin_project, index_queue="")
    ids = _produce(zaqar.url, quiet, [project], 5, tmp_path)
    collector = ZaqarCollector(zaqar.url, pg_engine, ttl=3600, layout=quiet,
                               projects=(project,), timeout=5)
    try:
        while collector.collect_once():
            pass
    finally:
        collector.close()
    assert set(ids) <= set(_rows(pg_engine))
