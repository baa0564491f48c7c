"""The slot count itself, in the store: exact under many concurrent callers of several
processes, a lease given back once, renewed while held, lapsing when its holder dies."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from usermessages.config import Settings
from usermessages.errors import LimitReached, ProjectOverLimit, ServerBusy
from usermessages.store import engine as store_engine
from usermessages.web.limits import DatabaseSlots, Lease, LeaseKeeper, Limits

PROJECTS = [f"p{i}" for i in range(6)]


def _slots(engine: Engine, total: int = 10, per_project: int = 3,
           seconds: float = 30.0) -> DatabaseSlots:
    """The streams' slots as one process sees them (its own keeper, its own holder)."""
    return DatabaseSlots("streams", "event streams", total, per_project,
                         LeaseKeeper(engine, seconds=seconds))


def test_concurrent_acquires_of_three_processes_never_pass_a_cap(db_url, engine):
    # Three processes (each its own engine, pool and holder) over one store. The caps,
    # not the pool's wait, are under test: 80 callers a process queue for 15 connections,
    # and on a busy machine the default 2 s wait for one can run out.
    engines = [store_engine.connect(db_url, timeout=60) for _ in range(3)]
    processes = [_slots(e) for e in engines]
    callers = [(processes[i % 3], PROJECTS[i % len(PROJECTS)]) for i in range(240)]
    start = threading.Barrier(len(callers), timeout=60)

    def one(caller: tuple[DatabaseSlots, str]) -> tuple[str, Lease | LimitReached]:
        slots, project = caller
        start.wait()
        try:
            return project, slots.acquire(project)
        except LimitReached as exc:
            return project, exc

    with ThreadPoolExecutor(len(callers)) as pool:
        results = list(pool.map(one, callers))
    granted = [(p, r) for p, r in results if not isinstance(r, LimitReached)]
    assert len(granted) == 10 == processes[0].held() == processes[2].held()
    per_project = Counter(p for p, _ in granted)
    assert max(per_project.values()) <= 3
    for project, refusal in results:
        if isinstance(refusal, ProjectOverLimit):
            assert per_project[project] == 3  # refused for its own share only
        elif isinstance(refusal, LimitReached):
            assert isinstance(refusal, ServerBusy)
    # Given back twice each (a response that ends twice): counted once.
    with ThreadPoolExecutor(len(granted) * 2) as pool:
        list(pool.map(lambda lease: lease.release(), [r for _, r in granted] * 2))
    # Each process deletes what it gave back in its own thread, at once.
    _eventually(lambda: all(slots.held() == 0 for slots in processes))
    assert all(processes[1].held(p) == 0 for p in PROJECTS)
    processes[1].acquire("p0").release()
    for slots, one_engine in zip(processes, engines, strict=True):
        slots.keeper.close()
        one_engine.dispose()


def _eventually(condition, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.02)


def test_a_held_lease_is_renewed_past_its_length(engine):
    holder = _slots(engine, total=2, per_project=2, seconds=1.5)
    other = _slots(engine, total=2, per_project=2, seconds=1.5)
    leases = [holder.acquire("p0"), holder.acquire("p1")]
    deadline = time.monotonic() + 4.5  # three lease lengths
    while time.monotonic() < deadline:
        with pytest.raises(ServerBusy):
            other.acquire("p2")
        time.sleep(0.3)
    for lease in leases:
        lease.release()
    _eventually(lambda: other.held() == 0)
    other.acquire("p2").release()
    holder.keeper.close()
    other.keeper.close()


KILLED_HOLDER = textwrap.dedent("""
    import sys, time
    from usermessages.store import engine as store_engine
    from usermessages.web.limits import DatabaseSlots, LeaseKeeper
    keeper = LeaseKeeper(store_engine.connect(sys.argv[1]), seconds=float(sys.argv[2]))
    slots = DatabaseSlots("streams", "event streams", 10, 3, keeper)
    leases = [slots.acquire("p0") for _ in range(3)]
    print("held", flush=True)
    time.sleep(600)
""")


def test_the_slots_of_a_process_killed_come_back_when_its_leases_lapse(db_url, engine):
    """A node that dies whole (no supervisor left to give its slots back): they lapse."""
    seconds = 2.0
    holder = subprocess.Popen([sys.executable, "-c", KILLED_HOLDER, db_url, str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        slots = _slots(engine)
        with pytest.raises(ProjectOverLimit):
            slots.acquire("p0")  # the project's three are the other process's
        holder.kill()
        holder.wait()
        killed_at = time.monotonic()
        while True:
            try:
                lease = slots.acquire("p0")
                break
            except ProjectOverLimit:
                assert time.monotonic() - killed_at < seconds + 5, "the slots never came back"
                time.sleep(0.1)
        took = time.monotonic() - killed_at
        print(f"\na killed holder's slots came back {took:.1f} s after the kill "
              f"(leases of {seconds:g} s)")
        assert took <= seconds + 1
        lease.release()
        slots.keeper.close()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(("streams", "warned"), [(100, False), (25, True), (2, True)])
def test_a_project_cap_that_protects_nobody_is_logged(caplog, engine, streams, warned):
    with caplog.at_level(logging.WARNING, logger="usermessages.web.limits"):
        Limits.from_settings(Settings(max_streams=streams), engine)
    said = "max_streams_per_project (25) is not below max_streams" in caplog.text
    assert said == warned
