"""Pyramid adapter: ``request.session`` backed by wsgisession.

.. code-block:: python

    from pyramid.config import Configurator
    from wsgisession import SessionMiddleware

    def main(global_config, **settings):
        with Configurator(settings=settings) as config:
            config.include("wsgisession.adapters.pyramid")
            ...
            app = config.make_wsgi_app()
        return SessionMiddleware(app, secret_keys=[...])

The include registers a session factory only; the WSGI application must still be
wrapped by :class:`~wsgisession.SessionMiddleware`, in ``main()`` or with the
PasteDeploy filter ``egg:wsgisession#session`` in the ``.ini`` pipeline. The sessions
it makes implement :class:`pyramid.interfaces.ISession` on top of the
:class:`~wsgisession.Session` the middleware put at ``environ["session"]`` (setting
``wsgisession.environ_key`` names another key; it must match the middleware's
``environ_key``).

Only this module imports Pyramid.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Callable
from typing import Any

from pyramid.interfaces import ISession  # type: ignore[import-untyped]
from zope.interface import implementer  # type: ignore[import-untyped]

from ..errors import ConfigurationError, WSGISessionError
from ..session import Session
from ._proxy import SessionProxy

__all__ = [
    "ENVIRON_KEY_SETTING",
    "MissingSessionMiddleware",
    "PyramidSession",
    "includeme",
    "session_factory",
]

#: The Pyramid setting naming the environ key the middleware uses.
ENVIRON_KEY_SETTING = "wsgisession.environ_key"
_DEFAULT_ENVIRON_KEY = "session"
_FLASH_PREFIX = "_f_"
_CSRF_KEY = "_csrft_"


class MissingSessionMiddleware(WSGISessionError, RuntimeError):
    """``request.session`` was used but no wsgisession middleware wraps the app."""


@implementer(ISession)
class PyramidSession(SessionProxy):
    """:class:`pyramid.interfaces.ISession` over a wsgisession :class:`Session`.

    The dict API goes straight to the wsgisession session, so its change detection
    (nested mutations included), lazy loading and commit rules apply unchanged.
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
        """Destroy the session: the response clears the cookie. A later write in the
        same request starts a new session (new id, no old data)."""
        self._wsgisession.invalidate()

    def changed(self) -> None:
        """Force a save of the session at ``start_response``.

        Not needed for nested mutations (wsgisession notices them), but harmless.
        """
        self._wsgisession.save()

    def regenerate(self) -> None:
        """Keep the data under a new session id (call it at login)."""
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
        return f"<PyramidSession {self._wsgisession!r}>"


def session_factory(environ_key: str = _DEFAULT_ENVIRON_KEY) -> Callable[[Any], PyramidSession]:
    """Return a Pyramid session factory reading ``request.environ[environ_key]``."""

    def factory(request: Any) -> PyramidSession:
        session = request.environ.get(environ_key)
        if not isinstance(session, Session):
            raise MissingSessionMiddleware(
                f"request.session needs wsgisession's SessionMiddleware, but "
                f"request.environ[{environ_key!r}] is "
                f"{'missing' if session is None else type(session).__name__}. Wrap the "
                f"WSGI application: return SessionMiddleware(config.make_wsgi_app(), "
                f"secret_keys=[...]) from main(), or put the PasteDeploy filter "
                f"'egg:wsgisession#session' in the .ini pipeline (and keep the "
                f"middleware's environ_key equal to the {ENVIRON_KEY_SETTING!r} setting)."
            )
        return PyramidSession(session)

    return factory


def includeme(config: Any) -> None:
    """``config.include("wsgisession.adapters.pyramid")``: register the session factory.

    It does not wrap the application (Pyramid's ``make_wsgi_app`` cannot be wrapped
    from an include); wrap it in ``main()`` or in the ``.ini`` pipeline.
    """
    settings = config.get_settings() or {}
    environ_key = settings.get(ENVIRON_KEY_SETTING, _DEFAULT_ENVIRON_KEY)
    if not isinstance(environ_key, str) or not environ_key.strip():
        raise ConfigurationError(
            f"{ENVIRON_KEY_SETTING} must be a non-empty string", ENVIRON_KEY_SETTING
        )
    config.set_session_factory(session_factory(environ_key.strip()))
