"""Response-header helpers and the closing iterable (PEP 3333 plumbing).

``add_session_headers`` merges a session's headers into the application's,
``merge_vary`` adds a field to ``Vary``, ``make_private`` keeps shared caches away
from responses that set a cookie, and ``ClosingIterable`` forwards ``close()`` once
and then runs a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["add_session_headers", "merge_vary", "make_private", "ClosingIterable", "CDN_FIELDS"]


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


#: Response headers add_session_headers may have to merge with, and their lengths (a
#: cheap filter before lower-casing each name).
_HEADERS_WE_EDIT = frozenset({"vary", "set-cookie", "cache-control", *CDN_FIELDS})
_HEADER_LENGTHS = frozenset(len(name) for name in _HEADERS_WE_EDIT)
_PRIVATE = ("Cache-Control", "private")


def add_session_headers(
    headers: list[tuple[str, str]],
    vary: tuple[str, str],
    value: str | None,
    *,
    external_key: Any,
    is_ours: Callable[[str, str], bool] | None,
    cache_control: bool,
) -> tuple[list[tuple[str, str]], list[str]]:
    """A copy of the application's ``headers`` with a touched session's own: ``vary``
    (``("Vary", "Cookie")`` or the external key's header) merged into ``Vary``, and,
    when ``value`` is not ``None``, our ``Set-Cookie`` (or ``external_key.set``)
    replacing the application's own for our name (``is_ours``; ``None``: keep them),
    plus ``Cache-Control: private`` (``cache_control``). Also returns the reasons of
    what :func:`make_private` overrode."""
    for name, _ in headers:
        if len(name) in _HEADER_LENGTHS and name.lower() in _HEADERS_WE_EDIT:
            break
    else:
        # No Vary, Set-Cookie or Cache-Control yet (the common case): append ours.
        if value is None:
            return [*headers, vary], []
        if external_key is not None:
            out = [*headers, vary]
            external_key.set(out, value)
        else:
            out = [*headers, vary, ("Set-Cookie", value)]
        if cache_control:
            out.append(_PRIVATE)
        return out, []
    out = list(headers)
    merge_vary(out, vary[1])
    if value is None:
        return out, []
    if external_key is not None:
        external_key.set(out, value)
    else:
        if is_ours is not None:
            out = [h for h in out if not is_ours(*h)]
        out.append(("Set-Cookie", value))
    return out, make_private(out) if cache_control else []


class ClosingIterable:
    """The application's iterable with ``close()`` forwarded, then
    ``callback(argument)``, once."""

    __slots__ = ("_app_iter", "_callback", "_argument", "_closed")

    def __init__(
        self, app_iter: Iterable[bytes], callback: Callable[[Any], None], argument: Any
    ) -> None:
        self._app_iter = app_iter
        self._callback = callback
        self._argument = argument
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
            self._callback(self._argument)
