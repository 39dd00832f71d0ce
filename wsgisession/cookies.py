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
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

with warnings.catch_warnings():
    # WebOb 1.8 imports the standard library's deprecated ``cgi`` module (``legacy-cgi``
    # from Python 3.13 on): that warning is about WebOb, not the application, so it is
    # hidden for this one import only (an application's own warnings are untouched).
    warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
    from webob.cookies import Morsel

from .errors import WSGISessionError

__all__ = [
    "find_cookie",
    "CookieWriter",
    "CookiePolicy",
    "CookieUpdate",
    "MAX_CANDIDATES",
    "valid_cookie_name",
    "valid_domain",
    "valid_path",
]

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


#: Writers cached for per-request domains (a callable ``domain``) before the cache is reset.
MAX_WRITERS = 64


class CookiePolicy:
    """Our cookie's attributes for one request: Secure or not, and which Domain.

    ``secure=None`` marks the cookie Secure on https requests (``wsgi.url_scheme``),
    ``always_secure`` on every request; a callable ``domain`` is asked per request
    (``domain(environ) -> str | None``). The writers for a fixed domain are built here,
    at construction, so a bad combination fails early.
    """

    __slots__ = (
        "name",
        "_path",
        "_httponly",
        "_samesite",
        "_partitioned",
        "_secure",
        "_always_secure",
        "_domain",
        "_writers",
        "_plain",
    )

    def __init__(
        self,
        name: str,
        *,
        path: str,
        domain: str | Callable[[dict[str, Any]], str | None] | None,
        secure: bool | None,
        always_secure: bool,
        httponly: bool,
        samesite: str | None,
        partitioned: bool,
    ) -> None:
        self.name = name
        self._path = path
        self._httponly = httponly
        self._samesite = samesite
        self._partitioned = partitioned
        self._secure = secure
        self._always_secure = always_secure
        self._domain = domain
        self._writers: dict[tuple[str | None, bool], CookieWriter] = {}
        #: Writers for a fixed domain-less cookie, by "secure" (the common case).
        self._plain: tuple[CookieWriter | None, CookieWriter | None] = (None, None)
        if not callable(domain):
            for flag in (True,) if always_secure else (False, True):
                self.writer(domain, flag)
            if domain is None:
                self._plain = (self._writers.get((None, False)), self._writers.get((None, True)))

    def writer(self, domain: str | None, secure: bool) -> CookieWriter:
        """The (cached) writer for one domain and Secure flag."""
        key = (domain, secure)
        writer = self._writers.get(key)
        if writer is None:
            if len(self._writers) >= MAX_WRITERS:
                self._writers.clear()
            writer = self._writers[key] = CookieWriter(
                self.name,
                path=self._path,
                domain=domain,
                secure=secure,
                httponly=self._httponly,
                samesite=self._samesite,
                partitioned=self._partitioned,
            )
        return writer

    def writer_for(self, environ: dict[str, Any]) -> CookieWriter:
        """The writer for this request."""
        secure = self._always_secure or (
            self._secure is None and environ.get("wsgi.url_scheme") == "https"
        )
        domain = self._domain
        if domain is None:
            writer = self._plain[secure]
            if writer is not None:
                return writer
        elif callable(domain):
            domain = domain(environ)
            if domain is not None and (not isinstance(domain, str) or not valid_domain(domain)):
                raise WSGISessionError("the domain callable returned an invalid domain")
        return self.writer(domain, secure)

    def is_ours(self, header: str, value: str) -> bool:
        """Whether a response header is a ``Set-Cookie`` for our cookie name."""
        return (
            len(header) == 10
            and header.lower() == "set-cookie"
            and value.partition("=")[0].strip() == self.name
        )

    @property
    def writer_count(self) -> int:
        """How many writers are cached (bounded by :data:`MAX_WRITERS`)."""
        return len(self._writers)


class CookieUpdate(NamedTuple):
    """What a response must carry for its session (from :meth:`~SessionManager.save_session`).

    ``value`` is the token (``""``: a deletion); ``max_age`` the ``Max-Age`` in seconds
    (``None``: a browser-session cookie; ``0``: a deletion); ``expires`` the matching
    ``Expires`` as Unix seconds (``None`` with ``max_age=None``); ``header`` the whole
    ``Set-Cookie`` value with the configured attributes (with ``external_key``: the
    header's value, i.e. the token).
    """

    value: str
    max_age: int | None
    expires: int | None
    header: str

    @property
    def deletion(self) -> bool:
        """True when the response clears the session cookie (or header)."""
        return self.value == ""
