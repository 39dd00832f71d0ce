"""The session object found at ``environ["session"]``: a lazy
:class:`~collections.abc.MutableMapping`, opened on first touch, that records what
the request did so its owner (a :class:`~wsgisession.SessionManager`) can decide at
commit whether to send a cookie. Nested changes are detected by comparing the
serialized data at commit with a snapshot taken when a mutable value was handed out.
Every change of its state is a method of :class:`Session` (its owner calls them), but
for the binding to a request in ``SessionMiddleware.__call__`` (``_PER_REQUEST``).
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterator, MutableMapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import WSGISessionError
from .events import session_id_hash
from .payload import UNSET, Payload, absolute_of, coerce_lifetime, expiry_of, lifetime_of
from .serializers import same_content

if TYPE_CHECKING:  # pragma: no cover - types only; owner never imports session
    from .owner import SessionOwner

__all__ = ["Session"]

#: Value types that cannot be changed in place; handing them out needs no snapshot.
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes}
    | {datetime.datetime, datetime.date, uuid.UUID, decimal.Decimal}
)
#: The identity fields; forgetting them returns a session to a brand-new one's.
_IDENTITY: tuple[str, ...] = ("_is_new", "_incoming", "_expires", "_absolute", "_max_age", "_rekey")
_IDENTITY += ("_record_rekey", "_store_key", "_snapshot", "_modified", "_force", "_user")
_IDENTITY += ("_generation",)
_UNCOMPARABLE = b"\x00uncomparable"  # snapshot of unserializable data: always "changed"
_NO_ENVIRON: Any = MappingProxyType({})  # what a detached, loaded session holds


class Session(MutableMapping[str, Any]):
    """A request's session: the dict API plus lifecycle controls, made by a
    :class:`~wsgisession.SessionManager` (``environ["session"]``, or ``open_session()``).
    """

    # Invariants. ``_data is None`` until the first touch loads the session; from then
    # on ``_id``/``_created`` are set. ``_is_new`` is true until the session is saved or
    # came in valid. ``_max_age`` is ``payload.UNSET`` (the configured ``max_age``
    # applies), ``None`` (browser session) or seconds. ``_snapshot`` (the serialized
    # data when a mutable value was handed out) is only kept while ``_modified`` is
    # false. ``_committed`` is true once the response's headers are decided; later
    # changes are "late" (``_late``). Store mode: ``_incoming_key`` is the record the
    # request's token named, ``_store_key`` the record this session lives in (``None``:
    # not written yet, or destroyed), ``_moved_from`` the record ``regenerate()`` will
    # replace, ``_doomed`` the records to delete at commit.

    #: The fields ``SessionMiddleware.__call__`` sets inline on each new session (and
    #: releases at the end of the response): the only ones set outside this class.
    _PER_REQUEST = (
        "_owner",
        "_environ",
        "_data",
        "accessed",
        "_committed",
        "_server_start_response",
    )

    # Defaults live on the class: an untouched session pays for the stores above only.
    _data: dict[str, Any] | None = None
    #: True once the request read or wrote the session (anything that loads it).
    accessed = False
    # change tracking, commit
    _modified = _force = _commit_requested = _late = _committed = _failed = False
    _snapshot: bytes | None = None
    _late_snapshot: bytes | None = None
    _invalidated = _destroy_late = False
    _sent: Any = None  # the CookieUpdate of the first commit, if any
    _tokens: list[str] | None = None  # the request's tokens, when given to open_session
    # store mode
    _incoming_key: str | None = None
    _store_key: str | None = None
    _moved_from: str | None = None
    _doomed: tuple[str, ...] = ()
    _unavailable = _record_rekey = False
    # identity (what a brand-new session starts with)
    _is_new = True
    _incoming = _rekey = False
    _expires: int | None = None
    _absolute: int | None = None
    _max_age: Any = UNSET  # int | None | UNSET
    _user: str | None = None  # bind_user()
    _generation: int | None = None  # with revocation_store: the user's, when saved

    _owner: SessionOwner
    _environ: dict[str, Any]
    _id: str
    _created: int
    #: the server's start_response, until the response is over
    _server_start_response: Any

    # No __init__: ``Session()`` then costs one C-level allocation (see _PER_REQUEST).

    @classmethod
    def _bind(
        cls, owner: SessionOwner, environ: dict[str, Any], tokens: list[str] | None
    ) -> Session:
        """A session for ``environ`` made outside the middleware's ``__call__``."""
        session = cls()
        session._owner, session._environ, session._tokens = owner, environ, tokens
        session._server_start_response = None
        return session

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        """The ``start_response`` the application gets: commits the session into the
        response headers, then calls the server's."""
        owner = self._owner
        environ = self._environ
        if self.accessed or environ.get(owner.environ_key, self) is not self:
            headers = owner.session_headers(self, status, headers, exc_info)
        else:
            self._committed = True
        return self._server_start_response(status, headers, exc_info)

    # -- transitions: loading -----------------------------------------------------------

    def _load(self) -> dict[str, Any]:  # first touch: the owner opens the token
        data = self._data
        if data is None:
            self.accessed = True
            data = self._owner._load(self)
        return data

    def _adopt(
        self, payload: Payload, expires: int | None, rekey: bool, record_rekey: bool
    ) -> dict[str, Any]:
        """Become the session a valid token (and record) carried; return its data."""
        data = payload.data
        assert data is not None
        self._data, self._id, self._created = data, payload.sid, payload.created
        self._is_new, self._incoming = False, True
        self._expires, self._absolute, self._max_age = expires, payload.absolute, payload.max_age
        self._rekey, self._record_rekey = rekey, record_rekey
        self._user, self._generation = payload.user, payload.generation
        return data

    def _start_fresh(self, now: float) -> dict[str, Any]:
        """Become a brand-new empty session (first load, nothing set yet)."""
        data: dict[str, Any] = {}
        self._data = data
        self._id = self._owner.new_id(self._environ)
        self._created = int(now)
        return data

    def _reset(self, now: float) -> dict[str, Any]:
        """:meth:`_start_fresh` after a load that got part way (a store miss, ``valid()``)."""
        self._forget_identity()
        return self._start_fresh(now)

    def _forget_identity(self) -> None:  # back to a brand-new session's (class defaults)
        for name in _IDENTITY:
            self.__dict__.pop(name, None)

    def _pristine(self) -> None:
        self._snapshot = None  # what valid() read during the load is no change

    # -- transitions: store bookkeeping -------------------------------------------------

    def _record_read(self, key: str, *, found: bool, failed: bool = False) -> None:
        """The token named record ``key`` ("": none); ``found``: the session lives there;
        ``failed``: a store could not be read (read-only for this request)."""
        self._incoming_key = key or self._incoming_key
        if found:
            self._store_key = key
        self._unavailable = failed

    def _record_written(self, key: str) -> None:
        self._store_key = key
        self._moved_from = None

    def _doom(self, *keys: str | None) -> None:  # store records to delete at commit
        doomed = list(self._doomed)
        doomed.extend(k for k in keys if k and k not in doomed)
        self._doomed = tuple(doomed)

    def _take_doomed(self, *, destroy: bool = False) -> tuple[str, ...]:
        """The records to delete now, forgotten (``destroy``: its own record too)."""
        if destroy:
            self._doom(self._store_key, self._incoming_key)
            self._store_key = None
        doomed, self._doomed = self._doomed, ()
        return doomed

    # -- transitions: commit --------------------------------------------------------------

    def _bind_generation(self, generation: int | None) -> None:
        self._generation = generation  # the user's, this session is saved under

    def _begin_commit(self, failed: bool) -> None:
        self._failed = failed  # an error response: nothing saved late either

    def _end_commit(self, sent: Any, final: bool = True) -> None:
        """The headers are decided: later changes are late. Not ``final`` (more saves may
        follow): the session stays open, with nothing requested any more."""
        if final:
            self._committed = True
            self._sent = sent
        else:
            self._invalidated = self._commit_requested = self._destroy_late = False

    def _mark_saved(self, expires: int | None, absolute: int | None) -> None:
        """Saved just now: clean, not new, nothing due; emptying it later destroys it."""
        self._is_new = self._modified = self._force = self._rekey = self._record_rekey = False
        self._incoming = True
        self._expires, self._absolute, self._snapshot = expires, absolute, None

    def _replace(self, new: dict[str, Any]) -> None:
        """``environ["session"] = {...}``: equal content, in any key order, is no change."""
        self._load()
        before = self._snapshot
        if before is None or self._modified:
            before = None if self._modified else self._dump_data()
        self._data = new
        after = self._dump_data()
        serializer = self._owner.options.serializer
        self._modified = before is None or not same_content(serializer, before, after)
        self._snapshot = None if self._modified else after

    def _note_late_change(self) -> None:
        """At ``close()``: a value handed out after the headers went out and changed in
        place since counts as a late write."""
        snapshot = self._late_snapshot
        if snapshot is not None and not self._late and self._dump_data() != snapshot:
            self._late = True
            self._owner._late_write(self)

    def _release(self, detach: bool) -> None:
        """The response is over: drop the server's ``start_response`` and (``detach``,
        no hook needs it) the environ; an unloaded session keeps the ``Cookie`` header."""
        self._server_start_response = None
        if detach:
            cookie = None if self._data is not None else self._environ.get("HTTP_COOKIE")
            self._environ = {"HTTP_COOKIE": cookie} if cookie else _NO_ENVIRON

    def _dump_data(self) -> bytes:
        assert self._data is not None
        try:
            dumped: bytes = self._owner.options.serializer.dumps(self._data)
        except Exception:
            return _UNCOMPARABLE
        return dumped

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
            self._owner._late_write(self)
        self._modified = True

    # -- MutableMapping -----------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        data = self._data
        if data is None:
            data = self._load()
        value = data[key]
        if type(value) in _IMMUTABLE:
            return value
        return self._expose(value)

    def __setitem__(self, key: str, value: Any) -> None:
        data = self._data
        if data is None:
            data = self._load()
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

    def popitem(self) -> tuple[str, Any]:  # the last item, as dict.popitem()
        item = self._load().popitem()
        self._touch_write()
        return item

    def clear(self) -> None:
        data = self._load()
        if data:
            self._touch_write()
            data.clear()

    def copy(self) -> dict[str, Any]:  # a shallow dict copy of the data
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
        return session_id_hash(self.id)

    @property
    def created_at(self) -> int:
        """Unix seconds when the session was first created."""
        self._load()
        return self._created

    @property
    def expires_at(self) -> int | None:
        """Unix seconds when the session expires (if saved now, for a session not saved
        yet), or ``None`` for a browser session with no absolute lifetime."""
        self._load()
        if self._expires is not None:
            return self._expires
        options = self._owner.options
        absolute = absolute_of(self._created, self._absolute, options.absolute_max_age)
        lifetime = lifetime_of(options.max_age, self._max_age)
        expires = expiry_of(int(options.clock()), lifetime, absolute)
        return absolute if expires is None else expires

    @property
    def max_age(self) -> int | None:
        """Lifetime in seconds from the last save (``None``: browser-session cookie).
        Setting it applies to this session only (kept in its token) and forces a save;
        ``del session.max_age`` returns to :attr:`default_max_age` (forcing a save too)."""
        self._load()
        value: int | None = lifetime_of(self._owner.options.max_age, self._max_age)
        return value

    @max_age.setter
    def max_age(self, value: int | float | datetime.timedelta | None) -> None:
        self._own_max_age(coerce_lifetime(value))

    @max_age.deleter
    def max_age(self) -> None:
        self._own_max_age(UNSET)

    def _own_max_age(self, value: Any) -> None:
        self._load()
        self._check_not_committed("max_age")
        self._max_age, self._force = value, True

    @property
    def default_max_age(self) -> int | None:
        """The configured ``max_age``: what :attr:`max_age` is unless set for this session."""
        return self._owner.options.max_age

    @property
    def changed(self) -> bool:
        """True when the data differs from what was loaded. Never loads the session."""
        if self._data is None or self._modified:
            return self._data is not None
        return self._snapshot is not None and self._dump_data() != self._snapshot

    # -- lifecycle ----------------------------------------------------------------

    def _check_not_committed(self, what: str, *, store_late: bool = False) -> bool:
        """Raise once the headers are gone, unless store mode can still do it at close()."""
        if not self._committed:
            return False
        if store_late and self._owner.late_saves:
            return True
        raise WSGISessionError(f"session.{what} after start_response: headers already sent")

    def save(self) -> None:
        """Save at commit even if unchanged or empty (late in store mode: at close())."""
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
        """A new id (and token) for the same data, against fixation: call it at login."""
        self._load()
        self._check_not_committed("regenerate()")
        if self._store_key is not None:
            # The new record must replace this one, and only while it still exists.
            self._moved_from = self._store_key
            self._store_key = None
        owner = self._owner
        self._id = owner.new_id(self._environ)
        self._force = True
        owner.emitter.emit("regenerated", self._environ, self._id, "regenerate")

    @property
    def user_id(self) -> str | None:
        """The user id given to :meth:`bind_user`, or ``None``."""
        self._load()
        return self._user

    def bind_user(self, user_id: str) -> None:
        """Bind the session to ``user_id`` (call it at login; it forces a save): the
        manager can then list and revoke that user's sessions ("log out everywhere")."""
        self._load()
        self._check_not_committed("bind_user()")
        if not isinstance(user_id, str) or not 0 < len(user_id) <= 256:
            raise WSGISessionError("bind_user() needs a user id of 1 to 256 characters")
        if user_id != self._user:
            self._user, self._generation = user_id, None
        self._force = True  # saved with the binding

    def invalidate(self) -> None:
        """Destroy the session: the response clears the cookie and deletes its record.
        A later write in the same request starts a new session."""
        self._load()
        if self._check_not_committed("invalidate()", store_late=True):
            self._destroy_late = True  # the records are deleted at close()
        assert self._data is not None
        self._doom(self._store_key, self._incoming_key, self._moved_from)
        self._moved_from = None
        self._late = False
        self._data.clear()
        self._forget_identity()
        self._invalidated = True
        self._id = self._owner.new_id(self._environ)
        self._created = int(self._owner.options.clock())

    def __repr__(self) -> str:
        if self._data is None:
            return "<Session (not loaded)>"
        return (
            f"<Session id_hash={session_id_hash(self._id)} new={self._is_new} "
            f"keys={len(self._data)} changed={self._modified}>"
        )
