"""Keys for caches that cannot take every string (memcached, and Django's cache API,
which warns about keys memcached would refuse)."""

from __future__ import annotations

import hashlib

__all__ = ["HASHED_KEY_PREFIX", "portable_key"]

#: What a hashed key starts with; a key that itself starts with it is hashed too, so
#: no key given as-is can collide with a hashed one.
HASHED_KEY_PREFIX = "~h:"


def portable_key(key: str, limit: int) -> str:
    """``key`` itself when memcached could take it (non-empty printable ASCII without
    spaces, at most ``limit`` characters, not starting with ``~h:``), else
    ``"~h:" + sha256hex(key)``. The middleware's own keys (prefix + 64 hex digits)
    pass unchanged."""
    if (
        key
        and len(key) <= limit
        and key.isascii()
        and key.isprintable()
        and " " not in key
        and not key.startswith(HASHED_KEY_PREFIX)
    ):
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return HASHED_KEY_PREFIX + digest
