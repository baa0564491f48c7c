"""The messages every benchmark stores: built by the SDK, as a service makes them."""

from __future__ import annotations

import uuid

from usermessages import Action, Detail, Messenger, RequestContext
from usermessages.message import Message

PROJECTS = 1000


def records(n: int) -> list[Message]:
    """n messages as the SDK builds them (through a capturing sink)."""
    built: list[Message] = []

    class Capture:
        def deliver(self, message: Message) -> None:
            built.append(message)

        def close(self) -> None:
            pass

    messenger = Messenger(Capture())
    for i in range(n):
        messenger.create(RequestContext(project_id=f"{i % PROJECTS:08x}", user_id="u"),
                         Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid=str(uuid.uuid4()),
                         detail=Detail.NO_BACKEND_AVAILABLE)
    return built
