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
        _store_create: Callable[[str, bytes, int | None], bool] | None
        _store_update: Callable[[str, bytes, int | None], bool] | None
        _store_touch: Callable[[str, int | None], bool | None] | None
        _store_move: Callable[[str, str, bytes, int | None], bool] | None

        def _emit(
            self,
            name: str,
            environ: dict[str, Any],
            session_id: str | None,
            reason: str,
            cause: BaseException | None = None,
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
        except StoreError as exc:
            self._emit("store_error", environ, sid, "read", exc)
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
        try:
            if session._unavailable:
                raise StoreError(
                    "the session store could not be read for this request; refusing to "
                    "overwrite the session"
                )
            key = self._store_key_for(session._id)
            touch = self._store_touch
            if record is None and (touch is None or session._store_key is None):
                record = self._plaintext(session, None, absolute, session._data)
            if record is None:
                assert touch is not None
                # The protocol's touch() may return None (done); only False means gone.
                ok = touch(key, ttl) is not False
            else:
                ok = self._store_put(session, key, record, ttl)
            if not ok:
                # Logged out or regenerated by a concurrent request: never resurrect.
                self._emit("interrupted", environ, session._id, "record_gone")
                return False
        except StoreError as exc:
            self._emit("store_error", environ, session._id, "write", exc)
            if self.on_store_error == "raise":
                raise
            return False
        self._drop_doomed(environ, session)
        return True

    def _store_put(self, session: Session, key: str, record: bytes, ttl: int) -> bool:
        """Create (if absent) or update (if present) the sealed record; False: it is gone.

        A store without ``update``/``move`` gets a check right before the write: the
        window between the two stays open (documented), only narrower."""
        store = self.store
        sealed = self._codec.seal_bytes(record, "store", key)
        old = session._moved_from
        if old is not None:
            # regenerate(): the new record replaces the old one only while the old one
            # exists, so a concurrent logout is never undone under a new id.
            move = self._store_move
            if move is not None:
                if not move(old, key, sealed, ttl):
                    return False
            else:
                if store.get(old) is None:
                    return False
                self._create(key, sealed, ttl)
                if store.get(old) is None:  # logged out meanwhile: undo
                    store.delete(key)
                    return False
                store.delete(old)
            session._moved_from = None
            session._store_key = key
            return True
        if session._store_key is None:
            self._create(key, sealed, ttl)
            session._store_key = key
            return True
        update = self._store_update
        if update is None:
            if store.get(key) is None:
                return False
            store.set(key, sealed, ttl)
            return True
        return bool(update(key, sealed, ttl))

    def _create(self, key: str, sealed: bytes, ttl: int) -> None:
        create = self._store_create
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
            except StoreError as exc:
                sid = session._id if session._data is not None else None
                self._emit("store_error", environ, sid, "delete", exc)

    def _store_destroy(self, environ: dict[str, Any], session: Session) -> None:
        """Delete every record the request's cookies (or header) authenticate to, not
        only the one that was loaded: a duplicate cookie tossed in beside the user's
        (an attacker's, or an ambiguous pair) must not keep a session alive past a
        logout. Expired tokens still name their record. Then the records that
        ``regenerate()``/``invalidate()`` left behind."""
        keys = [session._store_key, session._incoming_key]
        values, _ = self._candidates(environ)
        now = self._clock()
        for value in values:
            try:
                sid = self._open(value, now)[1]["s"]
            except InvalidToken as exc:
                sid = exc.session_id  # None unless it authenticated (expiry)
            if sid is not None:
                keys.append(self._store_key_for(sid))
        session._doom(*keys)
        session._store_key = None
        self._drop_doomed(environ, session)

    def _store_finish(self, session: Session) -> None:
        """At close(): apply what the application did after the headers went out."""
        environ = session._environ
        if session._destroy_late:
            # invalidate() after the headers went out: the records still go.
            self._store_destroy(environ, session)
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
