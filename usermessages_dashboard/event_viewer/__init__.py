"""What the project and admin Event Viewer panels share: table, filters, views."""
