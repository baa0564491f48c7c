"""Each attempt ends by its deadline (``[webhooks] timeout`` in all), whatever the receiver
does, and reads no more of the answer than the cap."""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.api.conftest import row as _row
from tests.webhooks.bad_receivers import FAILING, bad_receiver
from usermessages.config import Settings
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer
from usermessages.store import webhooks as store_webhooks
from usermessages.webhooks import subscriptions
from usermessages.webhooks.deliverer import Deliverer
from usermessages.webhooks.sender import MAX_ANSWER

P1 = "a1a1"
TIMEOUT = 1.0
MARGIN = 1.0  # the turn's bookkeeping around the attempt (claim, list, record) on SQLite


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[tuple[Settings, Engine]]:
    settings = Settings(database_connection=f"sqlite:///{tmp_path}/um.sqlite",
                        webhooks_allowed_cidrs="127.0.0.0/8", webhooks_timeout=TIMEOUT)
    engine = store_engine.connect(settings.database_connection)
    migrate.upgrade(engine)
    yield settings, engine
    engine.dispose()


def _attempt_once(settings: Settings, engine: Engine, url: str,
                  make_deliverer: Callable[[Settings, Engine], Deliverer]) -> tuple[float, dict]:
    """Subscribe ``url``, store one message, give one turn; its duration and its log line."""
    sub, _ = subscriptions.register(settings, engine, P1, "u", {"url": url})
    with engine.begin() as conn:
        writer.insert(conn, [_row(P1, expires_in=dt.timedelta(days=3650))])
    deliverer = make_deliverer(settings, engine)
    began = time.monotonic()
    assert deliverer.pass_once()
    took = time.monotonic() - began
    with engine.connect() as conn:
        [attempt] = store_webhooks.deliveries(conn, P1, sub["id"], 10)
    return took, attempt


@pytest.mark.parametrize("kind", FAILING)
def test_an_attempt_ends_by_its_deadline_whatever_the_receiver_does(
        kind: str, sqlite: tuple[Settings, Engine],
        make_deliverer: Callable[[Settings, Engine], Deliverer]) -> None:
    # A trickled answer that would take 8 s in all, a byte every 0.2 s: far under any
    # per-read timeout, far over the deadline. A sleep of 8 s; a receiver that never answers.
    with bad_receiver(kind, trickle=0.2, trickle_for=8.0, sleep=8.0) as bad:
        took, attempt = _attempt_once(*sqlite, bad.url, make_deliverer)
        assert (attempt["status_code"], attempt["outcome"]) == (None, "retry"), attempt
        # Cut while waiting for (or reading) the answer's head: httpx's name for it.
        assert attempt["error"] == "ReadTimeout"
        assert took <= TIMEOUT + MARGIN, f"the attempt took {took:.2f} s"
        # The connection was dropped, not left to the receiver.
        bad.wait_idle(5)
        if kind == "trickling":
            assert 0 < bad.sent < 40 + 8.0 / 0.2  # cut mid-answer


def test_a_huge_answer_is_read_no_further_than_the_cap(
        sqlite: tuple[Settings, Engine],
        make_deliverer: Callable[[Settings, Engine], Deliverer]) -> None:
    """200 at once with 10 GB behind it: delivered, at once, and the body left unread."""
    with bad_receiver("huge") as bad:
        took, attempt = _attempt_once(*sqlite, bad.url, make_deliverer)
        assert (attempt["status_code"], attempt["outcome"]) == (200, "delivered"), attempt
        assert took <= TIMEOUT
        bad.wait_idle(5)
        # Beyond what was read, only what the two kernels' buffers took (a few MB).
        assert MAX_ANSWER <= bad.sent < 64 * 1024**2, bad.sent


def test_a_connection_never_accepted_is_cut_too(
        sqlite: tuple[Settings, Engine],
        make_deliverer: Callable[[Settings, Engine], Deliverer]) -> None:
    """A listener whose queue is full (backlog 0, one connection waiting): the kernel drops
    our SYNs, the connect never completes. Logged as ConnectTimeout, the phase it cut."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener, \
            socket.create_connection(listener.getsockname()):
        took, attempt = _attempt_once(*sqlite, f"http://127.0.0.1:{listener.getsockname()[1]}/",
                                      make_deliverer)
    assert (attempt["error"], attempt["status_code"]) == ("ConnectTimeout", None), attempt
    assert took <= TIMEOUT + MARGIN, f"the attempt took {took:.2f} s"
