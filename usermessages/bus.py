"""The bus: kombu connections and the topology producers and collectors share.

``memory://`` (the embedded default) is kombu's in-process transport: the
SDK and the collector must live in the same process, as they do in
``usermessages serve``. RabbitMQ is for everything at scale, named either as
OpenStack services name it, ``rabbit://u:p@h1:5672,u:p@h2:5672,u:p@h3:5672/``
(oslo.messaging's ``transport_url``: hosts of a cluster, comma separated), or
as kombu does, ``amqp://u:p@h1:5672//;amqp://u:p@h2:5672//``. Several hosts
are alternates: a connection that fails goes to the next one.

Every connection has connect, read and write timeouts, so a broker that
accepts a socket and then says nothing can stall a thread for seconds, never
forever. On a cluster, ``[bus] queue_type = quorum`` makes both queues quorum
queues, replicated by Raft: a node that dies takes no queue with it.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from kombu import Connection, Exchange, Queue

from usermessages.config import DEFAULTS

EXCHANGE = Exchange("usermessages", type="direct", durable=True)
MESSAGES_KEY = "message"
DEAD_KEY = "dead"
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp", "rabbit")
BUS_SCHEMES = (*AMQP_SCHEMES, "memory", "filesystem")


def is_bus_url(url: str) -> bool:
    return url.split(":", 1)[0].lower() in BUS_SCHEMES


def is_amqp(url: str) -> bool:
    return url.split(":", 1)[0].lower() in AMQP_SCHEMES


def kombu_url(url: str) -> str:
    """The URL as kombu takes it: a ``rabbit://`` transport_url becomes amqp:// alternates.

    As oslo.messaging parses it: the netloc split on commas, each host with its
    own ``user:password@`` (percent-encoded), port 5672 unless given, one
    virtual host for all (``/`` when the path is empty or ``/``), the query kept
    (``?ssl=1``). Any other URL is kombu's already and is returned unchanged.
    """
    if url.split(":", 1)[0].lower() != "rabbit":
        return url
    parts = urlsplit(url)
    vhost = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    path = "/" + quote(vhost or "/", safe="")
    query = f"?{parts.query}" if parts.query else ""
    hosts = [host for host in parts.netloc.split(",") if host]
    if not hosts:
        raise ValueError(f"no host in {redacted(url)}")
    alternates = []
    for host in hosts:
        credentials, _, address = host.rpartition("@")
        if ":" not in address.rsplit("]", 1)[-1]:
            address += ":5672"
        login = f"{credentials}@" if credentials else ""
        alternates.append(f"amqp://{login}{address}{path}{query}")
    return ";".join(alternates)


def redacted(url: str) -> str:
    """The URL with every password replaced by ``***`` (for logs and errors)."""
    out = []
    for alternate in url.split(";"):
        scheme, sep, rest = alternate.partition("://")
        netloc, slash, tail = rest.partition("/")
        hosts = []
        for host in netloc.split(","):
            credentials, at, address = host.rpartition("@")
            user = credentials.split(":", 1)[0]
            hosts.append(f"{user}:***@{address}" if ":" in credentials else host)
        out.append(f"{scheme}{sep}{','.join(hosts)}{slash}{tail}")
    return ";".join(out)


def _arguments(queue_type: str) -> dict[str, str] | None:
    # [bus] queue_type is checked where it is declared (config.Settings).
    return {"x-queue-type": "quorum"} if queue_type == "quorum" else None


def messages_queue(queue_type: str = DEFAULTS.bus_queue_type) -> Queue:
    """The queue collectors compete on; ``quorum`` for a RabbitMQ cluster."""
    return Queue("usermessages.messages", EXCHANGE, routing_key=MESSAGES_KEY,
                 durable=True, queue_arguments=_arguments(queue_type))


def dead_letter_queue(queue_type: str = DEFAULTS.bus_queue_type) -> Queue:
    """Where the collector puts what it cannot accept, with the reason in a header.

    Of the same type as the messages queue: a classic queue lives on one node,
    and with that node gone every collector would fail to dead-letter.
    """
    return Queue("usermessages.dead", EXCHANGE, routing_key=DEAD_KEY, durable=True,
                 queue_arguments=_arguments(queue_type))


def connect(url: str, *, timeout: float = DEFAULTS.bus_timeout,
            confirms: bool = True) -> Connection:
    """A (lazy) connection whose every network step is bounded by ``timeout``.

    With ``confirms``, every publish waits for the broker's confirm (on a
    quorum queue: until a majority of the cluster holds the message).
    """
    options: dict = {}
    if is_amqp(url):
        options = {"confirm_publish": confirms, "read_timeout": timeout,
                   "write_timeout": timeout}
    return Connection(kombu_url(url), connect_timeout=timeout, transport_options=options,
                      heartbeat=0)


def ensure(connection: Connection, timeout: float) -> None:
    """Connect, trying each broker of the URL once, in turn, with no pause between.

    A dead node refuses at once; one that hangs costs ``timeout``. Raises the
    last broker's error if none answers: the caller backs off and tries again.
    """
    connection.ensure_connection(max_retries=max(1, len(connection.alt)), interval_start=0,
                                 interval_step=0, timeout=timeout)


def declare(connection: Connection, queue_type: str = DEFAULTS.bus_queue_type) -> None:
    """Declare the exchange and both queues (idempotent)."""
    channel = connection.default_channel
    for queue in (messages_queue(queue_type), dead_letter_queue(queue_type)):
        queue(channel).declare()
