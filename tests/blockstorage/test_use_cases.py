"""Every use case of the spec, end to end on the all-in-one: the state after each
failure, and the message that tells the user why."""

from __future__ import annotations

import contextlib
import uuid

from tests.blockstorage.conftest import Cloud


@contextlib.contextmanager
def fault(admin: Cloud, backend: str, operation: str):
    fault_id = admin.inject(backend, operation)
    try:
        yield
    finally:
        admin.clear(fault_id)


def _available_volume(admin: Cloud, user: Cloud, backend: str = "gold", size: int = 1) -> str:
    type_id = admin.create_type(f"{backend}-{uuid.uuid4().hex[:6]}", volume_backend_name=backend)
    volume_id, _ = user.create_volume(size, type_id)
    user.wait(f"/volumes/{volume_id}", "volume", "available")
    return volume_id


def test_volume_too_large_for_any_pool(alice: Cloud):
    volume_id, request_id = alice.create_volume(5000)
    volume = alice.wait(f"/volumes/{volume_id}", "volume", "error")
    assert volume["id"] == volume_id
    message = alice.wait_message(request_id=request_id)
    assert message["event_id"] == "VOLUME_VOLUME_001_003"
    assert message["resource_uuid"] == volume_id and message["resource_type"] == "VOLUME"
    assert message["user_message"] == (
        "schedule allocate volume:Could not find any available weighted backend."
    )
    assert message["message_level"] == "ERROR"


def test_type_whose_extra_specs_match_no_backend(admin: Cloud, alice: Cloud):
    # What tempest's test_user_messages does.
    type_id = admin.create_type(f"bogus-{uuid.uuid4().hex[:6]}",
                                storage_protocol="bogus-protocol", vendor_name="bogus-vendor")
    volume_id, request_id = alice.create_volume(1, type_id)
    alice.wait(f"/volumes/{volume_id}", "volume", "error")
    message = alice.wait_message(resource_uuid=volume_id)
    assert message["event_id"] == "VOLUME_VOLUME_001_003"
    assert message["request_id"] == request_id


def test_volume_added_to_a_group_on_another_backend(admin: Cloud, alice: Cloud):
    gold = admin.create_type(f"g-{uuid.uuid4().hex[:6]}", volume_backend_name="gold")
    response = alice.post("/groups", {"group": {"name": "g", "group_type": "default",
                                                "volume_types": [gold]}})
    assert response.status_code == 202, response.text
    group_id = response.json()["group"]["id"]
    alice.wait(f"/groups/{group_id}", "group", "available")
    on_silver = _available_volume(admin, alice, "silver")
    on_gold = _available_volume(admin, alice, "gold")
    response = alice.http.put(f"/groups/{group_id}",
                              json={"group": {"add_volumes": f"{on_silver},{on_gold}"}})
    assert response.status_code == 202, response.text
    message = alice.wait_message(resource_uuid=on_silver)
    assert message["event_id"] == "VOLUME_VOLUME_104_105"
    assert message["user_message"].startswith("add volume to group:The volume is on a "
                                              "different backend than the group")
    alice.wait(f"/groups/{group_id}", "group", "available")
    assert alice.volume(on_silver)["group_id"] is None
    assert alice.volume(on_gold)["group_id"] == group_id
    assert alice.messages(resource_uuid=on_gold) == []


def test_attach_fails_and_the_volume_stays_available(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice)
    with fault(admin, "gold", "attach_volume"):
        response = alice.action(volume_id, "os-attach", {"instance_uuid": str(uuid.uuid4()),
                                                         "mountpoint": "/dev/vdb"})
        assert response.status_code == 202
        message = alice.wait_message(resource_uuid=volume_id)
    assert message["event_id"] == "VOLUME_VOLUME_002_021"
    assert message["user_message"] == "attach volume:Failed to attach volume."
    volume = alice.volume(volume_id)
    assert volume["status"] == "available" and volume["attachments"] == []
    # Still usable: the next attach works.
    assert alice.action(volume_id, "os-attach", {"mountpoint": "/dev/vdb"}).status_code == 202
    attached = alice.wait(f"/volumes/{volume_id}", "volume", "in-use")
    assert attached["attachments"][0]["device"] == "/dev/vdb"


def test_detach_fails_and_the_volume_stays_attached(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice)
    alice.action(volume_id, "os-attach", {"mountpoint": "/dev/vdc"})
    alice.wait(f"/volumes/{volume_id}", "volume", "in-use")
    with fault(admin, "gold", "detach_volume"):
        alice.action(volume_id, "os-detach", {})
        message = alice.wait_message(resource_uuid=volume_id)
    assert message["event_id"] == "VOLUME_VOLUME_105_022"
    assert alice.volume(volume_id)["status"] == "in-use"


def test_extend_fails_and_the_volume_stays_usable(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice, size=2)
    with fault(admin, "gold", "extend_volume"):
        assert alice.action(volume_id, "os-extend", {"new_size": 3}).status_code == 202
        message = alice.wait_message(resource_uuid=volume_id)
    assert message["event_id"] == "VOLUME_VOLUME_007_010"
    assert message["user_message"] == "extend volume:Volume Driver failed to extend volume."
    volume = alice.wait(f"/volumes/{volume_id}", "volume", ("available", "error_extending"))
    assert volume["status"] == "available" and volume["size"] == 2


def test_extend_beyond_the_pool_fails_with_no_backend(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice, size=1)
    alice.action(volume_id, "os-extend", {"new_size": 10_000})
    message = alice.wait_message(resource_uuid=volume_id)
    assert message["event_id"] == "VOLUME_VOLUME_007_003"
    volume = alice.wait(f"/volumes/{volume_id}", "volume", "available")
    assert volume["size"] == 1


def test_retype_to_a_type_no_backend_offers(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice)
    nowhere = admin.create_type(f"nowhere-{uuid.uuid4().hex[:6]}", vendor_name="nobody")
    alice.action(volume_id, "os-retype", {"new_type": nowhere})
    message = alice.wait_message(resource_uuid=volume_id)
    assert message["event_id"] == "VOLUME_VOLUME_103_003"
    volume = alice.wait(f"/volumes/{volume_id}", "volume", "available")
    assert volume["volume_type"] != alice.get(f"/types/{nowhere}").json()["volume_type"]["name"]


def test_retype_driver_failure_keeps_the_volume_available(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice)
    other = admin.create_type(f"gold2-{uuid.uuid4().hex[:6]}", storage_protocol="iSCSI")
    with fault(admin, "gold", "retype_volume"):
        alice.action(volume_id, "os-retype", {"new_type": other})
        message = alice.wait_message(resource_uuid=volume_id)
    assert message["event_id"] == "VOLUME_VOLUME_103_106"
    assert alice.wait(f"/volumes/{volume_id}", "volume", "available")["status"] == "available"


def test_snapshot_create_and_delete_failures(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice)
    with fault(admin, "gold", "create_snapshot"):
        response = alice.post("/snapshots", {"snapshot": {"volume_id": volume_id}})
        assert response.status_code == 202, response.text
        snapshot_id = response.json()["snapshot"]["id"]
        alice.wait(f"/snapshots/{snapshot_id}", "snapshot", "error")
    message = alice.wait_message(resource_uuid=snapshot_id)
    assert (message["event_id"], message["resource_type"]) == (
        "VOLUME_VOLUME_SNAPSHOT_009_013", "VOLUME_SNAPSHOT")
    assert message["user_message"] == "create snapshot:Snapshot failed to create."

    good = alice.post("/snapshots", {"snapshot": {"volume_id": volume_id}}).json()["snapshot"]
    alice.wait(f"/snapshots/{good['id']}", "snapshot", "available")
    with fault(admin, "gold", "delete_snapshot"):
        assert alice.http.delete(f"/snapshots/{good['id']}").status_code == 202
        alice.wait(f"/snapshots/{good['id']}", "snapshot", "error_deleting")
    message = alice.wait_message(resource_uuid=good["id"])
    assert message["event_id"] == "VOLUME_VOLUME_SNAPSHOT_010_016"


def test_backup_create_and_delete_failures(admin: Cloud, alice: Cloud):
    volume_id = _available_volume(admin, alice)
    with fault(admin, "backup", "create_backup"):
        response = alice.post("/backups", {"backup": {"volume_id": volume_id}})
        assert response.status_code == 202, response.text
        backup_id = response.json()["backup"]["id"]
        alice.wait(f"/backups/{backup_id}", "backup", "error")
    message = alice.wait_message(resource_uuid=backup_id)
    assert message["event_id"] == "VOLUME_VOLUME_BACKUP_013_020"
    assert alice.wait(f"/volumes/{volume_id}", "volume", "available")

    backup = alice.post("/backups", {"backup": {"volume_id": volume_id}}).json()["backup"]
    alice.wait(f"/backups/{backup['id']}", "backup", "available")
    with fault(admin, "backup", "delete_backup"):
        alice.http.delete(f"/backups/{backup['id']}")
        message = alice.wait_message(resource_uuid=backup["id"])
    assert message["event_id"] == "VOLUME_VOLUME_BACKUP_014_025"
    assert alice.volume(volume_id)["status"] == "available"


def test_create_driver_failure(admin: Cloud, alice: Cloud):
    type_id = admin.create_type(f"g-{uuid.uuid4().hex[:6]}", volume_backend_name="gold")
    with fault(admin, "gold", "create_volume"):
        volume_id, _ = alice.create_volume(1, type_id)
        alice.wait(f"/volumes/{volume_id}", "volume", "error")
    message = alice.wait_message(resource_uuid=volume_id)
    assert message["event_id"] == "VOLUME_VOLUME_008_012"
    assert message["user_message"] == (
        "create volume from backend storage:Driver failed to create the volume."
    )


def test_users_see_only_their_project_and_no_service_messages(admin: Cloud, alice: Cloud, aio):
    volume_id, _ = alice.create_volume(5000)
    alice.wait_message(resource_uuid=volume_id)
    bob = Cloud(aio, "bob", "b0b0b0b0")
    assert bob.messages(resource_uuid=volume_id) == []
    assert bob.get(f"/volumes/{volume_id}").status_code == 404
    assert all(m["event_id"].startswith("VOLUME_VOLUME") for m in alice.messages())
    # The admin sees the user's message too.
    assert admin.messages(resource_uuid=volume_id)[0]["resource_uuid"] == volume_id


def test_fault_injection_is_admin_only_and_validated(admin: Cloud, alice: Cloud):
    forbidden = alice.post("/os-faults", {"fault": {"backend": "gold", "operation": "x"}})
    assert forbidden.status_code == 403 and "forbidden" in forbidden.json()
    bad = admin.post("/os-faults", {"fault": {"backend": "gold", "operation": "explode"}})
    assert bad.status_code == 400 and "badRequest" in bad.json()
    assert admin.post("/os-faults", {"fault": {"backend": "nope", "operation": "attach_volume"}}
                      ).status_code == 400


def _group(admin: Cloud, user: Cloud, backend: str) -> str:
    type_id = admin.create_type(f"{backend}-{uuid.uuid4().hex[:6]}", volume_backend_name=backend)
    response = user.post("/groups", {"group": {"name": "g", "group_type": "default",
                                               "volume_types": [type_id]}})
    assert response.status_code == 202, response.text
    group_id = response.json()["group"]["id"]
    user.wait(f"/groups/{group_id}", "group", "available")
    return group_id


def test_create_with_group_id_joins_the_group_or_says_why(admin: Cloud, alice: Cloud):
    group_id = _group(admin, alice, "gold")
    # cinder create --group-id G: placed on the group's backend, a member of the group.
    response = alice.post("/volumes", {"volume": {"size": 1, "group_id": group_id}})
    assert response.status_code == 202, response.text
    joined = response.json()["volume"]["id"]
    assert alice.wait(f"/volumes/{joined}", "volume", "available")["group_id"] == group_id
    assert alice.messages(resource_uuid=joined) == []

    # A type that only another backend offers: the volume cannot join; the user hears why.
    silver = admin.create_type(f"s-{uuid.uuid4().hex[:6]}", volume_backend_name="silver")
    response = alice.post("/volumes", {"volume": {"size": 1, "group_id": group_id,
                                                  "volume_type": silver}})
    assert response.status_code == 202, response.text
    refused = response.json()["volume"]["id"]
    volume = alice.wait(f"/volumes/{refused}", "volume", "error")
    assert volume["group_id"] is None
    message = alice.wait_message(resource_uuid=refused)
    assert message["event_id"] == "VOLUME_VOLUME_001_105"
    assert message["request_id"] == response.headers["x-openstack-request-id"]

    missing = alice.post("/volumes", {"volume": {"size": 1, "group_id": str(uuid.uuid4())}})
    assert missing.status_code == 404, missing.text


def test_add_to_group_fails_in_the_driver(admin: Cloud, alice: Cloud):
    group_id = _group(admin, alice, "gold")
    volume_id = _available_volume(admin, alice, "gold")
    with fault(admin, "gold", "add_to_group"):
        response = alice.http.put(f"/groups/{group_id}",
                                  json={"group": {"add_volumes": volume_id}})
        assert response.status_code == 202, response.text
        message = alice.wait_message(resource_uuid=volume_id)
        assert message["event_id"] == "VOLUME_VOLUME_104_110"
        assert message["user_message"] == (
            "add volume to group:Volume Driver failed to add the volume to the group.")
        alice.wait(f"/groups/{group_id}", "group", "available")
    assert alice.volume(volume_id)["group_id"] is None
