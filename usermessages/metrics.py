"""Counters for what the SDK, the collector and the API do, in Prometheus' registry.

The API serves them at /metrics; a producer process can expose the same
registry its own way. Counting is cheap and never raises.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CREATED = Counter("usermessages_sdk_created", "Messages the SDK accepted", ["sink"])
FAILED = Counter("usermessages_sdk_failed", "Messages the SDK could not record or spool")
SPOOLED = Counter(
    "usermessages_sdk_spooled", "Messages spooled locally while the broker was unreachable"
)
REPLAYED = Counter(
    "usermessages_sdk_replayed", "Spooled messages published after the broker came back"
)
DROPPED = Counter("usermessages_sdk_dropped", "Oldest spooled messages dropped: spool full")
LOST = Counter(
    "usermessages_sdk_lost",
    "Undelivered messages an in-memory spool still held when the messenger closed",
)
PUBLISHED = Counter("usermessages_sdk_published", "Messages the broker confirmed")
# Gauges add up over the live processes of a node in multiprocess mode (API workers).
SPOOL_DEPTH = Gauge("usermessages_sdk_spool_depth", "Messages waiting in the local spool",
                    multiprocess_mode="livesum")

STORED = Counter("usermessages_collector_stored", "Messages the collector inserted")
DUPLICATES = Counter(
    "usermessages_collector_duplicates", "Redelivered messages already stored (ignored)"
)
DEAD_LETTERED = Counter(
    "usermessages_collector_dead_lettered", "Envelopes rejected to the dead-letter queue",
    ["source"],
)
SUPPRESSED = Counter(
    "usermessages_collector_suppressed",
    "Occurrences storm control did not store as rows (counted on their series)",
)
DB_RETRIES = Counter(
    "usermessages_collector_db_retries", "Writes that found the store down (collectors retry them)"
)
DEADLOCK_RETRIES = Counter(
    "usermessages_collector_deadlock_retries",
    "Batches the store aborted for another transaction and the writer ran again (a "
    "deadlock; on Galera, a certification conflict: writes reach more than one node)",
)
UNMAPPED = Counter(
    "usermessages_collector_unmapped_notifications",
    "OpenStack error notifications with no mapping (never stored)", ["event_type"]
)

HELD = Gauge(
    "usermessages_api_slots_held",
    "Event streams and exports this node's API processes hold open now", ["kind"],
    multiprocess_mode="livesum",
)
REFUSED = Counter(
    "usermessages_api_slots_refused",
    "Event streams and exports refused: the server's cap (total) or a project's (project)",
    ["kind", "cap"],
)
