"""The ``db`` sink: each message inserted straight into the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from usermessages.errors import ConfigError
from usermessages.message import Message

if TYPE_CHECKING:
    from usermessages.store.series import Policy


class DatabaseSink:
    """Insert each record straight into the store (the ``db`` sink).

    Through the store's one Writer, as the collectors do: one short
    transaction per message, series and storm control by ``policy``.
    """

    def __init__(self, url: str, policy: Policy | None = None) -> None:
        # Imported here so that a bus-only producer never loads SQLAlchemy.
        try:
            from usermessages.store import engine as store_engine
            from usermessages.store.writer import Writer
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"a database URL needs the server extra ({exc.name} is not installed): "
                "pip install 'usermessages[server]', or give a bus URL") from exc

        self._engine = store_engine.connect(url)
        self._writer = Writer(self._engine) if policy is None else Writer(self._engine, policy)

    def deliver(self, message: Message) -> None:
        self._writer.write_one(message)

    def close(self) -> None:
        self._engine.dispose()
