"""Seeding helpers for the API tests: rows with chosen times, as the SDK builds them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from usermessages.catalog import PLACEHOLDERS, Action, Catalog, Detail, Kind, Resource, event_id
from usermessages.store import writer

BASE_TIME = dt.datetime(2026, 11, 1, 12, 0, 0, 123456)
V35 = {"OpenStack-API-Version": "volume 3.5"}


def headers(user: str, project: str, version: str | None = "3.5", **extra: str) -> dict:
    out = {"X-Auth-Token": f"{user}:{project}", **extra}
    if version:
        out["OpenStack-API-Version"] = f"volume {version}"
    return out


def row(project: str | None, *, minutes: float = 0, action: Action = Action.ATTACH_VOLUME,
        detail: Detail = Detail.ATTACH_ERROR, resource: Resource = Resource.VOLUME,
        resource_uuid: str = "", request_id: str = "", level: str = "ERROR",
        kind: Kind = Kind.API, host: str = "node-1", expires_in: dt.timedelta | None = None,
        message_id: str | None = None) -> dict:
    created = BASE_TIME + dt.timedelta(minutes=minutes)
    return {
        "id": message_id or str(uuid.uuid4()), "kind": kind.value, "project_id": project,
        "user_id": "u", "request_id": request_id or f"req-{uuid.uuid4()}",
        "resource_type": resource.value, "resource_uuid": resource_uuid,
        "event_id": event_id(resource, action, detail), "message_level": level,
        "action_id": action.id, "detail_id": detail.id, "host": host,
        "exception_class": "secret.module.Boom", "created_at": created,
        "expires_at": created + (expires_in or dt.timedelta(days=30)), "deleted": False,
        "global_request_id": "",
    }


def summary(seeded: dict, catalog: Catalog) -> str:
    """The text a seeded row shows (what the catalog composes from its ids)."""
    return catalog.user_message(seeded["action_id"], seeded["detail_id"], seeded["event_id"],
                                {name: seeded[name] for name in PLACEHOLDERS})


@pytest.fixture
def seed(engine: Engine) -> Callable[..., list[dict]]:
    def insert(*rows: dict) -> list[dict]:
        with engine.begin() as conn:
            writer.insert(conn, list(rows))
        return list(rows)

    return insert
