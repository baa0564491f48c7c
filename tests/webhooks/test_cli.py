"""``usermessages webhook ...`` against a running API; ``webhook-deliverer`` refusals."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.harness import servers
from usermessages.cli.main import main

PUBLIC = "http://93.184.215.14/hook"


def test_create_list_show_deliveries_delete(tmp_path: Path) -> None:
    runner = CliRunner()
    with servers.api_server(f"sqlite:///{tmp_path}/um.sqlite") as base:
        common = ["--url", base, "--project", "a1a1"]
        made = runner.invoke(main, ["webhook", "create", PUBLIC, "--level", "error",
                                    "--format", "json", *common])
        assert made.exit_code == 0, made.output
        created = json.loads(made.output)
        assert created["secret"].startswith("whsec_") and created["message_level"] == "ERROR"
        listed = runner.invoke(main, ["webhook", "list", "--format", "json", *common])
        assert [w["id"] for w in json.loads(listed.output)] == [created["id"]]
        assert created["secret"] not in listed.output
        shown = runner.invoke(main, ["webhook", "show", created["id"], *common])
        assert shown.exit_code == 0 and PUBLIC in shown.output
        log = runner.invoke(main, ["webhook", "deliveries", created["id"], "--format", "json",
                                   *common])
        assert json.loads(log.output) == []
        # Another project does not see it.
        other = runner.invoke(main, ["webhook", "show", created["id"], "--url", base,
                                     "--project", "b2b2"])
        assert other.exit_code == 1 and "could not be found" in other.output
        # Bad input: one line, exit 1, no traceback.
        refused = runner.invoke(main, ["webhook", "create", "http://127.0.0.1:1/", *common])
        assert refused.exit_code == 1 and "loopback" in refused.output
        assert "Traceback" not in refused.output
        gone = runner.invoke(main, ["webhook", "delete", created["id"], *common])
        assert gone.exit_code == 0
        again = runner.invoke(main, ["webhook", "delete", created["id"], *common])
        assert again.exit_code == 1 and "(HTTP 404 itemNotFound)" in again.output


def test_the_deliverer_needs_a_current_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["webhook-deliverer", "--db",
                                       f"sqlite:///{tmp_path}/empty.sqlite"])
    assert result.exit_code == 1 and "usermessages db upgrade" in result.output
