"""Response-header helpers and the closing iterable (PEP 3333 plumbing).

Nothing here knows about sessions beyond a callback: ``merge_vary`` adds a field to
``Vary``, ``make_private`` keeps shared caches away from responses that set a cookie,
and ``ClosingIterable`` forwards ``close()`` once and then runs a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["merge_vary", "make_private", "ClosingIterable", "CDN_FIELDS"]


def merge_vary(headers: list[tuple[str, str]], field: str) -> None:
    """Add ``field`` to the response's ``Vary`` (once; ``Vary: *`` is left alone)."""
    first = None
    for index, (name, value) in enumerate(headers):
        if len(name) != 4 or name.lower() != "vary":
            continue
        tokens = {t.strip().lower() for t in value.split(",")}
        if "*" in tokens or field.lower() in tokens:
            return
        if first is None:
            first = index
    if first is None:
        headers.append(("Vary", field))
        return
    name, value = headers[first]
    headers[first] = (name, f"{value}, {field}" if value.strip() else field)


#: Targeted cache-control fields (RFC 9213 and CDN vendors): a CDN obeys them instead
#: of ``Cache-Control``, so a response that sets a cookie must not keep one that lets
#: the CDN store it. Value: the reason of the ``cache_control_overridden`` event.
CDN_FIELDS = {
    "cdn-cache-control": "cdn_cache_control",
    "cloudflare-cdn-cache-control": "cdn_cache_control",
    "vercel-cdn-cache-control": "cdn_cache_control",
    "surrogate-control": "surrogate_control",
}


def _directives(value: str) -> set[str]:
    return {d.strip().lower().partition("=")[0] for d in value.split(",")}


def make_private(headers: list[tuple[str, str]]) -> list[str]:
    """Make the response uncacheable by shared caches; return the reasons of what had
    to be overridden (empty: nothing).

    No ``Cache-Control`` → ``private``; ``public`` and ``s-maxage`` are dropped and
    ``private`` added (once, across several headers) unless ``private`` or ``no-store``
    is already there (reason ``public``). A CDN's own field (:data:`CDN_FIELDS`) that
    would let the CDN store the response — anything without ``no-store`` (or
    ``private``, for ``CDN-Cache-Control``) — is dropped, so the CDN falls back to the
    private ``Cache-Control`` (reasons ``cdn_cache_control``, ``surrogate_control``).
    """
    reasons: list[str] = []
    found = []
    cdn = []
    for i, (name, value) in enumerate(headers):
        lower = name.lower()
        if lower == "cache-control":
            found.append(i)
        elif lower in CDN_FIELDS:
            kept = _directives(value)
            if "no-store" not in kept and ("private" not in kept or lower == "surrogate-control"):
                cdn.append(i)
                if CDN_FIELDS[lower] not in reasons:
                    reasons.append(CDN_FIELDS[lower])
    if cdn:
        headers[:] = [h for i, h in enumerate(headers) if i not in cdn]
        found = [i for i, (name, _) in enumerate(headers) if name.lower() == "cache-control"]
    if not found:
        headers.append(("Cache-Control", "private"))
        return reasons
    directives = {d for i in found for d in _directives(headers[i][1])}
    if "public" in directives or "s-maxage" in directives:
        reasons.insert(0, "public")
    need_private = "private" not in directives and "no-store" not in directives
    for i in found:
        name, value = headers[i]
        kept_parts = [
            d.strip()
            for d in value.split(",")
            if d.strip() and d.strip().lower().partition("=")[0] not in ("public", "s-maxage")
        ]
        if need_private and i == found[0]:
            kept_parts.insert(0, "private")
        headers[i] = (name, ", ".join(kept_parts))
    # Drop Cache-Control headers that ended up empty.
    headers[:] = [h for h in headers if h[0].lower() != "cache-control" or h[1]]
    return reasons


class ClosingIterable:
    """The application's iterable with ``close()`` forwarded, then a callback, once."""

    __slots__ = ("_app_iter", "_callback", "_session", "_closed")

    def __init__(
        self, app_iter: Iterable[bytes], callback: Callable[[Any], None], session: Any
    ) -> None:
        self._app_iter = app_iter
        self._callback = callback
        self._session = session
        self._closed = False

    def __iter__(self) -> Any:
        return iter(self._app_iter)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._app_iter, "close", None)
            if close is not None:
                close()
        finally:
            self._callback(self._session)
