"""``usermessages message list --series`` and ``usermessages message watch``.

Series come from the API's ``messages-ext/series`` extension. ``watch``
polls the messages list in created_at order: each poll asks from a little
before the newest time seen (``LOOKBACK``), so a message committed late with
an older created_at still shows, and remembers the ids it printed in that
span, so none prints twice.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import TYPE_CHECKING

import click
from rich.table import Table

if TYPE_CHECKING:
    from usermessages.cli.client import Client

# How far behind the newest created_at a poll looks again for late commits.
LOOKBACK = dt.timedelta(seconds=60)


def list_series(client: Client, filters: dict[str, str], limit: int | None, fmt: str) -> None:
    """Print the project's series, last seen first, following the API's pages."""
    url: str | None = f"{client.base}/messages-ext/series"
    query: dict | None = {**filters, **({"limit": limit} if limit else {})}
    found: list[dict] = []
    while url and (limit is None or len(found) < limit):
        body = client.request("GET", url, params=query).json()
        found += body["series"]
        links = [link["href"] for link in body.get("series_links", []) if link["rel"] == "next"]
        url, query = (links[0], None) if links else (None, None)
    found = found[:limit] if limit is not None else found
    if fmt == "json":
        click.echo(json.dumps(found, indent=2))
        return
    from usermessages.cli.client import console

    table = Table("Series ID", "Resource UUID", "Event ID", "Level", "Count", "Suppressed",
                  "First Seen", "Last Seen", "User Message")
    for item in found:
        table.add_row(item["id"], item["resource_uuid"] or "", item["event_id"],
                      item["message_level"], str(item["count"]), str(item["suppressed"]),
                      item["first_seen"], item["last_seen"], item["user_message"])
    console.print(table)


def _parse(created_at: str) -> dt.datetime:
    return dt.datetime.fromisoformat(created_at)


class Watch:
    """Polls for messages created since the newest seen; yields each one once."""

    def __init__(self, client: Client, filters: dict[str, str]) -> None:
        self._client = client
        self._filters = filters
        self._newest: dt.datetime | None = None
        self._seen: dict[str, dt.datetime] = {}

    def _newest_stored(self) -> dt.datetime | None:
        query = {**self._filters, "sort": "created_at:desc", "limit": "1"}
        body = self._client.request("GET", f"{self._client.base}/messages", params=query).json()
        return _parse(body["messages"][0]["created_at"]) if body["messages"] else None

    def _since(self, since: dt.datetime | None) -> list[dict]:
        query: dict | None = {**self._filters, "sort": "created_at:asc"}
        if since is not None and query is not None:
            query["created_since"] = since.isoformat()
        url: str | None = f"{self._client.base}/messages"
        found: list[dict] = []
        while url:
            body = self._client.request("GET", url, params=query).json()
            found += body["messages"]
            links = [link["href"] for link in body.get("messages_links", [])
                     if link["rel"] == "next"]
            url, query = (links[0], None) if links else (None, None)
        return found

    def start(self) -> None:
        """Take what is stored now as seen: only what comes later is new."""
        self._newest = self._newest_stored()
        if self._newest is not None:
            for message in self._since(self._newest - LOOKBACK):
                self._seen[message["id"]] = _parse(message["created_at"])

    def poll(self) -> list[dict]:
        """Messages not printed yet, oldest first."""
        since = self._newest - LOOKBACK if self._newest is not None else None
        new = []
        for message in self._since(since):
            if message["id"] in self._seen:
                continue
            created = _parse(message["created_at"])
            self._seen[message["id"]] = created
            self._newest = max(self._newest or created, created)
            new.append(message)
        if self._newest is not None:  # what the next poll cannot return again is forgotten
            horizon = self._newest - LOOKBACK
            self._seen = {k: v for k, v in self._seen.items() if v >= horizon}
        return new


def _line(message: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(message, separators=(",", ":"))
    return "  ".join((message["created_at"], message["message_level"], message["event_id"],
                      message.get("resource_uuid", "-"), message["id"],
                      message["user_message"]))


def watch(client: Client, filters: dict[str, str], interval: float, count: int | None,
          duration: float | None, fmt: str, stop: threading.Event | None = None) -> int:
    """Print new messages as they come until ``count`` printed, ``duration`` over, or Ctrl-C.

    Returns how many were printed.
    """
    stop = stop or threading.Event()
    deadline = None if duration is None else time.monotonic() + duration
    printed = 0
    follower = Watch(client, filters)
    try:
        follower.start()
        click.echo("watching for new messages (Ctrl-C to stop)", err=True)
        while True:
            for message in follower.poll():
                click.echo(_line(message, fmt))
                printed += 1
                if count is not None and printed >= count:
                    return printed
            wait = interval if deadline is None else min(interval, deadline - time.monotonic())
            if wait <= 0 or stop.wait(wait):
                return printed
    except KeyboardInterrupt:
        return printed  # Ctrl-C is how a watch ends: exit 0


def check_series_options(**given: str | None) -> None:
    """Series have no request id, level filter, marker or sort: say so instead of ignoring."""
    unused = [name for name, value in given.items() if value is not None]
    if unused:
        raise click.UsageError(f"--series does not take --{unused[0].replace('_', '-')}")
