"""Cinder's time format, which every body of the API shows (messages, volumes, series...).

What each audience sees of a message is ``projections``'.
"""

from __future__ import annotations

import datetime as dt

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def timestamp(value: dt.datetime | None) -> str | None:
    """Naive UTC with microseconds and no zone, exactly as Cinder emits it."""
    return value.strftime(TIME_FORMAT) if value is not None else None
