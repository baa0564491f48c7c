"""``usermessages zaqar subscription ...`` against a real Zaqar, and its deprecated old name."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from tests.harness.zaqar import Zaqar, zaqar_server
from usermessages.cli.main import main

DEPRECATION = ("DeprecationWarning: The command 'subscription' is deprecated. Use "
               "`usermessages zaqar subscription` (same options and output).\n")


@pytest.fixture(scope="module")
def zaqar() -> Iterator[Zaqar]:
    with zaqar_server() as server:
        yield server


def cli(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "80"}).invoke(main, list(args))


def test_subscriptions_under_the_zaqar_name(zaqar: Zaqar) -> None:
    project = uuid.uuid4().hex
    where = ["--zaqar", zaqar.url, "--project", project]
    made = cli("zaqar", "subscription", "create", *where, "--subscriber",
               "https://hooks.example/um", "--ttl", "3600")
    assert made.exit_code == 0 and made.stderr == "", made.output
    sub_id = made.stdout.strip()
    listed = json.loads(cli("zaqar", "subscription", "list", *where, "-f", "json").stdout)
    assert [(s["id"], s["subscriber"], s["ttl"]) for s in listed] == [
        (sub_id, "https://hooks.example/um", 3600)]
    rows = list(csv.DictReader(io.StringIO(
        cli("zaqar", "subscription", "list", *where, "-f", "csv").stdout)))
    assert [r["id"] for r in rows] == [sub_id]
    value = cli("zaqar", "subscription", "list", *where, "-f", "value", "-c", "subscriber",
                "-c", "id").stdout
    assert value == f"https://hooks.example/um {sub_id}\n"
    table = cli("zaqar", "subscription", "list", *where).stdout
    assert any(line.startswith(sub_id + " ") for line in table.splitlines()), table
    assert cli("zaqar", "subscription", "delete", *where, sub_id).exit_code == 0
    assert json.loads(cli("zaqar", "subscription", "list", *where, "-f", "json").stdout) == []


def test_the_old_name_still_works_and_says_once_that_it_is_deprecated(zaqar: Zaqar) -> None:
    project = uuid.uuid4().hex
    where = ["--zaqar", zaqar.url, "--project", project]
    made = cli("subscription", "create", *where, "--subscriber", "https://hooks.example/old")
    assert made.exit_code == 0 and made.stderr == DEPRECATION, made.output
    sub_id = made.stdout.strip()
    # The same output, but for the subscription's age, which ticks between the two calls.
    old = cli("subscription", "list", *where, "-f", "json", "-c", "id", "-c", "subscriber")
    new = cli("zaqar", "subscription", "list", *where, "-f", "json", "-c", "id",
              "-c", "subscriber")
    assert old.stdout == new.stdout and [s["id"] for s in json.loads(old.stdout)] == [sub_id]
    assert old.stderr == DEPRECATION and new.stderr == ""
    gone = cli("subscription", "delete", *where, sub_id)
    assert gone.exit_code == 0 and gone.stderr == DEPRECATION
    assert json.loads(new.stdout) and json.loads(
        cli("zaqar", "subscription", "list", *where, "-f", "json").stdout) == []
    # Its errors are still one line after the note, and no traceback.
    down = cli("subscription", "list", "--zaqar", "http://127.0.0.1:9", "--project", project)
    assert down.exit_code == 1 and down.stderr.startswith(DEPRECATION)
    assert down.stderr[len(DEPRECATION):].count("\n") == 1 and "Traceback" not in down.output
    # Help at either name; the old one is hidden from the command list.
    assert "DEPRECATED" in cli("subscription", "--help").stdout
    commands = cli("--help").stdout
    assert " zaqar " in commands and " subscription " not in commands
