"""``SessionMiddleware``: encrypted sessions for any WSGI application.

Environ keys set per request:

``environ["session"]`` (configurable with ``environ_key``)
    a lazy :class:`~wsgisession.session.Session`. Set it to ``None`` to destroy the
    session, or to a ``dict`` to replace its contents.

The middleware is a :class:`~wsgisession.SessionManager` around an application: it
puts a session in each request's environ and hands the application a
``start_response`` that commits the session (DESIGN §4) into a *copy* of the
application's headers (:meth:`~wsgisession.SessionManager.session_headers`).

.. autoclass:: SessionMiddleware
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import GeneratorType, MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError
from .headers import ClosingIterable
from .manager import SessionManager
from .session import Session
from .settings import parse_settings

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["SessionMiddleware", "filter_app_factory"]

_FINISHED_BODIES = frozenset({list, tuple})
#: What a detached, already loaded session holds instead of the request's environ.
_NO_ENVIRON: Any = MappingProxyType({})


class SessionMiddleware(SessionManager):
    """Wrap a WSGI application with encrypted sessions.

    :param app: the WSGI application.
    :param secret_keys: secrets (``str``/``bytes``, each at least 32 bytes), first =
        current: the first encrypts, all decrypt. Rotate by prepending a new secret.

    Every other option is keyword-only and checked here (:class:`~wsgisession.options.Options`);
    a bad value raises :class:`~wsgisession.errors.ConfigurationError` naming the option.
    The configuration reference of the docs describes each (``cookie_name``,
    ``max_age``, ``absolute_max_age``, ``auto_commit``, ``overwrite``, ``httponly``,
    ``secure``, ``samesite``, ``path``, ``domain``, ``partitioned``, ``rolling``,
    ``renew``, ``serializer``, ``store``, ``external_key``, ``genid``, ``prefix``,
    ``on_store_error``, ``valid``, ``before_save``, ``on_event``, ``environ_key``,
    ``namespace``, ``commit_on_error``, ``cache_control``, ``max_cookie_size``,
    ``revocation_store``, ``clock``).

    .. code-block:: python

        from wsgisession import SessionMiddleware
        app = SessionMiddleware(app, secret_keys=[os.environ["WSGISESSION_SECRET_KEY"]])
    """

    def __init__(
        self,
        app: WSGIApplication,
        secret_keys: Sequence[str | bytes] | None = None,
        **options: Any,
    ) -> None:
        if not callable(app):
            raise ConfigurationError("app must be a WSGI callable", "app")
        super().__init__(secret_keys, **options)
        self.app = app
        #: ``options.detachable``, read on every request.
        self._detachable = self.options.detachable

    @classmethod
    def from_settings(
        cls, app: WSGIApplication, settings: Mapping[str, Any], prefix: str = "session."
    ) -> SessionMiddleware:
        """Build one from string settings (ini files, PasteDeploy, Pyramid settings):
        ``session.secret_keys``, ``session.max_age``… — see :mod:`wsgisession.settings`.
        Errors name the setting as written (``session.max_age``)."""
        options = parse_settings(settings, prefix)
        try:
            return cls(app, **options)
        except ConfigurationError as exc:
            if not exc.option:
                raise
            key = prefix + exc.option
            raise ConfigurationError(f"bad value for {key!r}: {exc}", key) from None

    # -- WSGI ---------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Session() has no Python __init__: its per-request fields (Session._PER_REQUEST)
        # are set here, inline — a constructor would cost every request a Python call.
        session = Session()
        session._owner = self
        session._environ = environ
        session._data = None
        session.accessed = False
        session._committed = False
        session._server_start_response = start_response  # dropped when the response ends
        environ[self.environ_key] = session

        # The application gets session._start_response, a bound method: cheaper per
        # request than a closure.
        app_iter = self.app(environ, session._start_response)
        if not session.accessed:
            # Untouched so far. A generator body may still touch the session: watch
            # it. Any other body keeps the server's own object (wsgi.file_wrapper).
            finished = session._committed and type(app_iter) is not GeneratorType
        else:
            # A list or tuple body runs no application code any more.
            finished = (
                session._committed
                and session._late_snapshot is None
                and not session._late
                and type(app_iter) in _FINISHED_BODIES
            )
        if not finished:
            return ClosingIterable(app_iter, self._finish, session)
        # session._release(self._detachable), inline (the one copy; a test compares them):
        # a call here would cost the untouched request ~15 %.
        session._server_start_response = None
        if self._detachable:
            cookie = None if session._data is not None else environ.get("HTTP_COOKIE")
            session._environ = {"HTTP_COOKIE": cookie} if cookie else _NO_ENVIRON
        return app_iter

    def _finish(self, session: Session) -> None:
        """Called once when the server closes the response."""
        session._note_late_change()
        if self._backend is not None and session._committed and session._data is not None:
            self._finish_late(session)
        session._release(self._detachable)


def filter_app_factory(
    app: WSGIApplication, global_conf: Mapping[str, Any], **local_conf: str
) -> SessionMiddleware:
    """PasteDeploy ``paste.filter_app_factory`` (``egg:wsgisession-aead#session``): the
    ``[filter:…]`` section's options are bare (``secret_keys = …``)."""
    return SessionMiddleware.from_settings(app, local_conf, prefix="")
