"""Exceptions raised by wsgisession.

Every exception the library raises derives from :class:`WSGISessionError`::

    WSGISessionError(Exception)
    ├── ConfigurationError(WSGISessionError, ValueError)  bad options; raised by constructors
    ├── InvalidToken(WSGISessionError)                    hostile or stale token; never escapes
    │                                                     the middleware (fresh session + event)
    ├── SessionTooLarge(WSGISessionError, ValueError)     Set-Cookie over ``max_cookie_size``
    ├── SerializationError(WSGISessionError, TypeError)   a value the serializer cannot hold
    └── StoreError(WSGISessionError)                      a session store failed

Messages never contain a secret, a cookie value, session data or a raw session id.
"""

from __future__ import annotations

__all__ = [
    "WSGISessionError",
    "ConfigurationError",
    "InvalidToken",
    "SessionTooLarge",
    "SerializationError",
    "StoreError",
]


class WSGISessionError(Exception):
    """Base class of every exception raised by wsgisession."""


class ConfigurationError(WSGISessionError, ValueError):
    """An option is missing, of the wrong type or out of range.

    Raised at construction, never at the first request. The message names the option.
    """

    #: The name of the offending option, e.g. ``"cookie_name"``.
    option: str | None

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class InvalidToken(WSGISessionError):
    """A token could not be opened: malformed, tampered, foreign, expired or badly shaped.

    The middleware turns it into a fresh session plus an event; it never reaches the
    application. The message is a fixed description, never the token.
    """

    #: The event this rejection maps to (``invalid``, ``expired`` or ``unknown_key``).
    event: str
    #: A short snake_case reason, e.g. ``"tampered"``.
    reason: str

    #: The id inside a token that authenticated but failed a later check (expiry);
    #: used only to hash into events, never shown in the message.
    session_id: str | None

    def __init__(
        self, reason: str, event: str = "invalid", *, session_id: str | None = None
    ) -> None:
        super().__init__(f"{event}: {reason}")
        self.event = event
        self.reason = reason
        self.session_id = session_id


class SessionTooLarge(WSGISessionError, ValueError):
    """The ``Set-Cookie`` header would exceed ``max_cookie_size``.

    Browsers silently drop an oversized cookie and keep the previous one, so the
    middleware refuses to emit it. Move large data to a server-side store.
    """

    #: Size in bytes of the header value that would have been sent.
    size: int
    #: The configured limit.
    limit: int

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"session cookie would be {size} bytes, over max_cookie_size={limit}; "
            "store less in the session or use a server-side store"
        )
        self.size = size
        self.limit = limit


class SerializationError(WSGISessionError, TypeError):
    """A session value (or key) cannot be serialized. The message names the key path."""

    #: Where the offending value sits, e.g. ``"['cart'][2]"``.
    path: str

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class StoreError(WSGISessionError):
    """A session store failed to read, write or delete."""

    #: The exception raised by the backend, if any.
    original_error: BaseException | None

    def __init__(self, message: str, original_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.original_error = original_error
