from django.urls import re_path

from usermessages_dashboard.dashboards.admin.event_viewer import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^(?P<message_id>[^/]+)/$", views.DetailView.as_view(), name="detail"),
]
