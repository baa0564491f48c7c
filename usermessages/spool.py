"""A durable, bounded, local spool of envelopes waiting for the bus.

Every envelope the SDK creates is written here first and removed only once
the broker has confirmed it, so a broker that is down, unreachable or silent
costs the caller one local SQLite insert and never a network wait; a crash
loses nothing already spooled. Oldest first, always. When the spool is full
the oldest envelopes are dropped (and counted): a failure message from hours
ago matters less than the one that just happened.

stdlib sqlite3 on purpose: the SDK must stay light.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from usermessages.config import DEFAULTS

_REMOVE_CHUNK = 500  # below SQLite's oldest limit on bound parameters (999)


class Spool:
    """A FIFO of envelope bytes in a SQLite file (or in memory when ``path`` is None)."""

    def __init__(self, path: str | Path | None,
                 max_messages: int = DEFAULTS.sdk_spool_max_messages) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        target = ":memory:"
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            target = str(path)
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash without an fsync per insert.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB)"
        )
        self._max = max_messages
        self.durable = path is not None  # a file outlives the process; memory does not
        self._lock = threading.Lock()
        self._count = self._db.execute("SELECT count(*) FROM spool").fetchone()[0]
        self.dropped = 0

    def append(self, body: bytes) -> int:
        """Add an envelope; returns how many old ones were dropped to make room."""
        with self._lock:
            dropped = 0
            if self._count >= self._max:
                dropped = self._count - self._max + 1
                self._db.execute(
                    "DELETE FROM spool WHERE seq IN (SELECT seq FROM spool ORDER BY seq LIMIT ?)",
                    (dropped,),
                )
                self._count -= dropped
                self.dropped += dropped
            self._db.execute("INSERT INTO spool (body) VALUES (?)", (body,))
            self._count += 1
            return dropped

    def oldest(self, limit: int) -> list[tuple[int, bytes]]:
        with self._lock:
            return self._db.execute(
                "SELECT seq, body FROM spool ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()

    def remove(self, seqs: list[int]) -> None:
        """Remove envelopes the far end has taken.

        One statement per few hundred seqs, not one per envelope: a caller's
        append waits on this lock, so it is held for as short as can be.
        """
        if not seqs:
            return
        with self._lock:
            for start in range(0, len(seqs), _REMOVE_CHUNK):
                chunk = seqs[start:start + _REMOVE_CHUNK]
                removed = self._db.execute(
                    f"DELETE FROM spool WHERE seq IN ({', '.join('?' * len(chunk))})", chunk)
                self._count -= removed.rowcount

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()
