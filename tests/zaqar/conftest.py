"""One real Zaqar (on a throwaway Redis) for every test in tests/zaqar."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.zaqar_server import Zaqar, zaqar_server
from usermessages.zaqar.client import QueuedMessage, ZaqarClient


@pytest.fixture(scope="session")
def zaqar() -> Iterator[Zaqar]:
    with zaqar_server() as server:
        yield server


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
