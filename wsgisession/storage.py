"""Store mode: the session's data in a server-side store, its id in the sealed token.

A :class:`StoreBackend` is what a :class:`~wsgisession.SessionManager` has in store
mode (and does not have in cookie mode). It receives everything it uses at
construction, looks the store's optional methods up once, and answers the manager
with results (a payload, "written", "gone") rather than calling it back.

* The record of session ``id`` lives at ``prefix + sha256hex(id)``, sealed (purpose
  ``store``) and bound to that key; it holds ``c``, ``a``, ``m``, ``s`` and ``d``.
* New records are created only if absent, existing ones updated only if present, and
  ``regenerate()`` moves a record only while it exists: a request that overlaps a
  logout or a regenerate never revives the session (event ``interrupted``). A store
  without ``update``/``move`` gets a check right before each such write instead,
  which narrows the window but cannot close it (one warning at construction).
* Read failure → empty read-only session and ``store_error``; write failure →
  ``StoreError`` (or dropped with ``on_store_error="ignore"``); delete failure → an
  event, the cookie is cleared anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from .codec import TokenCodec
from .errors import InvalidToken, StoreError
from .events import Emitter, logger
from .options import Options
from .payload import Payload, dump_payload, load_record
from .session import Session

__all__ = ["StoreBackend"]


class StoreBackend:
    """Reads and writes session records in one store (see the module docstring)."""

    def __init__(self, options: Options, codec: TokenCodec, emitter: Emitter) -> None:
        """``options``: the store, ``prefix``, ``serializer`` (``fast_json``),
        ``absolute_max_age`` and ``on_store_error`` are what it reads."""
        store = self.store = options.store
        self.prefix = options.prefix
        self._codec = codec
        self._serializer = options.serializer
        self._fast_json = options.fast_json
        self._absolute_max_age = options.absolute_max_age
        self._raise = options.on_store_error == "raise"
        self._emitter = emitter
        # The store's optional methods, looked up once.
        self._create: Callable[[str, bytes, int | None], bool] | None = getattr(
            store, "create", None
        )
        self._update: Callable[[str, bytes, int | None], bool] | None = getattr(
            store, "update", None
        )
        self._touch: Callable[[str, int | None], bool | None] | None = getattr(store, "touch", None)
        self._move: Callable[[str, str, bytes, int | None], bool] | None = getattr(
            store, "move", None
        )
        missing = [
            f"{name}()"
            for name, method in (("create", self._create), ("update", self._update))
            if method is None
        ]
        if missing:
            logger.warning(
                "session store %s has no %s: saves check that the record still exists "
                "right before writing, which narrows but cannot close the window in "
                "which a concurrent logout can be undone",
                type(store).__name__,
                "/".join(missing),
            )

    def key_for(self, session_id: str) -> str:
        """Where the record of ``session_id`` lives: ``prefix + sha256hex(id)``."""
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
        return self.prefix + digest

    # -- reading ----------------------------------------------------------------------

    def load(self, session: Session, sid: str, now: float) -> Payload | None:
        """Read and open the record of ``sid``; ``None`` (after an event) if unusable."""
        environ = session._environ
        key = self.key_for(sid)
        try:
            blob = self.store.get(key)
        except StoreError as exc:
            self._emitter.emit("store_error", environ, sid, "read", exc)
            session._record_read(key, found=False, failed=True)
            return None
        session._record_read(key, found=False)
        if blob is None:
            self._emitter.emit("missed", environ, sid, "no_record")
            return None
        try:
            plaintext, kid = self._codec.open_bytes(bytes(blob), "store", key)
        except InvalidToken as exc:
            self._emitter.emit("invalid", environ, sid, exc.reason)
            return None
        try:
            record = load_record(self._serializer, plaintext, now, self._absolute_max_age, sid)
        except InvalidToken as exc:
            self._emitter.emit(exc.event, environ, sid, exc.reason)
            return None
        record.kid = kid
        session._record_read(key, found=True)
        return record

    # -- writing ----------------------------------------------------------------------

    def write(self, session: Session, absolute: int | None, ttl: int, *, touch: bool) -> bool:
        """Persist the session (``touch``: only refresh its record's TTL, where the
        store can). False: send no cookie (gone, or a failure that was ignored)."""
        environ = session._environ
        try:
            if session._unavailable:
                raise StoreError(
                    "the session store could not be read for this request; refusing to "
                    "overwrite the session"
                )
            key = self.key_for(session._id)
            if touch and self._touch is not None and session._store_key is not None:
                # The protocol's touch() may return None (done); only False means gone.
                ok = self._touch(key, ttl) is not False
            else:
                ok = self._put(session, key, self._record(session, absolute), ttl)
            if not ok:
                # Logged out or regenerated by a concurrent request: never resurrect.
                self._emitter.emit("interrupted", environ, session._id, "record_gone")
                return False
        except StoreError as exc:
            self._emitter.emit("store_error", environ, session._id, "write", exc)
            if self._raise:
                raise
            return False
        self.drop_doomed(session)
        return True

    def _record(self, session: Session, absolute: int | None) -> bytes:
        return dump_payload(
            self._serializer,
            self._fast_json,
            created=session._created,
            sid=session._id,
            expires=None,
            absolute=absolute,
            max_age=session._max_age,
            data=session._data,
            user=session._user,
            generation=session._generation,
        )

    def _put(self, session: Session, key: str, record: bytes, ttl: int) -> bool:
        """Create (if absent) or update (if present) the sealed record; False: gone."""
        store = self.store
        sealed = self._codec.seal_bytes(record, "store", key)
        old = session._moved_from
        if old is not None:
            # regenerate(): the new record replaces the old one only while the old one
            # exists, so a concurrent logout is never undone under a new id.
            if self._move is not None:
                if not self._move(old, key, sealed, ttl):
                    return False
            else:
                if store.get(old) is None:
                    return False
                self._create_record(key, sealed, ttl)
                if store.get(old) is None:  # logged out meanwhile: undo
                    store.delete(key)
                    return False
                store.delete(old)
            session._record_written(key)
            return True
        if session._store_key is None:
            self._create_record(key, sealed, ttl)
            session._record_written(key)
            return True
        if self._update is None:
            if store.get(key) is None:
                return False
            store.set(key, sealed, ttl)
            return True
        return bool(self._update(key, sealed, ttl))

    def _create_record(self, key: str, sealed: bytes, ttl: int) -> None:
        if self._create is None:
            self.store.set(key, sealed, ttl)
        elif not self._create(key, sealed, ttl):
            raise StoreError("a session with the new id already exists (genid)")

    # -- deleting ---------------------------------------------------------------------

    def drop_doomed(self, session: Session, *, destroy: bool = False) -> None:
        """Delete the records ``regenerate()``/``invalidate()`` left behind
        (``destroy``: and the session's own)."""
        for key in session._take_doomed(destroy=destroy):
            try:
                self.store.delete(key)
            except StoreError as exc:
                sid = session._id if session._data is not None else None
                self._emitter.emit("store_error", session._environ, sid, "delete", exc)

    def destroy(self, session: Session, session_ids: Iterable[str]) -> None:
        """Delete this session's records and those of ``session_ids`` (every id the
        request's tokens authenticate to), then forget the record."""
        session._doom(*(self.key_for(sid) for sid in session_ids))
        self.drop_doomed(session, destroy=True)
