"""The ``both`` and ``db+zaqar`` sinks: one message down several paths."""

from __future__ import annotations

from usermessages.message import Message
from usermessages.sinks import Buffered, Sink


class FanoutSink:
    """The ``both`` sink: the database directly and the bus (Cinder's spec, phase 2).

    The collector ignores ids already stored, so a message that takes both
    paths is stored once; it fails only if every path failed.
    """

    def __init__(self, *sinks: Sink) -> None:
        self._sinks = sinks

    def deliver(self, message: Message) -> None:
        errors = []
        for sink in self._sinks:
            try:
                sink.deliver(message)
            except Exception as exc:  # try the other paths before giving up
                errors.append(exc)
        if len(errors) == len(self._sinks):
            raise errors[0]

    def flush(self, timeout: float) -> bool:
        return all(sink.flush(timeout) for sink in self._buffered())

    def pending(self) -> int:
        return sum(sink.pending() for sink in self._buffered())

    def stop(self, timeout: float) -> int:
        return sum(sink.stop(timeout) for sink in self._buffered())

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()

    def _buffered(self) -> list[Buffered]:
        return [sink for sink in self._sinks if isinstance(sink, Buffered)]
