"""Zaqar (OpenStack's queuing service) as a store and a source of user messages.

``client`` speaks Zaqar's v2 HTTP API, ``layout`` names the queues (one per
project), ``collector`` claims from those queues into the store,
``subscriptions`` lets a project's users receive their messages on a webhook.
The SDK's path into those queues is usermessages.sinks.zaqar. See
docs/zaqar.md.
"""
