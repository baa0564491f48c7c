"""Every listing command against a live API at 80 and 200 columns and in a pipe: no id is
ever cut, each format parses back to the same rows, ``-c`` selects and orders."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from tests.harness import servers
from tests.webhooks.receiver import receiver
from usermessages import Action, Detail, Level, Messenger, RequestContext, Resource
from usermessages.cli.main import main
from usermessages.cli.messages import MESSAGE, MESSAGES
from usermessages.cli.output import View
from usermessages.cli.series import ONE_SERIES, SERIES
from usermessages.cli.webhooks import DELIVERIES, WEBHOOK, WEBHOOKS

PROJECT = "dddd4444"
HEADERS = {"X-Auth-Token": f"alice:{PROJECT}", "OpenStack-API-Version": "volume 3.71"}


@dataclass(frozen=True)
class Live:
    base: str
    messages: list[dict[str, Any]]  # as the API lists them
    series: list[dict[str, Any]]
    webhook: dict[str, Any]
    deliveries: list[dict[str, Any]]

    @property
    def ids(self) -> set[str]:
        """Every id the commands may print, whole."""
        found = {self.webhook["id"]}
        for item in self.messages:
            found |= {item["id"], item["event_id"], item["resource_uuid"], item["request_id"],
                      item["resource_type"]}
        for item in self.series:
            found |= {item["id"], item["event_id"], *item["request_ids"]}
        return found


def _get(base: str, path: str) -> Any:
    answer = httpx.get(f"{base}/v3/{PROJECT}{path}", headers=HEADERS, timeout=10)
    answer.raise_for_status()
    return answer.json()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("formats")
    conf = root / "usermessages.conf"
    conf.write_text("[webhooks]\nallow_private_targets = true\npoll_interval = 0.1\n")
    db_url = f"sqlite:///{root}/usermessages.sqlite"
    with receiver() as hooked, servers.api_server(db_url, config_file=str(conf)) as base:
        hook = httpx.post(f"{base}/v3/{PROJECT}/messages-ext/webhooks", headers=HEADERS,
                          json={"webhook": {"url": hooked.url}}, timeout=10)
        assert hook.status_code in (200, 201, 202), hook.text
        messenger = Messenger.from_url(db_url)
        volumes = [str(uuid.uuid4()) for _ in range(3)]
        cases = [(Action.SCHEDULE_ALLOCATE_VOLUME, Resource.VOLUME, Detail.NO_BACKEND_AVAILABLE,
                  Level.ERROR)] * 3 + [
            (Action.ATTACH_VOLUME, Resource.VOLUME, Detail.ATTACH_ERROR, Level.ERROR),
            (Action.BACKUP_CREATE, Resource.VOLUME_BACKUP,
             Detail.INCREMENTAL_BACKUP_FORCES_FULL_BACKUP, Level.WARNING)]
        for n, (action, resource, detail, level) in enumerate(cases):
            messenger.create(
                RequestContext(project_id=PROJECT, user_id="alice",
                               request_id=f"req-{uuid.uuid4()}"),
                action, resource_type=resource, resource_uuid=volumes[min(n, 2) if n < 3
                                                                      else n % 3],
                detail=detail, level=level)
        deadline = time.monotonic() + 30
        while True:  # the embedded deliverer sends each message once
            deliveries = _get(base, f"/messages-ext/webhooks/{hook.json()['webhook']['id']}"
                                    "/deliveries")["deliveries"]
            if len(deliveries) >= len(cases):
                break
            assert time.monotonic() < deadline, deliveries
            time.sleep(0.1)
        yield Live(base, _get(base, "/messages")["messages"],
                   _get(base, "/messages-ext/series")["series"], hook.json()["webhook"],
                   deliveries)


def _args(live: Live, command: str) -> list[str]:
    """A command's words, for the first item where it shows one."""
    one = {"message show": live.messages[0]["id"], "series show": live.series[0]["id"],
           "webhook show": live.webhook["id"], "webhook deliveries": live.webhook["id"]}
    words = command.split()
    return [*words, *([one[command]] if command in one else []), "--url", live.base,
            "--project", PROJECT, "--user", "alice"]


def cli(live: Live, command: str, *args: str, columns: int | None = None,
        process: bool = False) -> tuple[str, str]:
    """The command's stdout and stderr, at ``columns`` (None: no COLUMNS, stdout no terminal);
    ``process``: a real process writing into a pipe."""
    words = [*_args(live, command), *args]
    if not process:
        result = CliRunner(env={"COLUMNS": str(columns) if columns else None}).invoke(main, words)
        assert result.exit_code == 0, result.output
        return result.stdout, result.stderr
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    ran = subprocess.run([sys.executable, "-m", "usermessages.cli.main", *words], env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout, ran.stderr


LISTS: dict[str, View] = {"message list": MESSAGES, "series list": SERIES,
                          "webhook list": WEBHOOKS, "webhook deliveries": DELIVERIES}
SHOWS: dict[str, View] = {"message show": MESSAGE, "series show": ONE_SERIES,
                          "webhook show": WEBHOOK}
ID_LIKE = re.compile(r"(?<![\w-])[\w-]*[0-9a-f]{8}-[\w-]*")
EVENT_ID = re.compile(r"VOLUME_[A-Z0-9_]*")


def _rows(live: Live, command: str) -> list[dict[str, Any]]:
    return {"message list": live.messages, "series list": live.series,
            "webhook list": [live.webhook], "webhook deliveries": live.deliveries,
            "message show": live.messages[:1], "series show": live.series[:1],
            "webhook show": [live.webhook]}[command]


def _ids_shown(live: Live, command: str, out: str) -> set[str]:
    """The ids the output must show whole: every id column its table kept."""
    if command in SHOWS:  # every field shows, each on its row
        names = {line.split()[0] for line in out.splitlines()[2:] if line.strip()}
        fields = [c.field for c in SHOWS[command].columns if c.whole and c.field in names]
    else:
        view = LISTS[command]
        headers = re.split(r"\s{2,}", out.splitlines()[0].strip())
        assert view.column(view.priority[0]).header in headers  # the first always stays
        fields = [c.field for c in view.columns if c.whole and c.header in headers]
    found: set[str] = set()
    for row in _rows(live, command):
        for field in fields:
            value = row.get(field)
            found |= set(value) if isinstance(value, list) else {value} if value else set()
    return found


@pytest.mark.parametrize("columns", [80, 200, None], ids=["80", "200", "pipe"])
@pytest.mark.parametrize("command", [*LISTS, *SHOWS])
def test_no_id_is_ever_cut(live: Live, command: str, columns: int | None) -> None:
    out, _ = cli(live, command, columns=columns, process=columns is None)
    lines = out.splitlines()
    assert "…" not in out
    # Every id-looking word is a real id, unbroken...
    for word in ID_LIKE.findall(out):
        assert word in live.ids, (word, out)
    for word in EVENT_ID.findall(out):
        assert word in live.ids, (word, out)
    # ...and every id the table is about is there, whole, on one line.
    for wanted in _ids_shown(live, command, out):
        assert any(wanted in line for line in lines), (wanted, out)
    if columns is not None:
        assert max(len(line) for line in lines) <= columns, out
    elif command in LISTS:  # a pipe: each row whole on its line
        view = LISTS[command]
        for row in _rows(live, command):
            cells = [str(row[f]).lower() if isinstance(row[f], bool) else str(row[f])
                     for f in view.shown if row[f] not in (None, "", [])]
            assert any(all(cell in line for cell in cells) for line in lines), (row, out)


def test_at_80_columns_the_message_list_keeps_ids_and_summaries(live: Live) -> None:
    out, err = cli(live, "message list", columns=80)
    # VOLUME_VOLUME_BACKUP_013_030 leaves no room for the event ids beside a readable
    # summary: they go, the ids and the summaries stay.
    assert re.split(r"\s{2,}", out.splitlines()[0]) == ["ID", "User Message"]
    assert err == ("Left out to fit 80 columns: Resource Type, Resource UUID, Event ID, Level, "
                   "Created At (choose columns with -c, or -f value).\n")
    wide, err = cli(live, "message list", columns=200)
    assert re.split(r"\s{2,}", wide.splitlines()[0]) == [
        "ID", "Resource Type", "Resource UUID", "Event ID", "Level", "User Message",
        "Created At"]
    assert err == ""


def _text(value: Any) -> str:
    """A JSON value as csv prints it."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


@pytest.mark.parametrize("command", [*LISTS, *SHOWS])
def test_each_format_parses_back_to_the_same_rows(live: Live, command: str) -> None:
    view = {**LISTS, **SHOWS}[command]
    single = command in SHOWS
    raw = json.loads(cli(live, command, "-f", "json")[0])
    # Without -c, JSON is the API's own body (what `--format json` printed before).
    api = {"message list": live.messages, "series list": live.series,
           "webhook list": [{k: v for k, v in live.webhook.items() if k != "secret"}],
           "webhook deliveries": live.deliveries}.get(command)
    if api is not None:
        assert raw == api
    assert yaml.safe_load(cli(live, command, "-f", "yaml")[0]) == raw
    rows = [raw] if single else raw
    fields = list(view.shown) if not single else sorted(raw)
    table_csv = list(csv.DictReader(io.StringIO(cli(live, command, "-f", "csv")[0])))
    assert table_csv == [{f: _text(row.get(f)) for f in fields} for row in rows]
    # With every column chosen, in reverse: the same rows in every format.
    chosen = [c.field for c in reversed(view.columns)]
    args = [arg for field in chosen for arg in ("-c", field)]
    as_json = json.loads(cli(live, command, "-f", "json", *args)[0])
    as_yaml = yaml.safe_load(cli(live, command, "-f", "yaml", *args)[0])
    as_csv = list(csv.reader(io.StringIO(cli(live, command, "-f", "csv", *args)[0])))
    values = cli(live, command, "-f", "value", *args)[0].splitlines()
    expected = [{f: row.get(f) for f in chosen} for row in rows]
    assert (as_json, as_yaml) == ((expected[0], expected[0]) if single else (expected, expected))
    assert [list(r) for r in (expected if not single else [as_json])] == [chosen] * len(rows)
    assert as_csv[0] == chosen
    assert as_csv[1:] == [[_text(row[f]) for f in chosen] for row in expected]
    plain = [str(v) if not isinstance(v, list) else ",".join(v) for row in expected
             for v in row.values()]
    if single:
        assert values == plain
    else:
        assert values == [" ".join(plain[i:i + len(chosen)])
                          for i in range(0, len(plain), len(chosen))]


def test_columns_select_and_order_the_table_too(live: Live) -> None:
    out, err = cli(live, "message list", "-c", "Event ID", "-c", "id", "-c", "request_id",
                   columns=80)
    header, _rule, *rows = out.splitlines()
    assert re.split(r"\s{2,}", header) == ["Event ID", "ID", "Request ID"]
    assert err == ""  # asked for: all shown, even when wider than the terminal
    for message in live.messages:
        assert any(re.split(r"\s{2,}", row.strip()) == [message["event_id"], message["id"],
                                                        message["request_id"]] for row in rows)
    shown, _ = cli(live, "series show", "-c", "count", "-c", "id", columns=80)
    assert [line.split()[0] for line in shown.splitlines()[2:]] == ["count", "id"]
    series, _ = cli(live, "message list", "--series", "-f", "value", "-c", "id", "-c",
                    "count")
    assert sorted(series.splitlines()) == sorted(f"{s['id']} {s['count']}"
                                                 for s in live.series)


@pytest.mark.parametrize("args", [
    ["message", "list", "-c", "bogus"],
    ["message", "list", "-c", "id", "-c", "count"],  # a series column, not a message's
    ["message", "show", "x", "-c", "nope"],
    ["series", "list", "-c", "bogus"],
    ["webhook", "deliveries", "x", "-c", "bogus"],
    ["catalog", "list", "-c", "bogus"],
])
def test_an_unknown_column_is_one_line_and_non_zero_before_any_request(args: list[str]) -> None:
    # An address nothing listens on: the column is refused before any request.
    down = f"http://127.0.0.1:{servers.free_port()}"
    extra = [] if args[0] == "catalog" else ["--url", down, "--project", PROJECT]
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: unknown column '{args[-1]}' for `usermessages ")
