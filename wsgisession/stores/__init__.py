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

A store without them falls back to ``set`` (and a rewrite for ``touch``) and loses
that guarantee. A store signals failure by raising
:class:`~wsgisession.errors.StoreError`; other exceptions are bugs and propagate.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .memory import MemoryStore

__all__ = ["Store", "MemoryStore", "RedisStore"]


@runtime_checkable
class Store(Protocol):
    """The methods every store has. ``ttl`` is in whole seconds (``None``: no expiry)."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl: int | None) -> None: ...

    def delete(self, key: str) -> None: ...


def __getattr__(name: str) -> object:
    # RedisStore imports redis; only pay for it when it is asked for.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(name)
