"""The watchdog: no operation stays in a transient state past its deadline.

If no scheduler or worker picks a cast up (none running, or the cast was
lost), the resource would otherwise sit in ``creating`` forever. Every pass
moves what is overdue to the state a user can act on and tells them why.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import Engine, Table, select

from blockstorage import db, heartbeat
from blockstorage.runtime import Runtime
from usermessages import Action, Detail, Resource

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    table: Table
    status: str
    next_status: str
    action: Action
    resource: Resource


# Where an overdue task leaves its resource: usable wherever the real one would be.
RULES = (
    Rule(db.volumes, "creating", "error", Action.SCHEDULE_ALLOCATE_VOLUME, Resource.VOLUME),
    Rule(db.volumes, "extending", "available", Action.EXTEND_VOLUME, Resource.VOLUME),
    Rule(db.volumes, "retyping", "available", Action.RETYPE_VOLUME, Resource.VOLUME),
    Rule(db.volumes, "attaching", "available", Action.ATTACH_VOLUME, Resource.VOLUME),
    Rule(db.volumes, "detaching", "in-use", Action.DETACH_VOLUME, Resource.VOLUME),
    Rule(db.volumes, "deleting", "error_deleting", Action.DELETE_VOLUME, Resource.VOLUME),
    Rule(db.snapshots, "creating", "error", Action.SNAPSHOT_CREATE, Resource.VOLUME_SNAPSHOT),
    Rule(db.snapshots, "deleting", "error_deleting", Action.SNAPSHOT_DELETE,
         Resource.VOLUME_SNAPSHOT),
    Rule(db.backups, "creating", "error", Action.BACKUP_CREATE, Resource.VOLUME_BACKUP),
    Rule(db.backups, "deleting", "error", Action.BACKUP_DELETE, Resource.VOLUME_BACKUP),
)


def sweep(runtime: Runtime) -> int:
    """Fail every overdue task; returns how many."""
    now = db.utcnow()
    failed = 0
    for rule in RULES:
        with runtime.engine.connect() as conn:
            overdue = conn.execute(
                select(rule.table).where(rule.table.c.status == rule.status,
                                         rule.table.c.task_deadline < now)
            ).mappings().all()
        for row in overdue:
            with runtime.engine.begin() as conn:
                won = db.transition(conn, rule.table, row["id"], (rule.status,), rule.next_status,
                                    task_deadline=None)
                if not won:
                    continue  # a worker finished it meanwhile
                if rule.table is db.backups:
                    db.transition(conn, db.volumes, row["volume_id"], ("backing-up",),
                                  "available")
                # Before the commit: whoever sees the new status finds the reason.
                runtime.tell_user(
                    {"project_id": row["project_id"], "user_id": row["user_id"],
                     "request_id": row["task_request_id"] or ""},
                    rule.action, resource_type=rule.resource, resource_uuid=row["id"],
                    detail=Detail.OPERATION_TIMED_OUT,
                )
            failed += 1
            LOG.warning("%s %s overdue in %s: now %s", rule.resource.value, row["id"],
                        rule.status, rule.next_status)
    return failed


def run(runtime: Runtime, stop: threading.Event) -> None:
    """Sweep deadlines and check heartbeats every ``watchdog_interval`` seconds."""
    engine: Engine = runtime.engine
    while not stop.is_set():
        try:
            sweep(runtime)
            heartbeat.check(engine, runtime.messenger, runtime.settings.service_down_time)
        except Exception:  # the next pass tries again
            LOG.exception("watchdog pass failed")
        stop.wait(runtime.settings.watchdog_interval)
