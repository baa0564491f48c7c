"""python-openstackclient 10.5.0 (`openstack volume message ...`, on openstacksdk 4.22.0).

Every `openstack` run costs 1-2 s, so each test batches several checks. As with
cinderclient, the server is capped at 3 messages a page (osapi_max_limit = 3): the
SDK only lists alice's 7 messages whole if it pages through our links correctly.
The endpoint is project-less (`.../v3`): the SDK builds `<endpoint>/messages`.
"""

from __future__ import annotations

import json

import httpx
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

LIST_COLUMNS = ["ID", "Event ID", "Resource Type", "Resource UUID", "Message Level",
                "User Message", "Request ID", "Created At", "Guaranteed Until"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("osc"), osapi_max_limit=3) as server:
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("osc-home")


def openstack(live: Live, home, *args: str, token: str = f"{ALICE}:{P}",
              version: str | None = "3.5", endpoint_project: bool = False):
    """`openstack --os-auth-type admin_token --os-token user:project ...` on `/v3`.

    keystoneauth discovers the API with a tokenless `GET /v3`, which we answer with
    the versions document (Cinder's noauth answers 204 there, so OSC cannot talk to it).
    With `/v3/<project>` as the endpoint it still discovers on `/v3`, then sends
    `/v3/<project>/messages`.
    """
    endpoint = f"{live.base}/v3"
    if endpoint_project:
        endpoint += f"/{token.partition(':')[2]}"
    options = ["--os-auth-type", "admin_token", "--os-token", token, "--os-endpoint", endpoint]
    if version:
        options += ["--os-volume-api-version", version]
    return run("openstack", [*options, "volume", "message", *args], home)


def names(live: Live, ids) -> list[str]:
    by_id = {message_id: name for name, message_id in live.ids.items()}
    return [by_id.get(message_id, message_id) for message_id in ids]


def listed_json(live: Live, result) -> list[str]:
    assert result.returncode == 0, result.stderr
    assert "Endless pagination loop" not in result.stderr
    return names(live, [row["ID"] for row in json.loads(result.stdout)])


def test_list_table_shows_every_column(live, home):
    result = openstack(live, home, "list")
    assert result.returncode == 0, result.stderr
    rows = parse_table(result.stdout)
    assert list(rows[0]) == LIST_COLUMNS
    # The server's default order, newest first, across three pages.
    assert names(live, [row["ID"] for row in rows]) == OWN[::-1]
    for row in rows:
        seed = next(s for s in SEEDS if live.ids[s.name] == row["ID"])
        assert row["Event ID"] == seed.event_id
        assert row["Resource Type"] == seed.resource.value
        assert row["Resource UUID"] == seed.resource_uuid
        assert row["Message Level"] == seed.level.value
        assert row["User Message"] == seed.user_message
        assert row["Request ID"] == seed.request_id
        assert row["Created At"] < row["Guaranteed Until"]


@pytest.mark.parametrize(
    ("version", "limit", "endpoint_project"),
    [("3.5", "2", False), ("3.3", "2", False), ("3.3", None, False), ("3.5", "5", True)],
    ids=["3.5-limit2", "3.3-limit2", "3.3", "3.5-limit5-over-cap-v3-project"],
)
def test_list_pages_to_the_end(live, home, version, limit, endpoint_project):
    # --limit is the SDK's page size; it sends limit and marker even at 3.3, where
    # Cinder ignores them and the SDK aborts with "Endless pagination loop detected".
    # We honour them at 3.3 on purpose, so the SDK gets every message exactly once.
    extra = ["--limit", limit] if limit else []
    result = openstack(live, home, "list", *extra, "-f", "json", version=version,
                       endpoint_project=endpoint_project)
    assert listed_json(live, result) == OWN[::-1]


def test_list_marker_and_no_microversion(live, home):
    # Newest first, after the snapshot message: the five volume messages, in pages of 2.
    result = openstack(live, home, "list", "--marker", live.ids["snap"], "--limit", "2",
                       "-f", "json")
    assert listed_json(live, result) == [f"vol-{i}" for i in range(4, -1, -1)]
    # Without --os-volume-api-version OSC sends no microversion header; like Cinder we
    # take that as 3.0, where messages do not exist: 404.
    result = openstack(live, home, "list", version=None)
    assert result.returncode == 1
    assert "404" in result.stderr and "The resource could not be found." in result.stderr


def test_show_suffers_the_sdk_resource_key_bug(live, home):
    # openstacksdk 4.22's block_storage Message declares resource_key = "messages"
    # (plural), so it does not unwrap the {"message": {...}} body that Cinder and we
    # return: every field but the ID (which it takes from the command line) prints as
    # None. It fails the same way against real Cinder; answering {"messages": ...}
    # instead would break cinderclient and tempest, so we keep Cinder's shape.
    message_id = live.ids["backup"]
    result = openstack(live, home, "show", message_id, "-f", "json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown.pop("ID") == message_id
    assert shown == {"Created At": None, "Event ID": None, "Guaranteed Until": None,
                     "Message Level": None, "Request ID": None, "Resource Type": None,
                     "Resource UUID": None, "User Message": None}
    # The table form shows the same. What the server really sent is complete:
    result = openstack(live, home, "show", message_id)
    assert result.returncode == 0, result.stderr
    table = parse_properties(result.stdout)
    assert table["ID"] == message_id and table["User Message"] == "None"
    body = httpx.get(f"{live.base}/v3/messages/{message_id}", timeout=10,
                     headers={"X-Auth-Token": f"{ALICE}:{P}",
                              "OpenStack-API-Version": "volume 3.5"}).json()
    assert body["message"]["user_message"] == BY_NAME["backup"].user_message
    # Unknown or another project's id: the SDK's 404 handling, exit 1.
    result = openstack(live, home, "show", live.ids["other"])
    assert result.returncode == 1
    assert f"No Message found for {live.ids['other']}" in result.stderr
    assert f"Message {live.ids['other']} could not be found." in result.stderr


def test_delete(live, home):
    # Fresh messages in a project of their own, seeded while the server runs.
    first, second = live.seed(BY_NAME["vol-0"], R), live.seed(BY_NAME["snap"], R)
    carol = f"{CAROL}:{R}"
    # Bob (project Q) may not delete carol's message: 404 for him, exit 1.
    result = openstack(live, home, "delete", first, token=f"{BOB}:{Q}")
    assert result.returncode == 1
    assert f"Failed to delete message: {first}" in result.stderr
    assert "Failed to delete 1 of 1 messages." in result.stderr
    # Carol deletes both (the SDK sends DELETE directly, no lookup first).
    result = openstack(live, home, "delete", first, second, token=carol)
    assert result.returncode == 0, result.stderr
    for message_id in (first, second):
        response = httpx.get(f"{live.base}/v3/{R}/messages/{message_id}", timeout=10,
                             headers={"X-Auth-Token": carol,
                                      "OpenStack-API-Version": "volume 3.5"})
        assert response.status_code == 404
    # Deleting again fails for that id.
    result = openstack(live, home, "delete", first, token=carol, version="3.3")
    assert result.returncode == 1
    assert "Failed to delete 1 of 1 messages." in result.stderr


def test_admin_lists_every_project(live, home):
    result = openstack(live, home, "list", "-f", "json", token=f"{ADMIN}:{P}")
    listed = listed_json(live, result)
    assert set(OWN) | {"other", "service"} <= set(listed)
    service = next(row for row in json.loads(result.stdout) if row["ID"] == live.ids["service"])
    # An admin-only service message has no resource UUID; the SDK shows None.
    assert service["Resource Type"] == "SERVICE" and service["Resource UUID"] is None
    assert service["User Message"] == "report service status:The service stopped reporting."
