"""Cinder 29's own code fails four requests and sends its notifications; prints them.

Run by tests/notifications/test_real.py with the OpenStack venv's python
(scripts/venv-openstack); never imported by our code. Each failure goes the way it
goes in a cloud with no backend able to take the request: the real volume API
(``cinder.volume.api.API``) builds the request spec, casts to the scheduler over
oslo.messaging's in-memory ``fake:/`` RPC transport (so the request spec takes the
RPC round trip it takes between cinder-api and cinder-scheduler), the real
``SchedulerManager`` with the real FilterScheduler finds no valid backend and sends
the ERROR notification through Cinder's own Notifier (capture.py says how it is read).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from capture import CONFIG, drain, dump, record
from cinder import objects
from cinder.common import config  # noqa: F401 - registers Cinder's options
from oslo_config import cfg

objects.register_all()  # imports half of Cinder: before CONF() is parsed

CONF = cfg.CONF
HOST = "cinder-scheduler-1"
VOLUME_HOST = "cinder-volume-1@lvm#pool"


def setup(work: Path) -> None:
    path = work / "cinder.conf"
    path.write_text(CONFIG.format(work=work, host=HOST, service="cinder"))
    CONF(["--config-file", str(path)], project="cinder")
    from cinder import rpc
    from cinder.db import migration

    migration.db_sync()
    rpc.init(CONF)


def main() -> None:
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    setup(Path(tempfile.mkdtemp(prefix="um-cinder-")))
    import oslo_messaging
    from cinder import context, rpc
    from cinder.db import api as db
    from cinder.objects import base as objects_base
    from cinder.scheduler import manager as scheduler_manager
    from cinder.scheduler import rpcapi as scheduler_rpcapi
    from cinder.volume import api as volume_api
    from cinder.volume import rpcapi as volume_rpcapi
    from cinder.volume import volume_types

    admin = context.get_admin_context()
    # A volume service in the zone, as the API needs one to accept a create in it;
    # it never reports capacity, so the scheduler has no backend to place anything on.
    objects.Service(context=admin, host=VOLUME_HOST.split("#")[0], binary="cinder-volume",
                    topic="cinder-volume", availability_zone="nova",
                    rpc_current_version=volume_rpcapi.VolumeAPI.RPC_API_VERSION,
                    object_current_version=objects_base.OBJ_VERSIONS.get_current(),
                    ).create()
    manager = scheduler_manager.SchedulerManager()
    manager._startup_delay = False  # what init_host_with_rpc does once the service is up
    server = rpc.get_server(
        oslo_messaging.Target(topic=scheduler_rpcapi.SchedulerAPI.TOPIC, server=HOST),
        [manager], objects_base.CinderObjectSerializer())
    server.start()
    out: list[dict[str, Any]] = []
    try:
        user = context.RequestContext(user_id="cinder-user-1", project_id="cinder-project-1",
                                      roles=["member", "reader"], is_admin=False)
        owner = {"project_id": user.project_id, "user_id": user.user_id,
                 "exception": "NoValidBackend"}
        api = volume_api.API()
        default_type = db.volume_type_get_by_name(admin, "__DEFAULT__")
        other_type = volume_types.create(admin, "gold", {})

        def volume() -> Any:
            made = objects.Volume(context=user, size=1, status="available",
                                  project_id=user.project_id, user_id=user.user_id,
                                  host=VOLUME_HOST, availability_zone="nova",
                                  volume_type_id=default_type["id"], display_name="secret")
            made.create()
            return made

        created = api.create(user, 1, "secret", "secret description")
        record(out, "cinder.volume.api.API.create", drain(
            ("notifications",), {"scheduler.create_volume"}),
            {**owner, "resource_id": created.id})
        extended = volume()
        api.extend(user, extended, 2)
        record(out, "cinder.volume.api.API.extend", drain(
            ("notifications",), {"scheduler.extend_volume"}),
            {**owner, "resource_id": extended.id})
        retyped = volume()
        api.retype(user, retyped, other_type["id"], migration_policy="on-demand")
        record(out, "cinder.volume.api.API.retype", drain(
            ("notifications",), {"scheduler.retype"}),
            {**owner, "resource_id": retyped.id})
        snapshot = api.create_snapshot(user, volume(), "secret", "secret description")
        record(out, "cinder.volume.api.API.create_snapshot", drain(
            ("notifications",), {"scheduler.create_snapshot"}),
            {**owner, "resource_id": snapshot.id})
    finally:
        server.stop()
        server.wait()
    dump(out)


if __name__ == "__main__":
    sys.exit(main())
