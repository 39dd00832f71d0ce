"""Store mode: the session's data in a server-side store, its id in the sealed cookie.

:class:`StoreMode` is mixed into :class:`~wsgisession.middleware.SessionMiddleware`;
it holds everything that talks to the store, so the cookie-mode path never does.

* The record of session ``id`` lives at ``prefix + sha256hex(id)``, sealed (purpose
  ``store``) and bound to that key; it holds ``c``, ``a``, ``m``, ``s`` and ``d``.
* New records are created only if absent, existing ones updated only if present, and
  ``regenerate()`` moves a record only while it exists: a request that overlaps a
  logout or a regenerate never revives the session (event ``interrupted``).
* Read failure → empty read-only session and ``store_error``; write failure →
  ``StoreError`` (or dropped with ``on_store_error="ignore"``); delete failure → an
  event, the cookie is cleared anyway.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import InvalidToken, StoreError

if TYPE_CHECKING:  # pragma: no cover
    from .codec import TokenCodec
    from .session import Session

__all__ = ["StoreMode"]

logger = logging.getLogger("wsgisession")


def _valid_per_session(meta: dict[str, Any]) -> bool:
    """``m`` is absent, ``None`` (browser session) or a positive int."""
    if "m" not in meta:
        return True
    value = meta["m"]
    return value is None or (type(value) is int and value > 0)


class StoreMode:
    """Store-mode methods of the middleware (see the module docstring)."""

    if TYPE_CHECKING:  # provided by SessionMiddleware
        store: Any
        prefix: str
        absolute_max_age: int | None
        on_store_error: str
        _codec: TokenCodec
        _serializer: Any
        _clock: Callable[[], float]

        def _emit(
            self, name: str, environ: dict[str, Any], session_id: str | None, reason: str
        ) -> None: ...

        def _plaintext(
            self,
            session: Session,
            expires: int | None,
            absolute: int | None,
            data: dict[str, Any] | None,
        ) -> bytes: ...

        def _write(
            self, environ: dict[str, Any], session: Session, *, touch: bool = False
        ) -> str | None: ...

        def _open(
            self, value: str, now: float
        ) -> tuple[dict[str, Any] | None, dict[str, Any], bytes]: ...

        def _candidates(self, environ: dict[str, Any]) -> tuple[list[str], int]: ...

    def _store_key_for(self, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
        return self.prefix + digest

    def _store_load(
        self, session: Session, sid: str, now: float
    ) -> tuple[dict[str, Any], dict[str, Any], bytes] | None:
        """Read and open the record for ``sid``; None (after an event) if unusable."""
        environ = session._environ
        key = self._store_key_for(sid)
        session._incoming_key = key
        try:
            blob = self.store.get(key)
        except StoreError:
            self._emit("store_error", environ, sid, "read")
            session._unavailable = True
            return None
        if blob is None:
            self._emit("missed", environ, sid, "no_record")
            return None
        try:
            plaintext, kid = self._codec.open_bytes(bytes(blob), "store", key)
            meta = self._serializer.loads(plaintext)
        except InvalidToken as exc:
            self._emit("invalid", environ, sid, exc.reason)
            return None
        except Exception:
            self._emit("invalid", environ, sid, "decode")
            return None
        if type(meta) is not dict:
            self._emit("invalid", environ, sid, "schema")
            return None
        data = meta.pop("d", None)
        absolute = meta.get("a")
        if (
            type(data) is not dict
            or meta.get("s") != sid
            or type(meta.get("c")) is not int
            or (absolute is not None and type(absolute) is not int)
            or not _valid_per_session(meta)
        ):
            self._emit("invalid", environ, sid, "schema")
            return None
        if absolute is None and self.absolute_max_age is not None:
            absolute = meta["a"] = meta["c"] + self.absolute_max_age
        if absolute is not None and not now < absolute:
            self._emit("expired", environ, sid, "absolute")
            return None
        session._store_key = key
        return data, meta, kid

    def _store_write(
        self,
        environ: dict[str, Any],
        session: Session,
        record: bytes | None,
        absolute: int | None,
        ttl: int,
    ) -> bool:
        """Persist the record (``record=None``: only refresh its TTL). False: no cookie."""
        store = self.store
        try:
            if session._unavailable:
                raise StoreError(
                    "the session store could not be read for this request; refusing to "
                    "overwrite the session"
                )
            key = self._store_key_for(session._id)
            touch = getattr(store, "touch", None)
            if record is None and (touch is None or session._store_key is None):
                record = self._plaintext(session, None, absolute, session._data)
            if record is None:
                assert touch is not None
                ok = bool(touch(key, ttl))
            else:
                ok = self._store_put(session, key, record, ttl)
            if not ok:
                # Logged out or regenerated by a concurrent request: never resurrect.
                self._emit("interrupted", environ, session._id, "record_gone")
                return False
        except StoreError:
            self._emit("store_error", environ, session._id, "write")
            if self.on_store_error == "raise":
                raise
            return False
        self._drop_doomed(environ, session)
        return True

    def _store_put(self, session: Session, key: str, record: bytes, ttl: int) -> bool:
        """Create (if absent) or update (if present) the sealed record; False: it is gone."""
        store = self.store
        sealed = self._codec.seal_bytes(record, "store", key)
        old = session._moved_from
        if old is not None:
            # regenerate(): the new record replaces the old one only while the old one
            # exists, so a concurrent logout is never undone under a new id.
            move = getattr(store, "move", None)
            if move is not None:
                if not move(old, key, sealed, ttl):
                    return False
            else:
                if store.get(old) is None:
                    return False
                self._create(key, sealed, ttl)
                store.delete(old)
            session._moved_from = None
            session._store_key = key
            return True
        if session._store_key is None:
            self._create(key, sealed, ttl)
            session._store_key = key
            return True
        update = getattr(store, "update", None)
        if update is None:
            store.set(key, sealed, ttl)
            return True
        return bool(update(key, sealed, ttl))

    def _create(self, key: str, sealed: bytes, ttl: int) -> None:
        create = getattr(self.store, "create", None)
        if create is None:
            self.store.set(key, sealed, ttl)
        elif not create(key, sealed, ttl):
            raise StoreError("a session with the new id already exists (genid)")

    def _drop_doomed(self, environ: dict[str, Any], session: Session) -> None:
        """Delete records left behind by regenerate()/invalidate()."""
        doomed, session._doomed = session._doomed, ()
        for key in doomed:
            try:
                self.store.delete(key)
            except StoreError:
                sid = session._id if session._data is not None else None
                self._emit("store_error", environ, sid, "delete")

    def _store_destroy(self, environ: dict[str, Any], session: Session) -> None:
        if session._data is None and session._incoming_key is None:
            # Destroyed without being touched: find the record from the token alone.
            values, _ = self._candidates(environ)
            for value in values:
                try:
                    _, meta, _ = self._open(value, self._clock())
                except InvalidToken:
                    continue
                session._incoming_key = self._store_key_for(meta["s"])
                break
        session._doom(session._store_key, session._incoming_key)
        session._store_key = None
        self._drop_doomed(environ, session)

    def _store_finish(self, session: Session) -> None:
        """At close(): apply what the application did after the headers went out."""
        environ = session._environ
        if session._doomed and session._invalidated:
            self._drop_doomed(environ, session)
        if not session._late:
            return
        if session._store_key is None or session._unavailable or session._failed:
            # A new session cannot be saved now: its cookie can no longer be sent.
            self._emit("late_write", environ, session._id, "after_headers")
            return
        try:
            self._write(environ, session)
        except StoreError:
            pass  # already reported as a store_error event
        except Exception:
            logger.exception("saving the session after the response failed")
