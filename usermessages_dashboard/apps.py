"""The Django app Horizon loads through ADD_INSTALLED_APPS."""

from __future__ import annotations

from django.apps import AppConfig


class EventViewerConfig(AppConfig):
    name = "usermessages_dashboard"
    verbose_name = "Event Viewer"

    def ready(self) -> None:
        # Horizon's own resource "Messages" tabs filter with a lower-case resource type,
        # which matches nothing on a case-sensitive store; ours replace them.
        from usermessages_dashboard import tabs

        tabs.replace_horizon_messages_tabs()
