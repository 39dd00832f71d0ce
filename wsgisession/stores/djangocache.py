"""``DjangoCacheStore``: sessions in one of Django's configured caches.

A Django project whose ``CACHES`` already points at Redis or memcached keeps using it,
unchanged, for server-side sessions::

    WSGISESSION = {
        "secret_keys": [os.environ["SESSION_SECRET"]],
        "store": DjangoCacheStore(alias="default"),
    }

It uses Django's cache API only: ``add`` creates a record only if it is absent and
``touch`` moves an expiry only while the record exists, but Django's API has no
"update only if present" and no atomic move, so updates and ``regenerate()`` check
that the record exists right before writing (the narrower window of any store
without ``update``/``move``, announced by one warning when the middleware is built),
and there is no per-user index: for "log out everywhere" use ``revocation_store``.
Prefer :class:`~wsgisession.RedisStore` on the same Redis when those guarantees
matter.

Every exception the cache backend raises becomes
:class:`~wsgisession.errors.StoreError` naming the operation, the exception class and
the cache alias (the backends are network clients: their failures are outages, not
bugs of the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigurationError, StoreError

__all__ = ["DjangoCacheStore"]

_T = TypeVar("_T")


class DjangoCacheStore:
    """A session store on ``django.core.cache.caches[alias]``.

    :param alias: the ``CACHES`` entry to use (default ``"default"``); looked up on
        each call, so Django's ``override_settings`` and per-thread cache objects work.
    """

    def __init__(self, alias: str = "default") -> None:
        if not isinstance(alias, str) or not alias:
            raise ConfigurationError("alias must be the name of a CACHES entry", "alias")
        try:
            from django.core.cache import caches  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("DjangoCacheStore needs Django: pip install Django") from exc
        self.alias = alias
        self._caches = caches

    def __repr__(self) -> str:
        return f"<DjangoCacheStore alias={self.alias!r}>"

    def _run(self, what: str, call: Callable[[Any], _T]) -> _T:
        try:
            return call(self._caches[self.alias])
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"django cache {what} failed: {type(exc).__name__} (cache {self.alias!r})", exc
            ) from exc

    def get(self, key: str) -> bytes | None:
        value = self._run("get", lambda cache: cache.get(key))
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        self._run("set", lambda cache: cache.set(key, bytes(value), ttl))

    def create(self, key: str, value: bytes, ttl: int | None) -> bool:
        return bool(self._run("add", lambda cache: cache.add(key, bytes(value), ttl)))

    def touch(self, key: str, ttl: int | None) -> bool:
        return bool(self._run("touch", lambda cache: cache.touch(key, ttl)))

    def delete(self, key: str) -> None:
        self._run("delete", lambda cache: cache.delete(key))

    def ping(self) -> None:
        """Check that the cache answers (a read of a key nobody writes)."""
        self._run("get", lambda cache: cache.get("wsgisession:ping"))
