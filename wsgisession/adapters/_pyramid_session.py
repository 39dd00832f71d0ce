"""The sessions behind ``request.session`` in Pyramid (see :mod:`wsgisession.adapters.pyramid`).

:class:`PyramidSession` implements :class:`pyramid.interfaces.ISession` over a
wsgisession :class:`~wsgisession.Session`; :class:`FactorySession`, the session of a
:class:`~wsgisession.adapters.pyramid.PyramidSessionFactory`, also commits itself in
a Pyramid response callback (no WSGI middleware in the path).
"""

from __future__ import annotations

import binascii
import os
from collections.abc import MutableMapping
from typing import Any, Protocol

from pyramid.interfaces import ISession  # type: ignore[import-untyped]
from zope.interface import implementer  # type: ignore[import-untyped]

from ..session import Session
from ._proxy import SessionProxy

__all__ = ["PyramidSession", "FactorySession", "SessionCommitter"]

_FLASH_PREFIX = "_f_"
_CSRF_KEY = "_csrft_"


class SessionCommitter(Protocol):
    """What a :class:`FactorySession` asks of its factory
    (:class:`~wsgisession.adapters.pyramid.PyramidSessionFactory`)."""

    set_on_exception: bool

    def reissue_due(self, session: Session) -> bool: ...

    def commit(
        self, session: Session, request: Any, response: Any, failed: bool = False
    ) -> None: ...


@implementer(ISession)
class PyramidSession(SessionProxy, MutableMapping[str, Any]):
    """:class:`pyramid.interfaces.ISession` over a wsgisession :class:`Session`.

    The dict API goes straight to the wsgisession session, so its change detection
    (nested mutations included), lazy loading and commit rules apply unchanged. It is
    a :class:`~collections.abc.MutableMapping` and compares equal to a ``dict`` with
    the same items (``session == {}`` for an empty one).
    """

    __slots__ = ("_wsgisession",)

    def __init__(self, session: Session) -> None:
        self._wsgisession = session

    @property
    def wsgisession(self) -> Session:
        """The underlying wsgisession :class:`Session` (``regenerate()``, ``max_age``…)."""
        return self._wsgisession

    # -- ISession attributes ----------------------------------------------------------

    @property
    def created(self) -> float:
        """Unix time when the session was created, as a float (Pyramid's convention)."""
        return float(self._wsgisession.created_at)

    @property
    def new(self) -> bool:
        """True when no valid session came with the request (or it was invalidated)."""
        return self._wsgisession.is_new

    def invalidate(self) -> None:
        """Destroy the session: the response clears the cookie (store mode: deletes the
        record). A later write in the same request starts a new session, with a new id
        and none of the old data (do it at login)."""
        self._wsgisession.invalidate()

    def changed(self) -> None:
        """Force a save of the session when the response is made.

        Not needed for nested mutations (wsgisession notices them), but harmless.
        """
        self._wsgisession.save()

    def regenerate(self) -> None:
        """Keep the data under a new session id (an alternative to ``invalidate()``
        at login that keeps the data)."""
        self._wsgisession.regenerate()

    # -- flash messages -------------------------------------------------------------

    def flash(self, msg: Any, queue: str = "", allow_duplicate: bool = True) -> None:
        """Append ``msg`` to the flash queue ``queue`` (stored under ``_f_<queue>``)."""
        key = _FLASH_PREFIX + queue
        storage = self._wsgisession.get(key)
        messages = list(storage) if isinstance(storage, list) else []
        if allow_duplicate or msg not in messages:
            messages.append(msg)
            self._wsgisession[key] = messages

    def pop_flash(self, queue: str = "") -> list[Any]:
        """Return the queue's messages and remove the queue."""
        messages = self._wsgisession.pop(_FLASH_PREFIX + queue, [])
        return list(messages) if isinstance(messages, list) else []

    def peek_flash(self, queue: str = "") -> list[Any]:
        """Return the queue's messages, leaving them in the session."""
        messages = self._wsgisession.get(_FLASH_PREFIX + queue, [])
        return list(messages) if isinstance(messages, list) else []

    # -- CSRF (the key Pyramid's SessionCSRFStoragePolicy uses) ---------------------

    def new_csrf_token(self) -> str:
        """Make, store and return a new CSRF token (40 hex digits, as Pyramid's)."""
        token = binascii.hexlify(os.urandom(20)).decode("ascii")
        self._wsgisession[_CSRF_KEY] = token
        return token

    def get_csrf_token(self) -> str:
        """Return the session's CSRF token, making one if there is none."""
        token = self._wsgisession.get(_CSRF_KEY)
        if isinstance(token, str):
            return token
        return self.new_csrf_token()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._wsgisession!r}>"


class FactorySession(PyramidSession):
    """The session of a :class:`~wsgisession.adapters.pyramid.PyramidSessionFactory`:
    a :class:`PyramidSession` that commits itself in a response callback.

    ``request`` is the request it belongs to until its response callback has run (as
    in Pyramid's own cookie session). ``_set_cookie``, ``_cookie_on_exception`` and
    ``_dirty`` are the private names of Pyramid's ``BaseCookieSessionFactory`` sessions,
    kept for code (and Pyramid's own tests) written against them.
    """

    __slots__ = ("request", "_factory", "_cookie_on_exception", "_forced")

    def __init__(self, session: Session, factory: SessionCommitter, request: Any) -> None:
        self._wsgisession = session
        self._factory = factory
        self.request = request
        #: Pyramid's ``set_on_exception``, for this session.
        self._cookie_on_exception = factory.set_on_exception
        self._forced = False

    def changed(self) -> None:
        """Force a save of the session when the response is made (not needed for
        nested mutations, which wsgisession notices)."""
        self._wsgisession.save()
        self._forced = True

    @property
    def _dirty(self) -> bool:
        """Whether the response will carry a new cookie: the data changed, a save was
        forced, or a re-issue is due (Pyramid's flag, computed)."""
        session = self._wsgisession
        return self._forced or session.changed or self._factory.reissue_due(session)

    def _respond(self, request: Any, response: Any) -> None:
        """The response callback: commit the session into ``response``'s headers."""
        self.request = None  # no reference cycle once the request is over
        if self._wsgisession.accessed:
            failed = (
                not self._cookie_on_exception and getattr(request, "exception", None) is not None
            )
            self._factory.commit(self._wsgisession, request, response, failed)

    def _set_cookie(self, response: Any) -> bool:
        """Write the session's cookie into ``response`` now, changed or not; ``False``
        (nothing written) when ``set_on_exception`` is off and the request has an
        exception. Pyramid's private method; the response callback does this anyway.

        :raises SessionTooLarge: (a ``ValueError``) when the cookie would be too large.
        """
        request = self.request
        exception = None if request is None else getattr(request, "exception", None)
        if not self._cookie_on_exception and exception is not None:
            return False
        self._wsgisession.save()
        self._factory.commit(self._wsgisession, request, response)
        return True
