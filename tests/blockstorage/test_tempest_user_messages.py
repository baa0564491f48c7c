"""tempest's ``tempest/api/volume/admin/test_user_messages.py``, run against the all-in-one.

The scenario is tempest's own, step for step: an admin creates a volume type whose
extra specs match no backend, the primary (non-admin) user creates a volume of that
type and waits for ``error``, then finds the message whose ``resource_uuid`` is the
volume, shows, lists and deletes it. It goes through tempest.lib's real
TypesClient, VolumesClient and MessagesClient, so every response is checked against
tempest's schemas and microversion header rules. Only Keystone is replaced, by a
no-auth provider that sends Cinder's ``user:project`` token.
"""

from __future__ import annotations

import pytest
from tempest.common import waiters
from tempest.lib import exceptions as lib_exc
from tempest.lib.common.utils import data_utils
from tempest.lib.services.volume import base_client
from tempest.lib.services.volume.v3 import messages_client, types_client, volumes_client

from tests.noauth import NoAuthProvider

ADMIN_PROJECT = "ad000000000000000000000000000001"
PRIMARY_PROJECT = "0123456789abcdef0123456789abcdef"


def _clients(base: str, user: str, project: str):
    provider = NoAuthProvider(f"{base}/v3/{project}", f"{user}:{project}")
    options = {"build_interval": 0.2, "build_timeout": 30}
    return (types_client.TypesClient(provider, "volumev3", "RegionOne", **options),
            volumes_client.VolumesClient(provider, "volumev3", "RegionOne", **options),
            messages_client.MessagesClient(provider, "volumev3", "RegionOne", **options))


@pytest.fixture
def tempest(aio, monkeypatch):
    # UserMessagesTest: volume_min_microversion = '3.3'.
    monkeypatch.setattr(base_client, "VOLUME_MICROVERSION", "3.3")
    admin_types, _, _ = _clients(aio, "admin", ADMIN_PROJECT)
    _, volumes, messages = _clients(aio, "tempest-primary", PRIMARY_PROJECT)
    cleanups = []
    yield admin_types, volumes, messages, cleanups
    for cleanup in reversed(cleanups):
        cleanup()


def _create_user_message(admin_types, volumes, messages, cleanups) -> str:
    """tempest's helper: trigger a 'no valid host' situation to generate a message."""
    extra_specs = {"storage_protocol": data_utils.rand_name(name="storage_protocol"),
                   "vendor_name": data_utils.rand_name(name="vendor_name")}
    bogus_type = admin_types.create_volume_type(
        name=data_utils.rand_name(name="UserMessagesTest-volume-type"),
        extra_specs=extra_specs)["volume_type"]
    cleanups.append(lambda: admin_types.delete_volume_type(bogus_type["id"]))
    volume = volumes.create_volume(volume_type=bogus_type["id"], size=1)["volume"]

    def delete_volume():
        volumes.delete_volume(volume["id"])
        volumes.wait_for_resource_deletion(volume["id"])

    cleanups.append(delete_volume)
    waiters.wait_for_volume_resource_status(volumes, volume["id"], "error")
    message_id = None
    for message in messages.list_messages()["messages"]:
        if message["resource_uuid"] == volume["id"]:
            message_id = message["id"]
            break
    assert message_id is not None, f"No user message generated for volume {volume['id']}"
    return message_id


def test_list_show_messages(tempest):
    admin_types, volumes, messages, cleanups = tempest
    message_id = _create_user_message(admin_types, volumes, messages, cleanups)
    cleanups.append(lambda: messages.delete_message(message_id))
    shown = messages.show_message(message_id)["message"]
    assert shown["event_id"] == "VOLUME_VOLUME_001_003"
    assert shown["user_message"] == (
        "schedule allocate volume:Could not find any available weighted backend.")
    listed = messages.list_messages()["messages"]
    assert message_id in [m["id"] for m in listed]


def test_delete_message(tempest):
    admin_types, volumes, messages, cleanups = tempest
    message_id = _create_user_message(admin_types, volumes, messages, cleanups)
    messages.delete_message(message_id)
    messages.wait_for_resource_deletion(message_id)
    with pytest.raises(lib_exc.NotFound):
        messages.show_message(message_id)
