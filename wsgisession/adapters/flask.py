"""Flask adapter: ``flask.session`` (and ``flash()``, Flask-Login…) backed by wsgisession.

.. code-block:: python

    from flask import Flask
    from wsgisession.adapters.flask import init_app

    app = Flask(__name__)
    app.config["WSGISESSION_SECRET_KEYS"] = ["<at least 32 random bytes>"]
    init_app(app)                       # or init_app(app, secret_keys=[...], ...)

:func:`init_app` wraps ``app.wsgi_app`` with a :class:`~wsgisession.SessionMiddleware`
and installs :class:`WSGISessionInterface` as ``app.session_interface``. The middleware
owns the cookie: ``save_session`` never writes one, so ``Set-Cookie``, ``Vary: Cookie``
and ``Cache-Control`` are added once, by the middleware, at ``start_response``.

Flask's settings are read at each request (a middleware is built, and cached, per
distinct set of values): ``SESSION_COOKIE_NAME`` → ``cookie_name``,
``SESSION_COOKIE_DOMAIN`` → ``domain``, ``SESSION_COOKIE_PATH`` (else
``APPLICATION_ROOT``) → ``path``, ``SESSION_COOKIE_HTTPONLY`` → ``httponly``,
``SESSION_COOKIE_SECURE`` → ``secure`` (``True`` → always; ``False`` → wsgisession's
automatic mode, Secure on HTTPS requests), ``SESSION_COOKIE_SAMESITE`` → ``samesite``,
``SESSION_COOKIE_PARTITIONED`` → ``partitioned``, ``PERMANENT_SESSION_LIFETIME`` →
``max_age``. Options passed to :func:`init_app` override them. Secret keys come from
``init_app(secret_keys=...)`` or ``app.config["WSGISESSION_SECRET_KEYS"]``; Flask's
``SECRET_KEY`` is not used.

As with Flask's own session, ``session.permanent = False`` (the default) gives a
browser-session cookie (no ``Max-Age``/``Expires``) while the token itself still
expires ``PERMANENT_SESSION_LIFETIME`` after its last save; ``session.permanent = True``
gives the cookie that lifetime, re-sent on each request while
``SESSION_REFRESH_EACH_REQUEST`` is true.

Values with ``__html__`` (``markupsafe.Markup``, e.g. from ``flash(Markup(...))``)
round-trip as ``Markup`` through :class:`FlaskJSONSerializer`.

Only this module imports Flask.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from markupsafe import Markup
from werkzeug.datastructures import Headers

from ..errors import ConfigurationError
from ..middleware import SessionMiddleware
from ..serializers import JSONSerializer
from ..session import Session
from ._proxy import SessionProxy

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "FlaskJSONSerializer",
    "FlaskSession",
    "FlaskSessionWSGI",
    "WSGISessionInterface",
    "init_app",
]

#: ``app.config`` key holding the secret keys when ``init_app`` is not given any.
SECRET_KEYS_CONFIG = "WSGISESSION_SECRET_KEYS"  # noqa: S105 - a config key name
#: environ key: the middleware serving this request (set by :class:`FlaskSessionWSGI`).
_MW_KEY = "wsgisession.flask.middleware"
#: environ key: True when the session was opened without the middleware in the WSGI path.
_DETACHED_KEY = "wsgisession.flask.detached"
_HTML_TAG = "$html"
_MAX_CACHED = 8


# -- serializer -------------------------------------------------------------------------


def _tag(obj: Any) -> Any:
    """Replace ``__html__`` objects by ``{"$html": str}`` and escape user dicts whose
    single key starts with ``$`` as ``{"$": [[key, value]]}`` (so neither is ambiguous)."""
    if type(obj) is str or obj is None or type(obj) in (int, float, bool):
        return obj
    if hasattr(obj, "__html__"):
        return {_HTML_TAG: str(obj.__html__())}
    if isinstance(obj, dict):
        out = {k: _tag(v) for k, v in obj.items()}
        if len(out) == 1:
            ((key, value),) = out.items()
            if isinstance(key, str) and key.startswith("$"):
                return {"$": [[key, value]]}
        return out
    if isinstance(obj, list):
        return [_tag(v) for v in obj]
    if type(obj) is tuple:
        return tuple(_tag(v) for v in obj)
    return obj


def _untag(obj: Any) -> Any:
    """Inverse of :func:`_tag`, applied top-down to what the base serializer loaded."""
    if type(obj) is dict:
        if len(obj) == 1:
            ((key, value),) = obj.items()
            if key == _HTML_TAG and type(value) is str:
                # Authenticated data we wrote from a Markup object: already safe HTML.
                return Markup(value)  # noqa: S704
            if (
                key == "$"
                and type(value) is list
                and len(value) == 1
                and type(value[0]) is list
                and len(value[0]) == 2
                and type(value[0][0]) is str
            ):
                return {value[0][0]: _untag(value[0][1])}
        return {k: _untag(v) for k, v in obj.items()}
    if type(obj) is list:
        return [_untag(v) for v in obj]
    if type(obj) is tuple:
        return tuple(_untag(v) for v in obj)
    return obj


class FlaskJSONSerializer(JSONSerializer):
    """:class:`~wsgisession.JSONSerializer` that also round-trips ``Markup``.

    Any object with ``__html__`` is stored as its HTML string and comes back as
    :class:`markupsafe.Markup`; everything else is exactly as with the base class.
    """

    def dumps(self, obj: Any) -> bytes:
        return super().dumps(_tag(obj))

    def loads(self, data: bytes) -> Any:
        return _untag(super().loads(data))

    def __repr__(self) -> str:
        return "FlaskJSONSerializer()"


# -- the session object -----------------------------------------------------------------


class FlaskSession(SessionProxy, SessionMixin):
    """A Flask session (:class:`flask.sessions.SessionMixin`) over a wsgisession
    :class:`~wsgisession.Session`.

    The dict API goes straight to the wsgisession session (lazy loading, nested
    change detection). ``new``/``modified``/``accessed`` map to
    ``is_new``/``changed``/``accessed``; ``permanent`` is the ``_permanent`` key, as in
    Flask. Setting ``modified = True`` forces a save of a non-empty session.
    """

    def __init__(self, session: Session, environ: dict[str, Any]) -> None:
        self._wsgisession = session
        self._environ = environ
        self._force_modified = False
        self._accessed = False

    @property
    def wsgisession(self) -> Session:
        """The underlying :class:`~wsgisession.Session` (``regenerate()``, ``max_age``…)."""
        return self._wsgisession

    # -- Flask's attributes -------------------------------------------------------------

    @property
    def new(self) -> bool:  # type: ignore[override]
        """True when no valid session came with the request."""
        return self._wsgisession.is_new

    @property
    def modified(self) -> bool:
        """True when the data changed (nested changes included) or ``modified`` was set."""
        return self._force_modified or self._wsgisession.changed

    @modified.setter
    def modified(self, value: bool) -> None:
        self._force_modified = bool(value)

    @property
    def accessed(self) -> bool:
        """True when the request read or wrote the session."""
        return self._accessed or self._wsgisession.accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        # Flask's request context sets this whenever ``flask.session`` is looked up;
        # the middleware's own record (``Session.accessed``) decides ``Vary``.
        self._accessed = bool(value)

    def regenerate(self) -> None:
        """Keep the data under a new session id (call it at login)."""
        self._wsgisession.regenerate()

    def invalidate(self) -> None:
        """Destroy the session: the response clears the cookie."""
        self._wsgisession.invalidate()

    def __repr__(self) -> str:
        return f"<FlaskSession {self._wsgisession!r}>"


# -- configuration ----------------------------------------------------------------------


def _lifetime(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.timedelta(seconds=value)
    return value


def _options_from_config(app: Flask, explicit: dict[str, Any]) -> dict[str, Any]:
    """The middleware options for ``app.config`` as it is now; ``explicit`` wins."""
    config = app.config
    options: dict[str, Any] = {}
    keys = config.get(SECRET_KEYS_CONFIG)
    if keys is not None:
        options["secret_keys"] = [keys] if isinstance(keys, (str, bytes)) else list(keys)
    options["cookie_name"] = config.get("SESSION_COOKIE_NAME") or "session"
    domain = config.get("SESSION_COOKIE_DOMAIN")
    options["domain"] = domain or None
    options["path"] = config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/"
    options["httponly"] = bool(config.get("SESSION_COOKIE_HTTPONLY", True))
    options["secure"] = True if config.get("SESSION_COOKIE_SECURE") else None
    options["samesite"] = config.get("SESSION_COOKIE_SAMESITE") or None
    options["partitioned"] = bool(config.get("SESSION_COOKIE_PARTITIONED", False))
    options["max_age"] = _lifetime(
        config.get("PERMANENT_SESSION_LIFETIME", datetime.timedelta(days=31))
    )
    options.update(explicit)
    if options.get("secret_keys") is None:
        raise ConfigurationError(
            f"no secret keys: pass init_app(app, secret_keys=[...]) or set "
            f'app.config["{SECRET_KEYS_CONFIG}"]',
            "secret_keys",
        )
    return options


def _cache_key(options: dict[str, Any]) -> tuple[Any, ...]:
    parts: list[Any] = []
    for name in sorted(options):
        value = options[name]
        if isinstance(value, list):
            value = tuple(value)
        try:
            hash(value)
        except TypeError:
            value = ("id", id(value))
        parts.append((name, value))
    return tuple(parts)


class FlaskSessionWSGI:
    """The WSGI layer :func:`init_app` puts around ``app.wsgi_app``.

    It runs the request through a :class:`~wsgisession.SessionMiddleware` configured
    from ``app.config`` as it is at that request, and turns the session cookie into a
    browser-session cookie when the Flask session is not permanent.
    """

    def __init__(self, app: Flask, wsgi_app: WSGIApplication, options: dict[str, Any]) -> None:
        self.flask_app = app
        self.wsgi_app = wsgi_app
        self.options = dict(options)
        # The serializer object is shared by every middleware built here.
        self._serializer = self.options.pop("serializer", None) or FlaskJSONSerializer()
        self._cache: dict[tuple[Any, ...], FlaskSessionMiddleware] = {}

    def middleware(self) -> FlaskSessionMiddleware:
        """The middleware for the application's current configuration."""
        options = _options_from_config(self.flask_app, self.options)
        options["serializer"] = self._serializer
        key = _cache_key(options)
        mw = self._cache.get(key)
        if mw is None:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            mw = self._cache[key] = FlaskSessionMiddleware(
                self.wsgi_app, browser_cookies="max_age" not in self.options, **options
            )
        return mw

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        mw = self.middleware()
        environ[_MW_KEY] = mw
        return mw(environ, start_response)


class FlaskSessionMiddleware(SessionMiddleware):
    """The middleware with Flask's cookie policy: a session that is not ``permanent``
    gets a browser-session cookie (no ``Max-Age``/``Expires``) while its token still
    expires ``PERMANENT_SESSION_LIFETIME`` after its last save, as with Flask's own
    session — unless ``init_app`` was given an explicit ``max_age``."""

    def __init__(self, app: WSGIApplication, *, browser_cookies: bool, **options: Any) -> None:
        super().__init__(app, **options)
        self.browser_cookies = browser_cookies

    def cookie_max_age(self, session: Session, seconds: int | None) -> int | None:
        if self.browser_cookies and not session.get("_permanent", False):
            return None
        return seconds


# -- the session interface --------------------------------------------------------------


class WSGISessionInterface(SessionInterface):
    """Flask session interface over the wsgisession middleware.

    Inside the WSGI path (the usual case), ``open_session`` wraps the session the
    middleware put in the environ and ``save_session`` only records how the cookie
    must look; the middleware writes it at ``start_response``. Outside it
    (``app.test_request_context()``, ``client.session_transaction()``), the session is
    opened from the request's cookies and saved onto the Flask response by the same
    codec.
    """

    def __init__(self, wsgi: FlaskSessionWSGI) -> None:
        self.wsgi = wsgi

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        environ = request.environ
        mw = environ.get(_MW_KEY)
        if isinstance(mw, SessionMiddleware):
            session = environ.get(mw.environ_key)
            if isinstance(session, Session):
                if environ.get(_DETACHED_KEY):
                    return _DetachedFlaskSession(session, environ, mw)
                return FlaskSession(session, environ)
        # Not in the WSGI path: open the session from this request's cookies ourselves.
        mw = self.wsgi.middleware()
        session = mw.open_session(environ)
        environ[mw.environ_key] = session
        environ[_MW_KEY] = mw
        environ[_DETACHED_KEY] = True
        return _DetachedFlaskSession(session, environ, mw)

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        return session.modified or (
            session.permanent and bool(app.config.get("SESSION_REFRESH_EACH_REQUEST", True))
        )

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, FlaskSession):  # pragma: no cover - not ours
            return
        ws = session.wsgisession
        environ = session._environ
        if ws.accessed or session._force_modified:
            if len(ws) and (
                session._force_modified
                or (
                    ws.get("_permanent", False)
                    and app.config.get("SESSION_REFRESH_EACH_REQUEST", True)
                )
            ):
                ws.save()
        if isinstance(session, _DetachedFlaskSession):
            mw = session.middleware
            if not ws.accessed and environ.get(mw.environ_key, ws) is ws:
                return  # untouched: no cookie, no Vary (as the middleware does)
            out = mw.session_headers(ws, response.status, response.headers.to_wsgi_list())
            response.headers = Headers(out)


class _DetachedFlaskSession(FlaskSession):
    """A session opened without the middleware in the WSGI path."""

    def __init__(
        self, session: Session, environ: dict[str, Any], middleware: SessionMiddleware
    ) -> None:
        super().__init__(session, environ)
        self.middleware = middleware


# -- installing -------------------------------------------------------------------------


def _regenerate_on_login(sender: Any, **extra: Any) -> None:
    """Flask-Login logged a user in (or restored one from its remember cookie): give the
    session a new id, so a session id planted before login never becomes a logged-in
    one (session fixation) — what Django's ``cycle_key()`` does at login."""
    from flask import session

    current = getattr(session, "_get_current_object", lambda: session)()
    if isinstance(current, FlaskSession):
        current.wsgisession.regenerate()


def _connect_flask_login(app: Flask) -> bool:
    """Connect :func:`_regenerate_on_login` to Flask-Login's signals for ``app``;
    False when Flask-Login is not installed."""
    try:
        from flask_login import signals  # type: ignore[import-untyped]
    except ImportError:
        return False
    for signal in (signals.user_logged_in, signals.user_loaded_from_cookie):
        signal.connect(_regenerate_on_login, sender=app, weak=False)
    return True


def init_app(app: Flask, *, regenerate_on_login: bool = True, **options: Any) -> FlaskSessionWSGI:
    """Give ``app`` wsgisession sessions: wrap ``app.wsgi_app`` and install the
    session interface. ``options`` are :class:`~wsgisession.SessionMiddleware` options
    and override the values taken from Flask's configuration. Returns the WSGI layer.

    :param regenerate_on_login: when Flask-Login is installed, give the session a new id
        whenever it logs a user in (its ``user_logged_in`` signal) or restores one from
        its remember cookie (``user_loaded_from_cookie``), so a planted pre-login
        session id never ends up logged in. On by default; ``False`` turns it off.
    :raises ConfigurationError: for a bad option, or when no secret keys are given.
    """
    if not isinstance(regenerate_on_login, bool):
        raise ConfigurationError("regenerate_on_login must be True or False", "regenerate_on_login")
    wsgi = FlaskSessionWSGI(app, app.wsgi_app, options)
    wsgi.middleware()  # check the configuration now, not at the first request
    app.wsgi_app = wsgi  # type: ignore[method-assign]
    app.session_interface = WSGISessionInterface(wsgi)
    app.extensions["wsgisession"] = wsgi
    if regenerate_on_login:
        _connect_flask_login(app)
    return wsgi
