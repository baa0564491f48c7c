"""What Cinder 29 and Nova really emit on failure, published by the real Notifier with
their serializers and a real RequestContext, becomes the right message: the event type
picks the action and resource, the payload's exception class the detail."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from oslo_context.context import RequestContext

from tests.notifications import openstack_payloads as osp
from tests.notifications.notifier import collector, notifier, rows, running, wait_for
from usermessages import metrics
from usermessages.notifications import load_mapping, source

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "etc" / "notification-mapping.ini"
DOCS = ROOT / "docs" / "notifications.md"

# (event type, topic, payload, resource id, event id, exception class stored)
CINDER = [
    ("scheduler.create_volume",
     osp.cinder_create_volume("vol-c", "p1", "u1", osp.NoValidBackend(reason="secret")),
     "vol-c", "VOLUME_VOLUME_001_003", "NoValidBackend"),
    ("scheduler.extend_volume",
     osp.cinder_set_volume_state("extend_volume", "vol-e", "p1", "u1",
                                 osp.NoValidBackend(reason="secret")),
     "vol-e", "VOLUME_VOLUME_007_003", "NoValidBackend"),
    ("scheduler.retype",
     osp.cinder_set_volume_state("retype", "vol-r", "p1", "u1",
                                 osp.ParameterNotFound(param="secret")),
     "vol-r", "VOLUME_VOLUME_103_001", "ParameterNotFound"),
    ("scheduler.create_snapshot",
     osp.cinder_create_snapshot("snap-1", osp.NoValidBackend(reason="secret")),
     "snap-1", "VOLUME_VOLUME_SNAPSHOT_009_003", "NoValidBackend"),
]
NOVA_LEGACY = [
    ("compute.instance.create.error",
     osp.nova_legacy_instance_error("srv-1", "p1", "u1", osp.BuildAbortException(
         instance_uuid="srv-1", reason="secret")),
     "srv-1", "VOLUME_INSTANCE_120_001", "BuildAbortException"),
    ("compute_task.build_instances",
     osp.nova_legacy_compute_task("build_instances", "srv-2", "p1", "u1",
                                  osp.NoValidHost(reason="secret")),
     "srv-2", "VOLUME_INSTANCE_120_120", "NoValidHost"),
]
NOVA_VERSIONED = [
    ("instance.create.error",
     osp.nova_versioned_instance_error("srv-3", "p1", "u1", osp.FlavorDiskTooSmall(),
                                       "InstanceCreatePayload"),
     "srv-3", "VOLUME_INSTANCE_120_001", "FlavorDiskTooSmall"),
    ("instance.volume_attach.error",
     osp.nova_versioned_instance_error("srv-4", "p1", "u1", osp.NovaException("secret"),
                                       "InstanceActionVolumePayload"),
     "srv-4", "VOLUME_INSTANCE_002_001", "NovaException"),
    ("compute_task.migrate_server.error",
     osp.nova_versioned_compute_task_error("srv-5", "p1", "u1", osp.NoValidHost(reason="x")),
     "srv-5", "VOLUME_INSTANCE_124_120", "NoValidHost"),
]


def test_cinder_and_nova_failures_through_the_real_notifier(rabbitmq_url, engine, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    cinder_exchange, nova_exchange = f"cinder-{suffix}", f"nova-{suffix}"
    legacy, versioned = f"notifications-{suffix}", f"versioned_notifications-{suffix}"
    src = source([cinder_exchange, nova_exchange], load_mapping(MAPPING), 3600,
                 topics=(legacy, versioned), retry_interval=0.1,
                 queue_name=f"usermessages.notifications-{uuid.uuid4().hex[:8]}")
    context = RequestContext(project_id="p1", user_id="u1",
                             global_request_id=f"req-{uuid.uuid4()}")
    nova_serializer = osp.RequestContextSerializer(osp.NovaPayloadSerializer())
    with notifier(rabbitmq_url, tmp_path, cinder_exchange, topic=legacy,
                  publisher_id="scheduler.cinder-host",
                  serializer=osp.RequestContextSerializer()) as cinder, \
            notifier(rabbitmq_url, tmp_path, nova_exchange, topic=legacy,
                     publisher_id="compute.nova-host", serializer=nova_serializer) as nova, \
            notifier(rabbitmq_url, tmp_path, nova_exchange, topic=versioned,
                     publisher_id="nova-compute:nova-host",
                     serializer=nova_serializer) as nova_versioned:
        # The services declare their exchanges with their first notification.
        cinder.info(context, "volume.create.start", {})
        nova.info(context, "compute.instance.create.start", {})
        with running(collector(rabbitmq_url, engine, src)):
            wait_for(lambda: src.prepare.__self__.bound == {cinder_exchange, nova_exchange},
                     what="both exchanges bound")
            unmapped = metrics.UNMAPPED.labels(event_type="volume_type.create")
            before = unmapped._value.get()
            cinder.error(context, "volume_type.create", {"volume_types": {"name": "secret"}})
            for sender, cases in ((cinder, CINDER), (nova, NOVA_LEGACY),
                                  (nova_versioned, NOVA_VERSIONED)):
                for event_type, payload, *_ in cases:
                    sender.error(context, event_type, payload)
            expected = {resource: (event, exception)
                        for cases in (CINDER, NOVA_LEGACY, NOVA_VERSIONED)
                        for _, _, resource, event, exception in cases}
            stored = wait_for(lambda: (lambda r: r if len(r) == len(expected) else None)(
                rows(engine)), what="every mapped failure")
            wait_for(lambda: unmapped._value.get() == before + 1, what="the unmapped count")
    assert {r["resource_uuid"]: (r["event_id"], r["exception_class"]) for r in stored} == expected
    cinder_resources = {resource for _, _, resource, _, _ in CINDER}
    for row in stored:
        assert (row["project_id"], row["user_id"], row["global_request_id"]) == (
            "p1", "u1", context.global_id)
        # "scheduler.cinder-host", "compute.nova-host", "nova-compute:nova-host"
        assert row["host"] == ("cinder-host" if row["resource_uuid"] in cinder_resources
                               else "nova-host")
        assert row["request_id"] == context.request_id
        assert "secret" not in " ".join(str(v) for v in row.values())


def test_every_mapped_event_is_documented_with_its_source():
    documented = dict(re.findall(r"^\| `([a-z_.]+)` \| ([^|]+) \|", DOCS.read_text(), re.M))
    for event_type in load_mapping(MAPPING):
        assert event_type in documented, event_type
        assert ".py" in documented[event_type], event_type
