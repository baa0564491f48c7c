"""The openstackclient plugin: ``openstack message ...`` for the API's extensions.

Installed with ``pip install 'usermessages[osc]'`` and found by ``openstack``
through the ``openstack.cli.extension`` and ``openstack.message.v3`` entry
points. Nothing else of usermessages imports it (the SDK stays light); it
imports nothing of usermessages either: it is a client of the REST API only.
"""
