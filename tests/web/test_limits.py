"""The slot count itself: exact under many concurrent callers, a lease given back once."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from usermessages.config import Settings
from usermessages.errors import LimitReached, ProjectOverLimit, ServerBusy
from usermessages.web.limits import Lease, Limits, LocalSlots

PROJECTS = [f"p{i}" for i in range(6)]


def test_concurrent_acquires_never_pass_a_cap():
    slots = LocalSlots("streams", "event streams", total=10, per_project=3)
    callers = [PROJECTS[i % len(PROJECTS)] for i in range(240)]
    start = threading.Barrier(len(callers), timeout=60)

    def one(project: str) -> tuple[str, Lease | LimitReached]:
        start.wait()
        try:
            return project, slots.acquire(project)
        except LimitReached as exc:
            return project, exc

    with ThreadPoolExecutor(len(callers)) as pool:
        results = list(pool.map(one, callers))
    granted = [(p, r) for p, r in results if not isinstance(r, LimitReached)]
    assert len(granted) == 10 == slots.held()
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
    assert slots.held() == 0 and all(slots.held(p) == 0 for p in PROJECTS)
    slots.acquire("p0").release()


@pytest.mark.parametrize(("streams", "warned"), [(100, False), (25, True), (2, True)])
def test_a_project_cap_that_protects_nobody_is_logged(caplog, streams, warned):
    with caplog.at_level(logging.WARNING, logger="usermessages.web.limits"):
        Limits.from_settings(Settings(max_streams=streams))
    said = "max_streams_per_project (25) is not below max_streams" in caplog.text
    assert said == warned
