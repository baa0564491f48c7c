"""``usermessages message watch``: print messages as they are stored.

Polls the messages list in created_at order: each poll asks from a little
before the newest time seen (``LOOKBACK``), so a message committed late with
an older created_at still shows, and remembers the ids it printed in that
span, so none prints twice.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import click

from usermessages.cli.client import Client
from usermessages.cli.table import printable

# How far behind the newest created_at a poll looks again for late commits.
LOOKBACK = dt.timedelta(seconds=60)


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
        query = {**self._filters, "sort": "created_at:asc"}
        if since is not None:
            query["created_since"] = since.isoformat()
        return self._client.pages(f"{self._client.base}/messages", "messages", query)

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
                      message.get("resource_uuid") or "-", message["id"],
                      printable(message["user_message"])))


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
