"""What the list page adds to its rows: time presets, pages both ways, a histogram,
links to the resources.

Pure helpers over what ``routes`` reads; the page's routes stay in ``routes``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

# Relative ranges (?last=1h): resolved at each request, so a bookmark stays "the last hour".
PRESETS = {"1h": ("Last hour", dt.timedelta(hours=1)),
           "1d": ("Last day", dt.timedelta(days=1)),
           "1w": ("Last week", dt.timedelta(weeks=1))}
COLLECTIONS = {"VOLUME": "volumes", "VOLUME_SNAPSHOT": "snapshots", "VOLUME_BACKUP": "backups"}
# The histogram's frame, in SVG user units (the CSS scales it to the page).
WIDTH, HEIGHT = 800, 120


def field_time(value: str) -> str:
    """A time as a datetime-local field holds it: naive UTC to the second.

    ``since=2026-12-04T05:00:00Z`` (or with an offset) is a valid filter but
    not a valid field value, which a browser would show as empty.
    """
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value  # the list answers 400 with the reason; keep what was typed
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def apply_preset(state: dict[str, str], now: dt.datetime) -> dict[str, str]:
    """``last`` becomes a ``since`` (and no ``until``); an unknown one is dropped."""
    last = state.pop("last", None)
    if last not in PRESETS:
        return state
    state.pop("until", None)
    state["since"] = (now - PRESETS[last][1]).strftime("%Y-%m-%dT%H:%M:%S")
    state["last"] = last
    return state


def preset_links(state: dict[str, str]) -> list[dict[str, Any]]:
    kept = {k: v for k, v in state.items() if k not in ("since", "until", "last", "marker",
                                                        "before")}
    return [{"key": key, "label": label, "current": state.get("last") == key,
             "url": "/viewer/messages?" + urlencode({**kept, "last": key})}
            for key, (label, _) in PRESETS.items()]


def reversed_sort(sort: str) -> str:
    """The page order read backwards (every sort ends in tie-breakers in the first
    key's direction, so flipping that one flips them all)."""
    key, _, direction = sort.partition(":")
    return f"{key}:{'asc' if direction == 'desc' else 'desc'}"


def resource_url(template: str, resource_type: str, resource_uuid: str,
                 project_id: str | None) -> str | None:
    """Where a resource is: the configured template, else its messages here."""
    if not resource_uuid:
        return None
    collection = COLLECTIONS.get(resource_type)
    if template and collection:
        try:
            return template.format_map({
                "project_id": quote(project_id or "", safe=""),
                "collection": collection,
                "resource_uuid": quote(resource_uuid, safe="")})
        except (KeyError, ValueError, IndexError):
            pass  # a template with another placeholder: the viewer's own link
    return "/viewer/messages?" + urlencode({"resource_uuid": resource_uuid})


def choose_bucket(since: dt.datetime | None, until: dt.datetime | None,
                  now: dt.datetime) -> str:
    """Hours for up to two days, days beyond."""
    span = (until or now) - (since or (until or now) - dt.timedelta(days=1))
    return "hour" if span <= dt.timedelta(days=2) else "day"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    start: str  # ISO UTC, localized by the page's script like the rows' times
    count: int
    label: str


def bars(times: list[tuple[dt.datetime, int]], bucket: str) -> list[Bar]:
    """The histogram's bars, scaled to the tallest; each with its own text."""
    if not times:
        return []
    tallest = max(n for _, n in times) or 1
    slot = WIDTH / len(times)
    unit = "hour" if bucket == "hour" else "day"
    drawn = []
    for i, (start, n) in enumerate(times):
        height = 0.0 if n == 0 else max(2.0, HEIGHT * n / tallest)
        stamp = start.strftime("%Y-%m-%d %H:%M") if bucket == "hour" else start.strftime(
            "%Y-%m-%d")
        drawn.append(Bar(x=round(i * slot, 2), y=round(HEIGHT - height, 2),
                         width=round(max(slot - 1, 0.5), 2), height=round(height, 2),
                         start=start.strftime("%Y-%m-%dT%H:%M:%SZ"), count=n,
                         label=f"{n} message{'s' if n != 1 else ''} in the {unit} from "
                               f"{stamp} UTC"))
    return drawn

