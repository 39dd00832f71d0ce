"""``DjangoCacheStore``: sessions in one of Django's configured caches.

A Django project whose ``CACHES`` already points at Redis or memcached keeps using it,
unchanged, for server-side sessions::

    WSGISESSION = {
        "secret_keys": [os.environ["WSGISESSION_SECRET_KEY"]],
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

Keys Django's cache would warn about (memcached could not take them: spaces, control
or non-ASCII characters, over 200 characters) are stored as ``~h:`` + their SHA-256;
the middleware's own keys (prefix + 64 hex digits) are used as they are.

Every exception the cache backend raises becomes
:class:`~wsgisession.errors.StoreError` naming the operation, the exception class and
the cache alias (the backends are network clients: their failures are outages, not
bugs of the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigurationError, StoreError
from ._keys import portable_key

__all__ = ["DjangoCacheStore"]

_T = TypeVar("_T")

#: Django warns about keys over 250 characters after its ``:version:`` prefixing (and
#: ``KEY_PREFIX``); 200 leaves room for both.
KEY_LIMIT = 200


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

    def cache_key(self, key: str) -> str:
        """The key given to Django's cache for ``key`` (see the module's docstring)."""
        return portable_key(key, KEY_LIMIT)

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
        value = self._run("get", lambda cache: cache.get(self.cache_key(key)))
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        self._run("set", lambda cache: cache.set(self.cache_key(key), bytes(value), ttl))

    def create(self, key: str, value: bytes, ttl: int | None) -> bool:
        return bool(
            self._run("add", lambda cache: cache.add(self.cache_key(key), bytes(value), ttl))
        )

    def touch(self, key: str, ttl: int | None) -> bool:
        def touch(cache: Any) -> bool:
            wire = self.cache_key(key)
            if cache.touch(wire, ttl):
                return True
            # RedisCache's touch(key, None) is PERSIST, which answers 0 for a record
            # that has no expiry already: present, not gone.
            return ttl is None and bool(cache.has_key(wire))

        return self._run("touch", touch)

    def delete(self, key: str) -> None:
        self._run("delete", lambda cache: cache.delete(self.cache_key(key)))

    def ping(self) -> None:
        """Check that the cache answers (a read of a key nobody writes)."""
        self._run("get", lambda cache: cache.get("wsgisession:ping"))
