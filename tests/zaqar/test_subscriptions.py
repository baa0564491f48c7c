"""Users subscribe with our CLI and receive their project's messages on a webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from tests.zaqar.conftest import wait_for
from usermessages import Action, Detail, Messenger, RequestContext
from usermessages.cli.main import main


class Receiver:
    """A local webhook: records every POST body by path."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, json.loads(raw)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self, path: str) -> list[str]:
        return [body["body"]["message"]["id"] for p, body in list(self.posts) if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def _cli(*args: str) -> object:
    """`usermessages zaqar ARGS`."""
    return CliRunner(env={"COLUMNS": "400"}).invoke(main, ["zaqar", *args])


def test_a_project_member_subscribes_a_webhook_and_receives_only_their_messages(
        zaqar, receiver, new_project):
    alice, bob = new_project(), new_project()
    created = _cli("subscription", "create", "--zaqar", zaqar.url, "--project", alice,
                   "--subscriber", receiver.url + "/alice", "--ttl", "3600")
    assert created.exit_code == 0, created.output
    alice_sub = created.output.strip()
    assert _cli("subscription", "create", "--zaqar", zaqar.url, "--project", bob,
                "--subscriber", receiver.url + "/bob").exit_code == 0
    listed = _cli("subscription", "list", "--zaqar", zaqar.url, "--project", alice,
                  "--format", "json")
    assert [(s["id"], s["subscriber"]) for s in json.loads(listed.output)] == [
        (alice_sub, receiver.url + "/alice")]

    messenger = Messenger.from_url(zaqar.url, sink="zaqar", ttl=3600)
    try:
        mine = [messenger.create(RequestContext(project_id=alice, user_id="a", request_id="r"),
                                 Action.SCHEDULE_ALLOCATE_VOLUME,
                                 detail=Detail.NO_BACKEND_AVAILABLE) for _ in range(3)]
        theirs = messenger.create(RequestContext(project_id=bob, user_id="b", request_id="r"),
                                  Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR)
        assert messenger.sink.flush(10)
    finally:
        messenger.close()
    wait_for(lambda: len(receiver.ids("/alice")) >= 3 and receiver.ids("/bob"), 20,
             "the webhooks to be called")
    assert sorted(receiver.ids("/alice")) == sorted(mine)
    assert receiver.ids("/bob") == [theirs]
    path, body = next(p for p in receiver.posts if p[0] == "/alice")
    assert body["queue_name"] == "user_messages" and body["body"]["v"] == 1
    assert body["body"]["message"]["project_id"] == alice

    # Bob cannot delete Alice's subscription; Alice can.
    refused = _cli("subscription", "delete", "--zaqar", zaqar.url, "--project", bob, alice_sub)
    assert refused.exit_code == 1 and "not found" in refused.output
    assert "Traceback" not in refused.output
    deleted = _cli("subscription", "delete", "--zaqar", zaqar.url, "--project", alice, alice_sub)
    assert deleted.exit_code == 0, deleted.output
    listed = _cli("subscription", "list", "--zaqar", zaqar.url, "--project", alice,
                  "--format", "json")
    assert json.loads(listed.output) == []


def test_bad_subscription_requests_are_one_line_errors(zaqar):
    bad_url = _cli("subscription", "create", "--zaqar", zaqar.url, "--project", "p",
                   "--subscriber", "ftp://example.invalid/x")
    assert bad_url.exit_code == 1 and "http:// or https://" in bad_url.output
    short_ttl = _cli("subscription", "create", "--zaqar", zaqar.url, "--project", "p",
                     "--subscriber", "http://127.0.0.1:9/x", "--ttl", "10")
    assert short_ttl.exit_code == 1 and "at least 60" in short_ttl.output
    down = _cli("subscription", "list", "--zaqar", "http://127.0.0.1:9", "--project", "p")
    assert down.exit_code == 1 and "unreachable" in down.output
    for result in (bad_url, short_ttl, down):
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
