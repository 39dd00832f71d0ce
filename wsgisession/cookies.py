"""Reading our cookie from a ``Cookie`` header and writing ``Set-Cookie`` values.

Reading: a strict reader for *one* name. It splits on ``;`` only — never on ``,``,
which would let a cookie set by a sibling domain smuggle a ``__Host-`` pair inside
its own value — trims whitespace, strips one pair of surrounding double quotes and
compares names exactly (case-sensitive). WebOb's ``parse_cookie`` agrees with it on
every comma-free header (a differential property test pins that).

Writing: :class:`CookieWriter` renders ``Set-Cookie`` values exactly as
:class:`webob.cookies.Morsel` does (the template is produced by WebOb at
construction; a property test compares every rendering with a full WebOb one), with
``Expires`` computed from the middleware's clock and an optional ``Partitioned``.
"""

from __future__ import annotations

import datetime
import re
import time

from webob.cookies import Morsel

__all__ = ["find_cookie", "CookieWriter", "MAX_CANDIDATES", "valid_cookie_name", "valid_domain"]

#: At most this many copies of our cookie are considered per request.
MAX_CANDIDATES = 4
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_DOMAIN_RE = re.compile(
    r"\.?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_PATH_RE = re.compile(r"/[\x21-\x3a\x3c-\x7e]*")  # av-octets without ';', starting with '/'
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH = datetime.datetime(1970, 1, 1)


#: Names WebOb (and RFC 2109 parsers) treat as attributes, never as cookie names.
_RESERVED_NAMES = frozenset(
    {
        "path",
        "expires",
        "max-age",
        "domain",
        "secure",
        "httponly",
        "samesite",
        "comment",
        "version",
        "partitioned",
    }
)


def valid_cookie_name(name: str) -> bool:
    """An RFC 9110 token that is not an attribute name and does not start with ``$``."""
    return (
        _TOKEN_RE.fullmatch(name) is not None
        and not name.startswith("$")
        and name.lower() not in _RESERVED_NAMES
    )


def valid_domain(domain: str) -> bool:
    return len(domain) <= 253 and _DOMAIN_RE.fullmatch(domain) is not None


def valid_path(path: str) -> bool:
    return _PATH_RE.fullmatch(path) is not None


def find_cookie(header: str, name: str) -> tuple[list[str], int]:
    """Return ``(values, count)`` for cookie ``name`` in a ``Cookie`` header.

    ``values`` holds at most :data:`MAX_CANDIDATES` non-empty values in header
    order; ``count`` is how many non-empty copies the header carried. An empty value
    (``name=``) counts as absent.
    """
    if name not in header:
        return [], 0
    values: list[str] = []
    count = 0
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if not sep or key.strip(" \t") != name:
            continue
        value = value.strip(" \t")
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        if not value:
            continue
        count += 1
        if count <= MAX_CANDIDATES:
            values.append(value)
    return values, count


def http_date(seconds: int) -> str:
    """``Expires`` date in WebOb's spelling: ``Thu, 01-Jan-1970 00:00:00 GMT``."""
    t = time.gmtime(seconds)
    return (
        f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d}-{_MONTHS[t.tm_mon]}-{t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def webob_set_cookie(
    name: str,
    value: str,
    *,
    max_age: int | None,
    expires: int | None,
    path: str,
    domain: str | None,
    secure: bool,
    httponly: bool,
    samesite: str | None,
    partitioned: bool,
) -> str:
    """Render a ``Set-Cookie`` value with :class:`webob.cookies.Morsel` (reference path)."""
    morsel = Morsel(name, value)
    morsel.path = path.encode("ascii")
    if domain is not None:
        morsel.domain = domain.encode("ascii")
    if max_age is not None:
        morsel.max_age = max_age
    if expires is not None:
        morsel.expires = _EPOCH + datetime.timedelta(seconds=expires)
    morsel.secure = secure
    morsel.httponly = httponly
    if samesite is not None:
        morsel.samesite = samesite.encode("ascii")
    rendered: str = morsel.serialize()
    return rendered + "; Partitioned" if partitioned else rendered


class CookieWriter:
    """Renders our ``Set-Cookie`` values fast, identical to :func:`webob_set_cookie`.

    The constant parts (``Path``, flags, ``SameSite``) are rendered once by WebOb at
    construction; per response only the value, ``Max-Age`` and ``Expires`` change.
    ``domain`` here is a fixed string or ``None``; a per-request domain builds a
    writer per distinct value (cached).
    """

    __slots__ = (
        "name",
        "path",
        "domain",
        "secure",
        "httponly",
        "samesite",
        "partitioned",
        "_path_part",
        "_flags",
        "_domain_part",
        "_date_cache",
    )

    def __init__(
        self,
        name: str,
        *,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = True,
        samesite: str | None = "Lax",
        partitioned: bool = False,
    ) -> None:
        self.name = name
        self.path = path
        self.domain = domain
        self.secure = secure
        self.httponly = httponly
        self.samesite = samesite
        self.partitioned = partitioned
        # Let WebOb render a cookie with markers, then cut the template out of it.
        sample = webob_set_cookie(
            name,
            "V",
            max_age=7,
            expires=0,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )
        head = f"{name}=V; "
        assert sample.startswith(head)
        rest = sample[len(head) :]
        if domain is not None:
            dom, _, rest = rest.partition("; ")
            self._domain_part = dom + "; "
        else:
            self._domain_part = ""
        marker = "Max-Age=7; "
        assert rest.startswith(marker)
        rest = rest[len(marker) :]
        path_part, _, rest = rest.partition("; ")
        expires_part = "expires=" + http_date(0)
        assert rest.startswith(expires_part)
        self._path_part = path_part
        self._flags = rest[len(expires_part) :]
        self._date_cache: tuple[int, str] = (0, http_date(0))

    def render(self, value: str, max_age: int | None, now: int) -> str:
        """``Set-Cookie`` value for ``value``; ``max_age=None`` = a browser-session cookie."""
        if max_age is None:
            return f"{self.name}={value}; {self._domain_part}{self._path_part}{self._flags}"
        expires = now + max_age
        cached_at, date = self._date_cache  # one Expires date per second, cached
        if cached_at != expires:
            date = http_date(expires)
            self._date_cache = (expires, date)
        return (
            f"{self.name}={value}; {self._domain_part}Max-Age={max_age}; {self._path_part}; "
            f"expires={date}{self._flags}"
        )

    def render_deletion(self) -> str:
        """The deletion cookie: empty value, ``Max-Age=0``, ``Expires`` in 1970."""
        return (
            f"{self.name}=; {self._domain_part}Max-Age=0; {self._path_part}; "
            f"expires={http_date(0)}{self._flags}"
        )
