"""The viewer's live stream over a real server, real RabbitMQ and real PostgreSQL:
it follows the order rows were stored in, so a late row (stamped before what the open
stream has already shown) still appears; bad cursors are a 400, never a 500."""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import servers
from tests.viewer_session import sign_in
from usermessages import Action, Detail, Kind, Resource, bus, envelope
from usermessages.message import Message
from usermessages.store import engine as store_engine
from usermessages.store import messages as store
from usermessages.store import migrate

PROJECT = "cccc0003"


@pytest.fixture
def live_site(postgresql_url: str, rabbitmq_url: str, tmp_path: Path) -> Iterator[str]:
    """`usermessages serve` on PostgreSQL, its embedded collector on RabbitMQ."""
    with bus.connect(rabbitmq_url) as connection:
        bus.declare(connection)
        bus.messages_queue()(connection.default_channel).purge()
    engine = store_engine.connect(postgresql_url)
    migrate.upgrade(engine)
    engine.dispose()
    config = tmp_path / "usermessages.conf"
    config.write_text(f"[bus]\nurl = {rabbitmq_url}\n")
    with servers.api_server(postgresql_url, config_file=str(config)) as base:
        yield base


def _publish(url: str, created_at: dt.datetime) -> str:
    """Publish an envelope as a producer's forwarder would, stamped ``created_at``."""
    message = Message.create(Kind.API, Action.ATTACH_VOLUME, Resource.VOLUME, ttl=2592000,
                             project_id=PROJECT, user_id="u", detail=Detail.ATTACH_ERROR,
                             host="node-1", created_at=created_at)
    with bus.connect(url) as connection:
        connection.Producer().publish(
            message.to_wire(), exchange=bus.EXCHANGE, routing_key=bus.MESSAGES_KEY,
            content_type=envelope.CONTENT_TYPE, content_encoding="utf-8", delivery_mode=2)
    return message.id


def _signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    answer = sign_in(client, "carol", PROJECT)
    assert answer.status_code == 303
    return client


class Stream:
    """Reads an SSE stream in a thread; the test takes event ids as they come."""

    def __init__(self, client: httpx.Client, url: str, headers: dict | None = None) -> None:
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.status: queue.Queue[int] = queue.Queue()
        self.notices: queue.Queue[str] = queue.Queue()  # events other than rows
        self._client, self._url, self._headers = client, url, headers or {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server went away at the end
            self._read_events()

    def _read_events(self) -> None:
        timeout = httpx.Timeout(10, read=30)
        with self._client.stream("GET", self._url, headers=self._headers,
                                 timeout=timeout) as answer:
            self.status.put(answer.status_code)
            event_id, name, data = "", "message", []
            for line in answer.iter_lines():
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    if name == "message":
                        self.events.put((event_id, "\n".join(data)))
                    else:
                        self.notices.put(name)
                    name, data = "message", []

    def next_event(self, timeout: float = 30) -> tuple[str, str]:
        """The next (SSE id, message id) on the stream; fails at the deadline."""
        try:
            event_id, html = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event on the stream in {timeout} s") from None
        return event_id, html.split('data-id="', 1)[1].split('"', 1)[0]


def test_a_late_row_through_the_bus_appears_on_the_open_stream(live_site, rabbitmq_url):
    client = _signed_in(live_site)
    assert client.get("/viewer/messages").status_code == 200
    stream = Stream(client, "/viewer/stream")
    assert stream.status.get(timeout=10) == 200
    now = store.utcnow()
    first = _publish(rabbitmq_url, now)
    first_seq, shown = stream.next_event()
    assert shown == first
    # Stamped an hour before what the stream has shown (a spool replayed after an outage).
    late = _publish(rabbitmq_url, now - dt.timedelta(hours=1))
    late_seq, shown = stream.next_event()
    assert shown == late and int(late_seq) > int(first_seq)
    # A reconnecting browser resumes from its Last-Event-ID (it wins over the page's
    # `after`): what it had is not sent again, what came since is.
    third = _publish(rabbitmq_url, now - dt.timedelta(days=1))
    resumed = Stream(client, "/viewer/stream?after=0", headers={"Last-Event-ID": late_seq})
    assert resumed.status.get(timeout=10) == 200
    assert resumed.next_event()[1] == third


@pytest.mark.parametrize("cursor", [
    "garbage", "2026-11-25T10:00:00+05:00", "2026-11-25T10:00:00Z", "-1", "1.5", "1e3",
    "9" * 19, "\u0661",
])
def test_a_bad_stream_cursor_is_a_400(client, cursor):
    assert sign_in(client, "carol", PROJECT).status_code == 303
    answer = client.get("/viewer/stream", params={"after": cursor})
    assert answer.status_code == 400, answer.text
    assert "sequence number" in answer.text
    answer = client.get("/viewer/stream", headers={"Last-Event-ID": cursor.encode("utf-8")})
    assert answer.status_code == 400, answer.text
