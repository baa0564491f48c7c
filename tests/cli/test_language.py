"""`usermessages message --lang ...` and the advice in `message show`, against a live API."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tests.cli.test_client import PROJECT, api, run  # noqa: F401 (the module's live API)
from usermessages.cli.main import main


def test_show_gives_the_advice_in_the_chosen_language(api):  # noqa: F811
    base, ids, _ = api
    result = run(base, "--lang", "de", "show", ids[2])
    assert result.exit_code == 0, result.output
    assert ("Volume zuteilen (Planung):Es wurde kein verfügbares gewichtetes Backend gefunden."
            in result.output)
    assert "Wählen Sie eine kleinere Größe oder einen anderen Volumetyp" in result.output
    shown = json.loads(run(base, "show", ids[2], "--format", "json", "--lang", "fr").output)
    assert shown["remediation"].startswith("Choisissez une taille plus petite")
    assert shown["action_required"] is True
    assert shown["language"] == "fr"
    assert shown["event_id"] == "VOLUME_VOLUME_001_003"
    english = json.loads(run(base, "show", ids[2], "--format", "json").output)
    assert english["remediation"].startswith("Choose a smaller size or another volume type")
    assert {k: v for k, v in english.items() if k not in ("user_message", "remediation",
                                                          "language")} == {
        k: v for k, v in shown.items() if k not in ("user_message", "remediation", "language")}
    # A warning that needs nothing from the user says so.
    table = run(base, "show", ids[7]).output
    assert "action_required" in table and "false" in table


def test_the_language_may_come_from_the_environment(api):  # noqa: F811
    base, ids, _ = api
    result = CliRunner(env={"COLUMNS": "400", "USERMESSAGES_LANG": "zh-CN, en;q=0.5"}).invoke(
        main, ["message", "--url", base, "--project", PROJECT, "--user", "alice",
               "list", "--format", "json", "--resource-uuid", "vol-3"])
    assert result.exit_code == 0, result.output
    [found] = json.loads(result.output)
    assert found["id"] == ids[3]
    assert found["user_message"] == "调度分配卷:找不到任何可用的加权后端。"


def test_a_malformed_language_is_a_usage_error(api):  # noqa: F811
    base, ids, _ = api
    result = run(base, "--lang", "de\r\nX-Evil: 1", "show", ids[2])
    assert result.exit_code == 2
    assert "Invalid value for '--lang'" in result.output
    assert "Traceback" not in result.output
