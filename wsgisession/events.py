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
from typing import Any

__all__ = ["SessionEvent", "session_id_hash", "EVENT_NAMES"]

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
