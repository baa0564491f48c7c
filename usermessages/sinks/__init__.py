"""Where the SDK's messages go: the sinks, one module each, and what they share.

``spool`` is the local store the background sinks write first.
This face imports none of them: ``Messenger.from_url`` loads only the sinks
it builds, so a bus-only producer never loads SQLAlchemy.
"""
