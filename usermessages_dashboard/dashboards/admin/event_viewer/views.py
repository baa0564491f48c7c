from usermessages_dashboard.event_viewer import tables, views


class IndexView(views.IndexView):
    table_class = tables.AdminMessagesTable
    dashboard = "admin"


class DetailView(views.DetailView):
    dashboard = "admin"
    all_projects = True
