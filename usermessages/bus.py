"""The bus: kombu connections and the topology producers and collectors share.

``memory://`` (the embedded default) is kombu's in-process transport: the
SDK and the collector must live in the same process, as they do in
``usermessages serve``. ``amqp://`` is RabbitMQ, for everything at scale.
Every connection has connect, read and write timeouts, so a broker that
accepts a socket and then says nothing can stall a thread for seconds, never
forever.
"""

from __future__ import annotations

from kombu import Connection, Exchange, Queue

from usermessages.config import DEFAULTS

EXCHANGE = Exchange("usermessages", type="direct", durable=True)
MESSAGES_KEY = "message"
DEAD_KEY = "dead"
BUS_SCHEMES = ("amqp", "amqps", "pyamqp", "memory", "filesystem")


def is_bus_url(url: str) -> bool:
    return url.split(":", 1)[0].lower() in BUS_SCHEMES


def messages_queue(queue_type: str = DEFAULTS.bus_queue_type) -> Queue:
    """The queue collectors compete on; ``quorum`` for a RabbitMQ cluster."""
    arguments = {"x-queue-type": "quorum"} if queue_type == "quorum" else None
    return Queue("usermessages.messages", EXCHANGE, routing_key=MESSAGES_KEY,
                 durable=True, queue_arguments=arguments)


def dead_letter_queue() -> Queue:
    """Where the collector puts what it cannot accept, with the reason in a header."""
    return Queue("usermessages.dead", EXCHANGE, routing_key=DEAD_KEY, durable=True)


def is_amqp(url: str) -> bool:
    return url.split(":", 1)[0].lower() in ("amqp", "amqps", "pyamqp")


def connect(url: str, *, timeout: float = DEFAULTS.bus_timeout,
            confirms: bool = True) -> Connection:
    """A (lazy) connection whose every network step is bounded by ``timeout``.

    With ``confirms``, every publish waits for the broker's confirm. A caller
    that batches (the SDK's forwarder) turns them off and commits an AMQP
    transaction per batch instead: one round trip per batch, same guarantee.
    """
    options: dict = {}
    if is_amqp(url):
        options = {"confirm_publish": confirms, "read_timeout": timeout,
                   "write_timeout": timeout}
    return Connection(url, connect_timeout=timeout, transport_options=options, heartbeat=0)


def declare(connection: Connection, queue_type: str = DEFAULTS.bus_queue_type) -> None:
    """Declare the exchange and both queues (idempotent)."""
    channel = connection.default_channel
    for queue in (messages_queue(queue_type), dead_letter_queue()):
        queue(channel).declare()
