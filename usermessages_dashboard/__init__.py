"""The spec's "Event Viewer" as a Horizon plugin: user messages through the Cinder API.

Copy ``enabled/_1340_project_event_viewer.py`` and ``enabled/_2240_admin_event_viewer.py``
into Horizon's ``openstack_dashboard/local/enabled/`` (see the README). It talks to the
service only as Horizon talks to Cinder: python-cinderclient, the block-storage endpoint of
Keystone's catalog, the signed-in user's token.
"""

