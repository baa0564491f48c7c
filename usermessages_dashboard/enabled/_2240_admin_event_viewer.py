# Copy into openstack_dashboard/local/enabled/ to add "Event Viewer" to Admin > Volume.
PANEL = 'event_viewer'
PANEL_DASHBOARD = 'admin'
PANEL_GROUP = 'volume'
ADD_PANEL = 'usermessages_dashboard.dashboards.admin.event_viewer.panel.EventViewer'
