"""``usermessages dead-letters list`` shows crafted envelopes safely, in every format, from a
real RabbitMQ."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from tests.harness import servers
from usermessages import bus
from usermessages.cli.main import main

# What anyone who can publish on the bus may send: markup, terminal escapes, bad UTF-8.
BODIES = [
    b'{"v": 1, "messages": [{"id": "[/][bold]x"}]}\x1b[2J\x1b]0;owned\x07',
    b"\xff\xfe not UTF-8",
    b"x" * 800,
]


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with servers.rabbitmq_server() as url:
        with bus.connect(url) as connection:
            bus.declare(connection)
            producer = connection.Producer()
            for number, body in enumerate(BODIES):
                producer.publish(body, exchange=bus.EXCHANGE, routing_key=bus.DEAD_KEY,
                                 headers={"x-reason": f"not JSON {number}",
                                          "x-source": "collector"},
                                 content_type="application/octet-stream",
                                 content_encoding="binary", delivery_mode=2)
        yield url


def cli(url: str, *args: str, columns: int = 80) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(
        main, ["dead-letters", "list", "--bus", url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_table_escapes_what_could_drive_the_terminal(broker: str) -> None:
    code, out, err = cli(broker)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out and "[/][bold]x" in out  # shown, not obeyed
    assert out.splitlines()[-1] == "3 dead letter(s)"
    assert max(len(line) for line in out.splitlines()) <= 80 and err == ""
    # Narrower, the reason stays beside the envelope; the source goes first.
    code, out, err = cli(broker, columns=30)
    heading = out[:out.index("─")].split()
    assert code == 0 and {"Reason", "Envelope"} <= set(heading)
    assert "Source" not in heading and "collector" not in out
    assert err == ("Left out to fit 30 columns: Source (choose columns with -c, "
                   "or -f value).\n")


def test_json_is_what_the_queue_holds_and_csv_parses_back_to_it(broker: str) -> None:
    code, out, _ = cli(broker, "-f", "json")
    letters = json.loads(out)
    assert code == 0 and [letter["reason"] for letter in letters] == [
        "not JSON 0", "not JSON 1", "not JSON 2"]
    assert letters[0]["body"] == BODIES[0].decode()
    assert letters[1]["body"] == BODIES[1].decode("utf-8", errors="replace")
    assert letters[2]["body"] == "x" * 500
    _, out, _ = cli(broker, "-f", "csv", "-c", "reason", "-c", "body")
    assert list(csv.DictReader(io.StringIO(out, newline=""))) == [
        {"reason": letter["reason"], "body": letter["body"]} for letter in letters]


def on_a_terminal(*args: str) -> str:
    """What the command writes to a terminal (a pseudo-terminal: stdout is a TTY)."""
    terminal, its_end = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "usermessages.cli.main", *args],
                               stdin=its_end, stdout=its_end, stderr=its_end,
                               env={**os.environ, "COLUMNS": "80"})
    os.close(its_end)
    chunks = []
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # EIO: the command has exited and closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(terminal)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode("utf-8", errors="replace")


@pytest.mark.parametrize("fmt", ["table", "csv", "value", "json", "yaml"])
def test_no_format_lets_a_value_drive_the_terminal(broker: str, fmt: str) -> None:
    shown = on_a_terminal("dead-letters", "list", "--bus", broker, "-f", fmt)
    assert "not JSON 0" in shown
    assert "\x1b" not in shown and "\x07" not in shown, repr(shown)
