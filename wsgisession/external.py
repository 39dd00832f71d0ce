"""Transports for the session token other than the cookie (koa-session's ``externalKey``).

With ``external_key=HeaderKey("X-Session-Token")`` (store mode only), the sealed token
travels in a request header and comes back in a response header of the same name,
for API clients that do not keep cookies. There is no cookie fallback; destroying the
session answers the header with an empty value.

A header token is sealed for its transport (purpose ``header``, bound to the lower-cased
header name), so it never opens as a cookie, not even one of the same name, nor under
another header. Names that HTTP gives framing, routing or cookie meaning are refused.
"""

from __future__ import annotations

from typing import Any

from .cookies import valid_cookie_name
from .errors import ConfigurationError

__all__ = ["HeaderKey", "RESERVED_HEADERS"]

#: Header names a session token must never travel in: framing and connection
#: management (a proxy or server acts on them), routing, cookies, and the response
#: headers the middleware itself edits.
RESERVED_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "cookie",
        "cookie2",
        "date",
        "expect",
        "host",
        "keep-alive",
        "location",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "set-cookie",
        "set-cookie2",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "vary",
        "cache-control",
        "cdn-cache-control",
        "surrogate-control",
    }
)


class HeaderKey:
    """Carry the session token in the HTTP header ``name``.

    The token is bound to this transport and the lower-cased header name, so it cannot
    be replayed as a cookie or under another header. ``name`` must not be one of
    :data:`RESERVED_HEADERS` (``Content-Length``, ``Cookie``, ``Host``, ...).
    """

    __slots__ = ("name", "binding", "_environ_key", "_lower")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name or not valid_cookie_name(name):
            raise ConfigurationError("HeaderKey name must be an HTTP header name", "external_key")
        if name.lower() in RESERVED_HEADERS:
            raise ConfigurationError(
                f"HeaderKey cannot use {name!r}: HTTP gives that header a meaning of its "
                "own (framing, routing, cookies or caching); choose a name such as "
                "X-Session-Token",
                "external_key",
            )
        self.name = name
        self._lower = name.lower()
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
        """Set the response header (an empty ``value`` tells the client to forget it),
        replacing any the application added: the response carries exactly one."""
        lower = self._lower
        if any(name.lower() == lower for name, _ in headers):
            headers[:] = [h for h in headers if h[0].lower() != lower]
        headers.append((self.name, value))

    def __repr__(self) -> str:
        return f"HeaderKey({self.name!r})"
