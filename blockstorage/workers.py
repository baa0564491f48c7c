"""The volume worker (one per backend) and the backup worker.

As in Cinder, a failure's message is recorded before the status that reveals
the failure is committed, so a user who sees ``error`` finds the message.

Each operation ends in a state the user can act on. A failure records a user
message through the SDK and leaves the resource usable wherever the real
volume would still be usable: a failed extend, retype or attach puts the
volume back to ``available`` (not ``error_extending``), a failed detach
leaves it ``in-use``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from blockstorage import db
from blockstorage.runtime import DriverFailure, Runtime
from usermessages import Action, Detail, Resource

LOG = logging.getLogger(__name__)


class VolumeWorker:
    """Runs the driver operations of one backend (topic ``volume.<backend>``)."""

    def __init__(self, runtime: Runtime, backend: str) -> None:
        self.rt = runtime
        self.backend = backend

    def handlers(self) -> dict[str, Any]:
        return {
            "create_volume": self.create_volume,
            "delete_volume": self.delete_volume,
            "extend_volume": self.extend_volume,
            "retype_volume": self.retype_volume,
            "attach_volume": self.attach_volume,
            "detach_volume": self.detach_volume,
            "create_snapshot": self.create_snapshot,
            "delete_snapshot": self.delete_snapshot,
            "add_to_group": self.add_to_group,
        }

    def _attempt(self, operation: str) -> DriverFailure | None:
        try:
            self.rt.check_fault(self.backend, operation)
        except DriverFailure as exc:
            LOG.warning("%s", exc)
            return exc
        return None

    def create_volume(self, ctx: dict, volume_id: str) -> None:
        failure = self._attempt("create_volume")
        with self.rt.engine.begin() as conn:
            done = db.transition(conn, db.volumes, volume_id, ("creating",),
                                 "error" if failure else "available", task_deadline=None)
            if done and failure:
                self.rt.tell_user(ctx, Action.CREATE_VOLUME_FROM_BACKEND, resource_uuid=volume_id,
                                  exception=failure, detail=Detail.DRIVER_FAILED_CREATE)

    def delete_volume(self, ctx: dict, volume_id: str) -> None:
        failure = self._attempt("delete_volume")
        with self.rt.engine.begin() as conn:
            if failure:
                done = db.transition(conn, db.volumes, volume_id, ("deleting",),
                                     "error_deleting", task_deadline=None)
            else:
                done = db.get(conn, db.volumes, volume_id) is not None
                db.delete_row(conn, db.volumes, volume_id)
            if done and failure:
                self.rt.tell_user(ctx, Action.DELETE_VOLUME, resource_uuid=volume_id,
                                  exception=failure, detail=Detail.DRIVER_FAILED_DELETE)

    def extend_volume(self, ctx: dict, volume_id: str, new_size: int) -> None:
        failure = self._attempt("extend_volume")
        values = {} if failure else {"size": new_size}
        with self.rt.engine.begin() as conn:
            done = db.transition(conn, db.volumes, volume_id, ("extending",), "available",
                                 task_deadline=None, **values)
            if done and failure:
                self.rt.tell_user(ctx, Action.EXTEND_VOLUME, resource_uuid=volume_id,
                                  exception=failure, detail=Detail.DRIVER_FAILED_EXTEND)

    def retype_volume(self, ctx: dict, volume_id: str, new_type_id: str, new_host: str) -> None:
        failure = self._attempt("retype_volume")
        values = {} if failure else {"volume_type_id": new_type_id, "host": new_host}
        with self.rt.engine.begin() as conn:
            done = db.transition(conn, db.volumes, volume_id, ("retyping",), "available",
                                 task_deadline=None, **values)
            if done and failure:
                self.rt.tell_user(ctx, Action.RETYPE_VOLUME, resource_uuid=volume_id,
                                  exception=failure, detail=Detail.DRIVER_FAILED_RETYPE)

    def attach_volume(self, ctx: dict, volume_id: str, instance_uuid: str | None,
                      mountpoint: str | None, attachment_id: str | None = None) -> None:
        # attachment_id: the attachments API (3.27) reserved it; os-attach has none yet.
        failure = self._attempt("attach_volume")
        if failure:
            values: dict[str, Any] = {"attach_status": "detached", "attachment_id": None,
                                      "instance_uuid": None}
            status = "available"
        else:
            values = {"attach_status": "attached", "instance_uuid": instance_uuid,
                      "mountpoint": mountpoint, "attached_at": db.utcnow(),
                      "attachment_id": attachment_id or str(uuid.uuid4())}
            status = "in-use"
        with self.rt.engine.begin() as conn:
            done = db.transition(conn, db.volumes, volume_id, ("attaching",), status,
                                 task_deadline=None, **values)
            if done and failure:
                self.rt.tell_user(ctx, Action.ATTACH_VOLUME, resource_uuid=volume_id,
                                  exception=failure, detail=Detail.ATTACH_ERROR)

    def detach_volume(self, ctx: dict, volume_id: str) -> None:
        failure = self._attempt("detach_volume")
        if failure:
            values: dict[str, Any] = {}
            status = "in-use"
        else:
            values = {"attach_status": "detached", "instance_uuid": None, "mountpoint": None,
                      "attached_at": None, "attachment_id": None}
            status = "available"
        with self.rt.engine.begin() as conn:
            done = db.transition(conn, db.volumes, volume_id, ("detaching",), status,
                                 task_deadline=None, **values)
            if done and failure:
                self.rt.tell_user(ctx, Action.DETACH_VOLUME, resource_uuid=volume_id,
                                  exception=failure, detail=Detail.DETACH_ERROR)

    def create_snapshot(self, ctx: dict, snapshot_id: str) -> None:
        failure = self._attempt("create_snapshot")
        with self.rt.engine.begin() as conn:
            done = db.transition(conn, db.snapshots, snapshot_id, ("creating",),
                                 "error" if failure else "available", task_deadline=None)
            if done and failure:
                self.rt.tell_user(ctx, Action.SNAPSHOT_CREATE,
                                  resource_type=Resource.VOLUME_SNAPSHOT, resource_uuid=snapshot_id,
                                  exception=failure,
                                  detail=Detail.SNAPSHOT_CREATE_ERROR)

    def delete_snapshot(self, ctx: dict, snapshot_id: str) -> None:
        failure = self._attempt("delete_snapshot")
        with self.rt.engine.begin() as conn:
            if failure:
                done = db.transition(conn, db.snapshots, snapshot_id, ("deleting",),
                                     "error_deleting", task_deadline=None)
            else:
                done = False
                db.delete_row(conn, db.snapshots, snapshot_id)
            if done:
                self.rt.tell_user(ctx, Action.SNAPSHOT_DELETE,
                                  resource_type=Resource.VOLUME_SNAPSHOT, resource_uuid=snapshot_id,
                                  exception=failure,
                                  detail=Detail.SNAPSHOT_DELETE_ERROR)

    def add_to_group(self, ctx: dict, group_id: str, volume_ids: list[str]) -> None:
        failure = self._attempt("add_to_group")
        with self.rt.engine.begin() as conn:
            group = db.get(conn, db.groups, group_id)
            if group is None or group["status"] != "updating":
                return
            for volume_id in volume_ids:
                volume = db.get(conn, db.volumes, volume_id)
                if volume is None:
                    continue
                if failure:
                    # The driver refused the update: no volume joins, each one says why.
                    self.rt.tell_user(ctx, Action.GROUP_ADD_VOLUME, resource_uuid=volume_id,
                                      exception=failure, detail=Detail.DRIVER_FAILED_GROUP_UPDATE)
                elif volume["host"] != group["host"]:
                    self.rt.tell_user(ctx, Action.GROUP_ADD_VOLUME, resource_uuid=volume_id,
                                      detail=Detail.GROUP_BACKEND_MISMATCH)
                else:
                    db.transition(conn, db.volumes, volume_id, ("available", "in-use"),
                                  volume["status"], group_id=group_id)
            db.transition(conn, db.groups, group_id, ("updating",), "available",
                          task_deadline=None)


class BackupWorker:
    """Backs volumes up to a simulated backup store (topic ``backup``)."""

    BACKEND = "backup"

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def handlers(self) -> dict[str, Any]:
        return {"create_backup": self.create_backup, "delete_backup": self.delete_backup}

    def create_backup(self, ctx: dict, backup_id: str) -> None:
        try:
            self.rt.check_fault(self.BACKEND, "create_backup")
            failure = None
        except DriverFailure as exc:
            failure = exc
        with self.rt.engine.begin() as conn:
            backup = db.get(conn, db.backups, backup_id)
            if backup is None:
                return
            done = db.transition(conn, db.backups, backup_id, ("creating",),
                                 "error" if failure else "available", task_deadline=None)
            db.transition(conn, db.volumes, backup["volume_id"], ("backing-up",), "available")
            if done and failure:
                self.rt.tell_user(ctx, Action.BACKUP_CREATE, resource_type=Resource.VOLUME_BACKUP,
                                  resource_uuid=backup_id, exception=failure,
                                  detail=Detail.BACKUP_CREATE_DRIVER_ERROR)

    def delete_backup(self, ctx: dict, backup_id: str) -> None:
        try:
            self.rt.check_fault(self.BACKEND, "delete_backup")
            failure = None
        except DriverFailure as exc:
            failure = exc
        with self.rt.engine.begin() as conn:
            if failure:
                done = db.transition(conn, db.backups, backup_id, ("deleting",), "error",
                                     task_deadline=None)
            else:
                done = False
                db.delete_row(conn, db.backups, backup_id)
            if done:
                self.rt.tell_user(ctx, Action.BACKUP_DELETE, resource_type=Resource.VOLUME_BACKUP,
                                  resource_uuid=backup_id, exception=failure,
                                  detail=Detail.BACKUP_DELETE_DRIVER_ERROR)
