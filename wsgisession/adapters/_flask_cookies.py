"""The Flask adapter's response side: our ``Set-Cookie`` in Werkzeug's own spelling,
and ``Vary``/``Cache-Control`` merged into a Flask response.

:class:`CookieTemplate` renders exactly what ``response.set_cookie`` (Werkzeug's
``dump_cookie``) would for one set of attributes: Werkzeug renders a sample once, the
template is cut out of it, and per response only the value, ``Expires`` and
``Max-Age`` are filled in (``set_cookie`` costs several microseconds a call;
this, well under one). :func:`template_for` caches one template per distinct set of
attributes, so Flask's ``SESSION_COOKIE_*`` can change at any request.
"""

from __future__ import annotations

import inspect
from typing import Any

from werkzeug.http import dump_cookie, http_date

from ..headers import CDN_FIELDS, make_private

__all__ = ["CookieTemplate", "template_for", "merge_session_headers", "HAS_PARTITIONED"]

#: Werkzeug ≥ 3.1 renders ``Partitioned`` itself (Flask 2.3's Werkzeug 2.3 does not).
HAS_PARTITIONED = "partitioned" in inspect.signature(dump_cookie).parameters
_MAX_TEMPLATES = 64
_templates: dict[tuple[Any, ...], CookieTemplate] = {}
_SAMPLE_EXPIRES = "; Expires=" + http_date(0)
_SAMPLE_MAX_AGE = "; Max-Age=7"
#: Header names we may merge with, by length first (a cheap filter).
_CACHE_FIELDS = frozenset({"cache-control", *CDN_FIELDS})
_CACHE_LENGTHS = frozenset(len(name) for name in _CACHE_FIELDS)


def _dump(name: str, value: str, attributes: dict[str, Any], **lifetime: Any) -> str:
    partitioned = attributes.get("partitioned", False)
    if HAS_PARTITIONED:
        return dump_cookie(name, value, max_size=0, **attributes, **lifetime)
    attributes = {k: v for k, v in attributes.items() if k != "partitioned"}
    rendered = dump_cookie(name, value, max_size=0, **attributes, **lifetime)
    return rendered + "; Partitioned" if partitioned else rendered


class CookieTemplate:
    """Werkzeug's rendering of our cookie for one set of attributes, cut into parts."""

    __slots__ = ("name", "_head", "_middle", "_tail", "deletion", "_date")

    def __init__(self, name: str, **attributes: Any) -> None:
        self.name = name
        sample = _dump(name, "V", attributes, max_age=7, expires=0)
        head, sep, rest = sample.partition("=V")
        # Domain (if any) comes before Expires and Max-Age, everything else after them.
        middle, sep2, tail = rest.partition(_SAMPLE_EXPIRES + _SAMPLE_MAX_AGE)
        if not sep or not sep2:  # pragma: no cover - a Werkzeug that orders them otherwise
            raise RuntimeError(f"cannot read Werkzeug's cookie layout: {sample!r}")
        self._head, self._middle, self._tail = head + "=", middle, tail
        #: The whole deletion cookie, as ``response.delete_cookie`` renders it.
        self.deletion = _dump(name, "", attributes, max_age=0, expires=0)
        self._date = (0, http_date(0))

    def render(self, value: str, max_age: int | None, expires: int | None) -> str:
        """The ``Set-Cookie`` value (``max_age=None``: a browser-session cookie)."""
        if max_age is None or expires is None:
            return f"{self._head}{value}{self._middle}{self._tail}"
        cached, date = self._date  # one Expires date per second
        if cached != expires:
            date = http_date(expires)
            self._date = (expires, date)
        return f"{self._head}{value}{self._middle}; Expires={date}; Max-Age={max_age}{self._tail}"


def template_for(
    name: str,
    domain: Any,
    path: Any,
    secure: bool,
    httponly: bool,
    samesite: Any,
    partitioned: bool,
) -> CookieTemplate:
    """The (cached) template for one set of attributes. Werkzeug checks them on the
    first use (a bad ``SameSite`` is its ``ValueError``)."""
    key = (name, domain, path, secure, httponly, samesite, partitioned)
    template = _templates.get(key)
    if template is None:
        if len(_templates) >= _MAX_TEMPLATES:
            _templates.clear()
        attributes = {"path": path, "domain": domain, "secure": secure, "httponly": httponly}
        attributes["samesite"] = samesite
        if partitioned:
            attributes["partitioned"] = True
        template = _templates[key] = CookieTemplate(name, **attributes)
    return template


def merge_session_headers(
    response: Any, vary: str, cookie: str | None, *, is_ours: Any, private: bool
) -> list[str]:
    """Add ``vary`` to ``Vary`` (merged as Flask merges it), ``cookie`` as our
    ``Set-Cookie`` (replacing the application's own for our name, with ``is_ours``)
    and, with ``private``, ``Cache-Control: private``. One pass over the headers finds
    what there is to merge with; returns the reasons of what ``make_private`` overrode."""
    headers = response.headers
    has_vary = has_cookie = has_cache = False
    for header, _ in headers:
        n = len(header)
        if n == 4:
            has_vary = has_vary or header.lower() == "vary"
        elif n == 10:
            has_cookie = has_cookie or header.lower() == "set-cookie"
        elif n in _CACHE_LENGTHS:
            has_cache = has_cache or header.lower() in _CACHE_FIELDS
    reasons: list[str] = []
    if cookie is not None:
        if has_cookie and is_ours is not None:
            kept = [h for h in headers if not is_ours(*h)]
            if len(kept) != len(headers):
                headers.clear()
                headers.extend(kept)
        headers.add("Set-Cookie", cookie)
    if private:
        if has_cache:
            out = headers.to_wsgi_list()
            reasons = make_private(out)
            headers.clear()
            headers.extend(out)
        else:
            headers.add("Cache-Control", "private")
    if has_vary:
        response.vary.add(vary)
    else:
        headers.add("Vary", vary)
    return reasons
