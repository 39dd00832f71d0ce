"""The dict API of a wsgisession :class:`~wsgisession.Session`, delegated.

Each framework adapter wraps the request's wsgisession session in its framework's
session type; this mixin gives all of them the same mapping methods, so reads and
writes go straight to the wsgisession session (lazy loading, nested-change
detection and commit rules unchanged).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Any

from ..session import Session

__all__ = ["SessionProxy"]


class SessionProxy:
    """Mapping methods forwarded to ``self._wsgisession``."""

    __slots__ = ()
    _wsgisession: Session

    def __getitem__(self, key: str) -> Any:
        return self._wsgisession[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._wsgisession[key] = value

    def __delitem__(self, key: str) -> None:
        del self._wsgisession[key]

    def __contains__(self, key: object) -> bool:
        return key in self._wsgisession

    def __iter__(self) -> Iterator[str]:
        return iter(self._wsgisession)

    def __len__(self) -> int:
        return len(self._wsgisession)

    def get(self, key: str, default: Any = None) -> Any:
        return self._wsgisession.get(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        return self._wsgisession.pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        return self._wsgisession.popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        return self._wsgisession.setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._wsgisession.update(*args, **kwargs)

    def keys(self) -> KeysView[str]:
        return self._wsgisession.keys()

    def values(self) -> ValuesView[Any]:
        return self._wsgisession.values()

    def items(self) -> ItemsView[str, Any]:
        return self._wsgisession.items()

    def clear(self) -> None:
        """Remove every key; a loaded session emptied this way is destroyed."""
        self._wsgisession.clear()

    def copy(self) -> dict[str, Any]:
        return self._wsgisession.copy()
