"""Flask adapter: ``flask.session`` (and ``flash()``, Flask-Login…) backed by wsgisession.

.. code-block:: python

    import os

    from flask import Flask
    from wsgisession.adapters.flask import init_app

    app = Flask(__name__)
    app.config["WSGISESSION_SECRET_KEYS"] = [os.environ["WSGISESSION_SECRET_KEY"]]
    init_app(app)                       # or init_app(app, secret_keys=[...], ...)

The adapter is a Flask ``SessionInterface``, :class:`WSGISessionInterface`, on the
public seam (:class:`~wsgisession.SessionManager`): ``open_session`` opens a lazy
session from the request's cookie, ``save_session`` commits it and puts the cookie on
Flask's response — so it works wherever Flask opens and saves sessions (a request,
``test_request_context()``, ``session_transaction()``) with no WSGI middleware in the
path. :func:`init_app` installs it and connects Flask-Login.

Flask's semantics, as its own ``SecureCookieSessionInterface`` has them:
``session.permanent`` (a permanent session's cookie lasts
``PERMANENT_SESSION_LIFETIME``; any other gets a browser-session cookie whose token
still expires that long after its last save, on the server), a cookie only when
``modified`` or — for a permanent session, also on a request that never touched it —
``SESSION_REFRESH_EACH_REQUEST``, the deletion cookie when the request empties the
session, ``Vary: Cookie`` when it was accessed, and ``modified``/``accessed`` readable
after the response. Flask's ``SESSION_COOKIE_*`` and ``APPLICATION_ROOT`` are read at
each request and rendered exactly as ``response.set_cookie`` renders them (Werkzeug's
``dump_cookie`` makes one template per distinct set of attributes, see
:mod:`._flask_cookies`); only the cookie name (the token is bound to it) and the
lifetime pick the :class:`~wsgisession.SessionManager`, from a small cache. Where
Flask leaves a value unset our defaults apply: ``SameSite=Lax`` when
``SESSION_COOKIE_SAMESITE`` is ``None``, and ``Secure`` on HTTPS requests when
``SESSION_COOKIE_SECURE`` is false (always for ``__Host-``/``__Secure-`` names,
``SameSite=None`` and partitioned cookies). Options given to :func:`init_app` override
Flask's settings. A 5xx response saves nothing unless ``commit_on_error=True`` (a
logout still clears the cookie); see ``docs/flask.md`` for every difference.

Only this module imports Flask (:mod:`._flask_cookies` Werkzeug, :mod:`._flask_json`
MarkupSafe).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin

from ..errors import ConfigurationError, SessionTooLarge
from ..manager import CookieUpdate, SessionManager
from ..options import Options
from ..session import Session
from ._flask_cookies import merge_session_headers, template_for
from ._flask_json import FlaskJSONSerializer
from ._proxy import SessionProxy

__all__ = [
    "FlaskJSONSerializer",
    "FlaskSession",
    "FlaskSessionManager",
    "WSGISessionInterface",
    "init_app",
]

#: ``app.config`` key holding the secret keys when ``init_app`` is not given any.
SECRET_KEYS_CONFIG = "WSGISESSION_SECRET_KEYS"  # noqa: S105 - a config key name
#: Options that are cookie attributes: given to ``init_app`` they replace Flask's
#: ``SESSION_COOKIE_*``; they never reach the manager (the token does not depend on them).
COOKIE_ATTRIBUTES = ("domain", "path", "secure", "httponly", "samesite", "partitioned")
_FROM_CONFIG: Any = object()  # "read Flask's setting at each request"
_MAX_MANAGERS = 8
_SECURE_PREFIXES = ("__Host-", "__Secure-")


class FlaskSessionManager(SessionManager):
    """A :class:`~wsgisession.SessionManager` with Flask's cookie lifetime: a session
    that is not ``permanent`` gets a browser-session cookie while its token still
    expires ``max_age`` (``PERMANENT_SESSION_LIFETIME``) after its last save — unless
    ``browser_cookies`` is false (``init_app`` was given an explicit ``max_age``)."""

    def __init__(self, *, options: Options, browser_cookies: bool) -> None:
        super().__init__(options=options)
        self.browser_cookies = browser_cookies
        #: Read per request: the cookie name, ``auto_commit`` and the external key.
        self.name = options.cookie_name
        self.autosave = options.auto_commit
        self.header_key = options.external_key

    def cookie_max_age(self, session: Session, seconds: int | None) -> int | None:
        if self.browser_cookies and not session.get("_permanent", False):
            return None
        return seconds

    def carries_token(self, environ: dict[str, Any]) -> bool:
        """Whether the request may carry our token (a cheap test; a false positive
        only costs opening the session)."""
        if self.header_key is not None:
            return self.header_key.get(environ) is not None
        return self.name in environ.get("HTTP_COOKIE", "")


class FlaskSession(SessionProxy, SessionMixin):
    """A Flask session (:class:`flask.sessions.SessionMixin`) over a wsgisession
    :class:`~wsgisession.Session`.

    The dict API goes straight to the wsgisession session (lazy loading, nested change
    detection). ``permanent`` is the ``_permanent`` key, as in Flask. ``modified`` is
    true once the data changed (nested changes included) or the application set it,
    and stays so after the response, as in Flask; setting it forces a save (but
    setting it to ``False`` does not undo a change). ``accessed`` is true when Flask's
    request context handed the session out or anything read or wrote it. ``new`` is
    ``is_new``: no valid session came with the request.
    """

    _forced = False  # modified = True from the application (after the save: Flask's value)
    _flask_accessed = False  # set by Flask's request context (after the save: Flask's value)
    _saved = False  # save_session ran

    def __init__(
        self, session: Session, manager: FlaskSessionManager, environ: dict[str, Any]
    ) -> None:
        self._wsgisession = session
        self._manager = manager
        self._request_environ = environ

    @property
    def wsgisession(self) -> Session:
        """The underlying :class:`~wsgisession.Session` (``regenerate()``, ``max_age``…)."""
        return self._wsgisession

    @property
    def manager(self) -> FlaskSessionManager:
        """The :class:`FlaskSessionManager` that opened it (and will save it)."""
        return self._manager

    @property
    def new(self) -> bool:  # type: ignore[override]
        """True when no valid session came with the request."""
        return self._wsgisession.is_new

    @property
    def modified(self) -> bool:
        return self._forced or self._wsgisession.changed

    @modified.setter
    def modified(self, value: bool) -> None:
        self._forced = bool(value)

    @property
    def accessed(self) -> bool:
        return self._flask_accessed or (not self._saved and self._wsgisession.accessed)

    @accessed.setter
    def accessed(self, value: bool) -> None:
        self._flask_accessed = bool(value)

    def regenerate(self) -> None:
        """Keep the data under a new session id (call it at login)."""
        self._wsgisession.regenerate()

    def invalidate(self) -> None:
        """Destroy the session: the response clears the cookie."""
        self._wsgisession.invalidate()

    def __repr__(self) -> str:
        return f"<FlaskSession {self._wsgisession!r}>"


class WSGISessionInterface(SessionInterface):
    """Flask's session interface on wsgisession: ``app.session_interface = ...``.

    :param secret_keys: the secrets (first = current), each at least 32 bytes.
    :param options: every other :class:`~wsgisession.SessionManager` option, checked
        here; ``cookie_name``, ``max_age`` and the cookie attributes
        (:data:`COOKIE_ATTRIBUTES`) given here replace Flask's settings. The
        serializer is :class:`FlaskJSONSerializer` unless ``serializer=`` says otherwise.
    :raises ConfigurationError: for a bad option.

    One interface may serve several apps: everything per app is read from
    ``app.config`` at each request.
    """

    def __init__(self, secret_keys: Any = None, **options: Any) -> None:
        serializer = options.pop("serializer", None) or FlaskJSONSerializer()
        checked = Options(secret_keys=secret_keys, serializer=serializer, **options)
        given = checked.given()
        #: The checked options as given (cookie attributes included).
        self.options = checked
        attr = {name: given.get(name, _FROM_CONFIG) for name in COOKIE_ATTRIBUTES}
        self._domain, self._path, self._secure = attr["domain"], attr["path"], attr["secure"]
        self._httponly, self._samesite = attr["httponly"], attr["samesite"]
        self._partitioned = attr["partitioned"]
        self._name: str | None = given.get("cookie_name")
        self._lifetime_given = "max_age" in given
        # The manager's own rendering of the cookie is only used for its size check:
        # keep it no longer than ours (no Domain, Path=/, no HttpOnly/SameSite).
        self._base = checked.replace(
            domain=None, path="/", httponly=False, samesite=None, partitioned=False
        )
        self._managers: dict[tuple[Any, Any], FlaskSessionManager] = {}
        self._insecure_warned = False

    # -- managers -----------------------------------------------------------------------

    def manager_for(self, name: str, lifetime: Any) -> FlaskSessionManager:
        """The manager for a cookie name and ``PERMANENT_SESSION_LIFETIME`` (cached; at
        most a few are kept)."""
        key = (name, lifetime)
        manager = self._managers.get(key)
        if manager is None:
            changes: dict[str, Any] = {}
            if self._name is None:
                changes["cookie_name"] = name
            if not self._lifetime_given:
                changes["max_age"] = lifetime  # an int of seconds or a timedelta
            options = self._base.replace(**changes) if changes else self._base
            manager = FlaskSessionManager(options=options, browser_cookies=not self._lifetime_given)
            if len(self._managers) >= _MAX_MANAGERS:
                self._managers.clear()
            self._managers[key] = manager
        return manager

    @property
    def manager_count(self) -> int:
        """How many managers are cached (at most a few)."""
        return len(self._managers)

    def app_manager(self, app: Flask) -> FlaskSessionManager:
        """The manager ``app``'s configuration selects now."""
        config = app.config
        return self.manager_for(
            self._name or config["SESSION_COOKIE_NAME"],
            None if self._lifetime_given else config["PERMANENT_SESSION_LIFETIME"],
        )

    # -- Flask's SessionInterface -------------------------------------------------------

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        config = app.config
        key = (
            self._name or config["SESSION_COOKIE_NAME"],
            None if self._lifetime_given else config["PERMANENT_SESSION_LIFETIME"],
        )
        manager = self._managers.get(key) or self.manager_for(*key)
        environ = request.environ
        return FlaskSession(manager.open_session(environ), manager, environ)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if type(session) is not FlaskSession and not isinstance(session, FlaskSession):
            return  # not one of ours (a null session is never saved)
        ws = session._wsgisession
        manager = session._manager
        failed = response.status_code >= 500
        if session._saved:
            # Saved before (an error page after a failed save, a second
            # process_response): the same cookie again while the response may commit.
            update = manager.save_session(ws, failed=failed)
            if update is not None:
                self._send(app, session, response, update)
            return
        config = app.config
        accessed = session._flask_accessed or ws.accessed
        forced = session._forced
        # From here on, Flask's values of accessed/modified (what the request did, not
        # what saving it does), and a later call takes the branch above.
        session._saved = True
        session._flask_accessed = accessed
        update = None
        if (
            ws.accessed
            or forced
            or (
                config["SESSION_REFRESH_EACH_REQUEST"]
                and manager.carries_token(session._request_environ)
            )
        ):
            changed = ws.changed
            session._forced = modified = forced or changed
            if manager.autosave:
                # Flask's rules (these open the session if nothing did yet); a change is
                # saved by the manager's own rules, anything else must be forced.
                if not ws:
                    if modified:
                        ws.invalidate()  # emptied: the deletion cookie, as Flask sends it
                elif not changed and (
                    forced
                    or (ws.get("_permanent", False) and config["SESSION_REFRESH_EACH_REQUEST"])
                ):
                    ws.save()
            update = manager.save_session(ws, failed=failed)
        if update is not None:
            self._send(app, session, response, update)
        elif accessed:
            merge_session_headers(response, manager.options.vary, None, is_ours=None, private=False)

    # -- the response -------------------------------------------------------------------

    def _send(
        self, app: Flask, session: FlaskSession, response: Response, update: CookieUpdate
    ) -> None:
        manager = session._manager
        options = manager.options
        environ = session._request_environ
        if manager.header_key is not None:
            headers = response.headers.to_wsgi_list()
            manager.header_key.set(headers, update.header)
            response.headers.clear()
            response.headers.extend(headers)
            cookie = None
        else:
            cookie = self._cookie(app.config, session, update)
        reasons = merge_session_headers(
            response,
            options.vary,
            cookie,
            is_ours=manager.cookies.is_ours if options.overwrite else None,
            private=options.cache_control,
        )
        for reason in reasons:
            sid = session._wsgisession.id
            manager.emitter.emit("cache_control_overridden", environ, sid, reason)

    def _cookie(self, config: Any, session: FlaskSession, update: CookieUpdate) -> str:
        """Our ``Set-Cookie`` with Flask's cookie settings as they are now (or the
        options that replace them), in Werkzeug's spelling."""
        manager = session._manager
        environ = session._request_environ
        name = manager.name
        domain = self._domain
        if domain is _FROM_CONFIG:
            domain = config["SESSION_COOKIE_DOMAIN"]
        elif callable(domain):
            domain = domain(environ)
        path = self._path
        if path is _FROM_CONFIG:
            path = config["SESSION_COOKIE_PATH"] or config["APPLICATION_ROOT"]
        httponly = self._httponly
        if httponly is _FROM_CONFIG:
            httponly = bool(config["SESSION_COOKIE_HTTPONLY"])
        samesite = self._samesite
        if samesite is _FROM_CONFIG:
            samesite = config["SESSION_COOKIE_SAMESITE"] or "Lax"
        partitioned = self._partitioned
        if partitioned is _FROM_CONFIG:
            partitioned = bool(config.get("SESSION_COOKIE_PARTITIONED", False))
        secure = self._secure
        if secure is _FROM_CONFIG:
            secure = True if config["SESSION_COOKIE_SECURE"] else None
        https = environ.get("wsgi.url_scheme") == "https"
        if secure is None:
            secure = https or _needs_secure(name, samesite, partitioned)
        if secure and not https and not self._insecure_warned:
            self._insecure_warned = True
            manager.emitter.emit("insecure_transport", environ, None, "http_scheme")
        template = template_for(name, domain, path, secure, httponly, samesite, partitioned)
        if update.deletion:
            return template.deletion
        cookie = template.render(update.value, update.max_age, update.expires)
        limit = manager.options.max_cookie_size
        if len(cookie) > limit:
            # Too large for a cookie: an error, never a cookie the browser drops.
            sid = session._wsgisession.id
            manager.emitter.emit("too_large", environ, sid, "cookie_size")
            raise SessionTooLarge(len(cookie), limit)
        return cookie


def _needs_secure(name: str, samesite: Any, partitioned: bool) -> bool:
    """Browsers drop these cookies unless they are Secure."""
    return (
        name.startswith(_SECURE_PREFIXES)
        or partitioned
        or (isinstance(samesite, str) and samesite.lower() == "none")
    )


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


def init_app(
    app: Flask, *, regenerate_on_login: bool = True, **options: Any
) -> WSGISessionInterface:
    """Give ``app`` wsgisession sessions: install :class:`WSGISessionInterface` as
    ``app.session_interface`` (no WSGI wrapping). ``options`` are
    :class:`~wsgisession.SessionManager` options; they override the values taken from
    Flask's configuration. The secret keys are ``secret_keys=`` or, when not given,
    ``app.config["WSGISESSION_SECRET_KEYS"]`` as it is now. Returns the interface.

    :param regenerate_on_login: when Flask-Login is installed, give the session a new id
        whenever it logs a user in (its ``user_logged_in`` signal) or restores one from
        its remember cookie (``user_loaded_from_cookie``), so a planted pre-login
        session id never ends up logged in. On by default; ``False`` turns it off.
    :raises ConfigurationError: for a bad option, or when no secret keys are given.
    """
    if not isinstance(regenerate_on_login, bool):
        raise ConfigurationError("regenerate_on_login must be True or False", "regenerate_on_login")
    if options.get("secret_keys") is None:
        keys = app.config.get(SECRET_KEYS_CONFIG)
        if keys is None:
            raise ConfigurationError(
                f"no secret keys: pass init_app(app, secret_keys=[...]) or set "
                f'app.config["{SECRET_KEYS_CONFIG}"]',
                "secret_keys",
            )
        options["secret_keys"] = [keys] if isinstance(keys, (str, bytes)) else list(keys)
    interface = WSGISessionInterface(**options)
    interface.app_manager(app)  # Flask's settings as they are now must make a manager
    app.session_interface = interface
    app.extensions["wsgisession"] = interface
    if regenerate_on_login:
        _connect_flask_login(app)
    return interface
