"""Where the SDK's messages go: the sinks, one module each, and what they share.

``bus`` and ``zaqar`` deliver in the background: ``forwarding`` appends to the
local ``spool`` and forwards in a thread.
This face imports none of them: ``Messenger.from_url`` loads only the sinks
it builds, so a bus-only producer never loads SQLAlchemy.
"""
