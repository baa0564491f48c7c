"""The Cinder-compatible REST API (``/v3/{project_id}/messages``)."""
