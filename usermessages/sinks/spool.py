"""A durable, bounded, local spool of envelopes waiting for the bus.

Every envelope the SDK creates is written here first and removed only once
the broker has confirmed it, so a broker that is down, unreachable or silent
costs the caller one local SQLite insert and never a network wait; a crash
loses nothing already spooled. Oldest first, always. When the spool is full
the oldest envelopes are dropped (and counted): a failure message from hours
ago matters less than the one that just happened.

A caller's append waits only for another write (an append, or the forwarder
removing what the far end took: page-cache writes, no fsync in WAL mode with
synchronous=NORMAL), never for I/O: in a file spool the forwarder reads the
oldest envelopes on a connection of its own, without the lock, and copies the
write-ahead log into the database (the checkpoint, with its fsyncs) there too,
so an append never triggers one (SQLite's automatic checkpoint is only a
backstop, at 40 MB of log).

stdlib sqlite3 on purpose: the SDK must stay light.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from usermessages.config import DEFAULTS

_REMOVE_CHUNK = 500  # below SQLite's oldest limit on bound parameters (999)
# Pages of write-ahead log at which an append checkpoints after all: only when the
# forwarder has not (it checkpoints after each batch and each wake-up).
_BACKSTOP_CHECKPOINT = 10_000


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
        self._db = _connect(target)  # the callers' appends and the forwarder's removes
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB)"
        )
        self._max = max_messages
        self.durable = path is not None  # a file outlives the process; memory does not
        self._lock = threading.Lock()  # writes; and, in memory, reads
        if self.durable:
            self._db.execute(f"PRAGMA wal_autocheckpoint={_BACKSTOP_CHECKPOINT}")
            self._reader = _connect(target)  # the forwarder's reads and checkpoints
        else:
            self._reader = self._db  # an in-memory database has one connection
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
        """The ``limit`` oldest envelopes (the forwarder's: one reader at a time)."""
        query = "SELECT seq, body FROM spool ORDER BY seq LIMIT ?"
        if self.durable:  # its own connection: the appends go on meanwhile
            return self._reader.execute(query, (limit,)).fetchall()
        with self._lock:
            return self._db.execute(query, (limit,)).fetchall()

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the file, off the appends' path (the forwarder's).

        PASSIVE: it waits for no writer, and writers do not wait for it.
        """
        if self.durable:  # on failure, the next one copies what this one did not
            with contextlib.suppress(sqlite3.OperationalError):
                self._reader.execute("PRAGMA wal_checkpoint(PASSIVE)")

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
            if self._reader is not self._db:
                self._reader.close()
            self._db.close()


def _connect(target: str) -> sqlite3.Connection:
    db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash without an fsync per insert.
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    return db
