# Copy into openstack_dashboard/local/enabled/ with the two panel files. It installs the
# plugin's Django app once (its templates; its fix of Horizon's resource "Messages" tabs).
FEATURE = 'usermessages_dashboard'
ADD_INSTALLED_APPS = ['usermessages_dashboard']
