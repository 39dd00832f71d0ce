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
from .external import HeaderKey
from .manager import CookieUpdate, SessionManager
from .middleware import SessionMiddleware
from .options import Options
from .serializers import JSONSerializer
from .session import Session
from .stores import MemoryStore, Store

__version__ = "0.1.0.dev0"

__all__ = [
    "SessionMiddleware",
    "SessionManager",
    "CookieUpdate",
    "Options",
    "Session",
    "SessionEvent",
    "HeaderKey",
    "MemoryStore",
    "RedisStore",
    "FileStore",
    "MemcachedStore",
    "SQLStore",
    "Store",
    "JSONSerializer",
    "WSGISessionError",
    "ConfigurationError",
    "SessionTooLarge",
    "SerializationError",
    "StoreError",
]


_LAZY_STORES = frozenset({"RedisStore", "FileStore", "MemcachedStore", "SQLStore"})


def __getattr__(name: str) -> object:
    # These stores need optional dependencies (or are rarely used): import on first use.
    if name in _LAZY_STORES:
        from . import stores

        return getattr(stores, name)
    raise AttributeError(f"module 'wsgisession' has no attribute {name!r}")
