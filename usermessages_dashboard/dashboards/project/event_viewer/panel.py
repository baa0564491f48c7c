"""Event Viewer in the Project dashboard's Volumes group: the project's messages."""

import horizon
from django.utils.translation import gettext_lazy as _


class EventViewer(horizon.Panel):
    name = _("Event Viewer")
    slug = "event_viewer"
    permissions = (("openstack.services.block-storage", "openstack.services.block-store",
                    "openstack.services.volumev3", "openstack.services.volume"),)
    policy_rules = (("volume", "message:get_all"),)
