# Copy into openstack_dashboard/local/enabled/ to add "Event Viewer" to Project > Volumes.
PANEL = 'event_viewer'
PANEL_DASHBOARD = 'project'
PANEL_GROUP = 'volumes'
ADD_PANEL = 'usermessages_dashboard.dashboards.project.event_viewer.panel.EventViewer'
