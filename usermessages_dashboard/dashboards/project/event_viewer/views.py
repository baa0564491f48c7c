from usermessages_dashboard.event_viewer import views


class IndexView(views.IndexView):
    dashboard = "project"


class DetailView(views.DetailView):
    dashboard = "project"
