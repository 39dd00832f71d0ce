"""``SessionStore``, the Django session engine's session: Django's ``SessionBase``
API on a wsgisession session. :mod:`wsgisession.adapters.django` (the module named in
``SESSION_ENGINE``) re-exports it and adds the optional WSGI fast path.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings  # type: ignore[import-untyped]
from django.contrib.sessions.backends.base import (  # type: ignore[import-untyped]
    SessionBase,
    UpdateError,
)
from django.utils import timezone  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from ..cookies import find_cookie
from ..errors import StoreError
from ..session import Session
from ._django_settings import Engine, engine

__all__ = ["SessionStore", "EXPIRY"]

EXPIRY = "_session_expiry"  # where every Django engine keeps set_expiry()'s value
_NOT_GIVEN: Any = object()


class SessionStore(SessionBase):  # type: ignore[misc]
    """``request.session``: Django's ``SessionBase`` API on a wsgisession session.

    ``session_key`` is the sealed token that Django's middleware writes into its
    cookie. ``save()`` seals at once (store mode: writes the record) and raises
    Django's ``UpdateError`` if a concurrent logout deleted the record;
    ``cycle_key()`` gives the data a new session id (store mode: the old record goes
    at once); ``flush()``/``delete()`` destroy the session (store mode: its records).
    ``modified`` is also true after a nested change (``session["cart"].append(x)``).
    ``set_expiry()`` keeps Django's ``_session_expiry`` in the data, as every Django
    engine does, and each save gives the token that lifetime (``0``: a browser-session
    cookie whose token still expires after the default age).

    Under :func:`wsgisession.adapters.django.wrap` (the WSGI fast path) the session
    is committed by the WSGI middleware instead, when the response starts.
    """

    accessed = False
    _dirty = False  # Django's ``modified`` flag: a write, or ``modified = True``
    _clean_at: bytes | None = None  # the data when ``modified = False`` was set
    _judged = False  # the incoming key was checked once the session loaded
    _deferred = False  # the WSGI fast path: the WSGI middleware commits
    _request_environ: Any = None  # the fast path's WSGI environ (for the incoming token)

    def __init__(self, session_key: str | None = None) -> None:
        # SessionBase.__init__ is not called: it would import SESSION_SERIALIZER on
        # every request, and ``modified`` is a property here.
        self._open(engine(), session_key)

    def _open(self, engine: Engine, session_key: str | None) -> None:
        self._engine = engine
        if not isinstance(session_key, str) or len(session_key) < 8:
            session_key = None  # Django's rule: a key has at least 8 characters
        self._key = session_key
        self._ws = engine.manager.open_session(
            {"wsgi.url_scheme": "https"} if engine.https else None, value=session_key
        )

    @classmethod
    def bind(cls, engine: Engine, session: Session, environ: dict[str, Any]) -> SessionStore:
        """The fast path's ``request.session``: over the WSGI middleware's session."""
        store: SessionStore = cls.__new__(cls)
        store._engine, store._ws, store._request_environ = engine, session, environ
        store._key = None
        store._deferred = True
        return store

    # -- the key --------------------------------------------------------------------

    @property
    def session_key(self) -> str | None:
        """The token (Django's middleware writes it into its cookie), or ``None``."""
        if self._deferred:
            return self._incoming_token()
        key = self._key
        if key is not None and not self._judged and self._ws.accessed:
            key = self._judge(key)
        return key

    @property
    def _session_key(self) -> str | None:
        return self.session_key

    @_session_key.setter
    def _session_key(self, value: str | None) -> None:
        self._open(self._engine, value)  # Django's own code only ever sets None
        self._judged = False

    def _judge(self, key: str) -> str | None:
        """Once loaded: keep ``key`` if it opened, or if its record could not be read
        (a store outage must not log everyone out); else forget it, as Django does."""
        self._judged = True
        if not self._ws.is_new or self._store_failed(key):
            return key
        self._key = None
        return None

    def _store_failed(self, key: str) -> bool:
        engine = self._engine
        if engine.store is None:
            return False
        try:
            sid = engine.manager.decode(key).sid
        except Exception:
            return False  # an invalid token
        try:
            engine.store.get(engine.manager.store_key(sid))
        except StoreError:
            return True
        return False

    def _incoming_token(self) -> str | None:
        ws = self._ws
        if ws.accessed and ws.is_new:
            return None
        cookie = self._request_environ.get("HTTP_COOKIE")
        values = find_cookie(cookie, self._engine.manager.options.cookie_name)[0] if cookie else []
        return values[0] if values else None

    # -- the mapping ----------------------------------------------------------------

    def _get_session(self, no_load: bool = False) -> Session:
        self.accessed = True
        return self._ws

    async def _aget_session(self, no_load: bool = False) -> Session:
        await self._aload_session()
        self.accessed = True
        return self._ws

    _session = property(_get_session)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return key in self._ws

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return self._ws[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.accessed = self._dirty = True
        self._ws[key] = value

    def __delitem__(self, key: str) -> None:
        self.accessed = True
        del self._ws[key]
        self._dirty = True

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        return self._ws.get(key, default)

    def pop(self, key: str, default: Any = _NOT_GIVEN) -> Any:
        self.accessed = True
        ws = self._ws
        if default is not _NOT_GIVEN and key not in ws:
            return default
        value = ws.pop(key)
        self._dirty = True
        return value

    def setdefault(self, key: str, value: Any) -> Any:
        self.accessed = True
        ws = self._ws
        if key in ws:
            return ws[key]
        self._dirty = True
        ws[key] = value
        return value

    def update(self, dict_: Any) -> None:
        self.accessed = self._dirty = True
        self._ws.update(dict_)

    def has_key(self, key: str) -> bool:
        return key in self

    def keys(self) -> Any:
        self.accessed = True
        return self._ws.keys()

    def values(self) -> Any:
        self.accessed = True
        return self._ws.values()

    def items(self) -> Any:
        self.accessed = True
        return self._ws.items()

    def clear(self) -> None:
        self.accessed = self._dirty = True
        self._ws.clear()

    @property
    def modified(self) -> bool:
        """True when the session must be saved: written, changed in place (nested
        values are compared with what was loaded), or ``modified = True`` was set."""
        if self._dirty:
            return True
        if not self._ws.changed:
            return False
        clean = self._clean_at
        return clean is None or self._dump() != clean

    @modified.setter
    def modified(self, value: bool) -> None:
        self._dirty = bool(value)
        if not value:
            self._clean_at = self._dump() if self._ws.changed else None

    def _dump(self) -> bytes:
        dumped: bytes = self._engine.manager.options.serializer.dumps(self._ws.copy())
        return dumped

    def is_empty(self) -> bool:
        """No session key and no data (Django's middleware then deletes the cookie)."""
        if self.session_key is not None:
            return False
        ws = self._ws
        return not ws.accessed or len(ws) == 0

    @property
    def serializer(self) -> Any:
        """``SESSION_SERIALIZER``, for :meth:`encode`/:meth:`decode` only (the session
        itself uses the wsgisession serializer)."""
        return self.__dict__.get("_serializer") or import_string(settings.SESSION_SERIALIZER)

    @serializer.setter
    def serializer(self, value: Any) -> None:
        self.__dict__["_serializer"] = value

    @property
    def wsgisession(self) -> Session:
        """The underlying wsgisession :class:`~wsgisession.Session`."""
        return self._ws

    # -- expiry -------------------------------------------------------------------

    def get_session_cookie_age(self) -> int:
        """The default lifetime: ``WSGISESSION["max_age"]``, else ``SESSION_COOKIE_AGE``."""
        age = self._engine.manager.options.max_age
        return int(settings.SESSION_COOKIE_AGE if age is None else age)

    def get_expire_at_browser_close(self) -> bool:
        expiry = self.get(EXPIRY)
        if expiry is None:
            return bool(
                settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
                or self._engine.manager.options.max_age is None
            )
        return bool(expiry == 0)

    def apply_expiry(self) -> bool:
        """Give the session the token lifetime ``_session_expiry`` asks for (forcing a
        save); False when that moment has passed (then nothing may be saved)."""
        ws = self._ws
        expiry = ws.get(EXPIRY)
        if not expiry:
            del ws.max_age  # the default lifetime
            return True
        if isinstance(expiry, str):
            expiry = datetime.datetime.fromisoformat(expiry)
        if isinstance(expiry, datetime.datetime):
            now = datetime.datetime.now(datetime.UTC if timezone.is_aware(expiry) else None)
            seconds = math.ceil((expiry - now).total_seconds())
        else:
            seconds = int(expiry)
        if seconds <= 0:
            return False
        ws.max_age = seconds
        return True

    def prepare_commit(self) -> None:
        """The fast path, before the WSGI middleware commits: a changed session gets
        the lifetime its ``_session_expiry`` asks for (or is dropped, expired)."""
        ws = self._ws
        if ws.accessed and ws.changed and not self.apply_expiry():
            ws.invalidate()

    # -- lifecycle ----------------------------------------------------------------

    def save(self, must_create: bool = False) -> None:
        """Seal the session now (store mode: write its record); ``session_key`` is then
        the new token. Under ``wrap()``: save it when the response starts.

        :raises UpdateError: store mode, when the record was deleted meanwhile (a
            logout in a concurrent request): the session is not revived.
        """
        if not self.apply_expiry():
            self._destroy()  # expired already: nothing to save
            return
        if self._deferred:
            return  # apply_expiry() forced the save
        ws = self._ws
        update = self._engine.manager.save_session(ws, final=False)
        if update is None or update.deletion:
            if self._write_lost(ws):
                raise UpdateError("the session was deleted before it could be saved")
            return
        self._key = update.value
        self._judged = True

    def _write_lost(self, ws: Session) -> bool:
        """A forced save sent nothing: the record is gone (a concurrent logout), but
        for a store failure that ``on_store_error="ignore"`` dropped."""
        engine = self._engine
        if engine.raise_on_store_error or engine.store is None:
            return True
        try:
            return engine.store.get(engine.manager.store_key(ws.id)) is None
        except StoreError:
            return False

    def create(self) -> None:
        """Save under a new session key, the data kept."""
        self.accessed = self._dirty = True
        if not self._ws.is_new:
            self._ws.regenerate()
        self.save()

    def cycle_key(self) -> None:
        """Keep the data under a new session id (``auth.login`` calls it). A saved
        session is saved again at once: in store mode its old record is gone."""
        ws = self._ws
        self.accessed = self._dirty = True
        new = ws.is_new
        ws.regenerate()
        if not new and not self._deferred:
            self.save()

    def flush(self) -> None:
        """Destroy the session (store mode: its records, at once) and start afresh."""
        self.accessed = True
        self._destroy()
        self._dirty = True

    def delete(self, session_key: str | None = None) -> None:
        """Destroy this session, or (store mode) the one ``session_key`` names."""
        if session_key is None or session_key == self.session_key:
            self._destroy()
            return
        manager = self._engine.manager
        if manager.options.store is not None:
            other = manager.open_session(None, value=session_key)
            other.invalidate()
            manager.save_session(other, destroy=True)

    def _destroy(self) -> None:
        ws = self._ws
        ws.invalidate()
        if not self._deferred:  # the fast path's commit deletes and clears the cookie
            self._engine.manager.save_session(ws, destroy=True, final=False)
        self._key = None
        self._judged = True

    def exists(self, session_key: str | None) -> bool:
        """Whether ``session_key`` opens a live session (store mode: its record
        exists). A cookie-mode token cannot be revoked: it exists until it expires."""
        if not session_key:
            return False
        return not self._engine.manager.open_session(None, value=session_key).is_new

    def load(self) -> dict[str, Any]:
        """What is saved under the current key (``{}`` when nothing valid is)."""
        key = self.session_key
        if key is None:
            return {}
        probe = self._engine.manager.open_session(None, value=key)
        data = probe.copy()
        if probe.is_new and not self._ws.accessed and not self._deferred:
            self._key, self._judged = None, True  # Django forgets an unknown key
        return data

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to clear: expired tokens are refused, records expire in the store."""

    # -- async: store mode may do I/O, in a thread (as Django's own engines) ------------

    async def _aload_session(self) -> None:
        if self._engine.store is not None and not self._ws.accessed:
            await sync_to_async(len)(self._ws)

    async def _in_thread(self, method: Any, *args: Any) -> Any:
        if self._engine.store is None:
            return method(*args)
        return await sync_to_async(method)(*args)

    async def aget(self, key: str, default: Any = None) -> Any:
        await self._aload_session()
        return self.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        await self._aload_session()
        self[key] = value

    async def apop(self, key: str, default: Any = _NOT_GIVEN) -> Any:
        await self._aload_session()
        return self.pop(key, default)

    async def asetdefault(self, key: str, value: Any) -> Any:
        await self._aload_session()
        return self.setdefault(key, value)

    async def aupdate(self, dict_: Any) -> None:
        await self._aload_session()
        self.update(dict_)

    async def ahas_key(self, key: str) -> bool:
        await self._aload_session()
        return key in self

    async def akeys(self) -> Any:
        await self._aload_session()
        return self.keys()

    async def avalues(self) -> Any:
        await self._aload_session()
        return self.values()

    async def aitems(self) -> Any:
        await self._aload_session()
        return self.items()

    async def aget_expire_at_browser_close(self) -> bool:
        await self._aload_session()
        return self.get_expire_at_browser_close()

    async def acycle_key(self) -> None:
        await self._in_thread(self.cycle_key)

    async def aflush(self) -> None:
        await self._in_thread(self.flush)

    async def asave(self, must_create: bool = False) -> None:
        await self._in_thread(self.save, must_create)

    async def acreate(self) -> None:
        await self._in_thread(self.create)

    async def adelete(self, session_key: str | None = None) -> None:
        await self._in_thread(self.delete, session_key)

    async def aexists(self, session_key: str | None) -> bool:
        return bool(await self._in_thread(self.exists, session_key))

    async def aload(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._in_thread(self.load)
        return result

    @classmethod
    async def aclear_expired(cls) -> None:
        cls.clear_expired()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._ws!r}>"
