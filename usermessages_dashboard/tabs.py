"""The "Messages" tab of Horizon's volume, snapshot and backup detail pages, made to work.

Horizon 27 ships these tabs, but they filter with ``resource_type=volume`` (lower case),
which Cinder matches only through MySQL's case-insensitive collation and this service
(exact, as Cinder on SQLite or PostgreSQL) never. When the plugin's app loads, each tab
group's tab is swapped for a subclass that asks with the stored upper-case type; the
admin pages read across projects. Horizon's own table and columns are kept.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.utils.translation import gettext_lazy as _
from horizon import exceptions

from usermessages_dashboard import api

_DASHBOARDS = "openstack_dashboard.dashboards"
# (tab group, detail-view kwarg, stored resource type, the tab's data method, all projects)
GROUPS = (
    ("project.volumes.tabs.VolumeDetailTabs", "volume", "VOLUME",
     "get_volume_messages_data", False),
    ("project.snapshots.tabs.SnapshotDetailTabs", "snapshot", "VOLUME_SNAPSHOT",
     "get_snapshot_messages_data", False),
    ("project.backups.tabs.BackupDetailTabs", "backup", "VOLUME_BACKUP",
     "get_backup_messages_data", False),
    ("admin.volumes.tabs.VolumeDetailTabs", "volume", "VOLUME",
     "get_volume_messages_data", True),
    ("admin.snapshots.tabs.SnapshotDetailsTabs", "snapshot", "VOLUME_SNAPSHOT",
     "get_snapshot_messages_data", True),
    ("admin.backups.tabs.AdminBackupDetailTabs", "backup", "VOLUME_BACKUP",
     "get_backup_messages_data", True),
)
MESSAGES_SLUG = "messages_tab"


def _messages_tab(base: type, kwarg: str, resource_type: str, method: str,
                  all_projects: bool) -> type:
    def data(self: Any) -> list[Any]:
        resource = self.tab_group.kwargs[kwarg]
        try:
            return api.message_list(
                self.request, {"resource_type": resource_type, "resource_uuid": resource.id},
                all_projects=all_projects)
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve messages."))
            return []

    return type(base.__name__, (base,), {method: data, "__module__": __name__,
                                          "usermessages": True})


def replace_horizon_messages_tabs() -> None:
    for path, kwarg, resource_type, method, all_projects in GROUPS:
        module, _sep, name = f"{_DASHBOARDS}.{path}".rpartition(".")
        group = getattr(importlib.import_module(module), name)
        group.tabs = tuple(
            _messages_tab(tab, kwarg, resource_type, method, all_projects)
            if tab.slug == MESSAGES_SLUG and not getattr(tab, "usermessages", False) else tab
            for tab in group.tabs)
