"""A message's detail page: one overview tab."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from horizon import tabs

from usermessages_dashboard.event_viewer.tables import resource_link


class OverviewTab(tabs.Tab):
    name = _("Overview")
    slug = "overview"
    template_name = "usermessages_dashboard/_detail_overview.html"

    def get_context_data(self, request: Any) -> dict:
        message = self.tab_group.kwargs["message"]
        return {"message": message,
                "all_projects": self.tab_group.kwargs["all_projects"],
                "resource_url": resource_link(message, message.dashboard)}


class MessageDetailTabs(tabs.DetailTabsGroup):
    slug = "message_details"
    tabs = (OverviewTab,)
