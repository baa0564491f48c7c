"""Registering a subscription: its filters checked, its URL guarded, its secret made.

Shared by the API and the viewer, so both refuse the same input the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from usermessages.catalog import Level, Resource
from usermessages.config import Settings
from usermessages.errors import BadRequest, HTTPError
from usermessages.store import messages as store
from usermessages.store import webhooks as store_webhooks
from usermessages.web.views import timestamp
from usermessages.webhooks import signing
from usermessages.webhooks.targets import Targets

MAX_PER_PROJECT = 20
FIELDS = ("url", "message_level", "event_id", "resource_type")


class OverLimit(HTTPError):
    """Raised when a project already has MAX_PER_PROJECT webhooks (413 ``overLimit``)."""

    status = 413


def check(fields: Mapping[str, Any]) -> dict[str, str]:
    """The fields, each a string ('' for "any"); BadRequest naming the first bad one."""
    values = {key: fields.get(key) or "" for key in FIELDS}
    if not all(isinstance(v, str) for v in values.values()):
        raise BadRequest("Every webhook field must be a string.")
    if not values["url"]:
        raise BadRequest("A webhook needs a url.")
    levels = [level.value for level in Level]
    if values["message_level"] and values["message_level"] not in levels:
        raise BadRequest("message_level must be one of " + ", ".join(levels) + ".")
    types = [resource.value for resource in Resource]
    if values["resource_type"] and values["resource_type"] not in types:
        raise BadRequest("resource_type must be one of " + ", ".join(types) + ".")
    event = values["event_id"]
    if event and (len(event) > 255 or not event.isascii() or not event.isprintable()):
        raise BadRequest("event_id must be printable ASCII of at most 255 characters.")
    return values


def register(settings: Settings, engine: Engine, project_id: str, user_id: str,
             fields: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Store a new subscription; its row and its secret (shown to the caller once)."""
    values = check(fields)
    Targets.from_settings(settings).check(values["url"])
    secret = signing.new_secret()
    with engine.begin() as conn:
        if store_webhooks.count(conn, project_id) >= MAX_PER_PROJECT:
            raise OverLimit(f"A project may have at most {MAX_PER_PROJECT} webhooks.")
        row = {"id": str(uuid.uuid4()), "project_id": project_id, "user_id": user_id,
               "secret": secret, "enabled": True, "disabled_reason": "", "failures": 0,
               "created_at": store.utcnow(),
               # From now on: messages stored before the subscription are not sent.
               "cursor": store.last_seq(conn), **values}
        store_webhooks.create(conn, row)
    return row, secret


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A subscription as the API shows it (never its secret)."""
    return {
        "id": row["id"], "url": row["url"],
        "message_level": row["message_level"] or None, "event_id": row["event_id"] or None,
        "resource_type": row["resource_type"] or None,
        "enabled": row["enabled"], "disabled_reason": row["disabled_reason"] or None,
        "consecutive_failures": row["failures"], "created_at": timestamp(row["created_at"]),
    }
