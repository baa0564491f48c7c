"""Where the SDK's messages go: the sinks, one module each, and what they share.

``forwarding`` is the mechanism under the background sinks: append to the
local ``spool``, forward in a thread.
This face imports none of them: ``Messenger.from_url`` loads only the sinks
it builds, so a bus-only producer never loads SQLAlchemy.
"""
