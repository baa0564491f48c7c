"""Nova 34's own notification code reports the failures we map; prints what it sent.

Run by tests/notifications/test_real.py with the OpenStack venv's python
(scripts/venv-openstack); never imported by our code. Driving a whole compute
host is out of reach of a test, so each failure calls the function Nova's failure
path calls, with the arguments that path passes (named in each ``caller``): the
legacy payload builders (``compute_utils.notify_about_instance_usage``, through the
compute manager's ``rpc.get_notifier('compute', host)``;
``scheduler_utils.set_vm_state_and_notify``, which also sends the versioned
``compute_task.*.error``) and the versioned ones (``notify_about_instance_create``,
``_action``, ``_rebuild``, ``_volume_attach_detach``, ``_volume_swap``,
``_share_attach_detach``), on a real Instance in Nova's own database, through Nova's
own Notifier with ``notification_format = both`` (capture.py says how it is read).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

import nova.conf
from capture import CONFIG, drain, dump, record
from nova import objects

objects.register_all()

CONF = nova.conf.CONF
HOST = "nova-compute-1"
TOPICS = ("notifications", "versioned_notifications")


def setup(work: Path) -> None:
    path = work / "nova.conf"
    path.write_text(CONFIG.format(work=work, host=HOST, service="nova")
                    + "[notifications]\nnotification_format = both\n")
    CONF(["--config-file", str(path)], project="nova")
    from nova import rpc
    from nova.db import migration

    migration.db_sync(database="main")
    rpc.init(CONF)


def raised(exc: Exception) -> Exception:
    """The exception as the failure path holds it: raised, with its traceback."""
    try:
        raise exc
    except Exception as caught:  # noqa: BLE001 - handed on as caught
        return caught


def main() -> None:
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    setup(Path(tempfile.mkdtemp(prefix="um-nova-")))
    from nova import context, exception, rpc
    from nova.compute import utils as compute_utils
    from nova.compute import vm_states
    from nova.objects import fields
    from nova.scheduler import utils as scheduler_utils

    user = context.RequestContext(user_id="nova-user-1", project_id="nova-project-1",
                                  roles=["member", "reader"])
    flavor = objects.Flavor(id=1, flavorid="1", name="m1.small", memory_mb=512, vcpus=1,
                            root_gb=1, ephemeral_gb=0, swap=0, rxtx_factor=1.0,
                            vcpu_weight=0, disabled=False, is_public=True, extra_specs={},
                            description=None)

    def instance() -> Any:
        made = objects.Instance(
            context=user, uuid=str(uuid.uuid4()), project_id=user.project_id,
            user_id=user.user_id, display_name="secret", host=HOST, node="node-1",
            compute_id=1, vm_state=vm_states.ACTIVE, power_state=1, task_state=None,
            flavor=flavor, old_flavor=None, new_flavor=None, image_ref=str(uuid.uuid4()),
            availability_zone="nova", system_metadata={}, metadata={}, launched_at=None,
            terminated_at=None, key_name=None, key_data=None, root_gb=1, ephemeral_gb=0,
            memory_mb=512, vcpus=1, instance_type_id=1, locked=False, locked_by=None)
        made.create()
        return made

    def spec(server: Any) -> Any:
        return objects.RequestSpec.from_components(
            user, server.uuid, objects.ImageMeta.from_dict({}), flavor, None, None, {},
            None, "nova", project_id=user.project_id, user_id=user.user_id)

    # ComputeManager.notifier
    notifier = rpc.get_notifier("compute", HOST)
    bdms = objects.BlockDeviceMappingList(objects=[])
    out: list[dict[str, Any]] = []

    def expect(server: Any, exc: Exception) -> dict[str, str]:
        return {"resource_id": server.uuid, "project_id": user.project_id,
                "user_id": user.user_id, "exception": type(exc).__name__}

    def emitted(caller: str, server: Any, exc: Exception, *event_types: str) -> None:
        record(out, caller, drain(TOPICS, set(event_types)), expect(server, exc))

    # ComputeManager._build_and_run_instance, except ComputeResourcesUnavailable
    server, error = instance(), raised(exception.ComputeResourcesUnavailable(reason="secret"))
    compute_utils.notify_about_instance_usage(notifier, user, server, "create.error",
                                              fault=error)
    compute_utils.notify_about_instance_create(
        user, server, HOST, phase=fields.NotificationPhase.ERROR, exception=error, bdms=bdms)
    emitted("nova.compute.manager.ComputeManager._build_and_run_instance", server, error,
            "compute.instance.create.error", "instance.create.error")

    # ComputeManager._notify_instance_rebuild_error
    server, error = instance(), raised(exception.BuildAbortException(
        instance_uuid="x", reason="secret"))
    compute_utils.notify_about_instance_usage(notifier, user, server, "rebuild.error",
                                              fault=error)
    compute_utils.notify_about_instance_rebuild(
        user, server, HOST, phase=fields.NotificationPhase.ERROR, exception=error, bdms=bdms)
    emitted("nova.compute.manager.ComputeManager._notify_instance_rebuild_error", server,
            error, "compute.instance.rebuild.error", "instance.rebuild.error")

    # ComputeManager._reboot_instance (and _reschedule_resize_or_reraise for resize)
    for suffix, action, caller in (
            ("reboot", fields.NotificationAction.REBOOT, "_reboot_instance"),
            ("resize", fields.NotificationAction.RESIZE, "_reschedule_resize_or_reraise")):
        server, error = instance(), raised(exception.InstanceFaultRollback(
            inner_exception=ValueError("secret")))
        compute_utils.notify_about_instance_usage(notifier, user, server, f"{suffix}.error",
                                                  fault=error)
        compute_utils.notify_about_instance_action(
            user, server, HOST, action=action, phase=fields.NotificationPhase.ERROR,
            exception=error, bdms=bdms)
        emitted(f"nova.compute.manager.ComputeManager.{caller}", server, error,
                f"compute.instance.{suffix}.error", f"instance.{suffix}.error")

    # ComputeManager._attach_volume
    server, error = instance(), raised(exception.VolumeAttachFailed(
        volume_id="v", reason="secret"))
    compute_utils.notify_about_volume_attach_detach(
        user, server, HOST, action=fields.NotificationAction.VOLUME_ATTACH,
        phase=fields.NotificationPhase.ERROR, exception=error, volume_id=str(uuid.uuid4()))
    emitted("nova.compute.manager.ComputeManager._attach_volume", server, error,
            "instance.volume_attach.error")

    # ComputeManager._swap_volume
    server, error = instance(), raised(exception.VolumeNotFound(volume_id="secret"))
    compute_utils.notify_about_volume_swap(
        user, server, HOST, fields.NotificationPhase.ERROR, str(uuid.uuid4()),
        str(uuid.uuid4()), error)
    emitted("nova.compute.manager.ComputeManager._swap_volume", server, error,
            "instance.volume_swap.error")

    # ComputeManager.attach_interface
    server, error = instance(), raised(exception.PortNotFound(port_id="secret"))
    compute_utils.notify_about_instance_action(
        user, server, HOST, action=fields.NotificationAction.INTERFACE_ATTACH,
        phase=fields.NotificationPhase.ERROR, exception=error)
    emitted("nova.compute.manager.ComputeManager.attach_interface", server, error,
            "instance.interface_attach.error")

    # nova/compute/share_management.py ShareManager.allow_share and deny_share
    for action, caller in ((fields.NotificationAction.SHARE_ATTACH, "allow_share"),
                           (fields.NotificationAction.SHARE_DETACH, "deny_share")):
        server, error = instance(), raised(exception.ShareNotFound(share_id="secret"))
        compute_utils.notify_about_share_attach_detach(
            user, server, HOST, action=action, phase=fields.NotificationPhase.ERROR,
            share_id=str(uuid.uuid4()), exception=error)
        emitted(f"nova.compute.share_management.ShareManager.{caller}", server, error,
                f"instance.{action}.error")

    # ComputeTaskManager: _bury_in_cell0 (build_instances), _cold_migrate
    # (migrate_server, also resize), rebuild_instance (rebuild_server): a RequestSpec.
    for method, vm_state in (("build_instances", vm_states.ERROR),
                             ("migrate_server", vm_states.ACTIVE),
                             ("rebuild_server", vm_states.ERROR)):
        server, error = instance(), raised(exception.NoValidHost(reason="secret"))
        scheduler_utils.set_vm_state_and_notify(
            user, server.uuid, "compute_task", method,
            {"vm_state": vm_state, "task_state": None}, error, spec(server))
        emitted(f"nova.conductor.manager.ComputeTaskManager ({method})", server, error,
                f"compute_task.{method}", f"compute_task.{method}.error")

    # ComputeTaskManager._live_migrate: its request spec names the instance only.
    server, error = instance(), raised(exception.NoValidHost(reason="secret"))
    scheduler_utils.set_vm_state_and_notify(
        user, server.uuid, "compute_task", "migrate_server",
        {"vm_state": vm_states.ACTIVE, "task_state": None,
         "expected_task_state": None},
        error, {"instance_properties": {"uuid": server.uuid}})
    emitted("nova.conductor.manager.ComputeTaskManager._live_migrate", server, error,
            "compute_task.migrate_server", "compute_task.migrate_server.error")
    dump(out)


if __name__ == "__main__":
    sys.exit(main())
