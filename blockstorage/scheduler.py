"""The scheduler: places volumes, extensions, retypes, groups and backups, or says why not.

Runs with a prefetch of one, so placements are decided one at a time against
the allocations already recorded, like Cinder's single scheduler process.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from sqlalchemy import Connection, select

from blockstorage import db
from blockstorage.config import Backend
from blockstorage.placement import PoolState, capabilities_match, choose
from blockstorage.runtime import Runtime
from usermessages import Action, Detail, Resource
from usermessages.catalog import NoValidBackend

LOG = logging.getLogger(__name__)

TOPIC = "scheduler"


def volume_topic(backend: str) -> str:
    return f"volume.{backend}"


class Scheduler:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def handlers(self) -> dict[str, Any]:
        return {
            "create_volume": self.create_volume,
            "extend_volume": self.extend_volume,
            "retype_volume": self.retype_volume,
            "create_group": self.create_group,
            "create_backup": self.create_backup,
        }

    def _pools(self, conn, exclude_volume: str | None = None) -> list[PoolState]:  # type: ignore[no-untyped-def]
        pools = []
        for backend in self.rt.settings.backends:
            allocated = db.allocated_gb(conn, backend.host)
            if exclude_volume:
                own = db.get(conn, db.volumes, exclude_volume)
                if own and own["host"] == backend.host:
                    allocated -= own["size"]
            pools.append(PoolState(backend, allocated))
        return pools

    def _specs(self, conn, type_id: str | None) -> dict[str, str]:  # type: ignore[no-untyped-def]
        if not type_id:
            return {}
        row = db.get(conn, db.volume_types, type_id)
        return dict(row["extra_specs"]) if row else {}

    def create_volume(self, ctx: dict, volume_id: str) -> None:
        with self.rt.engine.begin() as conn:
            volume = db.get(conn, db.volumes, volume_id)
            if volume is None or volume["status"] != "creating":
                return
            # Placed already: this cast was requeued because its forward failed.
            backend = self.rt.backend_of_host(volume["host"])
            mismatch = False
            if backend is None:
                backend, mismatch = self._place(conn, volume)
                if backend is not None:
                    db.transition(conn, db.volumes, volume_id, ("creating",), "creating",
                                  host=backend.host)
        if backend is None:
            with self.rt.engine.begin() as conn:
                # Not placed: not in the group either.
                if db.transition(conn, db.volumes, volume_id, ("creating",), "error",
                                 task_deadline=None, group_id=None):
                    # Cinder's call site #1, the message tempest looks for: recorded
                    # before the error status commits, as Cinder orders it.
                    self.rt.tell_user(
                        ctx, Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid=volume_id,
                        detail=Detail.GROUP_BACKEND_MISMATCH if mismatch else None,
                        exception=None if mismatch else NoValidBackend(
                            f"no pool for {volume['size']} GiB"))
            return
        self.rt.caster.cast(volume_topic(backend.name), "create_volume", ctx,
                            task_epoch(volume), volume_id=volume_id)

    def _place(self, conn: Connection, volume: dict) -> tuple[Backend | None, bool]:
        """Where a new volume goes, and whether only its group's backend kept it out."""
        specs = self._specs(conn, volume["volume_type_id"])
        pools = self._pools(conn)
        group = db.get(conn, db.groups, volume["group_id"] or "")
        if group is None:
            pool = choose(pools, volume["size"], specs)
            return (pool.backend if pool else None), False
        # A group's volumes share its backend (cinder create --group-id).
        pool = choose([p for p in pools if p.backend.host == group["host"]], volume["size"],
                      specs)
        if pool is not None:
            return pool.backend, False
        return None, choose(pools, volume["size"], specs) is not None

    def extend_volume(self, ctx: dict, volume_id: str, new_size: int) -> None:
        with self.rt.engine.begin() as conn:
            volume = db.get(conn, db.volumes, volume_id)
            if volume is None or volume["status"] != "extending":
                return
            pools = {p.backend.host: p for p in self._pools(conn)}
            pool = pools.get(volume["host"])
            fits = pool is not None and pool.fits(new_size - volume["size"])
            # The volume stays usable: back to available, not error_extending.
            if not fits and db.transition(conn, db.volumes, volume_id, ("extending",),
                                          "available", task_deadline=None):
                self.rt.tell_user(ctx, Action.EXTEND_VOLUME, resource_uuid=volume_id,
                                  exception=NoValidBackend("no room to extend"))
        if not fits:
            return
        backend = self.rt.backend_of_host(volume["host"])
        assert backend is not None
        self.rt.caster.cast(volume_topic(backend.name), "extend_volume", ctx,
                            task_epoch(volume), volume_id=volume_id, new_size=new_size)

    def retype_volume(self, ctx: dict, volume_id: str, new_type_id: str) -> None:
        with self.rt.engine.begin() as conn:
            volume = db.get(conn, db.volumes, volume_id)
            if volume is None or volume["status"] != "retyping":
                return
            specs = self._specs(conn, new_type_id)
            current = self.rt.backend_of_host(volume["host"])
            target: Backend | None
            if current is not None and capabilities_match(current, specs):
                target = current  # retype in place
            else:
                pool = choose(self._pools(conn, exclude_volume=volume_id), volume["size"], specs)
                target = pool.backend if pool else None
            if target is None and db.transition(conn, db.volumes, volume_id, ("retyping",),
                                                "available", task_deadline=None):
                self.rt.tell_user(ctx, Action.RETYPE_VOLUME, resource_uuid=volume_id,
                                  exception=NoValidBackend("no pool for the new type"))
        if target is None:
            return
        self.rt.caster.cast(volume_topic(target.name), "retype_volume", ctx, task_epoch(volume),
                            volume_id=volume_id, new_type_id=new_type_id, new_host=target.host)

    def create_group(self, ctx: dict, group_id: str) -> None:
        with self.rt.engine.begin() as conn:
            group = db.get(conn, db.groups, group_id)
            if group is None or group["status"] != "creating":
                return
            specs: dict[str, str] = {}
            for type_id in group["volume_types"]:
                specs.update(self._specs(conn, type_id))
            pool = choose(self._pools(conn), 0, specs)
            db.transition(conn, db.groups, group_id, ("creating",),
                          "available" if pool else "error",
                          host=pool.backend.host if pool else None, task_deadline=None)

    def create_backup(self, ctx: dict, backup_id: str) -> None:
        from blockstorage.heartbeat import is_up

        with self.rt.engine.begin() as conn:
            backup = db.get(conn, db.backups, backup_id)
            if backup is None or backup["status"] != "creating":
                return
            services = conn.execute(
                select(db.services).where(db.services.c.binary == "blockstorage-backup")
            ).mappings().all()
            up = any(is_up(service, self.rt.settings.service_down_time) for service in services)
            if not up:
                # Cinder's scheduler says 024 whether the service never ran or stopped
                # (no *up* backup host); 018 is its volume manager's, for another case.
                self.rt.tell_user(ctx, Action.BACKUP_CREATE, resource_type=Resource.VOLUME_BACKUP,
                                  resource_uuid=backup_id, detail=Detail.BACKUP_SCHEDULE_ERROR)
                db.transition(conn, db.backups, backup_id, ("creating",), "error",
                              task_deadline=None)
                db.transition(conn, db.volumes, backup["volume_id"], ("backing-up",),
                              "available")
        if not up:
            return
        self.rt.caster.cast("backup", "create_backup", ctx, task_epoch(backup),
                            backup_id=backup_id)



def task_epoch(row: dict) -> float:
    """The row's task deadline as an epoch, for the cast that carries the task on."""
    deadline = row.get("task_deadline")
    if deadline is None:
        return time.time() + 3600
    return deadline.replace(tzinfo=dt.UTC).timestamp()
