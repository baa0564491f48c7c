"""The SDK's bus sink: spool locally, forward to the broker in the background.

The spooling, the forwarder thread, flush/stop/close and their accounting are
ForwardingSink's (forwarding.py); this module says only how a batch goes to the
broker: published oldest first, as packs of envelopes, each confirmed by the
broker (on a quorum queue, once a majority of the cluster holds it), removed
from the spool only once every pack of the batch is confirmed. A batch that
fails (a nack, a lost connection, the node gone) stays spooled whole and is
published again, through the next broker of the URL: the collector ignores the
ids that had got through.
"""

from __future__ import annotations

import logging

from kombu import Connection, Producer

from usermessages import bus, envelope
from usermessages.config import DEFAULTS
from usermessages.sinks.forwarding import MAX_BACKOFF, ForwardingSink
from usermessages.sinks.spool import Spool

LOG = logging.getLogger(__name__)


class BusSink(ForwardingSink):
    """A Messenger sink that goes through the local spool to the bus."""

    far_end = "message broker"

    def __init__(
        self,
        url: str,
        spool: Spool,
        *,
        timeout: float = DEFAULTS.bus_timeout,
        queue_type: str = DEFAULTS.bus_queue_type,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self._url = url
        self._queue_type = queue_type
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        super().__init__(spool, timeout=timeout, max_backoff=max_backoff,
                         thread_name="usermessages-forwarder")

    def _publish(self, batch: list[tuple[int, bytes]]) -> None:
        producer = self._ensure_producer()
        bodies = [body for _seq, body in batch]
        # One envelope goes as itself; more go as packs (see envelope.PACK_CONTENT_TYPE).
        groups = envelope.packs(bodies) if len(bodies) > 1 else [bodies]
        for group in groups:
            single = len(group) == 1
            producer.publish(
                group[0] if single else envelope.join(group),
                exchange=bus.EXCHANGE,
                routing_key=bus.MESSAGES_KEY,
                content_type=envelope.CONTENT_TYPE if single else envelope.PACK_CONTENT_TYPE,
                content_encoding="utf-8",
                delivery_mode=2,
                retry=False,
                timeout=self._timeout,
            )  # returns once the broker confirms it (bounded by read_timeout)
        self._settled(seq for seq, _ in batch)

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            connection = bus.connect(self._url, timeout=self._timeout, confirms=True)
            bus.ensure(connection, self._timeout)
            bus.declare(connection, self._queue_type)
            self._connection = connection
            self._producer = Producer(connection.default_channel)
        return self._producer

    def _disconnect(self) -> None:
        self._producer = None
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # already broken; nothing to save
                LOG.debug("error closing broker connection", exc_info=True)
            self._connection = None
