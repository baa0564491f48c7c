"""The collector's batched insert rate on a throwaway PostgreSQL, as series cost it.

    python bench/series_insert.py [N] [BATCH] [ROUNDS]

Prints {"messages": N, "batch": B, "rates": [...], "median": R} (messages per second):
N messages in batches of B through ``writer.insert``, one transaction per
batch, as the collector does. The mix: 100 projects, a tenth of them failing
repeatedly on the same volume (series of many), the rest on fresh volumes
(series of one). Run it from another checkout with PYTHONPATH=<checkout> to
compare a commit before series existed (from that checkout's directory). On a
shared machine separate runs vary more than series cost: bench/series_cost.py
measures that A/B, batch by batch.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid

from tests.harness import servers
from usermessages.catalog import Action, Detail, Kind, Resource
from usermessages.message import Message
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer


def _messages(n: int) -> list[Message]:
    repeated = [str(uuid.uuid4()) for _ in range(10)]
    return [
        Message.create(Kind.API, Action.ATTACH_VOLUME, Resource.VOLUME, ttl=86400,
                       project_id=f"{i % 100:08x}", request_id=f"req-{uuid.uuid4()}",
                       resource_uuid=repeated[i % 10] if i % 10 == 0 else str(uuid.uuid4()),
                       detail=Detail.ATTACH_ERROR)
        for i in range(n)
    ]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    rates: list[int] = []
    with servers.postgresql_server() as admin_url:
        for round_ in range(rounds):
            engine = store_engine.connect(servers.create_database(admin_url, f"bench{round_}"))
            migrate.upgrade(engine)
            messages = _messages(n)
            started = time.perf_counter()
            for start in range(0, n, batch):
                with engine.begin() as conn:
                    writer.insert(conn, writer.rows_of(messages[start:start + batch]))
            rates.append(round(n / (time.perf_counter() - started)))
            engine.dispose()
    print(json.dumps({"messages": n, "batch": batch, "rates": rates,
                      "median": statistics.median(rates)}))


if __name__ == "__main__":
    main()
