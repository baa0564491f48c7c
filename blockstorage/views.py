"""Cinder's v3 bodies for volumes, types, snapshots, backups, groups and services.

Shaped to pass tempest's response schemas (``additionalProperties: false``),
so keys are exactly Cinder's.
"""

from __future__ import annotations

from typing import Any

from usermessages.web.views import timestamp

AVAILABILITY_ZONE = "nova"


def links(base: str, project_id: str, collection: str, row_id: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{base}/v3/{project_id}/{collection}/{row_id}"},
        {"rel": "bookmark", "href": f"{base}/{project_id}/{collection}/{row_id}"},
    ]


def volume_type(row: dict, *, with_specs: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "is_public": row["is_public"],
        "os-volume-type-access:is_public": row["is_public"],
    }
    if with_specs:
        body["extra_specs"] = dict(row["extra_specs"])
    return body


def volume(row: dict, base: str, type_name: str | None, *, is_admin: bool,
           created: bool = False) -> dict[str, Any]:
    """A volume as Cinder shows it; ``created`` for the 202 body, which has no extension keys."""
    attachments = []
    if row["attach_status"] == "attached":
        attachments.append({
            "server_id": row["instance_uuid"],
            "attachment_id": row["attachment_id"],
            "attached_at": timestamp(row["attached_at"]),
            "host_name": None,
            "volume_id": row["id"],
            "device": row["mountpoint"],
            "id": row["id"],
        })
    body: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "size": row["size"],
        "status": row["status"],
        "availability_zone": AVAILABILITY_ZONE,
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "attachments": attachments,
        "links": links(base, row["project_id"], "volumes", row["id"]),
        "volume_type": type_name,
        "snapshot_id": None,
        "source_volid": None,
        "metadata": {},
        "user_id": row["user_id"],
        "bootable": "false",
        "encrypted": False,
        "replication_status": None,
        "consistencygroup_id": None,
        "multiattach": False,
        "migration_status": None,
        "group_id": row["group_id"],
    }
    if created:
        return body
    body["os-vol-tenant-attr:tenant_id"] = row["project_id"]
    if is_admin:
        # Cinder shows the placement to admins only.
        body["os-vol-host-attr:host"] = row["host"]
    return body


def volume_summary(row: dict, base: str) -> dict[str, Any]:
    return {"id": row["id"], "links": links(base, row["project_id"], "volumes", row["id"]),
            "name": row["name"]}


def snapshot(row: dict) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "volume_id": row["volume_id"],
        "size": row["size"],
        "status": row["status"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "metadata": {},
    }


def backup(row: dict, base: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "volume_id": row["volume_id"],
        "size": row["size"],
        "status": row["status"],
        "availability_zone": AVAILABILITY_ZONE,
        "container": None,
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "fail_reason": None,
        "object_count": 0,
        "has_dependent_backups": False,
        "is_incremental": False,
        "snapshot_id": None,
        "data_timestamp": timestamp(row["created_at"]),
        "links": links(base, row["project_id"], "backups", row["id"]),
    }


def group(row: dict) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "status": row["status"],
        "availability_zone": AVAILABILITY_ZONE,
        "created_at": timestamp(row["created_at"]),
        "group_type": row["group_type"],
        "volume_types": list(row["volume_types"]),
    }


def attachment(row: dict, *, connection: bool = True) -> dict[str, Any]:
    """A volume's attachment (API 3.27) from the volume row that holds it: one attachment
    per volume here (no multiattach). ``status`` is the attachment's attach status."""
    body: dict[str, Any] = {
        "id": row["attachment_id"],
        "status": row["attach_status"],
        "instance": row["instance_uuid"],
        "volume_id": row["id"],
        "attached_at": timestamp(row["attached_at"]),
        "detached_at": None,
        "attach_mode": "rw",
    }
    if connection:
        # A simulated target: enough for a client to print, not to connect to.
        body["connection_info"] = {} if row["attach_status"] == "reserved" else {
            "driver_volume_type": "simulated",
            "data": {"volume_id": row["id"], "access_mode": "rw"},
        }
    return body
