"""The admin-only SYSTEM messages about the broker: once per outage, once per recovery.

Called by the cast circuit breaker when it opens or closes. The announcement is a
compare-and-set on the ``dependencies`` row in the service's state database, as
heartbeat.py does for services, so every process whose breaker opens for the
same outage agrees that only the first one says it.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from blockstorage import db
from usermessages import Action, Detail, Messenger

LOG = logging.getLogger(__name__)
BROKER = "broker"


def claim(engine: Engine, name: str, down: bool) -> bool:
    """Move ``name`` to ``down``; True only for the one caller that moved it."""
    with engine.begin() as conn:
        moved = conn.execute(
            update(db.dependencies)
            .where(db.dependencies.c.name == name, db.dependencies.c.reported_down != down)
            .values(reported_down=down, updated_at=db.utcnow())
        ).rowcount
        if moved or not down:
            return bool(moved)
        if conn.execute(select(db.dependencies.c.name)
                        .where(db.dependencies.c.name == name)).first():
            return False  # already announced down by another process
    try:
        with engine.begin() as conn:
            conn.execute(insert(db.dependencies).values(name=name, reported_down=True,
                                                        updated_at=db.utcnow()))
    except IntegrityError:
        return False  # another process inserted it first
    return True


def announce(engine: Engine, messenger: Messenger, host: str, down: bool) -> None:
    """Record the broker's outage (``down``) or recovery, if no process did yet."""
    if not claim(engine, BROKER, down):
        return
    LOG.warning("the message broker is %s", "unreachable" if down else "reachable again")
    messenger.create_system_message(
        Action.MESSAGE_BUS, Detail.BROKER_UNREACHABLE if down else Detail.BROKER_REACHABLE,
        host=host,
    )
