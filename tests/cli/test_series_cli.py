"""`usermessages message list --series` and `usermessages message watch`, the real CLI
against a real server."""

from __future__ import annotations

import datetime as dt
import json
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from tests.api.conftest import row
from tests.harness import servers
from usermessages import Action, Detail, Messenger, RequestContext
from usermessages.cli.main import main
from usermessages.context import new_request_id
from usermessages.store import engine as store_engine
from usermessages.store import writer

PROJECT = "cccc3333"


@pytest.fixture
def api(tmp_path):
    db_url = f"sqlite:///{tmp_path}/usermessages.sqlite"
    with servers.api_server(db_url) as base:
        yield base, Messenger.from_url(db_url), db_url


def _fail(messenger: Messenger, volume: str, request: str = "") -> str:
    context = RequestContext(project_id=PROJECT, user_id="alice",
                             request_id=request or new_request_id())
    message_id = messenger.create(context, Action.ATTACH_VOLUME, resource_uuid=volume,
                                  detail=Detail.ATTACH_ERROR)
    assert message_id, "the messenger could not store the message"
    return message_id


def run(base: str, *args: str):
    return CliRunner(env={"COLUMNS": "400"}).invoke(
        main, ["message", "--url", base, "--project", PROJECT, *args])


def test_list_series_shows_counts_first_and_last_seen(api):
    base, messenger, _ = api
    for i in range(4):
        _fail(messenger, "vol-a", f"req-{i}")
    _fail(messenger, "vol-b")
    result = run(base, "list", "--series", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = {s["resource_uuid"]: s for s in json.loads(result.output)}
    assert {k: s["count"] for k, s in listed.items()} == {"vol-a": 4, "vol-b": 1}
    assert listed["vol-a"]["request_ids"][:2] == ["req-3", "req-2"]
    table = run(base, "list", "--series", "--resource-uuid", "vol-a")
    assert table.exit_code == 0, table.output
    assert "Count" in table.output and "First Seen" in table.output
    (line,) = [line for line in table.output.splitlines() if "vol-a" in line]
    assert " 4 " in line and listed["vol-a"]["first_seen"] in line
    assert "vol-b" not in table.output
    paged = run(base, "list", "--series", "--limit", "1", "--format", "json")
    assert [s["resource_uuid"] for s in json.loads(paged.output)] == ["vol-b"]


def test_list_series_refuses_options_it_cannot_honour(api):
    base, _, _ = api
    result = run(base, "list", "--series", "--sort", "created_at")
    assert result.exit_code == 2
    assert "--series does not take --sort" in result.output and "Traceback" not in result.output


class Watcher:
    """`usermessages message watch` in its own process, its output read line by line."""

    def __init__(self, base: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "usermessages.cli.main", "message", "--url", base,
             "--project", PROJECT, "watch", "--interval", "0.2", "--format", "json", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        banner = self.process.stderr.readline()  # type: ignore[union-attr]
        assert banner.startswith("watching"), banner

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.put(line)

    def next_id(self, timeout: float = 30) -> str:
        return json.loads(self.lines.get(timeout=timeout))["id"]

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)


def test_watch_prints_each_new_message_once_then_exits_after_count(api):
    base, messenger, db_url = api
    old = _fail(messenger, "vol-old")
    watcher = Watcher(base, "--count", "3")
    first = _fail(messenger, "vol-1")
    assert watcher.next_id() == first
    # A message committed late, with a created_at older than the newest seen, still shows.
    late = row(PROJECT, resource_uuid="vol-late")
    late["created_at"] = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=20)
    engine = store_engine.connect(db_url)
    with engine.begin() as conn:
        writer.insert(conn, [late])
    engine.dispose()
    assert watcher.next_id() == late["id"]
    last = _fail(messenger, "vol-2")
    assert watcher.next_id() == last
    assert watcher.wait() == 0
    assert watcher.lines.empty()
    assert old not in (first, late["id"], last)


def test_watch_ends_with_exit_0_on_ctrl_c(api):
    base, messenger, _ = api
    watcher = Watcher(base)
    seen = _fail(messenger, "vol-1")
    assert watcher.next_id() == seen
    watcher.process.send_signal(signal.SIGINT)
    assert watcher.wait() == 0
    assert "Traceback" not in watcher.process.stderr.read()  # type: ignore[union-attr]


def test_watch_for_a_duration_ends_by_itself(api):
    base, _, _ = api
    started = time.monotonic()
    watcher = Watcher(base, "--for", "1")
    assert watcher.wait() == 0
    assert time.monotonic() - started >= 1
    assert watcher.lines.empty()


def test_watch_with_an_unreachable_api_is_one_line_and_non_zero():
    url = f"http://127.0.0.1:{servers.free_port()}"
    result = CliRunner().invoke(main, ["message", "--url", url, "--project", PROJECT,
                                       "watch", "--count", "1"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot reach the API"), result.output
    assert result.output.count("\n") == 1
