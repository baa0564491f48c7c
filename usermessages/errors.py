"""The project's exception tree: one root, each front end renders it once."""

from __future__ import annotations

# Cinder's (webob's) text for a 404; clients may match it.
NOT_FOUND_TEXT = "The resource could not be found."


class UserMessagesError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(UserMessagesError):
    """Raised when a configuration file or option is invalid."""


class CatalogError(UserMessagesError, ValueError):
    """Raised when a catalog entry is unknown or an override file is invalid.

    On the producer side this is a programming error and is meant to be loud.
    """


class StoreError(UserMessagesError):
    """Raised when the store cannot be reached or is not at the expected schema."""


class StoreUnavailable(StoreError):
    """Raised when the database does not answer within the request's deadline."""


class HTTPError(UserMessagesError):
    """An error with an HTTP status, rendered by the API as a Cinder fault body."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(HTTPError):
    """Raised when a request is malformed (400 ``badRequest``)."""

    status = 400


class Unauthorized(HTTPError):
    """Raised when a request carries no usable credentials (401)."""

    status = 401


class Forbidden(HTTPError):
    """Raised when policy denies an action (403 ``forbidden``)."""

    status = 403


class NotFound(HTTPError):
    """Raised when a resource does not exist or is not visible (404 ``itemNotFound``)."""

    status = 404


class NotAcceptable(HTTPError):
    """Raised when a microversion is out of range (406, Cinder's ``computeFault``)."""

    status = 406


class KeystoneUnavailable(HTTPError):
    """Raised when Keystone cannot be asked about a token or a sign-in (503)."""

    status = 503


class LimitReached(HTTPError):
    """Raised when a bounded resource (event streams, exports) has no slot for a caller.

    ``retry_after`` is the seconds a client should wait (sent as Retry-After).
    """

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerBusy(LimitReached):
    """Raised when every slot of this server is taken (503 ``serviceUnavailable``)."""

    status = 503


class ProjectOverLimit(LimitReached):
    """Raised when the caller's project holds its share of the slots (429 ``overLimit``)."""

    status = 429


class MessageNotFound(NotFound):
    """Raised when a message does not exist, is deleted, or belongs to another project."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"Message {message_id} could not be found.")


class SeriesNotFound(NotFound):
    """Raised when a series does not exist (or expired) or belongs to another project."""

    def __init__(self, series_id: str) -> None:
        super().__init__(f"Series {series_id} could not be found.")
