"""Pyramid adapter: ``request.session`` backed by wsgisession.

**A session factory** (no middleware needed), taking Pyramid's own factory arguments
next to wsgisession's options:

.. code-block:: python

    from pyramid.config import Configurator
    from wsgisession.adapters.pyramid import PyramidSessionFactory

    def main(global_config, **settings):
        with Configurator(settings=settings) as config:
            config.set_session_factory(
                PyramidSessionFactory(secret_keys=[...], timeout=1200, store=...)
            )
            ...
            return config.make_wsgi_app()

or ``config.include("wsgisession.adapters.pyramid")`` with the arguments in the app's
settings (``session.secret_keys = ...``, ``session.timeout = 1200``, ...;
:meth:`PyramidSessionFactory.from_settings`). The session opens from the request's
cookie on first touch and a response callback sets (or deletes) the cookie, as
Pyramid's ``BaseCookieSessionFactory`` does.

**Behind the WSGI middleware**: an application already wrapped by
:class:`~wsgisession.SessionMiddleware` (in ``main()`` or with the PasteDeploy filter
``egg:wsgisession-aead#session``) keeps working. Without ``session.*`` settings the include
registers :func:`session_factory`, whose sessions wrap the
:class:`~wsgisession.Session` the middleware put at ``environ["session"]``
(``wsgisession.environ_key`` names another key); with them, the factory hands out that
session on the requests the middleware wraps. The middleware writes the cookie then.

Only this module and :mod:`wsgisession.adapters._pyramid_session` import Pyramid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigurationError, WSGISessionError
from ..headers import CDN_FIELDS, make_private, merge_vary
from ..manager import SessionManager
from ..payload import MAX_COOKIE_AGE, coerce_lifetime
from ..session import Session
from ..settings import CONVERTERS, asbool, parse_settings
from ._pyramid_session import FactorySession, PyramidSession

__all__ = [
    "ENVIRON_KEY_SETTING",
    "SETTINGS_PREFIX",
    "FactorySession",
    "MissingSessionMiddleware",
    "PyramidSession",
    "PyramidSessionFactory",
    "includeme",
    "session_factory",
]

#: The Pyramid setting naming the environ key the middleware uses.
ENVIRON_KEY_SETTING = "wsgisession.environ_key"
#: The prefix of the Pyramid settings that configure :class:`PyramidSessionFactory`.
SETTINGS_PREFIX = "session."
_DEFAULT_ENVIRON_KEY = "session"
#: Response headers that need merging rather than appending.
_MERGED = frozenset({"vary", "set-cookie", "cache-control", *CDN_FIELDS})
_MERGED_LENGTHS = frozenset(len(name) for name in _MERGED)
_PRIVATE = ("Cache-Control", "private")


class MissingSessionMiddleware(WSGISessionError, RuntimeError):
    """``request.session`` was used with the middleware-backed factory
    (:func:`session_factory`), but no wsgisession middleware wraps the app."""


# -- the standalone factory -----------------------------------------------------------


def _seconds(name: str, value: Any, *, zero: bool = False) -> int | None:
    """Pyramid's ``int(value)`` for a factory argument (so ``"1200"`` works too), as
    whole seconds > 0 (``zero``: >= 0), or ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ConfigurationError(
                f"{name} must be whole seconds or None, not {value!r:.40}", name
            ) from None
    if zero and not isinstance(value, bool) and value == 0:
        return 0
    return coerce_lifetime(value, name)


class _PyramidManager(SessionManager):
    """A manager whose cookie ``Max-Age`` is Pyramid's ``max_age``, apart from the
    token's lifetime (``timeout``)."""

    def __init__(self, cookie_age: int | None, **options: Any) -> None:
        super().__init__(**options)
        self.cookie_age = None if cookie_age is None else min(cookie_age, MAX_COOKIE_AGE)

    def cookie_max_age(self, session: Session, seconds: int | None) -> int | None:
        age = self.cookie_age
        if age is None:
            # A browser-session cookie, but for a session given its own lifetime.
            if seconds is None or session.max_age == session.default_max_age:
                return None
            return seconds
        return age if seconds is None else min(age, seconds)


class PyramidSessionFactory:
    """A Pyramid session factory (``ISessionFactory``): ``factory(request)`` opens the
    request's session from its cookie; a response callback writes the cookie.

    Pyramid's arguments, with Pyramid's defaults but for ``secure`` and ``httponly``:

    :param secret_keys: the secrets, first = current (each at least 32 bytes).
    :param cookie_name: ``"session"``.
    :param max_age: the cookie's ``Max-Age`` in seconds; ``None`` (default): a
        browser-session cookie. Never longer than what remains of the token.
    :param path: ``"/"``.
    :param domain: ``None``.
    :param secure: ``None`` (default): Secure on https requests; ``True``: always;
        ``False``: never.
    :param httponly: ``True``.
    :param samesite: ``"Lax"``.
    :param timeout: seconds of inactivity after which the server refuses the session,
        sealed into the token; ``None``: the token expires with ``max_age`` (if set)
        or never. Default ``1200``.
    :param reissue_time: re-issue the cookie (moving its expiry) on a request that
        accessed the session when more than this many seconds passed since it was
        issued; ``0`` (default): on every such request; ``None``: never.
    :param set_on_exception: ``True`` (default): write the cookie also when the response
        was rendered for an exception (a raised ``HTTPFound`` included); ``False``:
        write nothing then (a logout still clears the cookie).
    :param migrate_from: the session factory being replaced (e.g. Pyramid's
        ``SignedCookieSessionFactory(old_secret, reissue_time=None)``): a request that
        has no session of ours but a valid one of that factory gets its data, so users
        stay logged in across the switch. Keep it for one ``timeout`` (or the old
        cookie's ``max_age``), then remove it.
    :param middleware_key: when a :class:`~wsgisession.SessionMiddleware` put its
        session at ``request.environ[middleware_key]``, hand that one out instead (the
        middleware writes its cookie, with its options). ``None`` (default): never;
        the include sets it to the ``wsgisession.environ_key`` setting (``session``).

    Every other keyword is a wsgisession option (``store``, ``absolute_max_age``,
    ``namespace``, ``on_event``, ...); wsgisession's own ``max_age`` is ``timeout``.
    ``docs/pyramid.md`` has the whole mapping.

    :raises ConfigurationError: (a ``ValueError``) for a bad argument, naming it.
    """

    def __init__(
        self,
        secret_keys: Any = None,
        *,
        cookie_name: str = "session",
        max_age: Any = None,
        path: str = "/",
        domain: Any = None,
        secure: bool | None = None,
        httponly: bool = True,
        samesite: str | None = "Lax",
        timeout: Any = 1200,
        reissue_time: Any = 0,
        set_on_exception: bool = True,
        migrate_from: Callable[[Any], Any] | None = None,
        middleware_key: str | None = None,
        **options: Any,
    ) -> None:
        if "options" in options or "environ_key" in options:
            name = "options" if "options" in options else "environ_key"
            raise ConfigurationError(f"PyramidSessionFactory takes no {name!r}", name)
        if middleware_key is not None and (
            not isinstance(middleware_key, str) or not middleware_key
        ):
            raise ConfigurationError("middleware_key must be a non-empty str", "middleware_key")
        if migrate_from is not None and not callable(migrate_from):
            raise ConfigurationError("migrate_from must be a session factory", "migrate_from")
        if not isinstance(set_on_exception, bool):
            raise ConfigurationError("set_on_exception must be True or False", "set_on_exception")
        cookie_age = _seconds("max_age", max_age)
        lifetime = _seconds("timeout", timeout)
        if lifetime is None:
            lifetime = cookie_age
        reissue = _seconds("reissue_time", reissue_time, zero=True)
        #: Pyramid's ``timeout``, ``reissue_time`` and ``set_on_exception``, checked.
        self.timeout = _seconds("timeout", timeout)
        self.reissue_time = reissue
        self.set_on_exception = set_on_exception
        # reissue_time=0 is wsgisession's rolling (store mode: the record's TTL is
        # refreshed, not rewritten); nothing to re-issue without an expiry.
        rolling = options.pop("rolling", False) or (reissue == 0 and lifetime is not None)
        #: The :class:`~wsgisession.SessionManager` (``decode()``, ``options``, ...).
        self.manager = _PyramidManager(
            cookie_age,
            secret_keys=secret_keys,
            cookie_name=cookie_name,
            max_age=lifetime,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            rolling=rolling,
            **options,
        )
        opts = self.manager.options
        self._cookie_name = opts.cookie_name
        self._vary = ("Vary", opts.vary)
        self._external_key = opts.external_key
        self._is_ours = self.manager.cookies.is_ours if opts.overwrite else None
        self._cache_control = opts.cache_control
        self._clock = opts.clock
        self._reissue_after = reissue if reissue and lifetime is not None else None
        self._rolling = rolling
        self._migrate_from = migrate_from
        self._middleware_key = middleware_key

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} cookie_name={self._cookie_name!r} "
            f"timeout={self.timeout!r} reissue_time={self.reissue_time!r}>"
        )

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], prefix: str = SETTINGS_PREFIX, **arguments: Any
    ) -> PyramidSessionFactory:
        """Build one from string settings (the app's ``.ini``): ``session.secret_keys``,
        ``session.timeout``, ``session.reissue_time``, ``session.set_on_exception``,
        ``session.max_age`` (the cookie's, as Pyramid's) and every other wsgisession
        option spelled as for ``SessionMiddleware.from_settings``; ``arguments`` (e.g.
        ``migrate_from=``) are added as given. Errors name the setting as written."""
        pyramid_args: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for key, value in settings.items():
            if not key.startswith(prefix):
                continue
            name = key[len(prefix) :]
            if name not in _PYRAMID_SETTINGS:
                rest[key] = value
            elif not isinstance(value, str):
                pyramid_args[name] = value
            else:
                try:
                    pyramid_args[name] = _PYRAMID_SETTINGS[name](value)
                except ValueError as exc:
                    raise ConfigurationError(f"bad value for {key!r}: {exc}", key) from None
        options = {**parse_settings(rest, prefix), **pyramid_args, **arguments}
        try:
            return cls(**options)
        except ConfigurationError as exc:
            if not exc.option:
                raise
            key = prefix + exc.option
            raise ConfigurationError(f"bad value for {key!r}: {exc}", key) from None

    # -- per request -------------------------------------------------------------------

    def __call__(self, request: Any) -> PyramidSession:
        environ = request.environ
        key = self._middleware_key
        if key is not None:
            outer = environ.get(key)
            if isinstance(outer, Session):  # the middleware is in the path: its session
                return PyramidSession(outer)
        value = None
        if "HTTP_COOKIE" not in environ:
            value = _dummy_request_cookie(request, self._cookie_name)
        session = FactorySession(self.manager.open_session(environ, value=value), self, request)
        if self._migrate_from is not None:
            self._migrate(session.wsgisession, request)
        request.add_response_callback(session._respond)
        return session

    def _migrate(self, session: Session, request: Any) -> None:
        """A request without a session of ours: take over the old factory's, if valid
        (its data, read as a plain dict so that it neither re-issues nor changes)."""
        if not session.is_new:
            return
        old = self._migrate_from(request)  # type: ignore[misc]
        if getattr(old, "new", True):
            return
        data = dict.copy(old) if isinstance(old, dict) else dict(old)
        if data:
            session.update(data)  # saved: our cookie replaces the old one

    def reissue_due(self, session: Session) -> bool:
        """Whether ``reissue_time`` asks for the cookie of ``session`` (which came with
        the request, was accessed and is kept) to be issued again now."""
        if not session.accessed or session.is_new or not session:
            return False
        if self._rolling:
            return True
        after = self._reissue_after
        if after is None:
            return False
        expires, lifetime = session.expires_at, session.max_age
        if expires is None or lifetime is None:
            return False
        return self._clock() - (expires - lifetime) > after

    def commit(self, session: Session, request: Any, response: Any, failed: bool = False) -> None:
        """Commit ``session`` (of ``request``) into ``response.headerlist``: ``Vary:
        Cookie``, and when a cookie is due our ``Set-Cookie`` (last) with
        ``Cache-Control: private``. ``failed``: save nothing (a destroy still clears the
        cookie)."""
        if self._reissue_after is not None and not failed and self.reissue_due(session):
            session.save()
        update = self.manager.save_session(session, failed=failed)
        headers: list[tuple[str, str]] = response.headerlist
        for name, _ in headers:
            if len(name) in _MERGED_LENGTHS and name.lower() in _MERGED:
                break
        else:  # nothing to merge with (the common case)
            headers.append(self._vary)
            if update is not None:
                if self._cache_control:
                    headers.append(_PRIVATE)
                self._add(headers, update.header)
            return
        merge_vary(headers, self._vary[1])
        if update is None:
            return
        if self._is_ours is not None and self._external_key is None:
            is_ours = self._is_ours
            headers[:] = [h for h in headers if not is_ours(*h)]
        if self._cache_control:
            reasons = make_private(headers)
            environ = {} if request is None else request.environ
            for reason in reasons:
                self.manager.emitter.emit("cache_control_overridden", environ, session.id, reason)
        self._add(headers, update.header)

    def _add(self, headers: list[tuple[str, str]], value: str) -> None:
        if self._external_key is not None:
            self._external_key.set(headers, value)
        else:
            headers.append(("Set-Cookie", value))


def _dummy_request_cookie(request: Any, name: str) -> str | None:
    """Our cookie from a :class:`pyramid.testing.DummyRequest`, which keeps cookies in a
    plain dict instead of a ``Cookie`` header (a real request's come from the header)."""
    cookies = getattr(request, "__dict__", {}).get("cookies")
    if type(cookies) is not dict:
        return None
    value = cookies.get(name)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if isinstance(value, str) and value else None


#: The settings of Pyramid's own arguments (the others are wsgisession's options).
_PYRAMID_SETTINGS: dict[str, Callable[[str], Any]] = {
    "max_age": CONVERTERS["max_age"],
    "timeout": CONVERTERS["max_age"],
    "reissue_time": CONVERTERS["max_age"],
    "set_on_exception": asbool,
}


# -- behind the WSGI middleware --------------------------------------------------------


def session_factory(environ_key: str = _DEFAULT_ENVIRON_KEY) -> Callable[[Any], PyramidSession]:
    """A Pyramid session factory over the session that a
    :class:`~wsgisession.SessionMiddleware` put at ``request.environ[environ_key]``."""

    def factory(request: Any) -> PyramidSession:
        session = request.environ.get(environ_key)
        if not isinstance(session, Session):
            raise MissingSessionMiddleware(
                f"request.session needs wsgisession's SessionMiddleware, but "
                f"request.environ[{environ_key!r}] is "
                f"{'missing' if session is None else type(session).__name__}. Either wrap "
                f"the WSGI application (return SessionMiddleware(config.make_wsgi_app(), "
                f"secret_keys=[...]) from main(), or put the PasteDeploy filter "
                f"'egg:wsgisession-aead#session' in the .ini pipeline, with the middleware's "
                f"environ_key equal to the {ENVIRON_KEY_SETTING!r} setting), or use the "
                f"session factory, which needs no middleware: put session.secret_keys in "
                f"the app's settings before config.include('wsgisession.adapters.pyramid'), "
                f"or call config.set_session_factory(PyramidSessionFactory(secret_keys=[...]))."
            )
        return PyramidSession(session)

    return factory


def includeme(config: Any) -> None:
    """``config.include("wsgisession.adapters.pyramid")``: register a session factory.

    With ``session.*`` settings (``session.secret_keys`` at least), a
    :class:`PyramidSessionFactory` built from them
    (:meth:`PyramidSessionFactory.from_settings`), which hands out the middleware's
    session instead on requests that a :class:`~wsgisession.SessionMiddleware` wraps
    (an application that already passes those settings to
    ``SessionMiddleware.from_settings`` keeps working as before). Without, the
    environ-based :func:`session_factory` for an application wrapped by the middleware.
    Either way ``wsgisession.environ_key`` (default ``session``) names the middleware's
    key.
    """
    settings = config.get_settings() or {}
    environ_key = settings.get(ENVIRON_KEY_SETTING, _DEFAULT_ENVIRON_KEY)
    if not isinstance(environ_key, str) or not environ_key.strip():
        raise ConfigurationError(
            f"{ENVIRON_KEY_SETTING} must be a non-empty string", ENVIRON_KEY_SETTING
        )
    if any(key.startswith(SETTINGS_PREFIX) for key in settings):
        factory = PyramidSessionFactory.from_settings(settings, middleware_key=environ_key.strip())
        config.set_session_factory(factory)
    else:
        config.set_session_factory(session_factory(environ_key.strip()))
