"""wsgisession: encrypted, lazy, koa-session-style sessions for any WSGI application."""

from __future__ import annotations

from .errors import (
    ConfigurationError,
    SerializationError,
    SessionTooLarge,
    StoreError,
    WSGISessionError,
)
from .events import SessionEvent
from .middleware import SessionMiddleware
from .serializers import JSONSerializer
from .session import Session

__version__ = "0.1.0.dev0"

__all__ = [
    "SessionMiddleware",
    "Session",
    "SessionEvent",
    "JSONSerializer",
    "WSGISessionError",
    "ConfigurationError",
    "SessionTooLarge",
    "SerializationError",
    "StoreError",
]
