"""PEP 3333 correctness of SessionMiddleware (DESIGN §1, §4, §8; STYLE §4).

Every test runs twice (the ``mode`` fixture):

``validator-outside``
    ``validator(SessionMiddleware(app))`` with the default ``environ_key="session"``.
``validator-inside``
    ``validator(SessionMiddleware(validator(app), environ_key="wsgisession.session"))``:
    a validator inside the middleware asserts that dot-less environ keys hold ``str``,
    so it needs the dotted key (DESIGN §8 "PEP 3333 and environ["session"]").

Responses are driven by :func:`serve`, a minimal hand-written server loop, by a real
``wsgiref.simple_server`` on 127.0.0.1, and by ``webtest.TestApp``.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.util import FileWrapper, setup_testing_defaults
from wsgiref.validate import validator

import pytest
import webtest

from tests import apps
from tests.conftest import SECRET, Clock, Events
from wsgisession import SessionMiddleware

# -- the stack under test --------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("outside", id="validator-outside"),
        pytest.param("inside", id="validator-inside"),
    ]
)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


class Stack:
    """``validator(SessionMiddleware([validator](recorder(app))))`` plus its events.

    ``app_results`` holds what the (possibly validated) app returned to the
    middleware, so identity checks can compare with what the middleware returned.
    """

    def __init__(self, app: Any, mode: str, **options: Any) -> None:
        self.mode = mode
        self.key = "session" if mode == "outside" else "wsgisession.session"
        self.events = Events()
        self.clock = options.pop("clock", None) or Clock()
        self.app_results: list[Any] = []
        inner = app if mode == "outside" else validator(app)

        def recorder(environ, start_response):
            result = inner(environ, start_response)
            self.app_results.append(result)
            return result

        options.setdefault("secret_keys", [SECRET])
        self.mw = SessionMiddleware(
            recorder,
            environ_key=self.key,
            on_event=self.events.append,
            clock=self.clock,
            **options,
        )
        self.wsgi = validator(self.mw)


@pytest.fixture
def stack(mode: str):
    """Factory: ``stack(app, **options)`` -> :class:`Stack` in the current mode."""

    def make(app: Any, **options: Any) -> Stack:
        return Stack(app, mode, **options)

    return make


# -- a minimal server loop ------------------------------------------------------------


@dataclass
class Served:
    status: str | None = None
    headers: list[tuple[str, str]] | None = None
    #: status and headers as they were when the first body byte went out
    sent_status: str | None = None
    sent_headers: list[tuple[str, str]] | None = None
    body: bytes = b""
    #: (status, copy of headers, called with exc_info) for each start_response call
    start_calls: list[tuple[str, list[tuple[str, str]], bool]] = field(default_factory=list)
    #: the exact header list objects start_response received
    header_objects: list[Any] = field(default_factory=list)
    returned: Any = None


def check_header_types(headers: Any) -> None:
    assert type(headers) is list, type(headers)
    for item in headers:
        assert type(item) is tuple, item
        assert len(item) == 2, item
        assert type(item[0]) is str and type(item[1]) is str, item


def make_environ(
    path: str = "/", *, method: str = "GET", cookie: str | None = None
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    setup_testing_defaults(environ)
    environ["wsgi.file_wrapper"] = FileWrapper
    return environ


def serve(
    wsgi: Any,
    path: str = "/",
    *,
    method: str = "GET",
    cookie: str | None = None,
    close_calls: int = 1,
) -> Served:
    """Call ``wsgi`` like a server: send headers at the first body byte, iterate, close."""
    environ = make_environ(path, method=method, cookie=cookie)
    out = Served()
    chunks: list[bytes] = []

    def send_headers() -> None:
        if out.sent_headers is None:
            assert out.status is not None, "body sent before start_response"
            assert out.headers is not None
            out.sent_status = out.status
            out.sent_headers = list(out.headers)

    def write(data: bytes) -> None:
        assert type(data) is bytes
        if data:
            send_headers()
            chunks.append(data)

    def start_response(status, headers, exc_info=None):
        check_header_types(headers)
        retried = exc_info is not None
        if exc_info is not None:
            try:
                if out.sent_headers is not None:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif out.status is not None:
            raise AssertionError("start_response called twice without exc_info")
        out.start_calls.append((status, list(headers), retried))
        out.header_objects.append(headers)
        out.status = status
        out.headers = list(headers)
        return write

    result = wsgi(environ, start_response)
    out.returned = result
    try:
        for chunk in result:
            write(chunk)
        send_headers()
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            for _ in range(close_calls):
                close()
    out.body = b"".join(chunks)
    return out


# -- header helpers ---------------------------------------------------------------------


def header_values(headers: list[tuple[str, str]] | None, name: str) -> list[str]:
    assert headers is not None
    return [v for k, v in headers if k.lower() == name.lower()]


def our_cookies(headers: list[tuple[str, str]] | None, name: str = "session") -> list[str]:
    """Every Set-Cookie value for our cookie name."""
    return [v for v in header_values(headers, "Set-Cookie") if v.split("=", 1)[0].strip() == name]


def token(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


def the_cookie(served: Served) -> str:
    """The one Set-Cookie for our name (asserting there is exactly one)."""
    cookies = our_cookies(served.headers)
    assert len(cookies) == 1, served.headers
    return cookies[0]


def is_deletion(set_cookie: str) -> bool:
    parts = [p.strip() for p in set_cookie.split(";")]
    return parts[0] == "session=" and "Max-Age=0" in parts and "1970" in set_cookie


def open_cookie(value: str, mode: str) -> dict[str, Any]:
    """What a fresh middleware (same secret and clock) reads from a token."""
    reader = Stack(apps.echo_app(), mode)
    served = serve(reader.wsgi, cookie=f"session={value}")
    assert our_cookies(served.headers) == []
    return json.loads(served.body)


# -- write() ----------------------------------------------------------------------------


def test_write_app_gets_set_cookie_before_first_write(stack, mode):
    s = stack(apps.write_app())
    served = serve(s.wsgi)
    assert served.body == b"written with write()"
    # the headers that went out with the first write() already held the cookie
    sent = our_cookies(served.sent_headers)
    assert len(sent) == 1
    assert served.sent_headers == served.headers
    assert header_values(served.sent_headers, "Vary") == ["Cookie"]
    assert open_cookie(token(sent[0]), mode) == {"n": 1}

    again = serve(s.wsgi, cookie=f"session={token(sent[0])}")
    assert open_cookie(token(the_cookie(again)), mode) == {"n": 2}


def test_write_app_with_untouched_session_adds_nothing(stack):
    s = stack(apps.write_app(apps.untouched))
    served = serve(s.wsgi)
    assert served.body == b"written with write()"
    assert served.sent_headers == list(apps.TEXT)
    assert s.events == []


# -- lazy generator apps ----------------------------------------------------------------


def test_lazy_generator_app_gets_its_cookie(stack, mode):
    s = stack(apps.lazy_generator_app())
    served = serve(s.wsgi)
    assert served.body == b"lazy generator"
    assert [call[0] for call in served.start_calls] == ["200 OK"]
    first = token(the_cookie(served))
    assert open_cookie(first, mode) == {"n": 1}
    again = serve(s.wsgi, cookie=f"session={first}")
    assert open_cookie(token(the_cookie(again)), mode) == {"n": 2}


def test_lazy_generator_app_untouched_session(stack):
    s = stack(apps.lazy_generator_app(apps.untouched))
    served = serve(s.wsgi)
    assert served.body == b"lazy generator"
    assert served.headers == list(apps.TEXT)


def test_lazy_generator_never_iterated_is_closed(stack):
    """A server that gives up before iterating still closes; nothing is left open."""
    s = stack(apps.lazy_generator_app())
    environ = make_environ()
    result = s.wsgi(environ, lambda status, headers, exc_info=None: None)
    result.close()
    assert s.events == []


# -- start_response again with exc_info --------------------------------------------------


def test_exc_info_retry_drops_the_cookie_of_the_failed_response(stack, mode):
    s = stack(apps.exc_info_retry_app())
    served = serve(s.wsgi)
    assert [(call[0], call[2]) for call in served.start_calls] == [
        ("200 OK", False),
        ("500 Internal Server Error", True),
    ]
    # the first call would have written a cookie; the error response replaces it
    assert len(our_cookies(served.start_calls[0][1])) == 1
    assert served.status == "500 Internal Server Error"
    assert our_cookies(served.headers) == []
    assert header_values(served.headers, "Vary") == ["Cookie"]
    assert served.body == b"error page"


def test_exc_info_retry_keeps_an_incoming_session_unsaved(stack, mode):
    first = serve(stack(apps.write_app()).wsgi)
    value = token(the_cookie(first))
    s = stack(apps.exc_info_retry_app())
    served = serve(s.wsgi, cookie=f"session={value}")
    assert our_cookies(served.headers) == []
    # the browser keeps the old cookie, which still holds n=1
    assert open_cookie(value, mode) == {"n": 1}


def test_exc_info_retry_with_commit_on_error_sends_exactly_one_cookie(stack, mode):
    """DESIGN §1.3: a second call with exc_info recomputes consistently. With
    commit_on_error=True the error response must carry the session cookie."""
    s = stack(apps.exc_info_retry_app(), commit_on_error=True)
    served = serve(s.wsgi)
    assert served.status == "500 Internal Server Error"
    cookies = our_cookies(served.headers)
    assert len(cookies) == 1, served.headers
    assert open_cookie(token(cookies[0]), mode) == {"n": 1}
    assert header_values(served.headers, "Cache-Control") == ["private"]


def _invalidate(environ, session):
    session.invalidate()


def _clear(environ, session):
    session.clear()


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(apps.destroy, id="assign-none"),
        pytest.param(_invalidate, id="invalidate"),
        pytest.param(_clear, id="emptied"),
    ],
)
@pytest.mark.parametrize("commit_on_error", [False, True])
def test_exc_info_retry_still_clears_a_destroyed_session(stack, handler, commit_on_error):
    value = token(the_cookie(serve(stack(apps.write_app()).wsgi)))
    own = [
        ("Content-Type", "text/plain"),
        ("Set-Cookie", "session=app-own-value; Path=/"),
        ("Set-Cookie", "theme=dark; Path=/"),
    ]
    s = stack(apps.exc_info_retry_app(handler, headers=own), commit_on_error=commit_on_error)
    served = serve(s.wsgi, cookie=f"session={value}")
    assert served.status == "500 Internal Server Error"
    cookies = our_cookies(served.headers)
    assert len(cookies) == 1, served.headers  # no duplicate, no stale app value
    assert is_deletion(cookies[0]), cookies[0]
    assert "theme=dark; Path=/" in header_values(served.headers, "Set-Cookie")
    assert "destroyed" in s.events.names()


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(apps.destroy, id="assign-none"),
        pytest.param(_invalidate, id="invalidate"),
        pytest.param(_clear, id="emptied"),
    ],
)
def test_a_plain_5xx_still_clears_a_destroyed_session(stack, handler):
    """DESIGN §8 "5xx and retries": no write on 5xx, but destroy still clears; an
    emptied session is destroyed like invalidate() ("Emptied sessions")."""
    value = token(the_cookie(serve(stack(apps.write_app()).wsgi)))

    def app(environ, start_response):
        handler(environ, apps.get_session(environ))
        start_response("503 Service Unavailable", list(apps.TEXT))
        return [b"down"]

    s = stack(app)
    served = serve(s.wsgi, cookie=f"session={value}")
    assert served.status == "503 Service Unavailable"
    cookies = our_cookies(served.headers)
    assert len(cookies) == 1, served.headers
    assert is_deletion(cookies[0])


def test_exc_info_retry_recomputes_from_the_apps_headers(stack):
    """The same header list passed twice: Vary and Cache-Control are merged once."""
    headers = [
        ("Content-Type", "text/plain"),
        ("Vary", "Accept-Encoding"),
        ("Cache-Control", "public, max-age=60"),
    ]
    original = list(headers)
    s = stack(apps.exc_info_retry_app(apps.destroy, headers=headers))
    served = serve(s.wsgi)
    assert headers == original
    assert len(served.start_calls) == 2
    assert header_values(served.headers, "Vary") == ["Accept-Encoding, Cookie"]
    assert header_values(served.headers, "Cache-Control") == ["private, max-age=60"]
    assert is_deletion(the_cookie(served))


def test_exc_info_after_headers_went_out_reraises_the_original_error(stack, mode):
    """The server re-raises exc_info; the middleware neither swallows nor wraps it."""
    s = stack(apps.exc_info_retry_app(write_first=True))
    with pytest.raises(apps.AppError, match="failed after start_response") as raised:
        serve(s.wsgi)
    assert type(raised.value) is apps.AppError
    # the event log shows the first response was committed normally
    assert s.events.names() == ["created"]


# -- close() ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handler",
    [pytest.param(apps.counter, id="touched"), pytest.param(apps.untouched, id="untouched")],
)
def test_close_is_forwarded_exactly_once(stack, handler):
    app = apps.counting_close_app(handler)
    s = stack(app)
    served = serve(s.wsgi)
    assert served.body == b"counted close"
    [body] = app.iterables
    assert body.iterated
    assert body.close_calls == 1


def test_close_is_forwarded_once_when_a_sloppy_server_closes_twice(stack):
    app = apps.counting_close_app()
    s = stack(app)
    serve(s.wsgi, close_calls=2)
    assert app.iterables[0].close_calls == 1


def test_close_error_propagates_and_finish_still_runs(stack, mode):
    def load_cart(environ, session):
        session.setdefault("cart", [])

    def mutate_cart(environ, session):
        session["cart"].append("late")

    app = apps.close_raises_app(load_cart, during=mutate_cart)
    s = stack(app)
    with pytest.raises(apps.CloseError, match="close failed"):
        serve(s.wsgi)
    [body] = app.iterables
    assert body.close_calls == 1
    # only the middleware's finish (after close) can see this nested late change
    assert s.events.names() == ["created", "late_write"]
    assert s.events.reasons("late_write") == ["after_headers"]


# -- the app's headers --------------------------------------------------------------------


def test_the_apps_header_list_is_never_mutated(stack, mode):
    headers = [
        ("Content-Type", "text/plain"),
        ("Vary", "Accept-Encoding"),
        ("Cache-Control", "public, max-age=60"),
        ("Set-Cookie", "session=stale-app-value; Path=/"),
        ("Set-Cookie", "theme=dark; Path=/"),
    ]
    reference = headers
    snapshot = [tuple(h) for h in headers]
    s = stack(apps.header_list_app(headers))
    served = serve(s.wsgi)
    assert headers is reference
    assert headers == snapshot
    assert len(headers) == 5
    assert all(served_list is not headers for served_list in served.header_objects)
    # ... while the response got the merged headers
    assert header_values(served.headers, "Vary") == ["Accept-Encoding, Cookie"]
    assert header_values(served.headers, "Cache-Control") == ["private, max-age=60"]
    cookie = the_cookie(served)
    assert "stale-app-value" not in cookie
    assert open_cookie(token(cookie), mode) == {"n": 1}
    assert "theme=dark; Path=/" in header_values(served.headers, "Set-Cookie")
    assert "cache_control_overridden" in s.events.names()


APP_FACTORIES = [
    pytest.param(apps.write_app, id="write"),
    pytest.param(apps.lazy_generator_app, id="generator"),
    pytest.param(apps.exc_info_retry_app, id="exc-info-retry"),
    pytest.param(apps.counting_close_app, id="counting-close"),
    pytest.param(apps.late_write_app, id="late-write"),
]


@pytest.mark.parametrize("factory", APP_FACTORIES)
@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(apps.counter, id="write-session"),
        pytest.param(apps.destroy, id="destroy"),
        pytest.param(apps.untouched, id="untouched"),
    ],
)
def test_headers_are_a_list_of_str_pairs(stack, factory, handler):
    s = stack(factory(handler), commit_on_error=True)
    served = serve(s.wsgi)
    assert served.start_calls
    for headers in served.header_objects:
        assert type(headers) is list
        assert all(type(h) is tuple and len(h) == 2 for h in headers)
        assert all(type(k) is str and type(v) is str for k, v in headers)


# -- exceptions before start_response -----------------------------------------------------


def test_app_exception_before_start_response_propagates_unchanged(stack):
    raised: list[BaseException] = []

    def handler(environ, session):
        session["n"] = 1
        error = apps.AppError("boom before start_response")
        raised.append(error)
        raise error

    s = stack(apps.raises_before_start_app(handler))
    environ = make_environ()
    calls: list[Any] = []
    with pytest.raises(apps.AppError) as info:
        s.wsgi(environ, lambda *args: calls.append(args))
    assert info.value is raised[0]
    assert calls == []  # no start_response, so no cookie
    assert "late_write" not in s.events.names()
    assert "created" not in s.events.names()


def test_app_exception_before_start_response_with_default_app(stack):
    s = stack(apps.raises_before_start_app())
    with pytest.raises(apps.AppError, match="boom before start_response"):
        serve(s.wsgi)


# -- identity: wsgi.file_wrapper survives ------------------------------------------------


def test_untouched_session_returns_the_apps_iterable_itself(stack, mode):
    app = apps.counting_close_app(apps.untouched)
    s = stack(app)
    served = serve(s.wsgi)
    [from_app] = s.app_results
    assert served.returned.original_iterator is from_app  # what the middleware returned
    if mode == "outside":
        assert from_app is app.iterables[0]


def test_file_wrapper_survives_an_untouched_session(stack, mode):
    app = apps.file_wrapper_app()
    s = stack(app)
    served = serve(s.wsgi)
    assert served.body == b"file body"
    [from_app] = s.app_results
    assert served.returned.original_iterator is from_app
    if mode == "outside":
        assert type(served.returned.original_iterator) is FileWrapper


def test_touched_session_wraps_but_keeps_the_body(stack):
    app = apps.file_wrapper_app(apps.counter)
    s = stack(app)
    served = serve(s.wsgi)
    assert served.body == b"file body"
    assert len(our_cookies(served.headers)) == 1
    assert app.iterables[0].filelike.closed  # close() reached the FileWrapper


# -- writes after the headers went out ------------------------------------------------------


def _assign_late(environ, session):
    session["late"] = True


def _append_late(environ, session):
    session["cart"].append("late")


def _load_cart(environ, session):
    session.setdefault("cart", [])


@pytest.mark.parametrize(
    ("handler", "during"),
    [
        pytest.param(None, _assign_late, id="untouched-then-assign"),
        pytest.param(apps.counter, _assign_late, id="written-then-assign"),
        pytest.param(_load_cart, _append_late, id="written-then-nested-append"),
    ],
)
def test_a_session_write_during_body_iteration_is_a_late_write(stack, handler, during):
    app = apps.late_write_app(handler, during)
    s = stack(app)
    served = serve(s.wsgi)
    assert served.body == b"before after"
    assert s.events.names().count("late_write") == 1
    assert s.events.reasons("late_write") == ["after_headers"]


def test_late_write_does_not_reach_the_cookie(stack, mode):
    app = apps.late_write_app(apps.counter)
    s = stack(app)
    served = serve(s.wsgi)
    assert open_cookie(token(the_cookie(served)), mode) == {"n": 1}


# -- HEAD ---------------------------------------------------------------------------------


def test_head_request_gets_the_cookie(stack, mode):
    s = stack(apps.counting_close_app())
    served = serve(s.wsgi, method="HEAD")
    assert open_cookie(token(the_cookie(served)), mode) == {"n": 1}


def test_head_request_untouched_adds_nothing(stack):
    s = stack(apps.counting_close_app(apps.untouched))
    served = serve(s.wsgi, method="HEAD")
    assert served.headers == list(apps.TEXT)


# -- a real server --------------------------------------------------------------------------


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def http_request(
    port: int, method: str, path: str, cookie: str | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Cookie": cookie} if cookie else {}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, response.getheaders(), body
    finally:
        conn.close()


def test_round_trip_through_wsgiref_simple_server(stack, mode):
    s = stack(apps.router_app())
    server = make_server("127.0.0.1", 0, s.wsgi, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        port = server.server_port
        status, headers, body = http_request(port, "GET", "/")
        assert (status, body) == (200, b"n=1")
        cookies = our_cookies(headers)
        assert len(cookies) == 1
        attrs = [a.strip() for a in cookies[0].split(";")]
        assert "HttpOnly" in attrs and "SameSite=Lax" in attrs and "Path=/" in attrs
        assert "Max-Age=86400" in attrs
        assert header_values(headers, "Vary") == ["Cookie"]
        assert header_values(headers, "Cache-Control") == ["private"]
        jar = f"session={token(cookies[0])}"

        status, headers, body = http_request(port, "GET", "/", jar)
        assert (status, body) == (200, b"n=2")
        jar = f"session={token(the_cookie(Served(headers=headers)))}"

        status, headers, body = http_request(port, "GET", "/static", jar)
        assert (status, body) == (200, b"static")
        assert header_values(headers, "Set-Cookie") == []
        assert header_values(headers, "Vary") == []

        status, headers, body = http_request(port, "HEAD", "/", jar)
        assert (status, body) == (200, b"")
        jar = f"session={token(the_cookie(Served(headers=headers)))}"

        status, headers, body = http_request(port, "GET", "/", jar)
        assert (status, body) == (200, b"n=4")

        status, headers, body = http_request(port, "GET", "/logout", jar)
        assert (status, body) == (200, b"bye")
        assert is_deletion(the_cookie(Served(headers=headers)))

        status, headers, body = http_request(port, "GET", "/")
        assert body == b"n=1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert not thread.is_alive()


# -- webtest ---------------------------------------------------------------------------------


def test_through_webtest(stack, mode):
    s = stack(apps.router_app())
    client = webtest.TestApp(s.wsgi)
    assert client.get("/").text == "n=1"
    assert client.get("/").text == "n=2"
    response = client.head("/")
    assert response.headers.getall("Set-Cookie")
    logout = client.get("/logout")
    [deletion] = logout.headers.getall("Set-Cookie")
    assert is_deletion(deletion)
    assert client.get("/").text == "n=1"

    for factory in (apps.write_app, apps.lazy_generator_app):
        other = webtest.TestApp(stack(factory()).wsgi)
        first = other.get("/")
        assert len(first.headers.getall("Set-Cookie")) == 1
        assert "HttpOnly" in first.headers["Set-Cookie"]

    failing = webtest.TestApp(stack(apps.exc_info_retry_app()).wsgi)
    error = failing.get("/", status=500)
    assert error.body == b"error page"
    assert error.headers.getall("Set-Cookie") == []
