"""Event Viewer in the Admin dashboard: every project's messages and the service ones.

Shown to admins as Horizon's admin Volumes panel is; the data needs a system role
assignment (see usermessages_dashboard.api).
"""

import horizon
from django.utils.translation import gettext_lazy as _


class EventViewer(horizon.Panel):
    name = _("Event Viewer")
    slug = "event_viewer"
    permissions = (("openstack.services.block-storage", "openstack.services.block-store",
                    "openstack.services.volumev3", "openstack.services.volume"),)
    policy_rules = (("volume", "context_is_admin"), ("volume", "message:get_all"))
