"""The spec's table: Tenant, Event ID, Node name (admin), Request ID, Level, Resource,
Time, Summary; a server-side filter and Horizon's confirmed delete, single or batch."""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import tables
from horizon.utils import filters as horizon_filters

from usermessages_dashboard import api
from usermessages_dashboard.event_viewer.filters import TIME_RANGE

# Where a resource type has a Horizon page of its own, per dashboard.
RESOURCE_PAGES = {
    "VOLUME": "volumes:detail",
    "VOLUME_SNAPSHOT": "snapshots:detail",
    "VOLUME_BACKUP": "backups:detail",
}
USER_FILTERS = (
    ("message_level", _("Level ="), True),
    ("resource_type", _("Resource type ="), True),
    ("resource_uuid", _("Resource ID ="), True),
    ("event_id", _("Event ID ="), True),
    ("request_id", _("Request ID ="), True),
    (TIME_RANGE, _("Time range (ISO 8601 start/end) ="), True),
)
ADMIN_FILTERS = USER_FILTERS + (
    ("project_id", _("Project ID ="), True),
    ("host", _("Node ="), True),
)


class MessagesFilterAction(tables.FilterAction):
    filter_type = "server"
    filter_choices = USER_FILTERS


class AdminMessagesFilterAction(tables.FilterAction):
    filter_type = "server"
    filter_choices = ADMIN_FILTERS


class DeleteMessages(tables.DeleteAction):
    policy_rules = (("volume", "message:delete"),)
    help_text = _("A deleted message no longer shows; the failure itself is not undone.")

    @staticmethod
    def action_present(count: int) -> str:
        return ngettext_lazy("Delete Message", "Delete Messages", count)

    @staticmethod
    def action_past(count: int) -> str:
        return ngettext_lazy("Deleted Message", "Deleted Messages", count)

    def get_policy_target(self, request: Any, datum: Any = None) -> dict:
        project = getattr(datum, "project_id", None) if datum else None
        return {"project_id": project or request.user.project_id}

    def delete(self, request: Any, obj_id: str) -> None:
        api.message_delete(request, obj_id,
                           all_projects=self.table.all_projects)


def resource_link(datum: Any, dashboard: str) -> str | None:
    page = RESOURCE_PAGES.get(getattr(datum, "resource_type", "") or "")
    uuid = getattr(datum, "resource_uuid", None)
    if not page or not uuid:
        return None
    try:
        return reverse(f"horizon:{dashboard}:{page}", args=(uuid,))
    except NoReverseMatch:
        return None


def _resource(datum: Any) -> str:
    kind = getattr(datum, "resource_type", None) or "-"
    uuid = getattr(datum, "resource_uuid", None)
    link = resource_link(datum, datum.dashboard)
    if link:
        return format_html('{} <a href="{}">{}</a>', kind, link, uuid)
    return format_html("{} {}", kind, uuid or "")


def _tenant(datum: Any) -> str:
    return getattr(datum, "tenant", None) or _("(none: a service message)")


class MessagesTable(tables.DataTable):
    all_projects = False
    tenant = tables.Column(_tenant, verbose_name=_("Tenant"))
    event_id = tables.Column("event_id", verbose_name=_("Event ID"))
    request_id = tables.Column("request_id", verbose_name=_("Request ID"))
    message_level = tables.Column("message_level", verbose_name=_("Level"))
    resource = tables.Column(_resource, verbose_name=_("Resource"))
    created_at = tables.Column("created_at", verbose_name=_("Time"),
                               filters=(horizon_filters.parse_isotime,))
    user_message = tables.Column("user_message", verbose_name=_("Summary"),
                                         link="horizon:project:event_viewer:detail")

    def get_object_display(self, datum: Any) -> str:
        return datum.id

    class Meta:
        name = "messages"
        verbose_name = _("Event Viewer")
        pagination_param = "marker"
        prev_pagination_param = "prev_marker"
        table_actions = (MessagesFilterAction, DeleteMessages)
        row_actions = (DeleteMessages,)


class AdminMessagesTable(MessagesTable):
    all_projects = True
    node = tables.Column("host", verbose_name=_("Node name"))
    user_message = tables.Column("user_message", verbose_name=_("Summary"),
                                         link="horizon:admin:event_viewer:detail")

    class Meta(MessagesTable.Meta):
        columns = ("tenant", "event_id", "node", "request_id", "message_level", "resource",
                   "created_at", "user_message")
        table_actions = (AdminMessagesFilterAction, DeleteMessages)
        row_actions = (DeleteMessages,)
