"""tempest.lib 47's MessagesClient and its own response schemas, without Keystone.

What tempest's UserMessagesTest does (tempest/api/volume/admin/test_user_messages.py),
at its microversion 3.3, with tests/noauth.NoAuthProvider in place of Keystone.
base_client checks that every response echoes `OpenStack-API-Version: volume 3.3`, and
every list/show body is validated against tempest.lib.api_schema.response.volume.messages
(additionalProperties false: no extra keys, no `messages_links` on a list).
"""

from __future__ import annotations

import json

import pytest
from tempest.lib import exceptions as lib_exc
from tempest.lib.api_schema.response.volume import messages as schema
from tempest.lib.services.volume import base_client
from tempest.lib.services.volume.v3 import messages_client

from tests.harness.peers import ADMIN, ALICE, BOB, BY_NAME, OWN, Live, P, Q, live_server
from tests.noauth import NoAuthProvider

MISSING = "00000000-0000-4000-8000-00000000dead"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    # Cinder's default osapi_max_limit (1000): tempest's list is never a full page.
    with live_server(tmp_path_factory.mktemp("tempest")) as server:
        yield server


@pytest.fixture
def microversion():
    """Set tempest's module-global request microversion; put the old one back after."""
    saved = base_client.VOLUME_MICROVERSION

    def use(version: str) -> None:
        base_client.VOLUME_MICROVERSION = version

    use("3.3")  # UserMessagesTest's volume_min_microversion
    yield use
    base_client.VOLUME_MICROVERSION = saved


def client_for(live: Live, token: str, *, project_in_url: bool = True):
    project = token.partition(":")[2]
    base = f"{live.base}/v3/{project}" if project_in_url else f"{live.base}/v3"
    return messages_client.MessagesClient(NoAuthProvider(base, token), "volumev3", "RegionOne",
                                          build_interval=0.1, build_timeout=10)


@pytest.mark.parametrize("project_in_url", [True, False], ids=["v3-project", "v3"])
def test_list_show_delete_as_tempest_does(live, microversion, project_in_url):
    # A message of its own per run, seeded while the server runs (like tempest's failed
    # volume create), so the parametrized runs do not depend on each other.
    message_id = live.seed(BY_NAME["vol-2"])
    client = client_for(live, f"{ALICE}:{P}", project_in_url=project_in_url)

    body = client.list_messages()  # schema-validated
    assert "messages_links" not in body
    listed = {m["id"]: m for m in body["messages"]}
    assert {live.ids[name] for name in OWN} <= set(listed)
    assert live.ids["other"] not in listed and live.ids["service"] not in listed
    # tempest picks the message whose resource_uuid is its volume's id.
    mine = [m for m in body["messages"] if m["id"] == message_id]
    assert mine and mine[0]["resource_uuid"] == BY_NAME["vol-2"].resource_uuid

    shown = client.show_message(message_id)["message"]  # schema-validated
    assert shown == listed[message_id]
    assert shown["event_id"] == "VOLUME_VOLUME_001_003"
    assert shown["user_message"] == BY_NAME["vol-2"].user_message
    assert shown["request_id"] == BY_NAME["vol-2"].request_id
    prefix = f"{live.base}/v3/{P}" if project_in_url else f"{live.base}/v3"
    assert {"rel": "self", "href": f"{prefix}/messages/{message_id}"} in shown["links"]

    response = client.delete_message(message_id)  # tempest expects exactly 204
    assert response.response.status == 204
    client.wait_for_resource_deletion(message_id)
    assert client.is_resource_deleted(message_id)
    assert message_id not in {m["id"] for m in client.list_messages()["messages"]}


def test_not_found(live, microversion):
    client = client_for(live, f"{ALICE}:{P}")
    for call in (client.show_message, client.delete_message):
        with pytest.raises(lib_exc.NotFound):
            call(MISSING)
        # Another project's message is as good as missing.
        with pytest.raises(lib_exc.NotFound):
            call(live.ids["other"])
    # The owner still has it.
    bob = client_for(live, f"{BOB}:{Q}")
    assert bob.show_message(live.ids["other"])["message"]["id"] == live.ids["other"]
    # Below 3.3 there are no messages (tempest raises on the 404 before any schema check).
    microversion("3.0")
    with pytest.raises(lib_exc.NotFound):
        client.list_messages()


def test_admin_view_passes_the_schemas(live, microversion):
    # Admins see every project and the admin-only service message; those bodies must
    # fit tempest's schema too (no nulls, no extra keys such as project_id or host).
    admin = client_for(live, f"{ADMIN}:{P}")
    listed = {m["id"] for m in admin.list_messages()["messages"]}
    assert {live.ids["other"], live.ids["service"]} <= listed
    service = admin.show_message(live.ids["service"])["message"]
    assert service["resource_type"] == "SERVICE" and "resource_uuid" not in service


def test_a_paginated_3_5_list_and_tempests_list_schema(live, microversion):
    client = client_for(live, f"{ALICE}:{P}")
    microversion("3.5")
    # A full page (limit=1) carries Cinder's messages_links, which tempest's list
    # schema forbids: tempest can only validate pages that are not full.
    resp, raw = client.get("messages?limit=1&sort=created_at:desc")
    body = json.loads(raw)
    assert [m["id"] for m in body["messages"]] == [live.ids[OWN[-1]]]
    assert body["messages_links"][0]["rel"] == "next"
    assert f"marker={live.ids[OWN[-1]]}" in body["messages_links"][0]["href"]
    with pytest.raises(lib_exc.InvalidHTTPResponseBody, match="messages_links"):
        client.validate_response(schema.list_messages, resp, body)
    # A page that is not full has no link and passes.
    resp, raw = client.get(f"messages?limit={len(OWN) + 100}&sort=created_at:desc")
    body = json.loads(raw)
    assert "messages_links" not in body
    client.validate_response(schema.list_messages, resp, body)
    assert [m["id"] for m in body["messages"]] == [live.ids[name] for name in OWN[::-1]]
    # Following the link of the full page gives the next message, also validated
    # when the page is the last, short one.
    resp, raw = client.get(f"messages?limit=2&sort=created_at:asc&marker={live.ids[OWN[-2]]}")
    body = json.loads(raw)
    client.validate_response(schema.list_messages, resp, body)
    assert [m["id"] for m in body["messages"]] == [live.ids[OWN[-1]]]
