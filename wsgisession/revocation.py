"""A user's sessions: list them, revoke one, log out everywhere.

A session bound to a user id (``session.bind_user(user_id)``, e.g. at login) can be
found again through that id:

* **Store mode, with a store that has the index methods** (MemoryStore, RedisStore,
  FileStore, SQLStore): each save of a bound session puts its record into the user's
  index (``prefix + "user:" + sha256hex(...)``) with a sealed entry (created, last
  seen, expiry). :meth:`Revocations.sessions_of` lists them — an opaque handle per
  session, never its data or id — and ``revoke``/``revoke_all`` delete records and
  index members in one atomic store operation.
* **Any mode, with ``revocation_store``**: the user has a *generation* (a sealed
  counter in that store); a bound session's token (or record) carries the generation
  it was saved under, every load of a bound session reads the current one (one store
  read per request) and refuses the session when they differ (event ``invalid``,
  reason ``revoked``). ``revoke_all`` increments it, so every cookie issued before —
  a stolen copy too — stops working, in cookie mode as well.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NamedTuple

from .codec import TokenCodec
from .errors import InvalidToken, StoreError, WSGISessionError
from .events import Emitter
from .options import Options

__all__ = ["Revocations", "SessionInfo", "INDEX_METHODS"]

INDEX_METHODS = ("index_put", "index_get", "index_revoke")


class SessionInfo(NamedTuple):
    """One of a user's sessions, as :meth:`~wsgisession.SessionManager.sessions_of`
    lists it: an opaque ``handle`` (for ``revoke``), Unix seconds it was ``created``,
    ``last_seen`` (its last save or refresh) and ``expires`` (``None``: a browser
    session without an absolute lifetime)."""

    handle: str
    created: int
    last_seen: int
    expires: int | None


def _digest(label: str, text: str) -> str:
    return hashlib.sha256(
        f"wsgisession-{label}:{text}".encode("utf-8", "surrogatepass")
    ).hexdigest()


class Revocations:
    """Per-user session indexes and revocation generations (see the module docstring)."""

    def __init__(self, options: Options, codec: TokenCodec, emitter: Emitter) -> None:
        """``options``: the ``store``, ``revocation_store``, ``prefix`` and ``clock``."""
        self._codec = codec
        store = self.store = options.store
        self.indexed = store is not None and all(
            callable(getattr(store, name, None)) for name in INDEX_METHODS
        )
        self.generations = options.revocation_store
        self._prefix = options.prefix
        self._clock = options.clock
        self._emitter = emitter

    # -- names ------------------------------------------------------------------------

    def index_name(self, user_id: str) -> str:
        return f"{self._prefix}user:{_digest('user', user_id)}"

    def _generation_key(self, user_id: str) -> str:
        return f"{self._prefix}generation:{_digest('user', user_id)}"

    @staticmethod
    def handle(member: str) -> str:
        """The opaque handle of an index member (a record key): not reversible."""
        return _digest("handle", member)[:32]

    # -- generations --------------------------------------------------------------------

    def generation(self, user_id: str) -> int:
        """The user's current generation (0 before any ``revoke_all``).

        :raises StoreError: when the revocation store cannot be read.
        """
        key = self._generation_key(user_id)
        blob = self.generations.get(key)
        if blob is None:
            return 0
        try:
            plaintext, _ = self._codec.open_bytes(bytes(blob), "store", key)
            value = int(plaintext.decode("ascii"))
        except (InvalidToken, ValueError):
            raise StoreError("the revocation record of a user is damaged") from None
        return value

    def revoked(self, user_id: str, generation: int | None) -> bool:
        """Whether a session saved under ``generation`` was revoked since."""
        return (generation or 0) != self.generation(user_id)

    def _bump(self, user_id: str) -> int:
        key = self._generation_key(user_id)
        value = self.generation(user_id) + 1
        self.generations.set(key, self._codec.seal_bytes(str(value).encode(), "store", key), None)
        return value

    # -- what the manager asks on load and on save --------------------------------------

    def load_refused(self, session: Any, environ: dict[str, Any]) -> bool | None:
        """A bound session just loaded: True when it was revoked (an ``invalid`` event
        is emitted), None when the revocation store could not be read (``store_error``),
        False when it may be used."""
        if self.generations is None or session._user is None:
            return False
        try:
            revoked = self.revoked(session._user, session._generation)
        except StoreError as exc:
            self._emitter.emit("store_error", environ, session._id, "read", exc)
            return None
        if revoked:
            self._emitter.emit("invalid", environ, session._id, "revoked")
        return revoked

    def before_write(self, session: Any) -> None:
        """Give a bound session its user's generation before its first save under it.

        :raises StoreError: when the revocation store cannot be read.
        """
        if self.generations is not None and session._user is not None:
            if session._generation is None:
                session._bind_generation(self.generation(session._user))

    def after_write(
        self, session: Any, old_member: str | None, expires: int | None, ttl: int
    ) -> None:
        """A bound store-mode session was saved: (re)list it in its user's index. A
        failure is reported, not raised: the session itself was saved."""
        if not self.indexed or session._user is None or session._store_key is None:
            return
        try:
            self.written(
                session._user, session._store_key, old_member, session._created, expires, ttl
            )
        except StoreError as exc:
            self._emitter.emit("store_error", session._environ, session._id, "write", exc)

    # -- the index ----------------------------------------------------------------------

    def _require_index(self) -> None:
        if not self.indexed:
            raise WSGISessionError(
                "listing and revoking a user's sessions needs store mode with a store "
                "that has index_put/index_get/index_revoke (MemoryStore, RedisStore, "
                "FileStore, SQLStore); in cookie mode use revocation_store and revoke_all()"
            )

    def written(
        self,
        user_id: str,
        member: str,
        old_member: str | None,
        created: int,
        expires: int | None,
        ttl: int,
    ) -> None:
        """A bound session was saved under ``member`` (its record key)."""
        index = self.index_name(user_id)
        now = int(self._clock())
        entry = json.dumps({"c": created, "l": now, "e": expires}, separators=(",", ":"))
        binding = f"{index}\n{member}"
        self.store.index_put(
            index, member, self._codec.seal_bytes(entry.encode(), "store", binding), ttl
        )
        if old_member is not None and old_member != member:
            self.store.index_revoke(index, [old_member])  # regenerate(): the old id

    def sessions_of(self, user_id: str) -> list[SessionInfo]:
        """The user's live sessions, most recently seen first."""
        self._require_index()
        index = self.index_name(user_id)
        found, stale = [], []
        for member, blob in self.store.index_get(index).items():
            try:
                plaintext, _ = self._codec.open_bytes(bytes(blob), "store", f"{index}\n{member}")
                entry = json.loads(plaintext)
                info = SessionInfo(
                    self.handle(member), int(entry["c"]), int(entry["l"]), entry["e"]
                )
            except (InvalidToken, ValueError, KeyError, TypeError):
                stale.append(member)  # not ours, or damaged: never shown
                continue
            if self.store.get(member) is None:
                stale.append(member)  # logged out (or expired) since
                continue
            found.append(info)
        if stale:
            self.store.index_revoke(index, stale)
        return sorted(found, key=lambda info: (-info.last_seen, info.handle))

    def revoke(self, user_id: str, handle: str) -> bool:
        """Revoke one session by its handle; False when the user has none such."""
        self._require_index()
        index = self.index_name(user_id)
        members = [m for m in self.store.index_get(index) if self.handle(m) == handle]
        if members:
            self.store.index_revoke(index, members)
            self._emitter.emit("destroyed", {}, None, "revoked")
        return bool(members)

    def revoke_all(self, user_id: str, keep: str | None = None) -> int | None:
        """Revoke every session of the user but the one whose record is ``keep``: the
        index's records (store mode) and, with ``revocation_store``, every token saved
        under an older generation. Returns the new generation (``None`` without
        ``revocation_store``)."""
        if not self.indexed and self.generations is None:
            self._require_index()
        if self.indexed:
            index = self.index_name(user_id)
            members = [m for m in self.store.index_get(index) if m != keep]
            if members:
                self.store.index_revoke(index, members)
        generation = None if self.generations is None else self._bump(user_id)
        self._emitter.emit("destroyed", {}, None, "revoked_all")
        return generation
