"""python-cinderclient 9.10.0's `cinder message-*` commands against a live server.

The server is capped at 3 messages a page (osapi_max_limit = 3), so every list of
alice's 7 messages only comes out whole if the client follows our `messages_links`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from tests.harness.peers import (
    ADMIN,
    ALICE,
    BOB,
    BY_NAME,
    CAROL,
    OWN,
    SEEDS,
    Live,
    P,
    Q,
    R,
    live_server,
    parse_properties,
    parse_table,
    run,
)

LIST_COLUMNS = ["ID", "Resource Type", "Resource UUID", "Event ID", "User Message"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("cinder"), osapi_max_limit=3) as server:
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("cinder-home")


def cinder(live: Live, home, *args: str, user: str = ALICE, project: str = P,
           endpoint_project: bool = True, version: str | None = "3.5"):
    """`cinder --os-auth-type noauth ...`; the endpoint with or without the project id."""
    endpoint = f"{live.base}/v3/{project}" if endpoint_project else f"{live.base}/v3"
    options = ["--os-auth-type", "noauth", "--os-user-id", user, "--os-project-id", project,
               "--os-endpoint", endpoint]
    if version:
        options += ["--os-volume-api-version", version]
    return run("cinder", [*options, *args], home)


def listed(live: Live, result) -> list[str]:
    """Seed names of the rows of a successful `cinder message-list`, in printed order."""
    assert result.returncode == 0, result.stderr
    names = {message_id: name for name, message_id in live.ids.items()}
    return [names.get(row["ID"], row["ID"]) for row in parse_table(result.stdout)]


@pytest.mark.parametrize("endpoint_project", [True, False], ids=["v3-project", "v3"])
def test_list_follows_next_links_and_fills_every_column(live, home, endpoint_project):
    # No --os-volume-api-version: the client asks for its 3.71, which we support, so
    # it negotiates without the "downgrading" warning it prints for older servers.
    result = cinder(live, home, "message-list", version=None, endpoint_project=endpoint_project)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr
    rows = parse_table(result.stdout)
    assert list(rows[0]) == LIST_COLUMNS
    # Unsorted, the client orders the rows by ID itself.
    assert [row["ID"] for row in rows] == sorted(live.ids[name] for name in OWN)
    for row in rows:
        seed = next(s for s in SEEDS if live.ids[s.name] == row["ID"])
        assert row == {"ID": live.ids[seed.name], "Resource Type": seed.resource.value,
                       "Resource UUID": seed.resource_uuid, "Event ID": seed.event_id,
                       "User Message": seed.user_message}


def test_list_at_3_3_sends_no_parameters_and_still_pages(live, home):
    # At 3.3/3.4 the client sends a bare GET; our page cap answers with a next link
    # (as Cinder does at osapi_max_limit), which the client follows.
    result = cinder(live, home, "message-list", version="3.3")
    assert sorted(listed(live, result)) == sorted(OWN)
    # ...and refuses --limit itself before 3.5.
    result = cinder(live, home, "message-list", "--limit", "2", version="3.3")
    assert result.returncode == 1
    assert "'--limit' argument is only allowed since microversion 3.5" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected", "endpoint_project"),
    [
        # The client upper-cases --resource_type and --level (sent as message_level).
        (["--resource_type", "volume_backup"], ["backup"], True),
        (["--level", "warning"], ["backup"], False),
        (["--resource_type", "volume_snapshot", "--level", "error"], ["snap"], True),
        # Five matches: more than one page, so the filter must survive the next link.
        (["--event_id", "VOLUME_VOLUME_001_003"], [f"vol-{i}" for i in range(5)], True),
        (["--event_id", "VOLUME_VOLUME_001_003"], [f"vol-{i}" for i in range(5)], False),
        (["--request_id", BY_NAME["vol-2"].request_id], ["vol-2"], True),
        (["--resource_uuid", BY_NAME["vol-3"].resource_uuid], ["vol-3"], False),
        (["--resource_type", "VOLUME", "--event_id", "VOLUME_VOLUME_BACKUP_013_030"], [], True),
        # Another project's message matches nothing for alice.
        (["--event_id", BY_NAME["other"].event_id], [], True),
    ],
    ids=["type", "level-v3", "type+level", "event", "event-v3", "request", "uuid-v3",
         "no-match", "other-project"],
)
def test_list_filters(live, home, args, expected, endpoint_project):
    result = cinder(live, home, "message-list", *args, endpoint_project=endpoint_project)
    assert sorted(listed(live, result)) == sorted(expected)
    assert "Resource Type" in result.stdout  # an empty list still prints the header


def test_generic_filters_at_3_33(live, home):
    # `cinder list-filters` reads our /resource_filters: Cinder's default for messages.
    result = cinder(live, home, "list-filters", "--resource", "message", version="3.33")
    assert result.returncode == 0, result.stderr
    assert parse_table(result.stdout) == [{
        "Resource": "message",
        "Filters": "resource_uuid, resource_type, event_id, request_id, message_level"}]
    # The client keeps only the first value after each --filters (`--filters a=1 b=2`
    # silently drops b=2), so each filter gets its own --filters.
    result = cinder(live, home, "message-list", "--filters", "message_level=ERROR",
                    "--filters", f"request_id={BY_NAME['vol-1'].request_id}", version="3.33")
    assert listed(live, result) == ["vol-1"]


def test_sort_limit_and_marker(live, home):
    # With --sort the client keeps the server's order.
    result = cinder(live, home, "message-list", "--sort", "created_at:asc")
    assert listed(live, result) == OWN
    # --limit 4 over 3-message pages: the client follows one next link and stops at 4.
    result = cinder(live, home, "message-list", "--sort", "created_at:desc", "--limit", "4")
    assert listed(live, result) == OWN[::-1][:4]
    result = cinder(live, home, "message-list", "--sort", "created_at:asc", "--marker",
                    live.ids["vol-1"], "--limit", "3")
    assert listed(live, result) == ["vol-2", "vol-3", "vol-4"]
    # Several keys: VOLUME_SNAPSHOT > VOLUME_BACKUP > VOLUME, then oldest first.
    result = cinder(live, home, "message-list", "--sort", "resource_type:desc,created_at:asc")
    assert listed(live, result) == ["snap", "backup", *(f"vol-{i}" for i in range(5))]
    # The client lets guaranteed_until through; like Cinder, the server refuses it.
    result = cinder(live, home, "message-list", "--sort", "guaranteed_until")
    assert result.returncode == 1
    assert "Invalid input received: Invalid sort key (HTTP 400)" in result.stderr


@pytest.mark.parametrize("endpoint_project", [True, False], ids=["v3-project", "v3"])
def test_show_prints_every_field_but_links(live, home, endpoint_project):
    seed = BY_NAME["backup"]
    result = cinder(live, home, "message-show", live.ids["backup"],
                    endpoint_project=endpoint_project)
    assert result.returncode == 0, result.stderr
    shown = parse_properties(result.stdout)
    assert set(shown) == {"created_at", "event_id", "guaranteed_until", "id", "message_level",
                          "request_id", "resource_type", "resource_uuid", "user_message"}
    assert shown["id"] == live.ids["backup"]
    assert shown["event_id"] == seed.event_id
    assert shown["message_level"] == "WARNING"
    assert shown["request_id"] == seed.request_id
    assert shown["resource_type"] == "VOLUME_BACKUP"
    assert shown["resource_uuid"] == seed.resource_uuid
    assert shown["user_message"] == seed.user_message
    # Cinder's timestamps: naive UTC with microseconds; guaranteed for message_ttl (30 days).
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
    assert stamp.match(shown["created_at"]) and stamp.match(shown["guaranteed_until"])
    created = datetime.fromisoformat(shown["created_at"])
    assert datetime.fromisoformat(shown["guaranteed_until"]) - created == timedelta(days=30)


@pytest.mark.parametrize("endpoint_project", [True, False], ids=["v3-project", "v3"])
def test_delete_then_show_fails(live, home, endpoint_project):
    # Fresh messages in a project of their own, seeded while the server runs, so the
    # other tests' lists do not depend on the order tests run in.
    first, second = live.seed(BY_NAME["vol-0"], R), live.seed(BY_NAME["snap"], R)
    missing = "00000000-0000-4000-8000-00000000dead"

    def carol(*args: str):
        return cinder(live, home, *args, user=CAROL, project=R, endpoint_project=endpoint_project)

    # One id failing does not fail the command (the client prints that one on stdout)...
    result = carol("message-delete", first, missing)
    assert result.returncode == 0, result.stderr
    assert f"Delete for message {missing} failed" in result.stdout
    # ...and the message is gone: the client's lookup (GET, then ?all_tenants=1 twice) fails.
    result = carol("message-show", first)
    assert result.returncode == 1
    assert f"No message with a name or ID of '{first}' exists." in result.stderr
    # Every id failing does.
    result = carol("message-delete", first)
    assert result.returncode == 1
    assert "Unable to delete any of the specified messages." in result.stderr
    # The other fresh message is untouched.
    result = carol("message-list")
    remaining = [row["ID"] for row in parse_table(result.stdout)]
    assert second in remaining and first not in remaining


def test_another_project_can_neither_see_nor_delete(live, home):
    mine = live.ids["vol-3"]
    result = cinder(live, home, "message-list", user=BOB, project=Q)
    assert listed(live, result) == ["other"]
    result = cinder(live, home, "message-show", mine, user=BOB, project=Q)
    assert result.returncode == 1
    assert f"No message with a name or ID of '{mine}' exists." in result.stderr
    result = cinder(live, home, "message-delete", mine, user=BOB, project=Q,
                    endpoint_project=False)
    assert result.returncode == 1
    assert "Unable to delete any of the specified messages." in result.stderr
    # Still there for its owner; and alice cannot reach bob's either.
    result = cinder(live, home, "message-show", mine)
    assert result.returncode == 0, result.stderr
    assert parse_properties(result.stdout)["resource_uuid"] == BY_NAME["vol-3"].resource_uuid
    result = cinder(live, home, "message-show", live.ids["other"])
    assert result.returncode == 1
    # A project in the URL must be the token's project, as in Cinder's noauth.
    endpoint = f"{live.base}/v3/{Q}"
    result = run("cinder", ["--os-auth-type", "noauth", "--os-user-id", ALICE,
                            "--os-project-id", P, "--os-endpoint", endpoint,
                            "--os-volume-api-version", "3.5", "message-list"], home)
    assert result.returncode == 1
    # Cinder's text, then why.
    assert (f"Malformed request url: the project in the URL ({Q}) is not the token's ({P}) "
            "(HTTP 400)") in result.stderr


def test_admin_sees_every_project_and_may_use_like_filters(live, home):
    result = cinder(live, home, "message-list", user=ADMIN)
    names = listed(live, result)
    assert set(OWN) | {"other", "service"} <= set(names)
    result = cinder(live, home, "message-show", live.ids["other"], user=ADMIN)
    assert result.returncode == 0, result.stderr
    assert parse_properties(result.stdout)["user_message"] == BY_NAME["other"].user_message
    # LIKE filters (3.34): an admin may; a project user gets Cinder's 400.
    like = f"request_id~={BY_NAME['other'].request_id[:12]}"
    result = cinder(live, home, "message-list", "--filters", like, user=ADMIN, version="3.34")
    assert listed(live, result) == ["other"]
    result = cinder(live, home, "message-list", "--filters", like, version="3.34")
    assert result.returncode == 1
    assert "Invalid filters request_id~ are found in query options. (HTTP 400)" in result.stderr
