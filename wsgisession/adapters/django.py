"""Django: a session engine for Django's own ``SessionMiddleware``, and a fast path.

**The engine.** Two settings of a default ``django-admin startproject``::

    SESSION_ENGINE = "wsgisession.adapters.django"
    WSGISESSION = {"secret_keys": [os.environ["WSGISESSION_SECRET_KEY"]]}   # 32+ bytes each

Django's ``SessionMiddleware``, test ``Client`` (``client.session``, ``login``,
``force_login``, ``logout``), ``AsyncClient``, ASGI, ``LiveServerTestCase``,
``contrib.auth``, ``contrib.messages``, ``CSRF_USE_SESSIONS`` and the admin's checks
then work unchanged. The ``session_key`` Django writes into its cookie is our sealed
token: cookie mode, the data itself (AES-256-GCM-SIV); store mode (``"store":
MemoryStore()`` or ``RedisStore(...)`` in ``WSGISESSION``), the session id, the data
in the store.

Options: every key of ``settings.WSGISESSION`` is a wsgisession option; Django's
``SESSION_COOKIE_NAME`` (the name the token is bound to) and ``SESSION_COOKIE_AGE``
(``max_age``, unless ``WSGISESSION`` gives one) are read too. Django writes the cookie
from its ``SESSION_COOKIE_*`` settings, so ``WSGISESSION`` refuses the cookie options
(``cookie_name``, ``path``, ``secure``, ...) and those Django's middleware decides
(``rolling`` is ``SESSION_SAVE_EVERY_REQUEST``), naming the setting to use. The
manager is built once per distinct configuration (again after ``override_settings``
changes one), never per request. Hooks (``valid``, ``genid``, ``before_save``,
``on_event``) receive a stand-in environ, ``{}`` (``{"wsgi.url_scheme": "https"}``
when the cookie is Secure): an engine never sees the request.

**The fast path** (optional; about half the cost of a write, see ``docs/django.md``):
list :class:`SessionMiddleware` instead of Django's and wrap the WSGI application::

    MIDDLEWARE = [..., "wsgisession.adapters.django.SessionMiddleware", ...]
    application = wrap(get_wsgi_application())          # wsgi.py

Requests that come through :func:`wrap` are committed by the WSGI middleware (no
Django cookie parsing or ``Set-Cookie`` rendering); everything else (the test
``Client``, ASGI, a server without ``wrap``) goes through Django's own
``SessionMiddleware`` code and the engine, with the same tokens.

Only this module and its two helpers (``_django_session``, ``_django_settings``)
import Django.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings  # type: ignore[import-untyped]
from django.contrib.sessions.middleware import (  # type: ignore[import-untyped]
    SessionMiddleware as DjangoSessionMiddleware,
)
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]

from ..errors import ConfigurationError
from ..manager import SessionManager
from ..middleware import SessionMiddleware as WSGISessionMiddleware
from ..session import Session
from ._django_session import EXPIRY, SessionStore
from ._django_settings import Engine, engine, improperly_configured, manager_options

__all__ = ["SessionStore", "SessionMiddleware", "session_manager", "manager_options", "wrap"]

#: Where :func:`wrap` puts the request's session (and the engine that reads it).
ENVIRON_KEY = "wsgisession.django"
ENGINE_KEY = "wsgisession.django.engine"
_DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
_OURS = f"{__name__}.SessionMiddleware"


def session_manager() -> SessionManager:
    """The engine's :class:`~wsgisession.SessionManager` for the current settings
    (``decode()``, ``store_key()``, ...)."""
    return engine().manager


def _both_listed() -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"MIDDLEWARE lists both {_DJANGO_MIDDLEWARE!r} and {_OURS!r}: keep one. {_OURS!r} "
        f"is Django's SessionMiddleware with wsgisession's fast path under wrap(); "
        f"without wrap(), Django's own is all you need."
    )


class SessionMiddleware(DjangoSessionMiddleware):  # type: ignore[misc]
    """Django's ``SessionMiddleware`` (so ``contrib.admin``'s check holds) with a fast
    path: on a request that came through :func:`wrap`, ``request.session`` is made
    over the WSGI middleware's session, which commits it when the response starts.
    Other requests (test ``Client``, ASGI) are Django's middleware on the engine.

    :raises ImproperlyConfigured: when ``SESSION_ENGINE`` is not this module, or
        Django's own ``SessionMiddleware`` is listed too.
    """

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        super().__init__(get_response)
        if self.SessionStore is not SessionStore:
            raise ImproperlyConfigured(
                f"{_OURS} needs SESSION_ENGINE = {__name__!r} (it is {settings.SESSION_ENGINE!r})"
            )
        if _DJANGO_MIDDLEWARE in settings.MIDDLEWARE:
            raise _both_listed()

    def __call__(self, request: Any) -> Any:
        environ = request.META
        session = environ.get(ENVIRON_KEY)
        if session is None:
            return super().__call__(request)
        store = SessionStore.bind(environ[ENGINE_KEY], session, environ)
        request.session = store
        response = self.get_response(request)
        store.prepare_commit()
        return response


class _FastPath(WSGISessionMiddleware):
    """The WSGI middleware of :func:`wrap`: Django's cookie policy, and the engine
    that :class:`SessionMiddleware` reads the session with."""

    def __init__(self, app: Any, **options: Any) -> None:
        super().__init__(app, **options)
        self.engine = Engine(self)

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        environ[ENGINE_KEY] = self.engine
        return super().__call__(environ, start_response)

    def cookie_max_age(self, session: Session, seconds: int | None) -> int | None:
        """A browser-session cookie for ``set_expiry(0)`` and under
        ``SESSION_EXPIRE_AT_BROWSER_CLOSE``; the token keeps its expiry."""
        if seconds is not None:
            expiry = session.get(EXPIRY)
            if expiry == 0 or (expiry is None and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE):
                return None
        return seconds


def wrap(application: Any, **overrides: Any) -> WSGISessionMiddleware:
    """Wrap Django's WSGI ``application`` for the fast path (``wsgi.py``):
    ``application = wrap(get_wsgi_application())``.

    The options are the engine's (:func:`manager_options`, then ``overrides``), so
    tokens work on both paths; the WSGI middleware writes the cookie with Django's
    ``SESSION_COOKIE_*`` attributes (``SESSION_COOKIE_SECURE = False``: Secure on https
    requests) and re-issues it on every request that touches a populated session
    under ``SESSION_SAVE_EVERY_REQUEST``.

    :raises ImproperlyConfigured: for a bad option, when ``MIDDLEWARE`` lacks
        :class:`SessionMiddleware`, or lists Django's own ``SessionMiddleware`` (which
        would serve ``request.session`` with the WSGI middleware unused).
    """
    middleware = list(settings.MIDDLEWARE)
    if _DJANGO_MIDDLEWARE in middleware:
        message = str(_both_listed()) if _OURS in middleware else ""
        raise ImproperlyConfigured(
            message
            or f"wrap() found Django's own {_DJANGO_MIDDLEWARE!r} in MIDDLEWARE: it would "
            f"serve request.session and the WSGI middleware would never be used. Replace "
            f"it with {_OURS!r}, or drop wrap() from wsgi.py."
        )
    if _OURS not in middleware:
        raise ImproperlyConfigured(
            f"wrap() needs {_OURS!r} in MIDDLEWARE (where Django's SessionMiddleware was)"
        )
    options = manager_options(**overrides)
    options["environ_key"] = ENVIRON_KEY
    options["rolling"] = bool(settings.SESSION_SAVE_EVERY_REQUEST)
    try:
        return _FastPath(application, **options)
    except ConfigurationError as exc:
        raise improperly_configured(exc) from exc
