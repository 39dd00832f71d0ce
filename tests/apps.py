"""Tiny WSGI applications for the PEP 3333 tests (compare waitress: tests/fixtureapps).

Each factory takes an optional ``handler(environ, session)`` run *before*
``start_response`` (default: :func:`counter`). The apps find the session under
``"wsgisession.session"`` when present, else under ``"session"``, so the same app
works with the default ``environ_key`` and with the dotted one the strict-validator
tests use (DESIGN §8).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

TEXT = [("Content-Type", "text/plain; charset=utf-8")]

Handler = Callable[[dict[str, Any], Any], None]


class AppError(Exception):
    """Raised by :func:`raises_before_start_app` (and the retry app's simulated failure)."""


class CloseError(Exception):
    """Raised by the ``close()`` of :func:`close_raises_app`'s iterable."""


def session_key(environ: dict[str, Any]) -> str:
    return "wsgisession.session" if "wsgisession.session" in environ else "session"


def get_session(environ: dict[str, Any]) -> Any:
    return environ[session_key(environ)]


def counter(environ: dict[str, Any], session: Any) -> None:
    """The default handler: count views."""
    session["n"] = session.get("n", 0) + 1


def untouched(environ: dict[str, Any], session: Any) -> None:
    """A handler that leaves the session alone."""


def destroy(environ: dict[str, Any], session: Any) -> None:
    """``environ[key] = None``: the documented way to log out."""
    environ[session_key(environ)] = None


def _run(handler: Handler | None, environ: dict[str, Any]) -> None:
    if handler is not None:
        handler(environ, get_session(environ))


class BodyIterable:
    """An iterable body with a counting ``close()``.

    ``during(environ, session)`` runs while the body is being iterated (after the
    headers went out); ``close_error`` makes ``close()`` raise after counting.
    """

    def __init__(
        self,
        chunks: list[bytes],
        environ: dict[str, Any] | None = None,
        during: Handler | None = None,
        close_error: BaseException | None = None,
    ) -> None:
        self.chunks = chunks
        self.environ = environ
        self.during = during
        self.close_error = close_error
        self.close_calls = 0
        self.iterated = False

    def __iter__(self) -> Iterator[bytes]:
        self.iterated = True
        for index, chunk in enumerate(self.chunks):
            if index == 1 and self.during is not None:
                assert self.environ is not None
                _run(self.during, self.environ)
            yield chunk

    def close(self) -> None:
        self.close_calls += 1
        if self.close_error is not None:
            raise self.close_error


def write_app(handler: Handler | None = counter) -> Callable[..., Any]:
    """Sends its whole body through the ``write()`` callable; returns ``[]``."""

    def app(environ, start_response):
        _run(handler, environ)
        write = start_response("200 OK", list(TEXT))
        write(b"written ")
        write(b"with write()")
        return []

    return app


def lazy_generator_app(handler: Handler | None = counter) -> Callable[..., Any]:
    """A generator function: nothing, not even ``start_response``, runs until iterated."""

    def app(environ, start_response):
        _run(handler, environ)
        start_response("200 OK", list(TEXT))
        yield b"lazy "
        yield b"generator"

    return app


def exc_info_retry_app(
    handler: Handler | None = counter,
    *,
    first_status: str = "200 OK",
    write_first: bool = False,
    headers: list[tuple[str, str]] | None = None,
) -> Callable[..., Any]:
    """Starts a response, fails, then calls ``start_response`` again with ``exc_info``.

    With ``write_first`` the first response already sent a chunk through ``write()``,
    so a conforming server must re-raise the original exception from the retry.
    """

    def app(environ, start_response):
        _run(handler, environ)
        write = start_response(first_status, headers if headers is not None else list(TEXT))
        if write_first:
            write(b"partial")
        try:
            raise AppError("failed after start_response")
        except AppError:
            start_response(
                "500 Internal Server Error",
                headers if headers is not None else list(TEXT),
                sys.exc_info(),
            )
        return [b"error page"]

    return app


def close_raises_app(
    handler: Handler | None = counter, during: Handler | None = None
) -> Callable[..., Any]:
    """Its iterable's ``close()`` raises :class:`CloseError`. ``app.iterables`` keeps them."""

    def app(environ, start_response):
        _run(handler, environ)
        start_response("200 OK", list(TEXT))
        body = BodyIterable([b"a", b"b", b"c"], environ, during, CloseError("close failed"))
        app.iterables.append(body)
        return body

    app.iterables = []
    return app


def raises_before_start_app(handler: Handler | None = counter) -> Callable[..., Any]:
    """Touches the session, then raises :class:`AppError` before ``start_response``."""

    def app(environ, start_response):
        _run(handler, environ)
        raise AppError("boom before start_response")

    return app


def counting_close_app(handler: Handler | None = counter) -> Callable[..., Any]:
    """Returns a :class:`BodyIterable` whose ``close()`` counts calls (``app.iterables``)."""

    def app(environ, start_response):
        _run(handler, environ)
        start_response("200 OK", list(TEXT))
        body = BodyIterable([b"counted ", b"close"])
        app.iterables.append(body)
        return body

    app.iterables = []
    return app


def late_write_app(
    handler: Handler | None = None, during: Handler | None = None
) -> Callable[..., Any]:
    """Calls ``start_response`` at once and writes the session while the body is iterated."""

    def late(environ: dict[str, Any], session: Any) -> None:
        if session is not None:  # None: the handler destroyed the session
            session["late"] = True

    def app(environ, start_response):
        _run(handler, environ)
        start_response("200 OK", list(TEXT))
        body = BodyIterable([b"before ", b"after"], environ, during or late)
        app.iterables.append(body)
        return body

    app.iterables = []
    return app


def header_list_app(
    headers: list[tuple[str, str]], handler: Handler | None = counter
) -> Callable[..., Any]:
    """Passes exactly the given list object to ``start_response``."""

    def app(environ, start_response):
        _run(handler, environ)
        start_response("200 OK", headers)
        return [b"headers"]

    return app


def file_wrapper_app(handler: Handler | None = untouched) -> Callable[..., Any]:
    """Returns ``environ["wsgi.file_wrapper"](file)`` (``app.iterables`` keeps them)."""

    def app(environ, start_response):
        _run(handler, environ)
        start_response("200 OK", list(TEXT))
        body = environ["wsgi.file_wrapper"](io.BytesIO(b"file body"), 4)
        app.iterables.append(body)
        return body

    app.iterables = []
    return app


def echo_app(handler: Handler | None = None) -> Callable[..., Any]:
    """Answers with the session's data as JSON (after running ``handler``)."""

    def app(environ, start_response):
        _run(handler, environ)
        body = json.dumps(dict(get_session(environ)), sort_keys=True).encode("utf-8")
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def router_app() -> Callable[..., Any]:
    """A small app for the real-server round trip: ``/`` counts, ``/logout`` destroys,
    ``/static`` leaves the session alone."""

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        session = get_session(environ)
        if path == "/logout":
            destroy(environ, session)
            body = b"bye"
        elif path == "/static":
            body = b"static"
        else:
            counter(environ, session)
            body = f"n={session['n']}".encode("ascii")
        start_response("200 OK", [*TEXT, ("Content-Length", str(len(body)))])
        return [body]

    return app
