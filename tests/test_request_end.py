"""The end of a request: what a session holds on to once its response is over.

``environ["session"]`` points at the session and the session at the environ, a
reference cycle that only the cyclic garbage collector would free. Where no option
hands the environ to application code (no ``valid``, ``genid``, ``before_save``,
``on_event``, callable ``domain`` or ``external_key``), the middleware breaks that
cycle when the response is over (a list body at once, any other body at ``close()``),
so a request's objects are freed by reference counting. A session that was never
loaded keeps the ``Cookie`` header, so code running after the response (an outer
middleware) can still read it. With any of those options the session keeps the whole
environ, so the hooks always see the request they belong to.
In every configuration the session drops the server's ``start_response`` when the
response is over.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import webob

from tests.conftest import SECRET, call_wsgi
from wsgisession import MemoryStore, SessionMiddleware


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def recording_app(refs: list, *, touch: str, body: str):
    """Records a weak reference to its session; ``touch``: none/read/write."""

    def app(environ, start_response):
        session = environ["session"]
        refs.append(weakref.ref(session))
        if touch == "read":
            session.get("n")
        elif touch == "write":
            session["n"] = 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        if body == "list":
            return [b"ok"]

        def chunks():
            yield b"ok"

        return chunks()

    return app


def cookie_from(result) -> str:
    (value,) = [v for k, v in result.headers if k == "Set-Cookie"]
    return value.split(";", 1)[0]


@pytest.mark.parametrize("store", [None, "memory"])
@pytest.mark.parametrize("body", ["list", "generator"])
@pytest.mark.parametrize("touch", ["none", "read", "write"])
def test_a_finished_request_is_freed_without_the_cyclic_collector(store, body, touch):
    refs: list = []
    mw = SessionMiddleware(
        recording_app(refs, touch=touch, body=body),
        secret_keys=[SECRET],
        store=MemoryStore() if store else None,
    )
    cookie = None
    if touch == "read":
        cookie = cookie_from(
            call_wsgi(
                SessionMiddleware(
                    recording_app([], touch="write", body="list"),
                    secret_keys=[SECRET],
                    store=mw.store,
                )
            )
        )
    gc.collect()
    with no_cyclic_gc():
        result = call_wsgi(mw, cookie=cookie)
        assert result.status == "200 OK"
        assert result.body == b"ok"
        # call_wsgi's environ is gone with its frame; so is the session, by refcount.
        assert refs[0]() is None


class EnvironHoldingServer:
    """A server that keeps the environ while it serves the response and hands the
    application its own bound method as ``start_response``, the way waitress's task
    and wsgiref's handler do: if the session kept that ``start_response`` after the
    response, server, environ and session would form a cycle."""

    def __init__(self, cookie: str | None) -> None:
        self.environ = webob.Request.blank("/").environ
        if cookie is not None:
            self.environ["HTTP_COOKIE"] = cookie
        self.status = ""

    def start_response(self, status, headers, exc_info=None):
        self.status = status
        return lambda data: None

    def serve(self, app) -> bytes:
        body = app(self.environ, self.start_response)
        try:
            return b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()


@pytest.mark.parametrize("body", ["list", "generator"])
@pytest.mark.parametrize("touch", ["none", "read", "write"])
def test_a_server_holding_the_environ_is_freed_without_the_cyclic_collector(body, touch):
    refs: list = []
    mw = SessionMiddleware(recording_app(refs, touch=touch, body=body), secret_keys=[SECRET])
    cookie = None
    if touch == "read":
        writer = SessionMiddleware(
            recording_app([], touch="write", body="list"), secret_keys=[SECRET]
        )
        cookie = cookie_from(call_wsgi(writer))
    gc.collect()
    with no_cyclic_gc():
        server = EnvironHoldingServer(cookie)
        assert server.serve(mw) == b"ok"
        assert server.status == "200 OK"
        server_ref = weakref.ref(server)
        del server
        assert server_ref() is None
        assert refs[0]() is None


@pytest.mark.parametrize(
    "option",
    [
        {"on_event": lambda event: None},
        {"valid": lambda environ, session: True},
        {"genid": lambda environ: "fixed-id-for-this-test"},
        {"before_save": lambda environ, session: None},
        {"domain": lambda environ: None},
    ],
    ids=["on_event", "valid", "genid", "before_save", "domain"],
)
def test_with_an_environ_hook_the_session_keeps_the_environ(option):
    refs: list = []
    mw = SessionMiddleware(
        recording_app(refs, touch="write", body="list"), secret_keys=[SECRET], **option
    )
    with no_cyclic_gc():
        call_wsgi(mw)
        session = refs[0]()
        assert session is not None  # still in its cycle with the environ
        assert session._environ["session"] is session
        del session
    gc.collect()
    assert refs[0]() is None


def outer_reader(mw: SessionMiddleware, seen: list):
    """An outer middleware that reads the session after the inner response is over."""

    def outer(environ, start_response):
        body = mw(environ, start_response)
        seen.append(environ["session"].get("user"))
        return body

    return outer


def issue(mw: SessionMiddleware) -> str:
    def writer(environ, start_response):
        environ["session"]["user"] = "alice"
        start_response("200 OK", [])
        return [b""]

    return cookie_from(call_wsgi(SessionMiddleware(writer, secret_keys=[SECRET], store=mw.store)))


@pytest.mark.parametrize("store", [None, "memory"])
@pytest.mark.parametrize("inner_touch", ["none", "read"])
def test_an_outer_middleware_still_reads_the_session_after_the_response(store, inner_touch):
    refs: list = []
    mw = SessionMiddleware(
        recording_app(refs, touch=inner_touch, body="list"),
        secret_keys=[SECRET],
        store=MemoryStore() if store else None,
    )
    cookie = issue(mw)
    seen: list = []
    result = call_wsgi(outer_reader(mw, seen), cookie=cookie)
    assert seen == ["alice"]
    # Reading after the response sends nothing more: the headers went out already.
    assert [k for k, _ in result.headers if k == "Set-Cookie"] == []


def test_a_late_load_hands_hooks_the_whole_environ():
    addresses: list = []

    def valid(environ, session):
        addresses.append(environ.get("REMOTE_ADDR"))
        return environ.get("REMOTE_ADDR") == "10.0.0.1"

    refs: list = []
    mw = SessionMiddleware(
        recording_app(refs, touch="none", body="list"), secret_keys=[SECRET], valid=valid
    )
    cookie = issue(mw)
    seen: list = []
    call_wsgi(outer_reader(mw, seen), cookie=cookie, REMOTE_ADDR="10.0.0.1")
    assert addresses == ["10.0.0.1"]
    assert seen == ["alice"]


@pytest.mark.parametrize("touch", ["none", "read"])
def test_inline_detach_and_release_leave_the_same_state(touch):
    """SessionMiddleware.__call__ detaches a finished list body inline (a call would
    cost the untouched request); Session._release does it for every other body. Both
    must leave a session holding the same thing."""
    held = {}
    for body in ("list", "generator"):
        sessions: list = []

        def app(environ, start_response, body=body, sessions=sessions):
            sessions.append(environ["session"])
            if touch == "read":
                environ["session"].get("n")
            start_response("200 OK", [])
            if body == "list":
                return [b"ok"]
            return (chunk for chunk in [b"ok"])

        mw = SessionMiddleware(app, secret_keys=[SECRET])
        call_wsgi(mw, cookie="session=junk; other=1")
        (session,) = sessions
        held[body] = (dict(session._environ), session._server_start_response)
    assert held["list"] == held["generator"]
    expected = {} if touch == "read" else {"HTTP_COOKIE": "session=junk; other=1"}
    assert held["list"] == (expected, None)
