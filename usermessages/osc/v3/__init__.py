"""The ``openstack message ...`` commands (command group ``openstack.message.v3``)."""
