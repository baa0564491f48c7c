"""Where user messages live in Zaqar: the queues' names and the admin project.

One place for the SDK's zaqar sink (usermessages.sinks.zaqar), the Zaqar
collector and subscriptions, so all three name the same queues.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from usermessages.config import DEFAULTS, Settings


@dataclass(frozen=True)
class Layout:
    """Where messages go in Zaqar (shared by the sink, the collector and subscriptions)."""

    queue: str = DEFAULTS.zaqar_queue
    admin_project: str = DEFAULTS.zaqar_admin_project
    index_queue: str = DEFAULTS.zaqar_index_queue
    dead_letter_queue: str = DEFAULTS.zaqar_dead_letter_queue

    def project_of(self, message: dict[str, Any]) -> str:
        return message.get("project_id") or self.admin_project


def layout_from_settings(settings: Settings) -> Layout:
    return Layout(queue=settings.zaqar_queue, admin_project=settings.zaqar_admin_project,
                  index_queue=settings.zaqar_index_queue,
                  dead_letter_queue=settings.zaqar_dead_letter_queue)
