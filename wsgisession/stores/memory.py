"""``MemoryStore``: an in-process, thread-safe, bounded store with TTLs.

For a single process (development, tests, one-worker deployments). Sessions vanish
when the process exits and are not shared between workers: use
:class:`~wsgisession.stores.redis.RedisStore` for more than one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..errors import ConfigurationError, StoreError

__all__ = ["MemoryStore", "DEFAULT_MAX_BYTES"]

#: Default bound on the bytes held (keys and values): 64 MiB.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class MemoryStore:
    """A dict with expiry and least-recently-used eviction, bounded in entries and bytes.

    :param max_entries: how many records to keep; when full, the least recently used
        record is evicted (that user gets a fresh session, event ``missed``).
    :param max_bytes: how many bytes of keys and values to keep (default 64 MiB), so
        anonymous requests that each make a large session cannot grow the process
        without limit; evicted least-recently-used first, like ``max_entries``. A single
        record larger than this is refused with :class:`~wsgisession.errors.StoreError`.
    :param clock: seconds for TTLs (default :func:`time.monotonic`); tests inject one.
    """

    def __init__(
        self,
        max_entries: int = 10000,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"{name} must be a positive int", name)
        if not callable(clock):
            raise ConfigurationError("clock must be callable", "clock")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        #: Bytes held now: the sum of len(key) + len(value) over the entries.
        self._bytes = 0
        #: index name -> member -> (entry, deadline): per-user session lists.
        self._indexes: dict[str, dict[str, tuple[bytes, float]]] = {}

    def __len__(self) -> int:
        with self._lock:
            self._purge()
            return len(self._data)

    def __repr__(self) -> str:
        return (
            f"<MemoryStore entries={len(self._data)} max_entries={self.max_entries} "
            f"bytes={self._bytes} max_bytes={self.max_bytes}>"
        )

    @property
    def bytes_used(self) -> int:
        """Bytes of keys and values held now (expired entries not yet dropped included)."""
        return self._bytes

    def _drop(self, key: str) -> None:
        value, _ = self._data.pop(key)
        self._bytes -= len(key) + len(value)

    def _deadline(self, ttl: int | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        deadline = entry[1]
        if deadline is not None and deadline <= self._clock():
            self._drop(key)
            return None
        return entry

    def _purge(self) -> None:
        now = self._clock()
        for key in [k for k, (_, d) in self._data.items() if d is not None and d <= now]:
            self._drop(key)

    def _check_size(self, key: str, value: bytes) -> int:
        size = len(key) + len(value)
        if size > self.max_bytes:
            raise StoreError(
                f"a session record of {size} bytes is larger than MemoryStore's "
                f"max_bytes={self.max_bytes}"
            )
        return size

    def _put(self, key: str, value: bytes, ttl: int | None) -> None:
        value = bytes(value)
        size = self._check_size(key, value)
        if key in self._data:
            self._drop(key)
        self._data[key] = (value, self._deadline(ttl))
        self._bytes += size
        while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._data)))

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._live(key)
            if entry is None:
                return None
            self._data.move_to_end(key)
            return entry[0]

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        with self._lock:
            self._put(key, value, ttl)

    def create(self, key: str, value: bytes, ttl: int | None) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._put(key, value, ttl)
            return True

    def update(self, key: str, value: bytes, ttl: int | None) -> bool:
        with self._lock:
            if self._live(key) is None:
                return False
            self._put(key, value, ttl)
            return True

    def touch(self, key: str, ttl: int | None) -> bool:
        with self._lock:
            entry = self._live(key)
            if entry is None:
                return False
            self._data[key] = (entry[0], self._deadline(ttl))
            self._data.move_to_end(key)
            return True

    def move(self, old: str, new: str, value: bytes, ttl: int | None) -> bool:
        """Atomically replace record ``old`` by ``new`` (absent) while ``old`` exists."""
        with self._lock:
            if self._live(old) is None or self._live(new) is not None:
                return False
            self._check_size(new, value)
            self._drop(old)
            self._put(new, value, ttl)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            if key in self._data:
                self._drop(key)

    # -- index methods (per-user session lists) ------------------------------------------

    def _live_members(self, index: str) -> dict[str, tuple[bytes, float]]:
        members = self._indexes.get(index)
        if not members:
            return {}
        now = self._clock()
        for member in [m for m, (_, deadline) in members.items() if deadline <= now]:
            del members[member]
        if not members:
            del self._indexes[index]
        return members

    def index_put(self, index: str, member: str, entry: bytes, ttl: int) -> None:
        with self._lock:
            self._live_members(index)
            self._indexes.setdefault(index, {})[member] = (bytes(entry), self._clock() + ttl)

    def index_get(self, index: str) -> dict[str, bytes]:
        with self._lock:
            return {member: entry for member, (entry, _) in self._live_members(index).items()}

    def index_revoke(self, index: str, members: list[str]) -> None:
        """Delete the records ``members`` and remove them from ``index``, in one step."""
        with self._lock:
            listed = self._indexes.get(index, {})
            for member in members:
                listed.pop(member, None)
                if member in self._data:
                    self._drop(member)
            if index in self._indexes and not listed:
                del self._indexes[index]

    def ttl(self, key: str) -> float | None:
        """Seconds left for ``key`` (``None``: no expiry); ``KeyError`` if absent."""
        with self._lock:
            entry = self._live(key)
            if entry is None:
                raise KeyError(key)
            return None if entry[1] is None else entry[1] - self._clock()
