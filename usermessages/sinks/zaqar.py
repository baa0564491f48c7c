"""The SDK's zaqar sink: spool locally, forward to each project's Zaqar queue.

The spooling, the forwarder thread, flush/stop/close and their accounting are
ForwardingSink's (forwarding.py), as for the bus sink. This module says how a
batch goes to Zaqar: oldest first, one queue per project (``[zaqar]
queue`` in the message's project; admin-only service/system messages go to
``[zaqar] admin_project``), as few posts as Zaqar's size limit allows (the
envelopes are sent as they were spooled, never decoded and encoded again),
removed from the spool only once Zaqar answered 201 for them. A post Zaqar
refuses for good is split in halves until the message it refuses stands
alone; that one is dropped (and counted) rather than left to stall the spool,
and its neighbours go through.

Collectors learn which projects have queues from an index queue in the admin
project: the sink announces each project there before its first post, and
again every ``announce_interval`` seconds while it keeps posting for it;
collectors consume the announcements (see usermessages/zaqar/collector.py and
docs/zaqar.md).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from usermessages import metrics
from usermessages.config import DEFAULTS
from usermessages.sinks.forwarding import MAX_BACKOFF, ForwardingSink
from usermessages.sinks.spool import Spool
from usermessages.zaqar.client import MAX_POST_BYTES, MIN_TTL, ZaqarClient, ZaqarError
from usermessages.zaqar.layout import Layout, layout_from_settings

if TYPE_CHECKING:
    from usermessages.config import Settings

LOG = logging.getLogger(__name__)

ANNOUNCE_INTERVAL = 600.0


def options_from_settings(settings: Settings) -> dict[str, Any]:
    """ZaqarSink's keyword arguments from ``[zaqar]`` (Messenger.from_settings uses it)."""
    return {"layout": layout_from_settings(settings), "max_ttl": settings.zaqar_max_message_ttl,
            "auth_token": settings.zaqar_auth_token}


def zaqar_ttl(ttl: int, max_ttl: int = DEFAULTS.zaqar_max_message_ttl) -> int:
    """A message_ttl Zaqar accepts: at least 60 s, at most its max_message_ttl."""
    return max(MIN_TTL, min(ttl, max_ttl))


class ZaqarSink(ForwardingSink):
    """A Messenger sink that goes through the local spool to per-project Zaqar queues."""

    far_end = "Zaqar"

    def __init__(
        self,
        url: str,
        spool: Spool,
        *,
        ttl: int,
        layout: Layout = Layout(),
        timeout: float = DEFAULTS.zaqar_timeout,
        max_ttl: int = DEFAULTS.zaqar_max_message_ttl,
        max_backoff: float = MAX_BACKOFF,
        auth_token: str = "",
        announce_interval: float = ANNOUNCE_INTERVAL,
    ) -> None:
        self._url = url
        self._auth_token = auth_token
        self._client: ZaqarClient | None = None  # the forwarder's, opened when needed
        self._layout = layout
        self._ttl = zaqar_ttl(ttl, max_ttl)
        self._index_ttl = max_ttl  # an announcement outlives the messages it points to
        self._announce_interval = announce_interval
        self._announced: dict[str, float] = {}  # project -> monotonic time announced
        super().__init__(spool, timeout=timeout, max_backoff=max_backoff,
                         thread_name="usermessages-zaqar-forwarder")

    def _connected(self) -> ZaqarClient:
        if self._client is None:
            self._client = ZaqarClient(self._url, timeout=self._timeout,
                                       auth_token=self._auth_token)
        return self._client

    def _disconnect(self) -> None:
        # After a failure too: a fresh pool does not reuse a connection that hung.
        if self._client is not None:
            self._client.close()
            self._client = None

    def _describe(self, exc: Exception) -> str:
        return str(exc)  # ZaqarError names the URL and the cause

    def _publish(self, batch: list[tuple[int, bytes]]) -> None:
        by_project: dict[str, list[tuple[int, bytes]]] = {}
        for seq, body in batch:
            project = self._layout.project_of(json.loads(body)["message"])
            by_project.setdefault(project, []).append((seq, body))
        client = self._connected()
        for project, items in by_project.items():
            self._announce(client, project)
            for chunk in split_posts(items, self._ttl):
                self._post(client, project, chunk)

    def _post(self, client: ZaqarClient, project: str, items: list[tuple[int, bytes]]) -> None:
        try:
            client.post_encoded(project, self._layout.queue, [body for _, body in items],
                                self._ttl)
        except ZaqarError as exc:
            if not exc.permanent:
                raise
            if len(items) > 1:  # find the message Zaqar refuses; post the others
                half = len(items) // 2
                self._post(client, project, items[:half])
                self._post(client, project, items[half:])
                return
            self._drop(1, exc)  # refused for good: dropped rather than stall the spool
            self._settled([items[0][0]], published=False)
            return
        # A post whose 201 was lost is posted again; the collector ignores the ids
        # it has already stored.
        self._settled(seq for seq, _ in items)

    def _announce(self, client: ZaqarClient, project: str) -> None:
        """Put ``project`` in the index queue, at most once per announce interval."""
        if not self._layout.index_queue or project == self._layout.admin_project:
            return  # the index is off, or collectors always read the admin project
        last = self._announced.get(project)
        if last is not None and time.monotonic() - last < self._announce_interval:
            return
        client.post(self._layout.admin_project, self._layout.index_queue,
                          [{"ttl": self._index_ttl, "body": {"project": project}}])
        self._announced[project] = time.monotonic()

    def _drop(self, count: int, exc: ZaqarError) -> None:
        with self._lock:
            self.stats.dropped += count
        metrics.DROPPED.inc(count)
        LOG.error("Zaqar refused %d user messages for good; dropped them: %s", count, exc)


def split_posts(items: list[tuple[int, bytes]], ttl: int) -> list[list[tuple[int, bytes]]]:
    """``items`` in order, cut into posts whose bodies stay within Zaqar's size limit."""
    wrapper = len(b'{"messages":[]}')
    each = len(b'{"ttl":%d,"body":},' % ttl)
    posts: list[list[tuple[int, bytes]]] = []
    size = 0
    for item in items:
        cost = each + len(item[1])
        if not posts or size + cost > MAX_POST_BYTES:
            posts.append([])
            size = wrapper
        posts[-1].append(item)
        size += cost
    return posts
