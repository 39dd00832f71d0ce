"""``SessionMiddleware``: encrypted cookie sessions for any WSGI application.

Environ keys set per request:

``environ["session"]`` (configurable with ``environ_key``)
    a lazy :class:`~wsgisession.session.Session`. Set it to ``None`` to destroy the
    session, or to a ``dict`` to replace its contents.

The middleware wraps ``start_response``: when the application starts its response,
the session is committed (DESIGN §4) and ``Set-Cookie``, ``Vary: Cookie`` and
``Cache-Control: private`` are added to a *copy* of the application's headers.

.. autoclass:: SessionMiddleware
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from json.encoder import encode_basestring_ascii as _json_str
from types import GeneratorType, MappingProxyType
from typing import TYPE_CHECKING, Any

from .codec import TokenCodec, b64encode
from .cookies import (
    CookieWriter,
    find_cookie,
    valid_cookie_name,
    valid_domain,
    valid_path,
)
from .errors import (
    ConfigurationError,
    InvalidToken,
    SerializationError,
    SessionTooLarge,
    WSGISessionError,
)
from .events import SessionEvent, session_id_hash
from .headers import CDN_FIELDS, ClosingIterable, make_private, merge_vary
from .serializers import JSONSerializer, encode_text
from .session import UNSET, Session, coerce_max_age
from .storemode import StoreMode, _valid_per_session

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["SessionMiddleware"]

logger = logging.getLogger("wsgisession")
_DEBUG = logging.DEBUG  # the level of "created" (_DEBUG_EVENTS)

#: Browsers cap cookie lifetimes at 400 days (RFC 6265bis); so do we.
MAX_COOKIE_AGE = 400 * 24 * 3600
#: Record lifetime in store mode when neither max_age nor absolute_max_age applies.
STORE_TTL_BROWSER_SESSION = 24 * 3600
#: A token created this far in the future is refused as invalid.
CLOCK_SKEW = 60
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_WARNING_EVENTS = frozenset(
    {
        "invalid",
        "unknown_key",
        "duplicate",
        "too_large",
        "store_error",
        "interrupted",
        "late_write",
        "insecure_transport",
    }
)
_DEBUG_EVENTS = frozenset({"created", "regenerated", "destroyed"})
_MAX_WRITERS = 64
#: Response headers _commit may have to merge with, and their lengths (a cheap filter).
_HEADERS_WE_EDIT = frozenset({"vary", "set-cookie", "cache-control", *CDN_FIELDS})
_HEADER_LENGTHS = frozenset(len(name) for name in _HEADERS_WE_EDIT)
_PRIVATE = ("Cache-Control", "private")
_ID_MAX = 256
_FINISHED_BODIES = frozenset({list, tuple})
#: What a detached, already loaded session holds instead of the request's environ.
_NO_ENVIRON: Any = MappingProxyType({})
_urandom = os.urandom


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, not {value!r:.40}", name)
    return value


def _check_callable(name: str, value: object, *, optional: bool = True) -> Any:
    if value is None and optional:
        return None
    if not callable(value):
        raise ConfigurationError(f"{name} must be callable, not {type(value).__name__}", name)
    return value


class SessionMiddleware(StoreMode):
    """Wrap a WSGI application with encrypted cookie sessions.

    :param app: the WSGI application.
    :param secret_keys: secrets (``str``/``bytes``, each at least 32 bytes), first =
        current: the first encrypts, all decrypt. Rotate by prepending a new secret.

    Every other option is keyword-only and validated here; a bad value raises
    :class:`~wsgisession.errors.ConfigurationError` naming the option. See the README
    for the full table (``cookie_name``, ``max_age``, ``absolute_max_age``,
    ``auto_commit``, ``overwrite``, ``httponly``, ``secure``, ``samesite``, ``path``,
    ``domain``, ``partitioned``, ``rolling``, ``renew``, ``serializer``, ``store``,
    ``external_key``, ``genid``, ``prefix``, ``on_store_error``, ``valid``,
    ``before_save``, ``on_event``, ``environ_key``, ``namespace``,
    ``commit_on_error``, ``cache_control``, ``max_cookie_size``, ``clock``).

    .. code-block:: python

        from wsgisession import SessionMiddleware
        app = SessionMiddleware(app, secret_keys=[os.environ["SESSION_SECRET"]])
    """

    def __init__(
        self,
        app: WSGIApplication,
        secret_keys: Sequence[str | bytes] | None = None,
        *,
        cookie_name: str = "session",
        max_age: int | float | datetime.timedelta | None = 86400,
        absolute_max_age: int | float | datetime.timedelta | None = None,
        auto_commit: bool = True,
        overwrite: bool = True,
        httponly: bool = True,
        secure: bool | None = None,
        samesite: str | None = "Lax",
        path: str = "/",
        domain: str | Callable[[dict[str, Any]], str | None] | None = None,
        partitioned: bool = False,
        rolling: bool = False,
        renew: bool = False,
        serializer: Any = None,
        store: Any = None,
        external_key: Any = None,
        genid: Callable[[dict[str, Any]], str] | None = None,
        prefix: str = "session:",
        on_store_error: str = "raise",
        valid: Callable[[dict[str, Any], Session], bool] | None = None,
        before_save: Callable[[dict[str, Any], Session], None] | None = None,
        on_event: Callable[[SessionEvent], None] | None = None,
        environ_key: str = "session",
        namespace: str = "default",
        commit_on_error: bool = False,
        cache_control: bool = True,
        max_cookie_size: int = 4096,
        clock: Callable[[], float] = time.time,
        **unknown: Any,
    ) -> None:
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigurationError(f"unknown option {name!r}", name)
        if not callable(app):
            raise ConfigurationError("app must be a WSGI callable", "app")
        if secret_keys is None:
            raise ConfigurationError("secret_keys is required", "secret_keys")
        self.app = app
        self._codec = TokenCodec(secret_keys, namespace)
        self.namespace = namespace

        if not isinstance(cookie_name, str) or not valid_cookie_name(cookie_name):
            raise ConfigurationError(
                "cookie_name must be a non-empty RFC 9110 token (no spaces, ';', ',', '=' "
                "or control characters), not start with '$' and not be an attribute name",
                "cookie_name",
            )
        if len(cookie_name) > 256:
            raise ConfigurationError("cookie_name is longer than 256 characters", "cookie_name")
        self.cookie_name = cookie_name
        self.max_age = coerce_max_age(max_age, "max_age")
        self.absolute_max_age = coerce_max_age(absolute_max_age, "absolute_max_age")
        self.auto_commit = _check_bool("auto_commit", auto_commit)
        self.overwrite = _check_bool("overwrite", overwrite)
        self.httponly = _check_bool("httponly", httponly)
        self.partitioned = _check_bool("partitioned", partitioned)
        self.rolling = _check_bool("rolling", rolling)
        self.renew = _check_bool("renew", renew)
        self.commit_on_error = _check_bool("commit_on_error", commit_on_error)
        self.cache_control = _check_bool("cache_control", cache_control)
        if secure is not None:
            _check_bool("secure", secure)
        self.secure = secure

        if samesite is not None:
            if not isinstance(samesite, str) or samesite.lower() not in _SAMESITE:
                raise ConfigurationError(
                    'samesite must be "Lax", "Strict", "None" or None', "samesite"
                )
            samesite = _SAMESITE[samesite.lower()]
        self.samesite = samesite
        if not isinstance(path, str) or not valid_path(path):
            raise ConfigurationError(
                "path must start with '/' and hold only visible ASCII without ';'", "path"
            )
        self.path = path
        if domain is not None and not callable(domain):
            if not isinstance(domain, str) or not valid_domain(domain):
                raise ConfigurationError(
                    "domain must be a host name (letters, digits, '-', '.'), a callable or None",
                    "domain",
                )
        self.domain = domain

        # Attributes that demand Secure.
        needs_secure = []
        if cookie_name.startswith("__Host-"):
            needs_secure.append("a __Host- cookie_name")
            if domain is not None:
                raise ConfigurationError("a __Host- cookie_name forbids domain", "domain")
            if path != "/":
                raise ConfigurationError('a __Host- cookie_name requires path="/"', "path")
        if cookie_name.startswith("__Secure-"):
            needs_secure.append("a __Secure- cookie_name")
        if samesite == "None":
            needs_secure.append('samesite="None"')
        if partitioned:
            needs_secure.append("partitioned=True")
        if needs_secure and secure is False:
            raise ConfigurationError(
                f"{needs_secure[0]} requires Secure; secure=False is not allowed", "secure"
            )
        self._always_secure = secure is True or bool(needs_secure)

        if serializer is None:
            serializer = JSONSerializer()
        elif not (
            callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))
        ):
            raise ConfigurationError(
                "serializer must have dumps(obj) -> bytes and loads(bytes) -> obj",
                "serializer",
            )
        self._serializer = serializer
        self._fast_json = type(serializer) is JSONSerializer

        if store is not None:
            missing = [m for m in ("get", "set", "delete") if not callable(getattr(store, m, None))]
            if missing:
                raise ConfigurationError(
                    f"store must have get(), set() and delete() methods (missing {missing[0]})",
                    "store",
                )
        if external_key is not None:
            if store is None:
                raise ConfigurationError(
                    "external_key needs a server-side store (store=...)", "external_key"
                )
            if not (
                isinstance(getattr(external_key, "name", None), str)
                and callable(getattr(external_key, "get", None))
                and callable(getattr(external_key, "set", None))
            ):
                raise ConfigurationError(
                    "external_key must be a HeaderKey (or have name, get(environ) and "
                    "set(headers, value))",
                    "external_key",
                )
        self.store = store
        # The store's optional methods, looked up once.
        self._store_create = getattr(store, "create", None)
        self._store_update = getattr(store, "update", None)
        self._store_touch = getattr(store, "touch", None)
        self._store_move = getattr(store, "move", None)
        if store is not None and (self._store_create is None or self._store_update is None):
            logger.warning(
                "session store %s has no create()/update(): saves check that the record "
                "still exists right before writing, which narrows but cannot close the "
                "window in which a concurrent logout can be undone",
                type(store).__name__,
            )
        self.external_key = external_key
        #: Store mode saves changes made after the headers went out, at close().
        self._stores_late = store is not None
        # A header token is sealed for its transport: it never opens as a cookie.
        self._purpose = "data" if store is None else "sid" if external_key is None else "header"
        self._binding = cookie_name if external_key is None else external_key.name.lower()
        self._vary = "Cookie" if external_key is None else external_key.name
        self._vary_header = ("Vary", self._vary)
        #: Nothing configured receives the environ once the request is over (events go
        #: to the logger only), so _detach may drop the session's reference to it.
        self._detachable = (
            external_key is None
            and genid is None
            and valid is None
            and before_save is None
            and on_event is None
            and not callable(domain)
        )
        # The token codec, bound once to this middleware's purpose and cookie/header.
        self._seal_token = self._codec.sealer(self._purpose, self._binding)
        self._open_token = self._codec.opener(self._purpose, self._binding)
        self._genid = _check_callable("genid", genid)
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a str", "prefix")
        self.prefix = prefix
        if on_store_error not in ("raise", "ignore"):
            raise ConfigurationError('on_store_error must be "raise" or "ignore"', "on_store_error")
        self.on_store_error = on_store_error
        self._valid = _check_callable("valid", valid)
        self._before_save = _check_callable("before_save", before_save)
        self._on_event = _check_callable("on_event", on_event)
        if not isinstance(environ_key, str) or not environ_key:
            raise ConfigurationError("environ_key must be a non-empty str", "environ_key")
        self.environ_key = environ_key
        if (
            not isinstance(max_cookie_size, int)
            or isinstance(max_cookie_size, bool)
            or not 512 <= max_cookie_size <= 8192
        ):
            raise ConfigurationError(
                "max_cookie_size must be an int between 512 and 8192", "max_cookie_size"
            )
        self.max_cookie_size = max_cookie_size
        self._clock = _check_callable("clock", clock, optional=False)
        self._insecure_warned = False
        self._writers: dict[tuple[str | None, bool], CookieWriter] = {}
        #: Writers for a fixed domain-less cookie, indexed by "secure" (the common case).
        self._plain_writers: tuple[CookieWriter | None, CookieWriter | None] = (None, None)
        if not callable(domain):
            # Build both static writers now, so a bad combination fails here.
            for flag in {True} if self._always_secure else {True, False}:
                self._writer(domain, flag)
            if domain is None:
                self._plain_writers = (
                    self._writers.get((None, False)),
                    self._writers.get((None, True)),
                )

    @classmethod
    def from_settings(
        cls, app: WSGIApplication, settings: Any, prefix: str = "session."
    ) -> SessionMiddleware:
        """Build one from string settings (ini files, PasteDeploy, Pyramid settings):
        ``session.secret_keys``, ``session.max_age``… — see :mod:`wsgisession.settings`.
        """
        from .settings import from_settings

        return from_settings(app, settings, prefix)

    def __repr__(self) -> str:
        return (
            f"<SessionMiddleware cookie_name={self.cookie_name!r} "
            f"namespace={self.namespace!r} key_ids={self._codec.key_ids!r}>"
        )

    # -- WSGI ---------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Session() has no Python __init__: the attributes read on every request are
        # set here, where reading them is cheaper than falling back to class defaults.
        session = Session()
        session._mw = self
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
        session._server_start_response = None
        if self._detachable:  # self._detach(session), inline
            cookie = None if session._data is not None else environ.get("HTTP_COOKIE")
            session._environ = {"HTTP_COOKIE": cookie} if cookie else _NO_ENVIRON
        return app_iter

    def _finish(self, session: Session) -> None:
        """Called once when the server closes the response."""
        if (
            session._late_snapshot is not None
            and not session._late
            and session._dump_data() != session._late_snapshot
        ):
            session._late = True
            self._late_write(session)
        if self.store is not None and session._committed and session._data is not None:
            self._store_finish(session)
        session._server_start_response = None
        if self._detachable:
            self._detach(session)

    def _detach(self, session: Session) -> None:
        """The response is over: break the session ↔ environ reference cycle, so the
        request's objects are freed at once instead of by the cyclic collector.

        Only with no hook that receives the environ (see ``_detachable``): a session
        not loaded yet keeps just the ``Cookie`` header, all a later lazy load reads; a
        loaded one keeps an empty read-only mapping (nothing will read it).
        """
        environ = session._environ
        cookie = None if session._data is not None else environ.get("HTTP_COOKIE")
        session._environ = {"HTTP_COOKIE": cookie} if cookie else _NO_ENVIRON

    def _late_write(self, session: Session) -> None:
        if self.store is None:
            self._emit("late_write", session._environ, session._id, "after_headers")

    # -- events -------------------------------------------------------------------

    def _emit(
        self,
        name: str,
        environ: dict[str, Any],
        session_id: str | None,
        reason: str,
        cause: BaseException | None = None,
    ) -> None:
        """Log the event and hand it to ``on_event``. ``cause`` (a store failure) goes
        into the log line only: its message and exception class, never data."""
        if name in _WARNING_EVENTS:
            level = logging.WARNING
        elif name in _DEBUG_EVENTS:
            level = logging.DEBUG
        else:
            level = logging.INFO
        logged = logger.isEnabledFor(level)
        if not logged and self._on_event is None:
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
                    _describe(cause),
                )
        if self._on_event is not None:
            try:
                self._on_event(SessionEvent(name, environ, id_hash, reason))
            except Exception:
                logger.exception("on_event callback failed for a %s event", name)

    # -- loading ------------------------------------------------------------------

    def _new_id(self, environ: dict[str, Any]) -> str:
        if self._genid is None:
            # What secrets.token_urlsafe(32) returns (256 random bits, 43 characters).
            return b64encode(_urandom(32))
        sid = self._genid(environ)
        if not isinstance(sid, str) or not sid or len(sid) > _ID_MAX:
            raise WSGISessionError(
                f"genid must return a non-empty str of at most {_ID_MAX} characters"
            )
        return sid

    def _load(self, session: Session) -> dict[str, Any]:
        """Open the request's cookie into ``session`` (first touch)."""
        session.accessed = True
        environ = session._environ
        now = self._clock()
        record = None
        if self.external_key is None:  # self._candidates(environ), inline for cookies
            header = environ.get("HTTP_COOKIE")
            values, count = find_cookie(header, self.cookie_name) if header else ([], 0)
        else:
            values, count = self._candidates(environ)
        if count == 1:
            try:
                record = self._open(values[0], now)
            except InvalidToken as exc:
                self._emit(exc.event, environ, exc.session_id, exc.reason)
        elif count > 1:
            record = self._pick_duplicate(environ, values, now)
        if record is None:
            return session._init_fresh(now)
        data, meta, kid = record
        if self.store is not None:
            stored = self._store_load(session, meta["s"], now)
            if stored is None:
                return session._reset(now)
            data, record_meta, record_kid = stored
            session._record_rekey = record_kid != self._codec.primary_kid
            meta = {**record_meta, "e": meta.get("e")}
        assert data is not None
        session._data = data
        session._is_new = False
        session._incoming = True
        session._id = meta["s"]
        session._created = meta["c"]
        session._expires = meta.get("e")
        session._absolute = meta.get("a")
        session._max_age = meta["m"] if "m" in meta else UNSET
        session._rekey = kid != self._codec.primary_kid
        if self._valid is not None:
            try:
                ok = bool(self._valid(environ, session))
            except Exception:
                logger.exception("the valid() hook raised; treating the session as invalid")
                ok = False
            if not ok:
                self._emit("invalid", environ, session._id, "valid")
                return session._reset(now)
            session._snapshot = None  # whatever valid() read is still pristine
        if session._rekey or session._record_rekey:
            self._emit("rotated", environ, session._id, "old_key")
        return data

    def _candidates(self, environ: dict[str, Any]) -> tuple[list[str], int]:
        """The token values the request carries for us, and how many there were."""
        if self.external_key is not None:
            value = self.external_key.get(environ)
            return ([value], 1) if value else ([], 0)
        header = environ.get("HTTP_COOKIE")
        if not header:
            return [], 0
        return find_cookie(header, self.cookie_name)

    def _pick_duplicate(
        self, environ: dict[str, Any], values: list[str], now: float
    ) -> tuple[dict[str, Any] | None, dict[str, Any], bytes] | None:
        opened = []
        for value in values:
            try:
                opened.append(self._open(value, now))
            except InvalidToken:
                continue
        ids = {record[1]["s"] for record in opened}
        if len(ids) > 1:
            self._emit("duplicate", environ, None, "ambiguous")
            return None
        if not opened:
            self._emit("duplicate", environ, None, "none_valid")
            return None
        self._emit("duplicate", environ, opened[0][1]["s"], "multiple")
        return opened[0]

    def _open(self, value: str, now: float) -> tuple[dict[str, Any] | None, dict[str, Any], bytes]:
        """Open one cookie value; return ``(data, metadata, kid)`` or raise InvalidToken."""
        payload, kid = self._open_token(value)
        try:
            meta = self._serializer.loads(payload)
        except Exception:
            raise InvalidToken("decode") from None
        if type(meta) is not dict:
            raise InvalidToken("schema")
        created = meta.get("c")
        sid = meta.get("s")
        data = meta.pop("d", None)
        if (
            type(created) is not int
            or type(sid) is not str
            or not 0 < len(sid) <= _ID_MAX
            or type(data) is not (dict if self.store is None else type(None))
        ):
            raise InvalidToken("schema")
        expires = meta.get("e")
        absolute = meta.get("a")
        if (expires is not None and type(expires) is not int) or (
            absolute is not None and type(absolute) is not int
        ):
            raise InvalidToken("schema")
        if "m" in meta and not _valid_per_session(meta):
            raise InvalidToken("schema")
        if created > now + CLOCK_SKEW:
            raise InvalidToken("future")
        if absolute is None and self.absolute_max_age is not None:
            absolute = meta["a"] = created + self.absolute_max_age
        if absolute is not None and not now < absolute:
            raise InvalidToken("absolute", "expired", session_id=sid)
        if expires is not None and not now < expires:
            raise InvalidToken("idle", "expired", session_id=sid)
        return data, meta, kid

    def _projected_expiry(self, session: Session) -> int | None:
        """Expiry a session would get if saved now (for ``expires_at`` of unsaved ones)."""
        now = int(self._clock())
        lifetime = self.max_age if session._max_age is UNSET else session._max_age
        absolute = self._absolute_for(session)
        if lifetime is None:
            return absolute
        expires = now + lifetime
        return expires if absolute is None else min(expires, absolute)

    def _absolute_for(self, session: Session) -> int | None:
        if session._absolute is not None:
            return session._absolute
        if self.absolute_max_age is not None:
            return session._created + self.absolute_max_age
        return None

    # -- committing -----------------------------------------------------------------

    def _commit(
        self,
        environ: dict[str, Any],
        session: Session,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any,
    ) -> list[tuple[str, str]]:
        """Decide the session's fate and return the response headers to send."""
        failed = exc_info is not None or status[:1] == "5"
        session._failed = failed and not self.commit_on_error
        current = environ.get(self.environ_key, session)
        destroy = False
        if current is None:
            destroy = True
        elif current is not session:
            if not isinstance(current, dict):
                raise TypeError(
                    f"environ[{self.environ_key!r}] can only be set to None or a dict, "
                    f"not {type(current).__name__}"
                )
            self._replace(session, current)
        previous = session._sent_cookie
        deletion = session._sent_deletion
        try:
            if destroy:
                cookie = previous if deletion else self._destroy(environ, session, "assigned_none")
            elif previous is not None:
                # A retry with exc_info replaces the first headers: send the same
                # cookie again if this response may still commit (deletions always).
                cookie = previous if deletion or not failed or self.commit_on_error else None
            else:
                cookie = self._decide(environ, session, failed)
        finally:
            # From here on the headers are the server's: later writes are late.
            session._committed = True
        session._sent_cookie = cookie
        for name, _ in headers:
            if len(name) in _HEADER_LENGTHS and name.lower() in _HEADERS_WE_EDIT:
                break
        else:
            # No Vary, Set-Cookie or Cache-Control yet (the common case): append ours.
            if cookie is None:
                return [*headers, self._vary_header]
            if self.external_key is not None:
                out = [*headers, self._vary_header]
                self.external_key.set(out, cookie)
            else:
                out = [*headers, self._vary_header, ("Set-Cookie", cookie)]
            if self.cache_control:
                out.append(_PRIVATE)
            return out
        out = list(headers)
        merge_vary(out, self._vary)
        if cookie is not None:
            if self.external_key is not None:
                self.external_key.set(out, cookie)
            else:
                if self.overwrite:
                    out = [h for h in out if not self._is_our_set_cookie(*h)]
                out.append(("Set-Cookie", cookie))
            if self.cache_control:
                self._make_private(environ, session, out)
        return out

    def _replace(self, session: Session, new: dict[str, Any]) -> None:
        session._load()
        before = session._snapshot
        if before is None or session._modified:
            before = None if session._modified else session._dump_data()
        session._data = new
        after = session._dump_data()
        session._modified = before is None or not self._same_content(before, after)
        session._snapshot = None if session._modified else after

    def _same_content(self, before: bytes, after: bytes) -> bool:
        """Whether two serialized forms hold the same data, key order aside."""
        if before == after:
            return True
        if not self._fast_json:
            return False
        try:
            return _canonical(before) == _canonical(after)
        except ValueError:
            return False

    def _destroy(self, environ: dict[str, Any], session: Session, reason: str) -> str:
        if self.store is not None:
            self._store_destroy(environ, session)
        return self._deletion(environ, session, reason)

    def _deletion(self, environ: dict[str, Any], session: Session, reason: str) -> str:
        """The deletion cookie (or empty header), with the ``destroyed`` event."""
        self._emit("destroyed", environ, session._id if session._data is not None else None, reason)
        session._sent_deletion = True
        if self.external_key is not None:
            return ""
        return self._writer_for(environ).render_deletion()

    def _decide(self, environ: dict[str, Any], session: Session, failed: bool) -> str | None:
        """Cookie to send for a loaded session, or None (DESIGN §4)."""
        data = session._data
        assert data is not None
        if session._invalidated:
            return self._after_invalidate(environ, session, failed)
        if not data and not session._force:
            if session._incoming and session.changed:
                if not self.auto_commit and not session._commit_requested:
                    return None
                return self._destroy(environ, session, "emptied")
            return None
        if failed and not self.commit_on_error:
            return None
        if not self.auto_commit and not session._commit_requested and not session._force:
            return None
        return self._save_if_due(environ, session)

    def _after_invalidate(self, environ: dict[str, Any], session: Session, failed: bool) -> str:
        """A logout always sticks (DESIGN §10): the records go and the cookie is cleared,
        on error pages and without a commit too; what the request wrote after
        ``invalidate()`` belongs to a new session, saved only when a save is due."""
        if self.store is not None:
            self._store_destroy(environ, session)
        due = (
            (session._data or session._force)
            and (not failed or self.commit_on_error)
            and (self.auto_commit or session._commit_requested or session._force)
        )
        cookie = self._save_if_due(environ, session) if due else None
        return self._deletion(environ, session, "invalidate") if cookie is None else cookie

    def _save_if_due(self, environ: dict[str, Any], session: Session) -> str | None:
        """Write when the data changed, a save was forced or re-keying, rolling or
        renewal is due; else None."""
        if (
            session._force
            or session._modified  # session.changed without a property call (~0.7K
            or (session._snapshot is not None and session.changed)  # instructions)
            or session._record_rekey
        ):
            return self._write(environ, session)
        if session._rekey or self.rolling:
            return self._write(environ, session, touch=True)
        if self.renew and session._expires is not None:
            lifetime = self.max_age if session._max_age is UNSET else session._max_age
            absolute = self._absolute_for(session)
            if (
                lifetime is not None
                and (absolute is None or session._expires < absolute)
                and session._expires - self._clock() < lifetime / 2
            ):
                return self._write(environ, session, touch=True)
        return None

    def _write(
        self, environ: dict[str, Any], session: Session, *, touch: bool = False
    ) -> str | None:
        """Save the session; return the cookie (or header) value to send, or None.

        ``touch``: only the expiry moves (rolling, renew, re-keying the cookie); store
        mode then refreshes the record's TTL instead of rewriting it.
        """
        if self._before_save is not None:
            self._before_save(environ, session)
        data = session._data
        assert data is not None
        now = int(self._clock())
        lifetime = self.max_age if session._max_age is UNSET else session._max_age
        absolute = self._absolute_for(session)
        expires = None
        if lifetime is not None:
            expires = now + lifetime
            if absolute is not None and absolute < expires:
                expires = absolute
        if self.store is None:
            token = self._seal_token(self._plaintext(session, expires, absolute, data))
        else:
            ends = [t for t in (expires, absolute) if t is not None]
            ttl = max(1, min(ends) - now) if ends else STORE_TTL_BROWSER_SESSION
            record = None if touch else self._plaintext(session, None, absolute, data)
            if not self._store_write(environ, session, record, absolute, ttl):
                return None
            token = self._seal_token(self._plaintext(session, expires, absolute, None))
        if self.external_key is not None:
            value = token
        else:
            writer = self._writer_for(environ)
            if expires is None:
                value = writer.render(token, None, now)
            else:
                age = expires - now
                age = MAX_COOKIE_AGE if age > MAX_COOKIE_AGE else 0 if age < 0 else age
                value = writer.render(token, age, now)
            if len(value) > self.max_cookie_size:
                self._emit("too_large", environ, session._id, "cookie_size")
                raise SessionTooLarge(len(value), self.max_cookie_size)
            if (
                writer.secure
                and not self._insecure_warned
                and environ.get("wsgi.url_scheme") != "https"
            ):
                self._insecure_warned = True
                self._emit("insecure_transport", environ, None, "http_scheme")
        if session._is_new:
            # _emit's own "nobody listens" test, before the call: ~1.4K instructions
            # per new session when events are off (the default).
            if self._on_event is not None or logger.isEnabledFor(_DEBUG):
                self._emit("created", environ, session._id, "new")
            session._is_new = False
        session._expires = expires
        session._absolute = absolute
        session._modified = False
        session._snapshot = None
        session._force = False
        session._rekey = False
        session._record_rekey = False
        return value

    def _plaintext(
        self,
        session: Session,
        expires: int | None,
        absolute: int | None,
        data: dict[str, Any] | None,
    ) -> bytes:
        """Serialize the token plaintext: metadata, plus ``d`` when ``data`` is given."""
        try:
            if self._fast_json:
                # The metadata are ints and one str: format them directly.
                e = "" if expires is None else f',"e":{expires}'
                a = "" if absolute is None else f',"a":{absolute}'
                m = session._max_age
                if m is not UNSET:
                    a += ',"m":null' if m is None else f',"m":{m}'
                head = f'{{"c":{session._created}{e}{a},"s":{_json_str(session._id)}'
                if data is None:
                    return f"{head}}}".encode("ascii")
                return f'{head},"d":{encode_text(data)}}}'.encode("ascii")
            meta: dict[str, Any] = {"c": session._created}
            if expires is not None:
                meta["e"] = expires
            if absolute is not None:
                meta["a"] = absolute
            if session._max_age is not UNSET:
                meta["m"] = session._max_age
            meta["s"] = session._id
            if data is not None:
                meta["d"] = data
            plaintext: bytes = self._serializer.dumps(meta)
            return plaintext
        except SerializationError as exc:
            path = exc.path
            message = str(exc)
            if path:
                message = message.replace(f"at {path}", f"at session{path}", 1)
            raise SerializationError(message, path) from None
        except Exception as exc:
            # Only the type in our message; the custom serializer's own exception (the
            # application's code) stays chained for debugging.
            raise SerializationError(
                f"the session serializer failed: {type(exc).__name__}"
            ) from exc

    # -- headers --------------------------------------------------------------------

    def _writer(self, domain: str | None, secure: bool) -> CookieWriter:
        key = (domain, secure)
        writer = self._writers.get(key)
        if writer is None:
            if len(self._writers) >= _MAX_WRITERS:
                self._writers.clear()
            writer = self._writers[key] = CookieWriter(
                self.cookie_name,
                path=self.path,
                domain=domain,
                secure=secure,
                httponly=self.httponly,
                samesite=self.samesite,
                partitioned=self.partitioned,
            )
        return writer

    def _writer_for(self, environ: dict[str, Any]) -> CookieWriter:
        secure = self._always_secure or (
            self.secure is None and environ.get("wsgi.url_scheme") == "https"
        )
        domain = self.domain
        if domain is None:
            writer = self._plain_writers[secure]
            if writer is not None:
                return writer
        elif callable(domain):
            domain = domain(environ)
            if domain is not None and (not isinstance(domain, str) or not valid_domain(domain)):
                raise WSGISessionError("the domain callable returned an invalid domain")
        return self._writer(domain, secure)

    def _is_our_set_cookie(self, name: str, value: str) -> bool:
        return (
            len(name) == 10
            and name.lower() == "set-cookie"
            and value.partition("=")[0].strip() == self.cookie_name
        )

    def _make_private(
        self, environ: dict[str, Any], session: Session, headers: list[tuple[str, str]]
    ) -> None:
        for reason in make_private(headers):
            sid = session._id if session._data is not None else None
            self._emit("cache_control_overridden", environ, sid, reason)


def _describe(exc: BaseException) -> str:
    """A store failure in one line: our message, and the backend's exception class."""
    text = str(exc) or type(exc).__name__
    original = getattr(exc, "original_error", None)
    if original is not None and type(original).__name__ not in text:
        text = f"{text} [{type(original).__name__}]"
    return text


def _canonical(blob: bytes) -> str:
    """Key-order-independent form of default-serializer JSON (types stay distinct)."""
    return json.dumps(json.loads(blob), sort_keys=True)
