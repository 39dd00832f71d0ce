"""Server-side session stores.

A store keeps opaque, already-encrypted bytes under keys the middleware chooses
(``prefix + sha256hex(session_id)``). Any object with the methods of :class:`Store`
works; the optional conditional methods are what make logout and regeneration
race-free:

``create(key, value, ttl) -> bool``
    write only if the key is absent (``SET NX``); a new session never overwrites one.
``update(key, value, ttl) -> bool``
    write only if the key still exists (``SET XX``); a slow request that finishes after
    a logout or ``regenerate()`` does not bring the old session back.
``touch(key, ttl) -> bool``
    move the expiry of an existing key without rewriting it (``rolling``/``renew``).
``move(old, new, value, ttl) -> bool``
    for ``regenerate()``: write ``new`` and delete ``old`` in one step, only while ``old``
    still exists (so a regenerate racing a logout cannot revive the session).

``touch`` may return ``None`` (done) or a bool (``False``: the record is gone). A store
without ``update``/``move`` gets a check that the record exists right before each
update (a narrower window, not a closed one) and a warning at construction.

Optional **index** methods give "my active sessions" and "log out everywhere" in store
mode (DESIGN "Stores"). An index is a named set of *members* (record keys, as given by
the middleware) with an opaque sealed entry and an expiry each; the middleware keeps
one index per user id it was asked to bind sessions to:

``index_put(index, member, entry, ttl) -> None``
    add or replace ``member`` with ``entry`` (bytes, stored as given); the member
    expires ``ttl`` seconds from now. The index lives as long as its longest member.
``index_get(index) -> dict[str, bytes]``
    the members that have not expired, with their entries; expired members are
    removed (or never returned).
``index_revoke(index, members) -> None``
    in one atomic step, delete the records named by ``members`` and remove them from
    the index (a member that is absent, or whose record is gone, is no error).

``sweep() -> int`` (optional) removes expired records and index members from a store
that does not expire them by itself (files, SQL) and returns how many it removed;
``python -m wsgisession sweep URL`` calls it. ``ping() -> None`` (optional) raises
``StoreError`` unless the store can be reached (readiness probes).

A store signals failure by raising :class:`~wsgisession.errors.StoreError`; other
exceptions are bugs and propagate.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .memory import MemoryStore

__all__ = ["Store", "MemoryStore", "RedisStore", "FileStore", "MemcachedStore", "SQLStore"]


@runtime_checkable
class Store(Protocol):
    """The methods every store has. ``ttl`` is in whole seconds (``None``: no expiry).

    ``isinstance(obj, Store)`` tells whether ``obj`` has these three methods (a test
    for a store you write; the optional methods are looked up by name).
    """

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl: int | None) -> None: ...

    def delete(self, key: str) -> None: ...


def __getattr__(name: str) -> object:
    # RedisStore imports redis; only pay for it when it is asked for.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    if name == "FileStore":
        from .files import FileStore

        return FileStore
    if name == "MemcachedStore":
        from .memcached import MemcachedStore

        return MemcachedStore
    if name == "SQLStore":
        from .sql import SQLStore

        return SQLStore
    raise AttributeError(name)
