"""`usermessages message list|show|delete` against a live API."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.harness import servers
from usermessages import Action, Detail, Level, Messenger, RequestContext, Resource
from usermessages.cli.main import main

PROJECT, OTHER = "aaaa1111", "bbbb2222"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    db_url = f"sqlite:///{tmp_path_factory.mktemp('cli')}/usermessages.sqlite"
    with servers.api_server(db_url) as base:
        messenger = Messenger.from_url(db_url)
        ids = []
        for i in range(7):
            ids.append(messenger.create(
                RequestContext(project_id=PROJECT, user_id="alice", request_id=f"req-{i}"),
                Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid=f"vol-{i}",
                detail=Detail.NO_BACKEND_AVAILABLE))
        ids.append(messenger.create(
            RequestContext(project_id=PROJECT, user_id="alice"), Action.BACKUP_CREATE,
            resource_type=Resource.VOLUME_BACKUP, resource_uuid="bk-1",
            detail=Detail.INCREMENTAL_BACKUP_FORCES_FULL_BACKUP, level=Level.WARNING))
        secret = messenger.create(RequestContext(project_id=OTHER, user_id="bob"),
                                  Action.ATTACH_VOLUME, resource_uuid="vol-secret",
                                  detail=Detail.ATTACH_ERROR)
        yield base, ids, secret


def run(base: str, *args: str, project: str = PROJECT, user: str = "alice"):
    # A wide terminal, so table cells are not wrapped.
    return CliRunner(env={"COLUMNS": "400"}).invoke(
        main, ["message", "--url", base, "--project", project, "--user", user, *args])


def test_list_as_json_is_the_projects_messages_newest_first(api):
    base, ids, secret = api
    result = run(base, "list", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [m["id"] for m in listed] == list(reversed(ids))
    assert secret not in result.output


def test_table_output_and_filters(api):
    base, ids, _ = api
    result = run(base, "list", "--level", "warning")
    assert result.exit_code == 0, result.output
    assert ids[-1] in result.output and ids[0] not in result.output
    result = run(base, "list", "--resource-type", "volume_backup", "--format", "json")
    assert [m["id"] for m in json.loads(result.output)] == [ids[-1]]
    result = run(base, "list", "--request-id", "req-3", "--format", "json")
    assert [m["resource_uuid"] for m in json.loads(result.output)] == ["vol-3"]
    result = run(base, "list", "--event-id", "VOLUME_VOLUME_001_003", "--resource-uuid", "vol-5",
                 "--format", "json")
    assert [m["id"] for m in json.loads(result.output)] == [ids[5]]


def test_paging_follows_next_links_and_honours_limit(api, monkeypatch):
    base, ids, _ = api
    result = run(base, "list", "--limit", "3", "--sort", "created_at:asc", "--format", "json")
    assert [m["id"] for m in json.loads(result.output)] == ids[:3]
    result = run(base, "list", "--marker", ids[2], "--sort", "created_at:asc", "--format", "json")
    assert [m["id"] for m in json.loads(result.output)] == ids[3:]


def test_show_and_delete(api):
    base, ids, _ = api
    result = run(base, "show", ids[1])
    assert result.exit_code == 0, result.output
    summary = "schedule allocate volume:Could not find any available weighted backend."
    assert summary in result.output
    shown = json.loads(run(base, "show", ids[1], "--format", "json").output)
    assert shown["resource_uuid"] == "vol-1" and "links" not in shown
    result = run(base, "delete", ids[1])
    assert result.exit_code == 0 and f"deleted {ids[1]}" in result.output
    result = run(base, "show", ids[1])
    assert result.exit_code == 1
    assert f"Error: Message {ids[1]} could not be found. (HTTP 404 itemNotFound)" in result.output


def test_another_projects_message_is_invisible_and_undeletable(api):
    base, _, secret = api
    assert run(base, "show", secret).exit_code == 1
    result = run(base, "delete", secret)
    assert result.exit_code == 1
    assert "Delete for message" in result.output and "could not be found" in result.output
    # The owner still has it.
    assert run(base, "show", secret, project=OTHER, user="bob").exit_code == 0


def test_errors_are_one_line_and_never_a_traceback(api):
    base, _, _ = api
    result = run(base, "list", "--sort", "bogus")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: Invalid input received: Invalid sort key (HTTP 400 badRequest)")
    result = run(f"http://127.0.0.1:{servers.free_port()}", "list")
    assert result.exit_code == 1 and "cannot reach the API" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["message", "--url", base, "list"], env={"OS_PROJECT_ID": ""})
    assert result.exit_code == 2 and "--project" in result.output


def test_options_work_where_users_type_them(api):
    """README's form: the options after the command name, as well as before it."""
    base, ids, _ = api
    runner = CliRunner(env={"COLUMNS": "400", "OS_PROJECT_ID": "", "OS_USER_ID": ""})
    after = runner.invoke(main, ["message", "list", "--url", base, "--project", PROJECT,
                                 "--user", "alice", "--format", "json"])
    assert after.exit_code == 0, after.output
    assert [m["id"] for m in json.loads(after.output)][-1] == ids[0]
    # Mixed: the command's value wins over the group's.
    mixed = runner.invoke(main, ["message", "--url", base, "--project", OTHER, "show", ids[0],
                                 "--project", PROJECT, "--format", "json"])
    assert mixed.exit_code == 0, mixed.output
    assert json.loads(mixed.output)["id"] == ids[0]


def test_help_works_without_a_project():
    runner = CliRunner(env={"OS_PROJECT_ID": ""})
    for args in (["message", "--help"], ["message", "list", "--help"],
                 ["message", "show", "--help"], ["message", "delete", "--help"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert "--project" in result.output


def test_a_project_id_the_api_refuses_says_why(api):
    base, _, _ = api
    result = run(base, "list", project="demo")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: The resource could not be found. A project id must match [0-9a-f\\-]+ "
        "([api] project_id_regex, as Cinder's); 'demo' does not. (HTTP 404 itemNotFound)")


# --- message export ---------------------------------------------------------------------


def test_export_writes_the_projects_view_as_ndjson_to_a_file(api, tmp_path):
    base, ids, secret = api
    target = tmp_path / "out.ndjson"
    result = run(base, "export", "--format", "ndjson", "-o", str(target))
    assert result.exit_code == 0, result.output
    exported = [json.loads(line) for line in target.read_text().splitlines()]
    # The list as it stands (other tests of this module delete some).
    listed = json.loads(run(base, "list", "--format", "json").output)
    assert [m["id"] for m in exported] == [m["id"] for m in listed]
    assert set(m["id"] for m in exported) <= set(ids) and len(exported) >= 5
    assert secret not in target.read_text()
    assert not (tmp_path / "out.ndjson.part").exists()


def test_export_csv_to_stdout_with_filters(api):
    base, ids, _ = api
    result = run(base, "export", "--format", "csv", "--level", "warning")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("id,created_at,guaranteed_until,message_level,event_id,")
    assert len(lines) == 2 and lines[1].startswith(ids[-1] + ",")
    searched = run(base, "export", "--search", "incremental backup")
    assert [json.loads(x)["id"] for x in searched.output.splitlines()] == [ids[-1]]


def test_export_bad_input_is_one_line_and_leaves_no_file(api, tmp_path):
    base, _, _ = api
    target = tmp_path / "out.csv"
    result = run(base, "export", "--since", "yesterday", "-o", str(target))
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: Invalid input received: created_since must be an ISO 8601 time "
        "(HTTP 400 badRequest)")
    assert not target.exists() and not (tmp_path / "out.csv.part").exists()
    down = run("http://127.0.0.1:9", "export")
    assert down.exit_code == 1 and "cannot export from the API" in down.output
    assert "Traceback" not in down.output
    unwritable = run(base, "export", "-o", str(tmp_path / "no-such-dir" / "out.csv"))
    assert unwritable.exit_code == 1 and "cannot write" in unwritable.output
