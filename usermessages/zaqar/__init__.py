"""Zaqar (OpenStack's queuing service) as a store and a source of user messages.

``client`` speaks Zaqar's v2 HTTP API, ``sink`` is the SDK's spool-and-forward
path into one queue per project, ``source`` is the collector that claims from
those queues into the store, ``subscriptions`` lets a project's users receive
their messages on a webhook. See docs/zaqar.md.
"""
