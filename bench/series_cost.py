"""The series' share of the collector's batched insert, measured A/B in one process.

    python bench/series_cost.py [N] [BATCH]

Two fresh PostgreSQL databases take the same kind of batches in turn: one through
``writer.insert`` (rows and series), the other through the same COPY and
INSERT without series (what the store did before them). Interleaving batch by batch
makes the comparison fair on a loaded machine, where two separate runs are not.
Prints both rates in messages per second and the ratio.
"""

from __future__ import annotations

import json
import sys
import time

from bench.series_insert import _messages
from tests.harness import servers
from usermessages.store import engine as store_engine
from usermessages.store import migrate, partitions, writer


def _without_series(conn, batch) -> None:  # type: ignore[no-untyped-def]
    rows = [message.to_row() for message in batch]
    partitions.ensure(conn, (row["expires_at"] for row in rows))
    writer._copy_insert(conn, rows)  # numbers the rows itself, after its COPY


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    spent = {"series": 0.0, "without": 0.0}
    with servers.postgresql_server() as admin_url:
        engines = {name: store_engine.connect(servers.create_database(admin_url, name))
                   for name in spent}
        for engine in engines.values():
            migrate.upgrade(engine)
        batches = {name: _messages(n) for name in spent}
        for start in range(0, n, size):
            for name, insert in (("series", lambda c, b: writer.insert(c, writer.rows_of(b))),
                                 ("without", _without_series)):
                began = time.perf_counter()
                with engines[name].begin() as conn:
                    insert(conn, batches[name][start:start + size])
                spent[name] += time.perf_counter() - began
    rates = {name: round(n / seconds) for name, seconds in spent.items()}
    print(json.dumps({"messages": n, "batch": size, "rates": rates,
                      "series/without": round(rates["series"] / rates["without"], 3)}))


if __name__ == "__main__":
    main()
