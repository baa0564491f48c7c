"""Where the SDK's messages go: the sinks, one module each, and what they share.

``database`` inserts into the store, ``fanout`` takes several paths at once,
``bus`` and ``zaqar`` deliver in the background: ``forwarding`` appends to the
local ``spool`` and forwards in a thread.
This face imports none of them: ``Messenger.from_url`` loads only the sinks
it builds, so a bus-only producer never loads SQLAlchemy.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from usermessages.message import Message


class Sink(Protocol):
    """Where built messages go. ``deliver`` may raise on failure."""

    def deliver(self, message: Message) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Buffered(Protocol):
    """A sink that delivers in the background (the bus sink): it can be waited for."""

    def flush(self, timeout: float) -> bool: ...

    def pending(self) -> int: ...

    def stop(self, timeout: float) -> int: ...
