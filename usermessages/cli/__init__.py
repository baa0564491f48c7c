"""The ``usermessages`` command line: server-side commands and an API client."""
