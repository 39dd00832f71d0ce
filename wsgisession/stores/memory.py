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

__all__ = ["MemoryStore"]


class MemoryStore:
    """A dict with expiry and least-recently-used eviction.

    :param max_entries: how many records to keep; when full, the least recently used
        record is evicted (that user gets a fresh session, event ``missed``).
    :param clock: seconds for TTLs (default :func:`time.monotonic`); tests inject one.
    """

    def __init__(
        self, max_entries: int = 10000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not isinstance(max_entries, int) or isinstance(max_entries, bool) or max_entries < 1:
            raise ValueError("max_entries must be a positive int")
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            self._purge()
            return len(self._data)

    def __repr__(self) -> str:
        return f"<MemoryStore entries={len(self._data)} max_entries={self.max_entries}>"

    def _deadline(self, ttl: int | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        deadline = entry[1]
        if deadline is not None and deadline <= self._clock():
            del self._data[key]
            return None
        return entry

    def _purge(self) -> None:
        now = self._clock()
        for key in [k for k, (_, d) in self._data.items() if d is not None and d <= now]:
            del self._data[key]

    def _put(self, key: str, value: bytes, ttl: int | None) -> None:
        self._data[key] = (bytes(value), self._deadline(ttl))
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

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
            del self._data[old]
            self._put(new, value, ttl)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def ttl(self, key: str) -> float | None:
        """Seconds left for ``key`` (``None``: no expiry); ``KeyError`` if absent."""
        with self._lock:
            entry = self._live(key)
            if entry is None:
                raise KeyError(key)
            return None if entry[1] is None else entry[1] - self._clock()
