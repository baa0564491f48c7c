from django.urls import re_path

from usermessages_dashboard.dashboards.project.event_viewer import views

# Ids only (Cinder's are UUIDs): when the panel is a dashboard's default, its patterns
# are also mounted at the dashboard's root, where "event_viewer/" must stay the index.
urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^(?P<message_id>[0-9a-fA-F-]+)/$", views.DetailView.as_view(), name="detail"),
]
