"""Django adapter: ``request.session`` backed by wsgisession.

In ``settings.py``, replace Django's session middleware with this one and configure
the secrets (``SECRET_KEY`` is not used for sessions)::

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "wsgisession.adapters.django.SessionMiddleware",  # instead of Django's
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        ...
    ]
    WSGISESSION = {"secret_keys": [os.environ["SESSION_SECRET"]]}

and wrap the WSGI application in ``wsgi.py`` (``runserver`` uses it too)::

    from django.core.wsgi import get_wsgi_application
    from wsgisession.adapters.django import wrap

    application = wrap(get_wsgi_application())

:func:`wrap` builds :class:`wsgisession.SessionMiddleware` from Django's
``SESSION_COOKIE_NAME``/``AGE``/``DOMAIN``/``PATH``/``SECURE``/``HTTPONLY``/``SAMESITE``,
``SESSION_EXPIRE_AT_BROWSER_CLOSE`` and ``SESSION_SAVE_EVERY_REQUEST``; every key of
``settings.WSGISESSION`` (any :class:`~wsgisession.SessionMiddleware` option) overrides
them. The Django middleware sets no cookie itself: the WSGI middleware does.

Only this module imports Django.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

from django.conf import settings  # type: ignore[import-untyped]
from django.contrib.sessions.backends.base import SessionBase  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.utils import timezone  # type: ignore[import-untyped]
from django.utils.cache import (  # type: ignore[import-untyped]
    patch_cache_control,
    patch_vary_headers,
)

from ..errors import ConfigurationError
from ..middleware import SessionMiddleware as WSGISessionMiddleware
from ..session import Session
from ._proxy import SessionProxy

__all__ = ["DjangoSession", "SessionMiddleware", "middleware_options", "wrap"]

_DEFAULT_ENVIRON_KEY = "session"


def _environ_key() -> str:
    options = getattr(settings, "WSGISESSION", None) or {}
    key = options.get("environ_key") if isinstance(options, dict) else None
    return key if isinstance(key, str) else _DEFAULT_ENVIRON_KEY


class DjangoSession(SessionProxy, SessionBase):  # type: ignore[misc]
    """Django's ``SessionBase`` API over a wsgisession :class:`Session`.

    Reads and writes go straight to the wsgisession session, so its lazy loading,
    change detection (nested mutations included) and commit rules apply unchanged;
    nothing here ever writes a cookie or a database row.
    """

    def __init__(self, session: Session) -> None:
        # SessionBase.__init__ is not called: it would set ``accessed``/``modified``
        # as plain attributes, which here are views of the wsgisession session.
        self._wsgisession = session

    @property
    def wsgisession(self) -> Session:
        """The underlying wsgisession :class:`Session`."""
        return self._wsgisession

    # -- the mapping SessionBase's own helpers use ------------------------------------

    def _get_session(self, no_load: bool = False) -> Session:
        return self._wsgisession

    async def _aget_session(self, no_load: bool = False) -> Session:
        return self._wsgisession

    @property
    def _session(self) -> Session:
        return self._wsgisession

    # -- state ------------------------------------------------------------------------

    @property
    def accessed(self) -> bool:
        """True once the request read or wrote the session."""
        return self._wsgisession.accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        """Ignored: wsgisession tracks access itself."""

    @property
    def modified(self) -> bool:
        """True when the session will be written (its data changed)."""
        return self._wsgisession.changed

    @modified.setter
    def modified(self, value: bool) -> None:
        # ``request.session.modified = True`` is Django's way to force a save.
        if value:
            self._wsgisession.save()

    @property
    def session_key(self) -> str:
        """The wsgisession session id (a secret: never log it)."""
        return self._wsgisession.id

    @property
    def _session_key(self) -> str:
        return self._wsgisession.id

    def is_empty(self) -> bool:
        """True for a new session without data."""
        return self._wsgisession.is_new and len(self._wsgisession) == 0

    # -- dict API: SessionProxy, plus Django's old spelling ------------------------

    def has_key(self, key: str) -> bool:
        return key in self._wsgisession

    # -- lifecycle ------------------------------------------------------------------

    def cycle_key(self) -> None:
        """Keep the data under a new session key (``auth.login`` calls it)."""
        self._wsgisession.regenerate()

    def flush(self) -> None:
        """Destroy the session: deletion cookie, and a fresh session for later writes."""
        self._wsgisession.invalidate()

    def save(self, must_create: bool = False) -> None:
        """Force a write at ``start_response``."""
        self._wsgisession.save()

    def create(self) -> None:
        """Force a write of this (new) session at ``start_response``."""
        self._wsgisession.save()

    def delete(self, session_key: str | None = None) -> None:
        """Destroy this session (another key cannot be reached from here)."""
        if session_key is None or session_key == self._wsgisession.id:
            self._wsgisession.invalidate()

    def exists(self, session_key: str) -> bool:
        return session_key == self._wsgisession.id and not self._wsgisession.is_new

    def load(self) -> dict[str, Any]:
        return self._wsgisession.copy()

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to clear: expired sessions are refused when their cookie comes in."""

    # -- expiry -----------------------------------------------------------------------

    def _default_max_age(self) -> int | None:
        return self._wsgisession.default_max_age

    def get_session_cookie_age(self) -> int:
        """The default lifetime: the middleware's ``max_age``, else ``SESSION_COOKIE_AGE``."""
        default = self._default_max_age()
        if default is None:
            return int(settings.SESSION_COOKIE_AGE)
        return default

    def set_expiry(self, value: Any) -> None:
        """``0``: browser-session cookie; ``None``: the default lifetime; an int
        (seconds), ``timedelta`` or ``datetime``: this session's lifetime, kept in its
        token. Forces a write."""
        if value is None:
            # Back to the global policy: nothing of the session's own in its token, so
            # a later change of max_age reaches it.
            del self._wsgisession.max_age
        elif isinstance(value, datetime.datetime):
            seconds = (value - timezone.now()).total_seconds()
            self._wsgisession.max_age = max(seconds, 1)
        elif isinstance(value, datetime.timedelta):
            self._wsgisession.max_age = value
        elif value == 0:
            self._wsgisession.max_age = None
        else:
            self._wsgisession.max_age = value

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Seconds the session lives from ``modification`` (default: now).

        A browser-session cookie gives ``get_session_cookie_age()``, as in Django.
        ``expiry`` (seconds, ``datetime`` or ``None``) may be passed as in Django.
        """
        modification = kwargs.get("modification") or timezone.now()
        expiry = kwargs["expiry"] if "expiry" in kwargs else self._wsgisession.max_age
        if isinstance(expiry, datetime.datetime):
            return int((expiry - modification).total_seconds())
        if not expiry:
            return self.get_session_cookie_age()
        return int(expiry)

    def get_expiry_date(self, **kwargs: Any) -> datetime.datetime:
        """When the session expires if written now (or at ``modification``)."""
        modification = kwargs.get("modification") or timezone.now()
        expiry = kwargs["expiry"] if "expiry" in kwargs else self._wsgisession.max_age
        if isinstance(expiry, datetime.datetime):
            return expiry
        age = self.get_expiry_age(modification=modification, expiry=expiry)
        result: datetime.datetime = modification + datetime.timedelta(seconds=age)
        return result

    def get_expire_at_browser_close(self) -> bool:
        """True when the cookie is a browser-session cookie (``set_expiry(0)``)."""
        return self._wsgisession.max_age is None

    # -- async variants (Django 5.0 added them to SessionBase; defined here so that
    # Django 4.2 has them too) -----------------------------------------------------------

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self[key] = value

    async def apop(self, key: str, *default: Any) -> Any:
        return self.pop(key, *default)

    async def asetdefault(self, key: str, value: Any) -> Any:
        return self.setdefault(key, value)

    async def aupdate(self, dict_: Any) -> None:
        self.update(dict_)

    async def ahas_key(self, key: str) -> bool:
        return key in self

    async def akeys(self) -> Any:
        return self.keys()

    async def avalues(self) -> Any:
        return self.values()

    async def aitems(self) -> Any:
        return self.items()

    async def aset_test_cookie(self) -> None:
        self.set_test_cookie()

    async def atest_cookie_worked(self) -> bool:
        return bool(self.test_cookie_worked())

    async def adelete_test_cookie(self) -> None:
        self.delete_test_cookie()

    async def acycle_key(self) -> None:
        self.cycle_key()

    async def aflush(self) -> None:
        self.flush()

    async def asave(self, must_create: bool = False) -> None:
        self.save(must_create)

    async def acreate(self) -> None:
        self.create()

    async def adelete(self, session_key: str | None = None) -> None:
        self.delete(session_key)

    async def aexists(self, session_key: str) -> bool:
        return self.exists(session_key)

    async def aload(self) -> dict[str, Any]:
        return self.load()

    @classmethod
    async def aclear_expired(cls) -> None:
        cls.clear_expired()

    async def aset_expiry(self, value: Any) -> None:
        self.set_expiry(value)

    async def aget_expiry_age(self, **kwargs: Any) -> int:
        return self.get_expiry_age(**kwargs)

    async def aget_expiry_date(self, **kwargs: Any) -> datetime.datetime:
        return self.get_expiry_date(**kwargs)

    async def aget_expire_at_browser_close(self) -> bool:
        return self.get_expire_at_browser_close()

    async def aget_session_cookie_age(self) -> int:
        return self.get_session_cookie_age()

    def __repr__(self) -> str:
        return f"<DjangoSession {self._wsgisession!r}>"


class SessionMiddleware:
    """Replaces ``django.contrib.sessions.middleware.SessionMiddleware``.

    Sets ``request.session`` to a :class:`DjangoSession` over the session that
    :func:`wrap` (the WSGI middleware) put in the environ. It sets no cookie.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.environ_key = _environ_key()

    def __call__(self, request: Any) -> Any:
        environ = getattr(request, "environ", None) or getattr(request, "META", {})
        session = environ.get(self.environ_key)
        if not isinstance(session, Session) and _from_test_client(environ):
            return self._through_test_client(request, environ)
        if not isinstance(session, Session):
            raise ImproperlyConfigured(
                f"wsgisession.adapters.django.SessionMiddleware needs the wsgisession "
                f"WSGI middleware, but request.environ[{self.environ_key!r}] is "
                f"{'missing' if session is None else type(session).__name__}. Wrap the "
                f"WSGI application in wsgi.py: "
                f"`application = wrap(get_wsgi_application())` with "
                f"`from wsgisession.adapters.django import wrap`."
            )
        request.session = DjangoSession(session)
        return self.get_response(request)

    def _through_test_client(self, request: Any, environ: dict[str, Any]) -> Any:
        """Django's test ``Client`` calls the handler, not the WSGI application, so the
        wsgisession middleware is not in its path: open and commit the session here,
        through the same middleware (same options, same codec), and copy its headers
        onto the Django response."""
        middleware = _test_client_middleware()
        session = middleware.open_session(environ)
        environ[middleware.environ_key] = session
        request.session = DjangoSession(session)
        response = self.get_response(request)
        if not session.accessed and environ.get(middleware.environ_key) is session:
            return response  # untouched: no cookie, no Vary (as the middleware does)
        status = f"{response.status_code} {response.reason_phrase}"
        for name, value in middleware.session_headers(session, status, []):
            lowered = name.lower()
            if lowered == "set-cookie":
                jar: SimpleCookie = SimpleCookie()
                jar.load(value)
                for key, morsel in jar.items():
                    response.cookies[key] = morsel
            elif lowered == "vary":
                patch_vary_headers(response, [v.strip() for v in value.split(",")])
            elif lowered == "cache-control":
                patch_cache_control(response, private=True)
        return response


def _from_test_client(environ: dict[str, Any]) -> bool:
    """Whether the request comes from Django's test ``Client`` (its body is a
    ``FakePayload``), the one caller that never passes through WSGI middleware."""
    body = environ.get("wsgi.input")
    if type(body).__name__ != "FakePayload":
        return False
    from django.test.client import FakePayload  # type: ignore[import-untyped]

    return isinstance(body, FakePayload)


_test_client_cache: dict[str, Any] = {}


def _test_client_middleware() -> WSGISessionMiddleware:
    """The middleware ``wrap()`` would build, for test-Client requests (rebuilt when
    the settings it is made from change, e.g. under ``override_settings``)."""
    options = middleware_options()
    key = repr(sorted((k, repr(v)) for k, v in options.items()))
    middleware = _test_client_cache.get(key)
    if middleware is None:
        _test_client_cache.clear()
        middleware = _test_client_cache[key] = WSGISessionMiddleware(
            lambda environ, start_response: [], **options
        )
    return middleware


def middleware_options(**overrides: Any) -> dict[str, Any]:
    """The :class:`~wsgisession.SessionMiddleware` options :func:`wrap` uses.

    Django's ``SESSION_COOKIE_*`` first, then ``settings.WSGISESSION``, then
    ``overrides``. ``SESSION_COOKIE_SECURE = False`` (Django's default) maps to
    ``secure=None`` (Secure on https requests), not to "never Secure".
    """
    options: dict[str, Any] = {
        "cookie_name": settings.SESSION_COOKIE_NAME,
        "max_age": (
            None if settings.SESSION_EXPIRE_AT_BROWSER_CLOSE else settings.SESSION_COOKIE_AGE
        ),
        "path": settings.SESSION_COOKIE_PATH,
        "domain": settings.SESSION_COOKIE_DOMAIN,
        "secure": True if settings.SESSION_COOKIE_SECURE else None,
        "httponly": bool(settings.SESSION_COOKIE_HTTPONLY),
        "samesite": settings.SESSION_COOKIE_SAMESITE or None,
        "rolling": bool(settings.SESSION_SAVE_EVERY_REQUEST),
    }
    explicit = getattr(settings, "WSGISESSION", None) or {}
    if not isinstance(explicit, dict):
        raise ImproperlyConfigured("settings.WSGISESSION must be a dict of wsgisession options")
    options.update(explicit)
    options.update(overrides)
    if not options.get("secret_keys"):
        raise ImproperlyConfigured(
            'wsgisession needs secret keys: set WSGISESSION = {"secret_keys": [...]} in '
            "settings (each at least 32 bytes; make one with `python -m wsgisession "
            "genkey`). SECRET_KEY is not used for sessions."
        )
    return options


def wrap(application: Any, **overrides: Any) -> WSGISessionMiddleware:
    """Wrap Django's WSGI ``application`` with wsgisession's WSGI middleware.

    Options come from :func:`middleware_options`; a bad one raises
    ``ImproperlyConfigured`` naming it.
    """
    options = middleware_options(**overrides)
    try:
        return WSGISessionMiddleware(application, **options)
    except ConfigurationError as exc:
        raise ImproperlyConfigured(
            f"wsgisession option {exc.option!r} (settings.WSGISESSION or Django's "
            f"SESSION_COOKIE_*): {exc}"
        ) from exc
