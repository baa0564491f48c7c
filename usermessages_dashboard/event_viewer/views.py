"""The index (a paged, filtered DataTable) and a message's detail page."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, tables, tabs
from horizon.utils import functions as horizon_utils
from horizon.utils import memoized

from usermessages_dashboard import api
from usermessages_dashboard.event_viewer import filters
from usermessages_dashboard.event_viewer import tables as messages_tables
from usermessages_dashboard.event_viewer import tabs as messages_tabs


class IndexView(tables.PagedTableMixin, tables.DataTableView):
    table_class = messages_tables.MessagesTable
    page_title = _("Event Viewer")
    dashboard = "project"

    def get_data(self) -> list[Any]:
        marker, sort_dir = self._get_marker()
        try:
            opts = filters.search_opts(self.table.get_filter_field(),
                                       self.table.get_filter_string() or "")
            page = api.message_list_paged(
                self.request, search_opts=opts, marker=marker, sort_dir=sort_dir,
                page_size=horizon_utils.get_page_size(self.request),
                all_projects=self.table.all_projects)
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve messages."))
            return []
        self._has_more_data, self._has_prev_data = page.has_more, page.has_prev
        for message in page.messages:
            annotate(self.request, message, self.dashboard, self.table.all_projects)
        return page.messages


def annotate(request: Any, message: Any, dashboard: str, all_projects: bool) -> Any:
    """What the table shows beyond the API's fields: the tenant and the dashboard."""
    message.dashboard = dashboard
    if all_projects:
        message.tenant = getattr(message, "project_id", None)
    else:
        message.tenant = request.user.project_name
    return message


class DetailView(tabs.TabView):
    tab_group_class = messages_tabs.MessageDetailTabs
    template_name = "horizon/common/_detail.html"
    page_title = "{{ message.event_id }}"
    dashboard = "project"
    all_projects = False

    @memoized.memoized_method
    def get_data(self) -> Any:
        try:
            message = api.message_get(self.request, self.kwargs["message_id"],
                                      all_projects=self.all_projects)
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve the message."),
                              redirect=self.get_redirect_url())
        return annotate(self.request, message, self.dashboard, self.all_projects)

    def get_redirect_url(self) -> str:
        return reverse(f"horizon:{self.dashboard}:event_viewer:index")

    def get_context_data(self, **kwargs: Any) -> dict:
        context = super().get_context_data(**kwargs)
        message = self.get_data()
        table = messages_tables.MessagesTable(self.request)
        table.all_projects = self.all_projects
        context["message"] = message
        context["url"] = self.get_redirect_url()
        context["actions"] = table.render_row_actions(message)
        return context

    def get_tabs(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return self.tab_group_class(request, message=self.get_data(),
                                    all_projects=self.all_projects, **kwargs)
