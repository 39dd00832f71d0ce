"""The session object found at ``environ["session"]``.

A :class:`Session` is a lazy :class:`~collections.abc.MutableMapping`: nothing is
parsed or decrypted until the application first reads or writes it. It records what
the request did (``accessed``, ``changed``, forced saves, regeneration, destruction)
so the middleware can decide, at ``start_response``, whether to send a cookie.

Nested changes (``session["cart"].append(x)``) are detected without
``modified = True``: when a mutable value is handed out, the session keeps the
serialized form it had, and compares it with the serialized form at commit.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, WSGISessionError
from .events import session_id_hash

if TYPE_CHECKING:  # pragma: no cover
    from .middleware import SessionMiddleware

__all__ = ["Session"]

#: Value types that cannot be changed in place; handing them out needs no snapshot.
_IMMUTABLE = frozenset(
    {
        str,
        int,
        float,
        bool,
        type(None),
        bytes,
        datetime.datetime,
        datetime.date,
        uuid.UUID,
        decimal.Decimal,
    }
)


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


#: Marks "no per-session max_age": the middleware's option applies.
UNSET: Any = _Unset()
#: Snapshot marker for data that could not be serialized: always counts as changed.
_UNCOMPARABLE = b"\x00uncomparable"


def coerce_max_age(value: Any, option: str = "max_age") -> int | None:
    """Validate a lifetime (seconds as int/float, or a timedelta) and return int seconds."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigurationError(
            f"{option} must be seconds (int/float), a timedelta or None, not "
            f"{type(value).__name__}",
            option,
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(f"{option} must be greater than 0 (or None)", option)
    return math.ceil(seconds)


class Session(MutableMapping[str, Any]):
    """A request's session: dict API plus lifecycle controls.

    Created by :class:`~wsgisession.SessionMiddleware` for each request; applications
    never build one themselves.
    """

    # Defaults live on the class, so a request that never touches its session pays
    # for a few attribute stores, not thirty (the middleware sets the handful that
    # every request reads on the instance).
    _data: dict[str, Any] | None = None
    #: True once the request read or wrote the session (anything that loads it).
    accessed = False
    _modified = False
    _snapshot: bytes | None = None
    _late_snapshot: bytes | None = None
    _force = False
    _commit_requested = False
    _invalidated = False
    _committed = False
    _late = False
    _sent_cookie: str | None = None
    _sent_deletion = False
    _incoming_key: str | None = None
    _store_key: str | None = None
    _unavailable = False
    _record_rekey = False
    _doomed: tuple[str, ...] | list[str] = ()
    _destroy_late = False
    _failed = False
    _moved_from: str | None = None

    # What a brand-new session starts with (see _init_fresh).
    _is_new = True
    _incoming = False
    _expires: int | None = None
    _absolute: int | None = None
    _max_age: Any = UNSET  # int | None | UNSET
    _rekey = False

    _mw: SessionMiddleware
    _environ: dict[str, Any]
    _id: str
    _created: int
    #: the server's start_response, until the response is over
    _server_start_response: Any  # StartResponse | None

    # No __init__: ``Session()`` then costs one C-level allocation. The middleware
    # sets the per-request attributes itself (SessionMiddleware.__call__); code that
    # opens a session outside it uses _for_request.

    @classmethod
    def _for_request(cls, middleware: SessionMiddleware, environ: dict[str, Any]) -> Session:
        """The session of ``environ``, opened outside the middleware's ``__call__``
        (the framework adapters' fallbacks)."""
        session = cls()
        session._mw = middleware
        session._environ = environ
        return session

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        """The ``start_response`` the application gets: commits the session into the
        response headers, then calls the server's."""
        mw = self._mw
        environ = self._environ
        if self.accessed or environ.get(mw.environ_key, self) is not self:
            headers = mw._commit(environ, self, status, headers, exc_info)
        else:
            self._committed = True
        return self._server_start_response(status, headers, exc_info)

    # -- loading ------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            data = self._mw._load(self)  # which sets ``accessed``
        return data

    def _init_fresh(self, now: float) -> dict[str, Any]:
        """Become a brand-new empty session (called by the middleware on first load,
        when nothing else was set yet); return its data."""
        data: dict[str, Any] = {}
        self._data = data
        self._id = self._mw._new_id(self._environ)
        self._created = int(now)
        return data

    def _reset(self, now: float) -> dict[str, Any]:
        """Like :meth:`_init_fresh`, after a load that got part way (store miss,
        ``valid()`` said no): everything the load set goes back to a new session's."""
        self._is_new = True
        self._incoming = False
        self._expires = None
        self._absolute = None
        self._max_age = UNSET
        self._rekey = False
        self._record_rekey = False
        self._store_key = None
        self._snapshot = None
        self._modified = False
        return self._init_fresh(now)

    def _dump_data(self) -> bytes:
        assert self._data is not None
        try:
            dumped: bytes = self._mw._serializer.dumps(self._data)
        except Exception:
            return _UNCOMPARABLE
        return dumped

    def _doom(self, *keys: str | None) -> None:
        """Mark store records for deletion at commit."""
        doomed = list(self._doomed)
        doomed.extend(k for k in keys if k is not None and k not in doomed)
        self._doomed = doomed

    def _expose(self, value: Any) -> Any:
        if type(value) not in _IMMUTABLE:
            if self._committed:
                if self._late_snapshot is None:
                    self._late_snapshot = self._dump_data()
            elif self._snapshot is None and not self._modified:
                self._snapshot = self._dump_data()
        return value

    def _touch_write(self) -> None:
        if self._committed and not self._late:
            self._late = True
            self._mw._late_write(self)
        self._modified = True

    # -- MutableMapping -----------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        data = self._data
        value = (self._mw._load(self) if data is None else data)[key]
        if type(value) in _IMMUTABLE:
            return value
        return self._expose(value)

    def __setitem__(self, key: str, value: Any) -> None:
        data = self._data
        if data is None:
            data = self._mw._load(self)
        if self._committed:
            self._touch_write()
        self._modified = True
        data[key] = value

    def __delitem__(self, key: str) -> None:
        data = self._load()
        del data[key]
        self._touch_write()

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __contains__(self, key: object) -> bool:
        return key in self._load()

    def get(self, key: str, default: Any = None) -> Any:
        data = self._load()
        if key in data:
            return self._expose(data[key])
        return default

    def setdefault(self, key: str, default: Any = None) -> Any:
        data = self._load()
        if key in data:
            return self._expose(data[key])
        self._touch_write()
        data[key] = default
        return default

    def pop(self, key: str, *default: Any) -> Any:
        data = self._load()
        if key in data:
            self._touch_write()
            return data.pop(key)
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self) -> tuple[str, Any]:
        data = self._load()
        item = data.popitem()
        self._touch_write()
        return item

    def clear(self) -> None:
        data = self._load()
        if data:
            self._touch_write()
            data.clear()

    def copy(self) -> dict[str, Any]:
        """A shallow ``dict`` copy of the data."""
        return {key: self._expose(value) for key, value in self._load().items()}

    # -- metadata -----------------------------------------------------------------

    @property
    def is_new(self) -> bool:
        """True when no valid session came with the request (or it was invalidated)."""
        self._load()
        return self._is_new

    @property
    def id(self) -> str:
        """The session id. Log :attr:`id_hash` instead; the id itself is a secret."""
        self._load()
        return self._id

    @property
    def id_hash(self) -> str:
        """A short, non-reversible hash of :attr:`id`, safe for logs."""
        self._load()
        return session_id_hash(self._id)

    @property
    def created_at(self) -> int:
        """Unix seconds when the session was first created."""
        self._load()
        return self._created

    @property
    def expires_at(self) -> int | None:
        """Unix seconds when the session expires, or ``None`` for a browser session
        with no absolute lifetime."""
        self._load()
        if self._expires is not None:
            return self._expires
        return self._mw._projected_expiry(self)

    @property
    def max_age(self) -> int | None:
        """Lifetime in seconds from the last save (``None``: browser-session cookie).

        Setting it applies to this session only (kept in its token) and forces a save.
        """
        self._load()
        if self._max_age is UNSET:
            return self._mw.max_age
        value: int | None = self._max_age
        return value

    @max_age.setter
    def max_age(self, value: int | float | datetime.timedelta | None) -> None:
        self._load()
        seconds = coerce_max_age(value)
        self._check_not_committed("max_age")
        self._max_age = seconds
        self._force = True

    @property
    def changed(self) -> bool:
        """True when the data differs from what was loaded. Never loads the session."""
        if self._data is None:
            return False
        if self._modified:
            return True
        return self._snapshot is not None and self._dump_data() != self._snapshot

    # -- lifecycle ----------------------------------------------------------------

    def _check_not_committed(self, what: str, *, store_late: bool = False) -> bool:
        """Raise if the headers are gone, unless store mode can still do ``what``
        at close() (then return True: the caller marks the session for a late save)."""
        if not self._committed:
            return False
        if store_late and self._mw._stores_late:
            return True
        raise WSGISessionError(f"session.{what} after start_response: headers already sent")

    def save(self) -> None:
        """Save at ``start_response`` even if unchanged or empty.

        Store mode, after ``start_response``: saved when the response closes."""
        self._load()
        if self._check_not_committed("save()", store_late=True):
            self._late = True
        self._force = True

    def commit(self) -> None:
        """Save at ``start_response`` if changed (for ``auto_commit=False``)."""
        self._load()
        if self._check_not_committed("commit()", store_late=True) and self.changed:
            self._late = True
        self._commit_requested = True

    def regenerate(self) -> None:
        """Issue a new session id (and token) for the same data; defends against fixation.

        Call it on login and on every privilege change.
        """
        self._load()
        self._check_not_committed("regenerate()")
        if self._store_key is not None:
            # The new record must replace this one, and only while it still exists.
            self._moved_from = self._store_key
            self._store_key = None
        self._id = self._mw._new_id(self._environ)
        self._force = True
        self._mw._emit("regenerated", self._environ, self._id, "regenerate")

    def invalidate(self) -> None:
        """Destroy the session: the response clears the cookie. A later write in the
        same request starts a new session."""
        self._load()
        if self._check_not_committed("invalidate()", store_late=True):
            self._destroy_late = True  # the records are deleted at close()
        assert self._data is not None
        self._doom(self._store_key, self._incoming_key, self._moved_from)
        self._store_key = None
        self._moved_from = None
        self._late = False
        self._data.clear()
        self._invalidated = True
        self._is_new = True
        self._id = self._mw._new_id(self._environ)
        self._created = int(self._mw._clock())
        self._expires = None
        self._absolute = None
        self._max_age = UNSET
        self._snapshot = None
        self._modified = False
        self._force = False
        self._rekey = False
        self._record_rekey = False

    def __repr__(self) -> str:
        if self._data is None:
            return "<Session (not loaded)>"
        return (
            f"<Session id_hash={session_id_hash(self._id)} new={self._is_new} "
            f"keys={len(self._data)} changed={self._modified}>"
        )
