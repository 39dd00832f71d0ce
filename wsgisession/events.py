"""Session events: what happened to a request's session, without what it contained.

An event is handed to the ``on_event`` callback and logged on the ``"wsgisession"``
logger. It carries the event name, the request's environ, a short hash of the
session id (never the id itself) and a machine-readable reason.

Event names: ``missed``, ``invalid``, ``expired``, ``unknown_key``, ``rotated``,
``duplicate``, ``too_large``, ``store_error``, ``interrupted``, ``late_write``,
``insecure_transport``, ``cache_control_overridden``, ``created``, ``regenerated``,
``destroyed``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["SessionEvent", "session_id_hash", "EVENT_NAMES", "LEVELS", "Emitter", "logger"]

#: The library's logger: every event is logged here at its level (:data:`LEVELS`).
logger = logging.getLogger("wsgisession")

EVENT_NAMES = frozenset(
    {
        "missed",
        "invalid",
        "expired",
        "unknown_key",
        "rotated",
        "duplicate",
        "too_large",
        "store_error",
        "interrupted",
        "late_write",
        "insecure_transport",
        "cache_control_overridden",
        "created",
        "regenerated",
        "destroyed",
    }
)


#: The log level of each event: rejections and failures are warnings, lifecycle steps
#: debug, the rest info.
LEVELS: dict[str, int] = {
    **{name: logging.INFO for name in EVENT_NAMES},
    **{
        name: logging.WARNING
        for name in (
            "invalid",
            "unknown_key",
            "duplicate",
            "too_large",
            "store_error",
            "interrupted",
            "late_write",
            "insecure_transport",
        )
    },
    **{name: logging.DEBUG for name in ("created", "regenerated", "destroyed")},
}


def session_id_hash(session_id: str) -> str:
    """The first 16 hex digits of SHA-256 over ``b"wsgisession-log:" + id``.

    Safe to log: it correlates log lines for one session without revealing the id.
    """
    digest = hashlib.sha256(b"wsgisession-log:" + session_id.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


class SessionEvent:
    """One thing that happened to a session.

    :param name: one of :data:`EVENT_NAMES`.
    :param environ: the WSGI environ of the request (the application's own data; it
        is deliberately left out of ``repr``).
    :param session_id_hash: :func:`session_id_hash` of the session id, or ``None``
        when no session id is known (e.g. a token that failed to open).
    :param reason: a short snake_case word, e.g. ``"tampered"``.
    """

    __slots__ = ("name", "environ", "session_id_hash", "reason")

    def __init__(
        self,
        name: str,
        environ: dict[str, Any],
        session_id_hash: str | None,
        reason: str,
    ) -> None:
        self.name = name
        self.environ = environ
        self.session_id_hash = session_id_hash
        self.reason = reason

    def __repr__(self) -> str:
        return (
            f"SessionEvent(name={self.name!r}, reason={self.reason!r}, "
            f"session_id_hash={self.session_id_hash!r})"
        )


class Emitter:
    """Logs events on :data:`logger` and hands them to an ``on_event`` callback.

    When neither the logger (at the event's level) nor a callback listens, nothing is
    computed: not even the id's hash. A failing callback is logged, never raised.
    """

    __slots__ = ("on_event",)

    def __init__(self, on_event: Callable[[SessionEvent], None] | None = None) -> None:
        self.on_event = on_event

    def emit(
        self,
        name: str,
        environ: dict[str, Any],
        session_id: str | None,
        reason: str,
        cause: BaseException | None = None,
    ) -> None:
        """Log and deliver one event. ``cause`` (a store failure) goes into the log line
        only: its message and the backend's exception class, never session data."""
        level = LEVELS[name]
        logged = logger.isEnabledFor(level)
        if not logged and self.on_event is None:
            return  # nobody listens: skip hashing the id
        id_hash = None if session_id is None else session_id_hash(session_id)
        if logged:
            if cause is None:
                logger.log(level, "session %s: %s (session %s)", name, reason, id_hash or "-")
            else:
                logger.log(
                    level,
                    "session %s: %s (session %s): %s",
                    name,
                    reason,
                    id_hash or "-",
                    describe_failure(cause),
                )
        if self.on_event is not None:
            try:
                self.on_event(SessionEvent(name, environ, id_hash, reason))
            except Exception:
                logger.exception("on_event callback failed for a %s event", name)


def describe_failure(exc: BaseException) -> str:
    """A store failure in one line: its message, and the backend's exception class."""
    text = str(exc) or type(exc).__name__
    original = getattr(exc, "original_error", None)
    if original is not None and type(original).__name__ not in text:
        text = f"{text} [{type(original).__name__}]"
    return text
