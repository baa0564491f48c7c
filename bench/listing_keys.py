"""Every documented sort and filter of the list, timed over HTTP on a seeded store.

bench/run.py calls ``measure`` at 1M and 10M rows (its seed: 1,000 projects,
rows i = 0.. with project i % 1000, a unique request id and resource per row).
A project user (its project's 1/1000 of the rows) is asked for the first page
of every sort key in both directions, of every filter it may use (a value its
project holds, and a value no row holds: the worst case, the whole range read
for nothing), of a time range, and a page deep by marker. An admin is asked
for every filter it may use, across projects. Sorts across projects by a key
other than created_at or id have no index (none before 0007 either): they are
timed on a few samples and reported as what they are.
"""

from __future__ import annotations

import hashlib
import statistics
import time
import uuid
from urllib.parse import quote

import httpx

from usermessages.reader.params import ADMIN_FILTERS, USER_FILTERS
from usermessages.store.messages import SORT_KEYS

PAGE = 50
TARGET = 0.015  # p50, seconds
Line = tuple[str, str, str]


def _seeded(kind: str, i: int) -> str:
    """A seeded row's value, as bench/run.py's SEED_OURS makes it."""
    return str(uuid.UUID(hashlib.md5(f"{kind}{i}".encode()).hexdigest()))


def _value(key: str, project_number: int, project: str) -> str:
    i = project_number + 1000 * 3  # a row of the project
    return {"resource_uuid": _seeded("v", i), "request_id": "req-" + _seeded("r", i),
            "resource_type": "VOLUME_SNAPSHOT", "event_id": "VOLUME_VOLUME_001_003",
            "message_level": "ERROR", "project_id": project, "action_id": "001",
            "detail_id": "003", "host": "node", "kind": "API", "user_id": "u"}[key]


def _times(client: httpx.Client, url: str, samples: int) -> list[float]:
    """Each sample's seconds; a request the API gave up on (503 past its deadline)
    counts as infinitely slow rather than ending the run."""
    client.get(url)  # warm
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        if response.status_code == 503:
            times[-1] = float("inf")
        else:
            response.raise_for_status()
    return times


def measure(base: str, project_number: int, project: str, size: int, samples: int,
            slow_samples: int = 3) -> tuple[list[Line], dict[str, float]]:
    """Lines for the report, and each targeted cell's p50 (seconds)."""
    lines: list[Line] = []
    p50: dict[str, float] = {}
    headers = {"OpenStack-API-Version": "volume 3.5"}
    user = httpx.Client(headers={**headers, "X-Auth-Token": f"alice:{project}"}, timeout=300)
    admin = httpx.Client(headers={**headers, "X-Auth-Token": f"admin:{project}"}, timeout=300)
    prefix = f"{base}/v3/{project}/messages?limit={PAGE}"
    cells: list[tuple[httpx.Client, str, str, bool]] = []  # client, label, url, targeted
    for key in sorted(SORT_KEYS):
        for direction in ("asc", "desc"):
            cells.append((user, f"project user, sort={key}:{direction}",
                          f"{prefix}&sort={key}:{direction}", True))
    for key in USER_FILTERS:
        value = _value(key, project_number, project)
        cells.append((user, f"project user, {key}=(a value it holds)",
                      f"{prefix}&{key}={quote(value)}", True))
        cells.append((user, f"project user, {key}=(a value no row holds)",
                      f"{prefix}&{key}=absent", True))
    cells.append((user, "project user, created_since/created_before (one hour)",
                  f"{prefix}&created_since=2026-01-01T00:00:00&created_before=2026-01-01T01:00:00",
                  True))
    halfway = user.get(f"{prefix}&sort=created_at:desc&offset={size // 1000 // 2}&limit=1")
    middle = halfway.json()["messages"][0]["id"]
    cells.append((user, "project user, halfway down by marker", f"{prefix}&marker={middle}", True))
    for key in ADMIN_FILTERS:
        cells.append((admin, f"admin, all projects, {key}=(a value rows hold)",
                      f"{prefix}&{key}={quote(_value(key, project_number, project))}", True))
    cells.append((admin, "admin, all projects, newest first", prefix, True))
    cells.append((admin, "admin, all projects, sort=id:asc", f"{prefix}&sort=id:asc", True))
    for key in sorted(SORT_KEYS - {"created_at", "id"}):
        cells.append((admin, f"admin, all projects, sort={key}:asc (no index, as before 0007)",
                      f"{prefix}&sort={key}:asc", False))
    try:
        for client, label, url, targeted in cells:
            times = _times(client, url, samples if targeted else slow_samples)
            median = statistics.median(times)
            worst = sorted(times)[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
            lines.append(("listing", f"{size:,} msgs, {label}: p50 / p99",
                          f"{median * 1000:.2f} ms / {worst * 1000:.2f} ms"
                          + ("" if targeted else f" ({len(times)} samples)")))
            if targeted:
                p50[label] = median
    finally:
        user.close()
        admin.close()
    return lines, p50
