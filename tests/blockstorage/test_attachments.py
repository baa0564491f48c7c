"""The attachments API (3.27; os-complete 3.44), as nova and `cinder attachment-*` use it."""

from __future__ import annotations

import os
import uuid

from tests.blockstorage.conftest import Cloud
from tests.blockstorage.test_use_cases import _available_volume, fault

V344 = {"OpenStack-API-Version": "volume 3.44"}
CONNECTOR = {"initiator": "iqn.2026-11.org.example:host1", "host": "host1"}


def _create(user: Cloud, volume_id: str, **extra) -> dict:
    response = user.http.post("/attachments", headers=V344, json={"attachment": {
        "volume_uuid": volume_id, "instance_uuid": str(uuid.uuid4()), **extra}})
    assert response.status_code == 200, response.text
    return response.json()["attachment"]


def test_reserve_connect_complete_detach(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice)
    attachment = _create(alice, volume_id)
    assert (attachment["status"], attachment["volume_id"]) == ("reserved", volume_id)
    assert alice.volume(volume_id)["status"] == "reserved"
    # A second reservation of the same volume is refused.
    refused = alice.http.post("/attachments", headers=V344,
                              json={"attachment": {"volume_uuid": volume_id}})
    assert refused.status_code == 400 and "must be available" in refused.text

    updated = alice.http.put(f"/attachments/{attachment['id']}", headers=V344,
                             json={"attachment": {"connector": CONNECTOR}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["attachment"]["connection_info"]["driver_volume_type"]
    volume = alice.wait(f"/volumes/{volume_id}", "volume", "in-use")
    assert volume["attachments"][0]["attachment_id"] == attachment["id"]
    completed = alice.http.post(f"/attachments/{attachment['id']}/action", headers=V344,
                                json={"os-complete": None})
    assert completed.status_code == 204, completed.text
    listed = alice.http.get("/attachments", headers=V344).json()["attachments"]
    assert [(a["id"], a["status"]) for a in listed] == [(attachment["id"], "attached")]

    deleted = alice.http.delete(f"/attachments/{attachment['id']}", headers=V344)
    assert deleted.status_code == 200, deleted.text
    alice.wait(f"/volumes/{volume_id}", "volume", "available")
    gone = alice.http.get(f"/attachments/{attachment['id']}", headers=V344)
    assert gone.status_code == 404


def test_a_reservation_deleted_before_connecting_frees_the_volume(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice)
    attachment = _create(alice, volume_id)
    assert alice.http.delete(f"/attachments/{attachment['id']}", headers=V344).status_code == 200
    assert alice.volume(volume_id)["status"] == "available"


def test_a_failed_attach_tells_the_user_and_frees_the_volume(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice)
    with fault(admin, "gold", "attach_volume"):
        attachment = _create(alice, volume_id, connector=CONNECTOR)  # reserve + connect
        message = alice.wait_message(resource_uuid=volume_id)
    assert message["event_id"] == "VOLUME_VOLUME_002_021"
    assert alice.wait(f"/volumes/{volume_id}", "volume", "available")["attachments"] == []
    assert alice.http.get(f"/attachments/{attachment['id']}", headers=V344).status_code == 404


def test_versions_projects_and_bad_bodies(admin: Cloud, alice: Cloud, aio):
    volume_id = _available_volume(admin, alice)
    early = alice.http.get("/attachments", headers={"OpenStack-API-Version": "volume 3.26"})
    assert early.status_code == 404
    attachment = _create(alice, volume_id)
    complete_early = alice.http.post(f"/attachments/{attachment['id']}/action",
                                     headers={"OpenStack-API-Version": "volume 3.43"},
                                     json={"os-complete": None})
    assert complete_early.status_code == 404
    not_connected = alice.http.post(f"/attachments/{attachment['id']}/action", headers=V344,
                                    json={"os-complete": None})
    assert not_connected.status_code == 400 and "update it with a connector" in not_connected.text
    other = Cloud(aio, "bob", os.urandom(4).hex())
    assert other.http.get(f"/attachments/{attachment['id']}", headers=V344).status_code == 404
    assert other.http.delete(f"/attachments/{attachment['id']}", headers=V344).status_code == 404
    for body in ({}, {"attachment": {"connector": "iqn"}}, {"attachment": {}}):
        response = alice.http.put(f"/attachments/{attachment['id']}", headers=V344, json=body)
        assert response.status_code == 400, (body, response.text)
        assert "badRequest" in response.json()
    missing = alice.http.post("/attachments", headers=V344, json={"attachment": {}})
    assert missing.status_code == 400 and "volume_uuid is required" in missing.text
