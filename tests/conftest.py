"""Shared fixtures: secrets, an injectable clock, an event recorder, a harness, and a
direct WSGI caller."""

from __future__ import annotations

# isort: off
# wsgisession first: it imports WebOb without WebOb's own warning about the deprecated
# cgi module (which setup.cfg's filterwarnings = error would turn into an error here).
import wsgisession  # noqa: F401

# isort: on
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import webob
import webtest

from wsgisession import SessionEvent, SessionMiddleware

SECRET = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz"
OLD_SECRET = "old-secret-0123456789abcdefghijklmnopqrstuvwxyz!"
OTHER_SECRET = "other-secret-0123456789abcdefghijklmnopqrstuvwxyz"
T0 = 1_800_000_000  # a fixed "now" for the injected clock
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class Clock:
    """A settable clock: ``clock()`` returns ``clock.now``."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Events(list[SessionEvent]):
    """Records every event; ``names()`` lists their names in order."""

    def names(self) -> list[str]:
        return [e.name for e in self]

    def reasons(self, name: str | None = None) -> list[str]:
        return [e.reason for e in self if name is None or e.name == name]


def session_app(handler: Callable[[dict[str, Any], Any], Any] | None = None):
    """A WSGI app that calls ``handler(environ, session)`` and returns its result.

    The handler's return value becomes the body: bytes as is, str encoded, anything
    else ``repr()``'d; ``None`` gives an empty body. A tuple ``(status, body)`` sets
    the status.
    """

    def app(environ, start_response):
        session = environ["session"]
        result = handler(environ, session) if handler is not None else None
        status = "200 OK"
        if isinstance(result, tuple):
            status, result = result
        if result is None:
            body = b""
        elif isinstance(result, bytes):
            body = result
        elif isinstance(result, str):
            body = result.encode("utf-8")
        else:
            body = repr(result).encode("utf-8")
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


class Harness:
    """A middleware around a handler, with its client, events and clock."""

    def __init__(self, handler=None, *, app=None, **options: Any) -> None:
        self.events = Events()
        self.clock = options.pop("clock", None) or Clock()
        options.setdefault("secret_keys", [SECRET])
        user_on_event = options.pop("on_event", None)

        def on_event(event: SessionEvent) -> None:
            self.events.append(event)
            if user_on_event is not None:
                user_on_event(event)

        self.app = app if app is not None else session_app(handler)
        self.mw = SessionMiddleware(self.app, on_event=on_event, clock=self.clock, **options)
        self.client = webtest.TestApp(self.mw)

    def get(self, path: str = "/", cookie: str | None = None, **kw: Any) -> webtest.TestResponse:
        """GET with an explicit Cookie header (bypassing the client's cookie jar)."""
        headers = dict(kw.pop("headers", {}))
        if cookie is not None:
            headers["Cookie"] = cookie
        return self.client.get(path, headers=headers, **kw)


@dataclass
class WSGIResult:
    """What one direct WSGI call produced.

    ``calls`` holds every ``start_response`` call as ``(status, headers, exc_info)``
    (the headers copied at call time); ``status`` and ``headers`` are the last call's.
    """

    calls: list[tuple[str, list[tuple[str, str]], Any]] = field(default_factory=list)
    body: bytes = b""

    @property
    def status(self) -> str:
        return self.calls[-1][0]

    @property
    def headers(self) -> list[tuple[str, str]]:
        return self.calls[-1][1]


def call_wsgi(
    app: Any,
    path: str = "/",
    *,
    method: str = "GET",
    cookie: str | None = None,
    scheme: str = "http",
    **environ_extra: Any,
) -> WSGIResult:
    """Call a WSGI app directly, the way a server would, with a plain environ dict.

    The environ is WebOb's minimal valid one for ``path`` and ``method``, with
    ``wsgi.url_scheme`` set to ``scheme``, ``HTTP_COOKIE`` set to ``cookie`` (when not
    None) and then ``environ_extra`` applied. Every ``start_response`` call is recorded;
    the body is joined and the iterable closed (even when iterating fails). Exceptions
    from the app, ``start_response`` or the iteration propagate.
    """
    environ = webob.Request.blank(path, method=method).environ
    environ["wsgi.url_scheme"] = scheme
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    environ.update(environ_extra)
    result = WSGIResult()

    def start_response(status, headers, exc_info=None):
        result.calls.append((status, list(headers), exc_info))
        return lambda data: None

    iterable = app(environ, start_response)
    try:
        result.body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return result


def set_cookies(response) -> list[str]:
    """All Set-Cookie header values of a response."""
    return response.headers.getall("Set-Cookie")


def cookie_value(response, name: str = "session") -> str | None:
    """The value our Set-Cookie carries (``""`` for a deletion), or None if absent."""
    for header in set_cookies(response):
        key, _, rest = header.partition("=")
        if key == name:
            return rest.split(";", 1)[0]
    return None


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def harness() -> Callable[..., Harness]:
    """Factory: ``harness(handler, **options)`` -> Harness."""
    return Harness
