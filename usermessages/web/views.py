"""Rendering messages as Cinder's API shows them."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from usermessages.catalog import Catalog

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def timestamp(value: dt.datetime | None) -> str | None:
    """Naive UTC with microseconds and no zone, exactly as Cinder emits it."""
    return value.strftime(TIME_FORMAT) if value is not None else None


def user_message(row: dict, catalog: Catalog) -> str:
    return catalog.user_message(
        row["action_id"], row["detail_id"], row["event_id"],
        {k: row[k] for k in ("resource_type", "resource_uuid", "request_id", "message_level")},
    )


class MessageView:
    """Builds message bodies and links for one request."""

    def __init__(self, base: str, url_project: str | None, catalog: Catalog,
                 owner_fields: bool = False) -> None:
        self._base = base
        self._project_path = f"/{url_project}" if url_project else ""
        self._catalog = catalog
        self._owner_fields = owner_fields

    def collection_url(self) -> str:
        return f"{self._base}/v3{self._project_path}/messages"

    def detail(self, row: dict) -> dict:
        message_id = row["id"]
        body = {
            "id": message_id,
            "event_id": row["event_id"],
            "user_message": user_message(row, self._catalog),
            "message_level": row["message_level"],
            "created_at": timestamp(row["created_at"]),
            "guaranteed_until": timestamp(row["expires_at"]),
            "request_id": row["request_id"],
            "links": [
                {"rel": "self", "href": f"{self.collection_url()}/{message_id}"},
                {"rel": "bookmark",
                 "href": f"{self._base}{self._project_path}/messages/{message_id}"},
            ],
        }
        # Cinder omits these keys when they are empty.
        if row["resource_type"]:
            body["resource_type"] = row["resource_type"]
        if row["resource_uuid"]:
            body["resource_uuid"] = row["resource_uuid"]
        if self._owner_fields:
            # Opt-in only: tempest's schemas forbid extra keys in a message.
            body["project_id"] = row["project_id"]
            body["host"] = row["host"]
        return body

    def index(
        self, rows: list[dict], params: list[tuple[str, str]], link_limit: int | None
    ) -> dict:
        body: dict = {"messages": [self.detail(row) for row in rows]}
        # Cinder links whenever a non-empty page is full, even if nothing is left.
        if rows and link_limit is not None and link_limit <= len(rows):
            kept = [(k, v) for k, v in params if k != "marker"]
            query = urlencode([*kept, ("marker", rows[-1]["id"])])
            body["messages_links"] = [{"rel": "next", "href": f"{self.collection_url()}?{query}"}]
        return body
