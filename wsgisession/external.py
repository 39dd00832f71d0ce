"""Transports for the session token other than the cookie (koa-session's ``externalKey``).

With ``external_key=HeaderKey("X-Session-Token")`` (store mode only), the sealed token
travels in a request header and comes back in a response header of the same name,
for API clients that do not keep cookies. There is no cookie fallback; destroying the
session answers the header with an empty value.
"""

from __future__ import annotations

from typing import Any

from .cookies import valid_cookie_name
from .errors import ConfigurationError

__all__ = ["HeaderKey"]


class HeaderKey:
    """Carry the session token in the HTTP header ``name``.

    The token is bound to the lower-cased header name, so it cannot be replayed as a
    cookie or under another header.
    """

    __slots__ = ("name", "binding", "_environ_key")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name or not valid_cookie_name(name):
            raise ConfigurationError("HeaderKey name must be an HTTP header name", "external_key")
        self.name = name
        self.binding = name.lower()
        self._environ_key = "HTTP_" + name.upper().replace("-", "_")

    def get(self, environ: dict[str, Any]) -> str | None:
        """The token the request carries, or ``None``."""
        value = environ.get(self._environ_key)
        if not value:
            return None
        value = value.strip(" \t")
        return value or None

    def set(self, headers: list[tuple[str, str]], value: str) -> None:
        """Add the response header (an empty ``value`` tells the client to forget it)."""
        headers.append((self.name, value))

    def __repr__(self) -> str:
        return f"HeaderKey({self.name!r})"
