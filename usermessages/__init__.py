"""usermessages: tell cloud users why their asynchronous operations failed.

This top-level package is the producer SDK. It must stay light: importing it
loads neither the web framework nor the collector.
"""

from usermessages.catalog import Action, Catalog, Detail, Kind, Level, Resource, register_exception
from usermessages.context import RequestContext
from usermessages.errors import CatalogError, UserMessagesError
from usermessages.message import Message
from usermessages.messenger import Messenger

__all__ = [
    "Action",
    "Catalog",
    "CatalogError",
    "Detail",
    "Kind",
    "Level",
    "Message",
    "Messenger",
    "RequestContext",
    "Resource",
    "UserMessagesError",
    "register_exception",
]
