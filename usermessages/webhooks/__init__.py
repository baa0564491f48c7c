"""Signed webhooks: subscriptions' targets (SSRF guard), Standard Webhooks signing, delivery.

Reads the store (messages by seq, subscriptions); the API, viewer and CLI
manage subscriptions through ``usermessages.store.webhooks`` and ``targets``.
"""
