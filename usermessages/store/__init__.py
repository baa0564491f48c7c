"""The store: the messages table, its queries, migrations and connections."""
