"""The store contract, and the middleware's store mode end to end over every store.

``StoreContract`` holds two halves:

* what any session store must do (get/set/delete, TTLs, create only-if-absent, update
  only-if-present, touch only-if-present, exact bytes, keys used as given), and
* the middleware in store mode (DESIGN §2, §5, §8 "Stores" and "External key"),
  including koa-session's store scenarios S1-S37 (research/koa-session.md §6.3),
  W1-W4 (§6.6) and E1-E2 (§6.5), plus the security items of store mode.

It is subclassed for ``MemoryStore`` (sharing the middleware's injected clock), for
``RedisStore(url=...)`` on a real redis-server, and for a minimal store that has only
``get``/``set``/``delete`` (the fallback path without create/update/touch). Every
middleware test wraps the real store in :class:`Recorder`, which records each call.

Mapping notes: koa's ``signed``/``.sig`` cookies and "2 Set-Cookie" counts become
exactly one ``Set-Cookie``; koa's real waits become advances of the injected clock.
"""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import json
import os
import re
import time
from typing import Any, NamedTuple

import pytest

from tests.conftest import (
    OTHER_SECRET,
    SECRET,
    T0,
    TOKEN_RE,
    Harness,
    call_wsgi,
    cookie_value,
    set_cookies,
)
from wsgisession import (
    ConfigurationError,
    HeaderKey,
    MemoryStore,
    SessionMiddleware,
    StoreError,
)

DELETION = (
    "session=; Max-Age=0; Path=/; expires=Thu, 01-Jan-1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
)
KEY_RE = re.compile(r"session:[0-9a-f]{64}")
DAY = 24 * 3600


def store_key(session_id: str, prefix: str = "session:") -> str:
    """Where the middleware keeps a session's record."""
    return prefix + hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def cookie_value_of(cookie_header: str) -> str:
    """The value of a ``name=value`` Cookie header made by :func:`jar`."""
    return cookie_header.partition("=")[2]


def jar(response, name: str = "session") -> str:
    """The ``Cookie`` request header that sends back the cookie a response set."""
    value = cookie_value(response, name)
    assert value, set_cookies(response)
    return f"{name}={value}"


def unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def routes(**table):
    """A handler dispatching on PATH_INFO (``/set`` → ``table["set"]``, ``/`` → ``index``)."""

    def handler(environ, session):
        name = environ["PATH_INFO"].strip("/") or "index"
        return table[name](environ, session)

    return handler


def show(environ, session):
    """Handler: the current session contents (after any replacement), as a dict repr."""
    current = environ["session"]
    return repr(dict(current)) if current is not None else "None"


def replace_foo_bar(environ, session):
    environ["session"] = {"foo": "bar"}
    return show(environ, session)


def _uid(environ) -> str | None:
    for part in environ.get("HTTP_COOKIE", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "uid":
            return value
    return None


def no_jar(h: Harness) -> Harness:
    """Make the harness's client keep no cookies: every request here carries exactly the
    cookies it names."""
    h.client.cookiejar = http.cookiejar.CookieJar(
        http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
    )
    return h


class Call(NamedTuple):
    op: str
    key: str
    ttl: int | None = None


class Recorder:
    """A real store, with every call recorded as ``Call(op, key, ttl)``.

    Only the methods the wrapped store really has are offered, so a minimal store stays
    minimal (``getattr(recorder, "touch", None)`` is ``None`` for it).
    """

    OPS = ("get", "set", "delete", "create", "update", "touch", "move")
    OPS += ("index_put", "index_get", "index_revoke")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[Call] = []
        self.written: list[tuple[str, bytes]] = []

    def __getattr__(self, name: str) -> Any:
        if name not in Recorder.OPS:
            raise AttributeError(name)
        method = getattr(self.inner, name)

        def recorded(key, *args):
            with_ttl = ("set", "create", "update", "touch", "move", "index_put")
            ttl = args[-1] if name in with_ttl else None
            self.calls.append(Call(name, key, ttl))
            if name in ("set", "create", "update"):
                self.written.append((key, args[0]))
            if name == "move":  # move(old, new, value, ttl)
                self.written.append((args[0], args[1]))
            return method(key, *args)

        return recorded

    def ops(self) -> list[str]:
        return [call.op for call in self.calls]

    def clear(self) -> None:
        self.calls.clear()
        self.written.clear()


class MinimalStore:
    """Only the protocol's required methods, over a real MemoryStore."""

    def __init__(self, clock) -> None:
        self.inner = MemoryStore(clock=clock)

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        self.inner.set(key, value, ttl)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


class StoreContract:
    """Everything a store must do, and store mode over it. Subclasses provide ``store``
    and the inspection hooks below."""

    #: The optional conditional methods the store has; the middleware falls back to
    #: get/set/delete for the others.
    methods = frozenset({"create", "update", "touch", "move"})

    @pytest.fixture
    def store(self, clock):  # pragma: no cover - always overridden
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _bind(self, store, clock):
        self.store = store
        self.clock = clock

    # -- hooks (subclasses) -------------------------------------------------------

    def remaining(self, key: str) -> float | None:
        """Seconds the record ``key`` has left (``None``: no expiry); KeyError if absent."""
        raise NotImplementedError

    def set_remaining(self, key: str, seconds: int) -> None:
        """Shorten or lengthen a record's TTL behind the middleware's back."""
        raise NotImplementedError

    def raw_get(self, key: str) -> bytes | None:
        """The bytes really held under ``key`` (for Redis: read with a separate client)."""
        raise NotImplementedError

    def elapse(self, seconds: float) -> None:
        """Let ``seconds`` pass for the store's TTLs."""
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------

    def op(self, name: str) -> str:
        """The store method used for ``name``: its own if the store has it, else ``set``."""
        return name if name in self.methods else "set"

    def writes(self, name: str, key: str, ttl: int | None) -> list[Call]:
        """The calls the store gets for ``name``: one if it has the method, else the
        fallback's: updates and touches become a check that the record still exists,
        then ``set``."""
        if name in self.methods:
            return [Call(name, key, ttl)]
        if name in ("update", "touch"):
            return [Call("get", key), Call("set", key, ttl)]
        return [Call("set", key, ttl)]

    def assert_ttl(self, key: str, expected: int) -> None:
        left = self.remaining(key)
        assert left is not None and expected - 5 < left <= expected, (left, expected)

    def make(self, handler=None, **options) -> Harness:
        """A store-mode harness over the store under test, with ``h.rec`` recording."""
        rec = Recorder(self.store)
        h = no_jar(Harness(handler, clock=self.clock, store=rec, **options))
        h.rec = rec
        return h

    def populate(self, data: dict[str, Any], **options) -> tuple[str, str]:
        """Write ``data`` as a new session through a separate middleware with the same
        options; return (Cookie header, session id)."""

        def write(environ, session):
            session.update(data)
            return session.id

        writer = self.make(write, **options)
        response = writer.get("/", cookie="")
        return jar(response), response.text

    # ==============================================================================
    # The store contract
    # ==============================================================================

    def test_get_of_a_missing_key_is_none(self):
        """A key never written reads as None."""
        assert self.store.get("session:never-written") is None

    def test_set_then_get_returns_the_bytes(self):
        """set() then get() returns the same bytes, as ``bytes``."""
        self.store.set("k1", b"value-1", 60)
        value = self.store.get("k1")
        assert value == b"value-1"
        assert type(value) is bytes

    def test_set_overwrites(self):
        """A second set() replaces the value."""
        self.store.set("k1", b"first", 60)
        self.store.set("k1", b"second", 60)
        assert self.store.get("k1") == b"second"

    def test_delete_removes_only_that_key(self):
        """delete() removes the key and leaves the others alone."""
        self.store.set("a", b"1", 60)
        self.store.set("b", b"2", 60)
        self.store.delete("a")
        assert self.store.get("a") is None
        assert self.store.get("b") == b"2"

    def test_delete_of_a_missing_key_is_fine(self):
        """Deleting a key that does not exist (twice, even) neither raises nor creates it."""
        assert self.store.delete("session:absent") is None
        self.store.delete("session:absent")
        assert self.store.get("session:absent") is None

    def test_bytes_in_are_bytes_out_exactly(self):
        """Values are opaque: NUL, high bytes, every byte value, empty and large values
        come back byte for byte."""
        values = {
            "empty": b"",
            "nul": b"\x00",
            "nuls": b"\x00\x00abc\x00",
            "high": b"\xff\xfe\x80\x81",
            "all": bytes(range(256)) * 3,
            "utf8": "é✓\U0001f600".encode(),
            "crlf": b"a\r\nb\r\n\r\n",
            "large": os.urandom(256 * 1024),
        }
        for name, value in values.items():
            self.store.set(f"bytes:{name}", value, 60)
        for name, value in values.items():
            got = self.store.get(f"bytes:{name}")
            assert type(got) is bytes, name
            assert got == value, name
            assert self.raw_get(f"bytes:{name}") == value, name

    def test_keys_are_used_as_given(self):
        """Keys are stored exactly as passed: no prefixing, case folding or normalising."""
        keys = [
            "session:" + "ab" * 32,
            "Session:" + "ab" * 32,
            "plain",
            "PLAIN",
            "with space",
            "a:b:c",
            "ünïcode:✓",
            "x" * 1000,
        ]
        for index, key in enumerate(keys):
            self.store.set(key, f"v{index}".encode(), 60)
        for index, key in enumerate(keys):
            assert self.store.get(key) == f"v{index}".encode(), key
            assert self.raw_get(key) == f"v{index}".encode(), key
        assert self.store.get("session:" + "AB" * 32) is None
        assert self.store.get("plain ") is None

    def test_ttl_is_set_in_whole_seconds(self):
        """set(key, value, ttl) gives the record ``ttl`` seconds; None means no expiry."""
        self.store.set("short", b"s", 100)
        self.store.set("forever", b"f", None)
        self.assert_ttl("short", 100)
        assert self.remaining("forever") is None
        self.store.set("short", b"s", None)
        assert self.remaining("short") is None
        self.store.set("forever", b"f", 30)
        self.assert_ttl("forever", 30)

    def test_ttl_is_honoured(self):
        """A record with a 1 s TTL is gone once that second has passed; others stay.
        (The only real wait in this file, for Redis.)"""
        self.store.set("dies", b"d", 1)
        self.store.set("lives", b"l", 100)
        self.store.set("forever", b"f", None)
        assert self.store.get("dies") == b"d"
        left = self.remaining("dies")
        assert left is not None and 0 < left <= 1
        self.elapse(1.1)
        assert self.store.get("dies") is None
        assert self.store.get("lives") == b"l"
        assert self.store.get("forever") == b"f"

    def test_create_only_if_absent(self):
        """create() writes a new key (True) but never overwrites a live one (False)."""
        assert self.store.create("c", b"first", 100) is True
        assert self.store.get("c") == b"first"
        self.assert_ttl("c", 100)
        assert self.store.create("c", b"second", 5) is False
        assert self.store.get("c") == b"first"
        self.assert_ttl("c", 100)  # the losing create did not move the TTL either
        self.store.delete("c")
        assert self.store.create("c", b"third", None) is True
        assert self.store.get("c") == b"third"
        assert self.remaining("c") is None

    def test_update_only_if_present(self):
        """update() rewrites an existing key with its new TTL (True) and never creates
        one (False)."""
        assert self.store.update("u", b"ghost", 100) is False
        assert self.store.get("u") is None
        with pytest.raises(KeyError):
            self.remaining("u")
        self.store.set("u", b"old", 10)
        assert self.store.update("u", b"new", 500) is True
        assert self.store.get("u") == b"new"
        self.assert_ttl("u", 500)
        self.store.delete("u")
        assert self.store.update("u", b"resurrected", 100) is False
        assert self.store.get("u") is None

    def test_touch_only_if_present_and_moves_the_ttl(self):
        """touch() moves the TTL of an existing key without changing its value (True)
        and never creates a key (False); ttl=None removes the expiry."""
        assert self.store.touch("t", 100) is False
        assert self.store.touch("t", None) is False
        assert self.store.get("t") is None
        self.store.set("t", b"\x00kept\xff", 10)
        assert self.store.touch("t", 1000) is True
        self.assert_ttl("t", 1000)
        assert self.store.get("t") == b"\x00kept\xff"
        assert self.store.touch("t", 5) is True
        self.assert_ttl("t", 5)
        assert self.store.touch("t", None) is True
        assert self.remaining("t") is None
        assert self.store.touch("t", None) is True  # already persistent: still present
        assert self.store.get("t") == b"\x00kept\xff"
        self.store.delete("t")
        assert self.store.touch("t", 100) is False
        assert self.store.get("t") is None

    # -- the optional index methods (per-user session lists) --------------------------

    def test_index_put_and_get_round_trip_entries_exactly(self):
        index = "session:user:alice"
        self.store.set("session:r1", b"one", 100)
        self.store.set("session:r2", b"two", 100)
        self.store.index_put(index, "session:r1", b"\x00entry-1\xff", 100)
        self.store.index_put(index, "session:r2", b"entry-2", 100)
        assert self.store.index_get(index) == {
            "session:r1": b"\x00entry-1\xff",
            "session:r2": b"entry-2",
        }
        self.store.index_put(index, "session:r1", b"replaced", 100)
        assert self.store.index_get(index)["session:r1"] == b"replaced"
        assert self.store.index_get("session:user:nobody") == {}
        assert self.store.index_get("session:user:bob") == {}

    def test_index_members_expire_on_their_own(self):
        index = "session:user:carol"
        self.store.index_put(index, "session:short", b"s", 1)
        self.store.index_put(index, "session:long", b"l", 100)
        self.elapse(2.1)
        assert self.store.index_get(index) == {"session:long": b"l"}

    def test_index_revoke_deletes_records_and_members_together(self):
        index = "session:user:dave"
        other = "session:user:erin"
        for key in ("session:d1", "session:d2", "session:d3", "session:e1"):
            self.store.set(key, b"v", 100)
        for key in ("session:d1", "session:d2", "session:d3"):
            self.store.index_put(index, key, b"e", 100)
        self.store.index_put(other, "session:e1", b"e", 100)
        self.store.index_revoke(index, ["session:d1", "session:d2", "session:gone"])
        assert self.store.get("session:d1") is None and self.store.get("session:d2") is None
        assert self.store.get("session:d3") == b"v"
        assert self.store.index_get(index) == {"session:d3": b"e"}
        assert self.store.index_get(other) == {"session:e1": b"e"}  # untouched
        self.store.index_revoke(index, ["session:d3"])
        assert self.store.index_get(index) == {} and self.store.get("session:d3") is None
        self.store.index_revoke(index, [])  # nothing: fine
        self.store.index_revoke("session:user:nobody", ["session:x"])

    # ==============================================================================
    # koa-session store scenarios S1-S37 (research/koa-session.md §6.3)
    # ==============================================================================

    def test_s01_round_trip_on_204(self):
        """S1: POST sets string=';' with a 204, a GET with the cookie reads ';' back."""

        def app(environ, start_response):
            session = environ["session"]
            if environ["REQUEST_METHOD"] == "POST":
                session["string"] = ";"
                start_response("204 No Content", [])
                return []
            body = session["string"].encode()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [body]

        h = self.make(app=app)
        posted = h.client.post("/", status=204)
        assert len(set_cookies(posted)) == 1
        assert TOKEN_RE.match(cookie_value(posted))
        assert h.rec.ops() == [self.op("create")]
        h.rec.clear()
        got = h.get("/", cookie=jar(posted))
        assert got.text == ";"
        assert set_cookies(got) == []
        assert h.rec.ops() == ["get"]

    def test_s02_store_cookie_is_invalid_in_cookie_mode(self):
        """S2 (store removed from the options): a store-mode cookie presented to a
        cookie-mode middleware is `invalid` (purpose binding "sid" vs "data")."""
        cookie, _ = self.populate({"string": ";"})
        cookie_mode = no_jar(
            Harness(
                lambda environ, session: "new session" if session.is_new else "old session",
                clock=self.clock,
            )
        )
        response = cookie_mode.get("/", cookie=cookie)
        assert response.text == "new session"
        assert set_cookies(response) == []
        assert [(e.name, e.reason) for e in cookie_mode.events] == [("invalid", "tampered")]

    def test_s03_untouched_session_sends_nothing(self):
        """S3: session not accessed → no Set-Cookie, no store call."""
        h = self.make(lambda environ, session: "ok")
        response = h.get("/")
        assert response.text == "ok"
        assert set_cookies(response) == []
        assert "Vary" not in response.headers
        assert h.rec.calls == []

    def test_s04_accessed_only_sends_nothing(self):
        """S4: session only accessed (no cookie) → no Set-Cookie, no store call."""
        h = self.make(lambda environ, session: str(len(session)))
        response = h.get("/")
        assert response.text == "0"
        assert set_cookies(response) == []
        assert h.rec.calls == []
        assert h.events == []

    def test_s05_populated_session_is_saved(self):
        """S5: message='hello' → exactly one Set-Cookie; the record is created in the store."""
        h = self.make(
            lambda environ, session: (session.__setitem__("message", "hello"), session.id)[1]
        )
        response = h.get("/")
        (header,) = set_cookies(response)
        assert header.startswith("session=")
        assert "Max-Age=86400" in header
        assert h.rec.calls == [Call(self.op("create"), store_key(response.text), DAY)]
        assert self.raw_get(store_key(response.text)) is not None
        assert h.events.names() == ["created"]
        assert response.headers["Vary"] == "Cookie"
        assert response.headers["Cache-Control"] == "private"

    def test_s06_empty_session_is_not_saved(self):
        """S6: returning the empty session → no Set-Cookie, no store call."""
        h = self.make(show)
        response = h.get("/")
        assert response.text == "{}"
        assert set_cookies(response) == []
        assert h.rec.calls == []

    def test_s07_saved_session_untouched_sends_nothing(self):
        """S7: with a saved session's cookie, not accessed → no Set-Cookie, no store call."""
        cookie, _ = self.populate({"message": "hello"})
        h = self.make(lambda environ, session: "ok")
        response = h.get("/", cookie=cookie)
        assert set_cookies(response) == []
        assert h.rec.calls == []

    def test_s08_saved_session_is_read_back(self):
        """S8: with the saved session's cookie → message == 'hello' (one store get)."""
        cookie, sid = self.populate({"message": "hello"})
        h = self.make(lambda environ, session: session["message"])
        response = h.get("/", cookie=cookie)
        assert response.text == "hello"
        assert h.rec.calls == [Call("get", store_key(sid))]

    def test_s09_read_only_sends_nothing(self):
        """S9: saved session read but not changed → no Set-Cookie, only a store get."""
        cookie, _ = self.populate({"message": "hello"})
        h = self.make(lambda environ, session: session.get("message"))
        response = h.get("/", cookie=cookie)
        assert response.text == "hello"
        assert set_cookies(response) == []
        assert h.rec.ops() == ["get"]

    def test_s10_changed_session_is_updated(self):
        """S10: saved session, money='$$$' → one Set-Cookie; the same record is updated."""
        cookie, sid = self.populate({"message": "hello"})
        h = self.make(lambda environ, session: session.__setitem__("money", "$$$"))
        response = h.get("/", cookie=cookie)
        assert len(set_cookies(response)) == 1
        key = store_key(sid)
        assert h.rec.calls == [Call("get", key), *self.writes("update", key, DAY)]
        reader = self.make(show)
        assert reader.get("/", cookie=jar(response)).text == "{'message': 'hello', 'money': '$$$'}"

    def test_s11_session_none_sends_a_deletion_cookie(self):
        """S11: environ["session"] = None without a cookie → exactly one deletion
        Set-Cookie, 200; no store call (koa destroys a freshly generated key instead)."""
        h = self.make(lambda environ, session: environ.__setitem__("session", None))
        response = h.get("/")
        assert response.status_int == 200
        assert set_cookies(response) == [DELETION]
        assert h.rec.calls == []
        assert h.events.names() == ["destroyed"]

    def test_s12_empty_replacement_sends_nothing(self):
        """S12: environ["session"] = {} → no Set-Cookie, no store call."""
        h = self.make(lambda environ, session: environ.__setitem__("session", {}))
        response = h.get("/")
        assert set_cookies(response) == []
        assert h.rec.calls == []

    def test_s13_replacement_is_saved(self):
        """S13: environ["session"] = {'message': 'hello'} → one Set-Cookie, record created."""
        h = self.make(lambda environ, session: environ.__setitem__("session", {"message": "hello"}))
        response = h.get("/")
        assert len(set_cookies(response)) == 1
        assert h.rec.ops() == [self.op("create")]
        reader = self.make(show)
        assert reader.get("/", cookie=jar(response)).text == "{'message': 'hello'}"

    def test_s14_non_dict_assignment_is_an_error(self):
        """S14: environ["session"] = 'asdf' → TypeError out of the app (the server's
        500); nothing is written."""
        h = self.make(lambda environ, session: environ.__setitem__("session", "asdf"))
        with pytest.raises(TypeError, match="None or a dict"):
            call_wsgi(h.mw, "/")
        assert h.rec.calls == []

    def test_s15_inspect_returns_the_data(self):
        """S15: foo='bar', the session as a dict → {'foo': 'bar'} and a non-empty cookie."""
        h = self.make(
            lambda environ, session: (session.__setitem__("foo", "bar"), show(environ, session))[1]
        )
        response = h.get("/")
        assert response.text == "{'foo': 'bar'}"
        (header,) = set_cookies(response)
        assert re.match(r"session=[A-Za-z0-9_-]+;", header)

    def test_s16_length(self):
        """S16: foo='bar', len(session) → '1'."""
        h = self.make(
            lambda environ, session: (session.__setitem__("foo", "bar"), str(len(session)))[1]
        )
        response = h.get("/")
        assert response.text == "1"
        assert len(set_cookies(response)) == 1

    def test_s17_populated(self):
        """S17: foo='bar', bool(session) → 'True' (koa's `populated`)."""
        h = self.make(
            lambda environ, session: (session.__setitem__("foo", "bar"), str(bool(session)))[1]
        )
        response = h.get("/")
        assert response.text == "True"
        assert len(set_cookies(response)) == 1

    def test_s18_save_forces_an_empty_session_out(self):
        """S18: save() on an empty new session → a cookie and a record holding {}; the
        next request finds a (not new) empty session."""
        h = self.make(lambda environ, session: (session.save(), "hello")[1])
        response = h.get("/")
        assert response.text == "hello"
        (header,) = set_cookies(response)
        assert re.match(r"session=[A-Za-z0-9_-]+;", header)
        assert h.rec.ops() == [self.op("create")]
        reader = self.make(lambda environ, session: f"{session.is_new} {dict(session)}")
        assert reader.get("/", cookie=jar(response)).text == "False {}"

    def test_s19_error_caught_by_an_inner_layer_still_saves(self):
        """S19: the app sets name='funny' and raises; a layer inside the middleware turns
        it into a 401 → the 401 carries the Set-Cookie and the record exists."""

        class Unauthorized(Exception):
            pass

        def app(environ, start_response):
            environ["session"]["name"] = "funny"
            raise Unauthorized

        def catcher(environ, start_response):
            try:
                return app(environ, start_response)
            except Unauthorized:
                start_response("401 Unauthorized", [("Content-Type", "text/plain")])
                return [b"Unauthorized"]

        h = self.make(app=catcher)
        response = h.client.get("/", status=401)
        assert len(set_cookies(response)) == 1
        assert h.rec.ops() == [self.op("create")]
        reader = self.make(show)
        assert reader.get("/", cookie=jar(response)).text == "{'name': 'funny'}"

    def test_s20_browser_session_cookie(self):
        """S20: max_age=None → the cookie has no Max-Age/Expires, the record lives 24 h,
        and the data reads back."""

        def app(environ, start_response):
            session = environ["session"]
            if environ["REQUEST_METHOD"] == "POST":
                session["message"] = "hi"
                body = b""
            else:
                body = session["message"].encode()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [body]

        h = self.make(app=app, max_age=None)
        posted = h.client.post("/")
        (header,) = set_cookies(posted)
        assert "expires" not in header.lower()
        assert "max-age" not in header.lower()
        ((op, key, ttl),) = h.rec.calls
        assert (op, ttl) == (self.op("create"), DAY)
        self.assert_ttl(key, DAY)
        assert h.get("/", cookie=jar(posted)).text == "hi"

    def test_s21_short_max_age_reads_back_at_once(self):
        """S21: max_age=100, POST then an immediate GET → 'hi'."""
        h = self.make(
            routes(
                set=lambda environ, session: session.__setitem__("message", "hi"),
                index=lambda environ, session: session.get("message", ""),
            ),
            max_age=100,
        )
        first = h.get("/set")
        assert "Max-Age=100" in set_cookies(first)[0]
        assert h.rec.calls[0].ttl == 100
        assert h.get("/", cookie=jar(first)).text == "hi"

    def test_s22_expired_session_is_fresh(self):
        """S22: max_age=100, POST, 200 s later (clock) → empty fresh session and an
        `expired` event carrying the session's id hash (koa: key/value/ctx); the store is
        not even asked."""
        h = self.make(
            routes(
                set=lambda environ, session: session.__setitem__("message", "hi"),
                index=lambda environ, session: session.get("message", ""),
            ),
            max_age=100,
        )
        first = h.get("/set")
        (created,) = h.events
        h.rec.clear()
        self.clock.advance(200)
        response = h.get("/", cookie=jar(first))
        assert response.text == ""
        assert set_cookies(response) == []
        expired = h.events[1]
        assert (expired.name, expired.reason) == ("expired", "idle")
        assert re.fullmatch(r"[0-9a-f]{16}", expired.session_id_hash)
        assert expired.session_id_hash == created.session_id_hash
        assert expired.environ["PATH_INFO"] == "/"
        assert h.rec.calls == []

    def test_s23_max_age_property(self):
        """S23: max_age=100 → session.max_age == 100."""
        h = self.make(lambda environ, session: str(session.max_age), max_age=100)
        assert h.get("/").text == "100"

    def test_s24_per_session_max_age_with_data(self):
        """S24: foo='bar' and session.max_age=100 → Max-Age=100 with Expires; record TTL 100."""

        def handler(environ, session):
            session["foo"] = "bar"
            session.max_age = 100

        h = self.make(handler)
        (header,) = set_cookies(h.get("/"))
        assert "Max-Age=100" in header
        assert "expires=" in header
        ((op, key, ttl),) = h.rec.calls
        assert op == self.op("create")
        assert ttl == 100
        self.assert_ttl(key, 100)

    def test_s25_per_session_max_age_alone_forces_a_save(self):
        """S25: only session.max_age=100 on an empty session → a forced save with
        Max-Age=100 and Expires."""
        h = self.make(lambda environ, session: setattr(session, "max_age", 100))
        (header,) = set_cookies(h.get("/"))
        assert "Max-Age=100" in header
        assert "expires=" in header
        assert h.rec.calls[0].ttl == 100

    def test_s26_replacement_with_a_max_age_key(self):
        """S26: environ["session"] = {'maxAge': 100} → saved with Expires; DESIGN differs:
        a replacement only replaces data, so 'maxAge' is a data key and the default
        max_age (86400) applies."""
        h = self.make(
            routes(
                set=lambda environ, session: environ.__setitem__("session", {"maxAge": 100}),
                index=lambda environ, session: f"{dict(session)} {session.max_age}",
            )
        )
        response = h.get("/set")
        (header,) = set_cookies(response)
        assert "Max-Age=86400" in header
        assert "expires=" in header
        assert h.rec.calls[0].ttl == DAY
        assert h.get("/", cookie=jar(response)).text == "{'maxAge': 100} 86400"

    def test_s27_regenerate_issues_a_new_cookie_and_record(self):
        """S27: regenerate() → a different Set-Cookie with a new id; the record moves to
        the new key and the old one is deleted; the old cookie then gives `missed`."""

        def handler(environ, session):
            if environ["PATH_INFO"] == "/set":
                environ["session"] = {"message": "hi"}
                return None
            if environ["PATH_INFO"] == "/read":
                return f"{session.is_new} {dict(session)}"
            old = session.id
            session.regenerate()
            assert session["message"] == "hi"
            return f"{old}|{session.id}"

        h = self.make(handler)
        first = h.get("/set")
        (first_header,) = set_cookies(first)
        h.rec.clear()
        second = h.get("/", cookie=jar(first))
        (second_header,) = set_cookies(second)
        assert second_header.startswith("session=")
        assert second_header != first_header
        old_id, new_id = second.text.split("|")
        assert old_id != new_id
        old_key, new_key = store_key(old_id), store_key(new_id)
        if "move" in self.methods:
            # One atomic step: the new record replaces the old one only while it exists.
            assert h.rec.calls == [Call("get", old_key), Call("move", old_key, DAY)]
        else:
            # Check, write, check again (a logout meanwhile undoes the write), delete.
            assert h.rec.calls == [
                Call("get", old_key),
                Call("get", old_key),
                Call(self.op("create"), new_key, DAY),
                Call("get", old_key),
                Call("delete", old_key),
            ]
        assert self.raw_get(old_key) is None
        assert self.raw_get(new_key) is not None
        assert "regenerated" in h.events.names()
        assert h.get("/read", cookie=jar(second)).text == "False {'message': 'hi'}"
        h.events.clear()
        stale = h.get("/read", cookie=jar(first))
        assert stale.text == "True {}"
        assert set_cookies(stale) == []
        assert [(e.name, e.reason) for e in h.events] == [("missed", "no_record")]

    def test_s28_unknown_key_is_a_new_session(self):
        """S28: `Cookie: session=invalid-key` → is_new; DESIGN differs: a value that is
        not our sealed token is `invalid` and never reaches the store. A genuine token
        whose record is absent → `missed` (koa's event) after one store get."""
        h = self.make(lambda environ, session: str(session.is_new))
        response = h.get("/", cookie="session=invalid-key")
        assert response.text == "True"
        assert set_cookies(response) == []
        assert h.events.names() == ["invalid"]
        assert h.rec.calls == []

        cookie, sid = self.populate({"a": 1})
        self.store.delete(store_key(sid))
        h.events.clear()
        response = h.get("/", cookie=cookie)
        assert response.text == "True"
        assert set_cookies(response) == []
        (missed,) = h.events
        assert (missed.name, missed.reason) == ("missed", "no_record")
        assert missed.environ["HTTP_COOKIE"] == cookie
        assert h.rec.calls == [Call("get", store_key(sid))]

    def test_s29_valid_and_before_save_uid_flow(self):
        """S29: valid() compares a `uid` cookie with the session's, before_save() stores
        it; same uid → same session, other uid → `invalid` (reason valid) and a new
        session under a new record key."""

        def handler(environ, session):
            if "foo" not in session:
                session["foo"] = f"{int(self.clock())}|uid:{_uid(environ)}"
            return json.dumps({"foo": session["foo"], "uid": _uid(environ)})

        h = self.make(
            handler,
            valid=lambda environ, session: session.get("uid") == _uid(environ),
            before_save=lambda environ, session: session.__setitem__("uid", _uid(environ)),
        )
        first = h.get("/", cookie="uid=123")
        value = cookie_value(first)
        (first_write,) = h.rec.calls[-1:]
        self.clock.advance(10)
        second = h.get("/", cookie=f"session={value}; uid=123")
        assert json.loads(second.text) == json.loads(first.text)
        assert set_cookies(second) == []
        self.clock.advance(10)
        h.rec.clear()
        third = h.get("/", cookie=f"session={value}; uid=456")
        body = json.loads(third.text)
        assert body == {"foo": f"{T0 + 20}|uid:456", "uid": "456"}
        assert body["foo"] != json.loads(first.text)["foo"]
        assert [(e.name, e.reason) for e in h.events] == [
            ("created", "new"),
            ("invalid", "valid"),
            ("created", "new"),
        ]
        get, write = h.rec.calls
        assert get == Call("get", first_write.key)
        assert write.op == self.op("create")
        assert write.key != first_write.key
        assert len(set_cookies(third)) == 1  # the new session is saved and sent
        fourth = h.get("/", cookie=f"{jar(third)}; uid=456")
        assert json.loads(fourth.text) == body

    def test_s30_replacement_with_foo_bar(self):
        """S30 (context property overridden): N/A in WSGI; instead environ["session"] =
        {'foo': 'bar'} replaces the contents, is saved and reads back."""
        h = self.make(routes(set=replace_foo_bar, index=show))
        response = h.get("/set")
        assert response.status_int == 200
        assert response.text == "{'foo': 'bar'}"
        assert h.rec.ops() == [self.op("create")]
        assert h.get("/", cookie=jar(response)).text == "{'foo': 'bar'}"

    def test_s31_rolling_never_writes_an_empty_new_session(self):
        """S31: rolling=True, no cookie, session read → {} and no Set-Cookie, no store call."""
        h = self.make(show, rolling=True)
        response = h.get("/")
        assert response.text == "{}"
        assert set_cookies(response) == []
        assert h.rec.calls == []

    def test_s32_rolling_reissues_one_cookie_with_touch(self):
        """S32: rolling=True: /set → one Set-Cookie; a later read → one Set-Cookie and
        the record's TTL refreshed with touch, never rewritten with update. An untouched
        request sends nothing (DESIGN: lazy; koa re-saves even then)."""
        h = self.make(
            routes(set=replace_foo_bar, index=show, idle=lambda e, s: "idle"), rolling=True
        )
        first = h.get("/set")
        assert first.text == "{'foo': 'bar'}"
        assert len(set_cookies(first)) == 1
        key = h.rec.calls[0].key
        self.clock.advance(30)
        self.set_remaining(key, 50)
        h.rec.clear()
        second = h.get("/", cookie=jar(first))
        assert second.text == "{'foo': 'bar'}"
        (header,) = set_cookies(second)
        assert "Max-Age=86400" in header
        assert h.rec.calls == [Call("get", key), *self.writes("touch", key, DAY)]
        self.assert_ttl(key, DAY)
        h.rec.clear()
        idle = h.get("/idle", cookie=jar(second))
        assert set_cookies(idle) == []
        assert h.rec.calls == []

    def test_s33_prefix(self):
        """S33: prefix='sess:' → the record key is 'sess:' + 64 hex; the cookie carries a
        sealed token (the prefix does not appear in it, unlike koa); reads back ';'."""
        h = self.make(
            routes(
                set=lambda environ, session: session.__setitem__("string", ";"),
                index=lambda environ, session: session["string"],
            ),
            prefix="sess:",
        )
        first = h.get("/set")
        ((op, key, _),) = h.rec.calls
        assert op == self.op("create")
        assert re.fullmatch(r"sess:[0-9a-f]{64}", key)
        assert "sess:" not in set_cookies(first)[0]
        assert self.raw_get(key) is not None
        assert h.get("/", cookie=jar(first)).text == ";"

    def test_s34_renew_without_a_cookie_sends_nothing(self):
        """S34: renew=True, max_age=2000, no cookie, session read → {} and no Set-Cookie."""
        h = self.make(show, renew=True, max_age=2000)
        response = h.get("/")
        assert response.text == "{}"
        assert set_cookies(response) == []
        assert h.rec.calls == []

    def test_s35_renew_past_half_life_touches(self):
        """S35: renew=True, max_age=2000: /set; 1200 s later (800 left < 1000) a read →
        one Set-Cookie and the record refreshed to 2000 s with touch."""
        h = self.make(routes(set=replace_foo_bar, index=show), renew=True, max_age=2000)
        first = h.get("/set")
        assert len(set_cookies(first)) == 1
        key = h.rec.calls[0].key
        self.clock.advance(1200)
        self.set_remaining(key, 800)
        h.rec.clear()
        second = h.get("/", cookie=jar(first))
        assert second.text == "{'foo': 'bar'}"
        (header,) = set_cookies(second)
        assert "Max-Age=2000" in header
        assert h.rec.calls == [Call("get", key), *self.writes("touch", key, 2000)]
        self.assert_ttl(key, 2000)

    def test_s36_renew_before_half_life_sends_nothing(self):
        """S36: renew=True, max_age=2000: /set; 500 s later a read → no Set-Cookie, only
        the store get."""
        h = self.make(routes(set=replace_foo_bar, index=show), renew=True, max_age=2000)
        first = h.get("/set")
        self.clock.advance(500)
        h.rec.clear()
        second = h.get("/", cookie=jar(first))
        assert second.text == "{'foo': 'bar'}"
        assert set_cookies(second) == []
        assert h.rec.ops() == ["get"]

    def test_s37_inner_layer_write_is_kept(self):
        """S37: a WSGI layer between the middleware and the app writes foo='123'; DESIGN
        differs from koa (which discards pre-middleware writes): the write is kept. /set
        replaces it with {'foo': 'bar'}, which survives 1200 s."""

        def app(environ, start_response):
            if environ["PATH_INFO"] == "/set":
                environ["session"] = {"foo": "bar"}
            body = repr(dict(environ["session"])).encode()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [body]

        def layer(environ, start_response):
            session = environ["session"]
            assert session is not None
            session.setdefault("foo", "123")
            return app(environ, start_response)

        h = self.make(app=layer)
        plain = h.get("/")
        assert plain.text == "{'foo': '123'}"
        assert len(set_cookies(plain)) == 1
        assert h.get("/", cookie=jar(plain)).text == "{'foo': '123'}"
        replaced = h.get("/set")
        assert replaced.text == "{'foo': 'bar'}"
        self.clock.advance(1.2 * 1000)
        again = h.get("/", cookie=jar(replaced))
        assert again.text == "{'foo': 'bar'}"
        assert set_cookies(again) == []

    # ==============================================================================
    # koa store_with_ctx W1-W4 (§6.6): which store calls a request makes
    # ==============================================================================

    def test_w1_no_cookie_untouched_makes_no_store_call(self):
        """W1: no cookie and the session untouched → zero store calls."""
        h = self.make(lambda environ, session: "undefined")
        response = h.get("/")
        assert response.text == "undefined"
        assert h.rec.calls == []

    def test_w2_set_writes_once(self):
        """W2: environ["session"] = {'foo': 'bar'} → exactly one write (create), 200."""
        h = self.make(replace_foo_bar)
        response = h.get("/")
        assert response.status_int == 200
        ((op, key, ttl),) = h.rec.calls
        assert (op, ttl) == (self.op("create"), DAY)
        assert KEY_RE.fullmatch(key)

    def test_w3_cookie_untouched_makes_no_store_call(self):
        """W3: with a cookie, nothing touches the session → zero store calls (DESIGN:
        lazy loading; koa calls store.get eagerly)."""
        cookie, _ = self.populate({"foo": "bar"})
        h = self.make(lambda environ, session: "untouched")
        response = h.get("/", cookie=cookie)
        assert response.text == "untouched"
        assert set_cookies(response) == []
        assert h.rec.calls == []

    def test_w4_destroy_deletes_the_right_record(self):
        """W4: with a cookie, environ["session"] = None → delete of exactly that record
        (found from the token alone, no get) and the deletion cookie; touched first →
        get then delete of the same key."""
        cookie, sid = self.populate({"foo": "bar"})
        key = store_key(sid)
        h = self.make(
            routes(
                destroy=lambda environ, session: environ.__setitem__("session", None),
                readdestroy=lambda environ, session: (
                    session["foo"],
                    environ.__setitem__("session", None),
                )[0],
            )
        )
        response = h.get("/destroy", cookie=cookie)
        assert set_cookies(response) == [DELETION]
        assert h.rec.calls == [Call("delete", key)]
        assert self.raw_get(key) is None

        cookie, sid = self.populate({"foo": "bar"})
        key = store_key(sid)
        h.rec.clear()
        response = h.get("/readdestroy", cookie=cookie)
        assert response.text == "bar"
        assert set_cookies(response) == [DELETION]
        assert h.rec.calls == [Call("get", key), Call("delete", key)]
        assert self.raw_get(key) is None

    # ==============================================================================
    # koa externalkey E1-E2 (§6.5)
    # ==============================================================================

    def test_e1_external_key_is_validated(self):
        """E1: external_key without store, or an object without get/set (or a bad header
        name) → ConfigurationError naming external_key."""
        app = lambda environ, start_response: []  # noqa: E731
        with pytest.raises(ConfigurationError) as info:
            SessionMiddleware(app, secret_keys=[SECRET], external_key=HeaderKey("X-Token"))
        assert info.value.option == "external_key"
        assert "external_key" in str(info.value)

        class NoSet:
            name = "X-Token"

            def get(self, environ):
                return None

        for bad in ({}, object(), "X-Token", NoSet()):
            with pytest.raises(ConfigurationError) as info:
                SessionMiddleware(app, secret_keys=[SECRET], store=self.store, external_key=bad)
            assert info.value.option == "external_key", bad
            assert "external_key" in str(info.value)
        for name in ("", "X Token", "X-Token\r\n", "a;b"):
            with pytest.raises(ConfigurationError) as info:
                HeaderKey(name)
            assert info.value.option == "external_key"

    def test_e2_header_key_round_trip(self):
        """E2: HeaderKey('X-Token'): POST answers 204 with the token in X-Token (no
        Set-Cookie, `Vary: X-Token`); a GET with that header reads ';' and the same id;
        destroy answers an empty X-Token and deletes the record."""
        seen: dict[str, str] = {}

        def app(environ, start_response):
            session = environ["session"]
            if environ["REQUEST_METHOD"] == "POST":
                session["string"] = ";"
                seen["id"] = session.id
                start_response("204 No Content", [])
                return []
            if environ["PATH_INFO"] == "/destroy":
                environ["session"] = None
                body = b"bye"
            else:
                body = f"{session.get('string', '')}|{session.id == seen['id']}".encode()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [body]

        h = self.make(app=app, external_key=HeaderKey("X-Token"))
        posted = h.client.post("/", status=204)
        token = posted.headers["X-Token"]
        assert TOKEN_RE.match(token)
        assert set_cookies(posted) == []
        assert posted.headers["Vary"] == "X-Token"
        assert posted.headers["Cache-Control"] == "private"  # never in a shared cache
        key = store_key(seen["id"])
        assert h.rec.calls == [Call(self.op("create"), key, DAY)]

        h.rec.clear()
        got = h.client.get("/", headers={"X-Token": token})
        assert got.text == ";|True"
        assert "X-Token" not in got.headers  # unchanged: nothing re-sent
        assert got.headers["Vary"] == "X-Token"
        assert set_cookies(got) == []
        assert h.rec.calls == [Call("get", key)]

        h.rec.clear()
        gone = h.client.get("/destroy", headers={"X-Token": token})
        assert gone.headers.getall("X-Token") == [""]
        assert gone.headers["Cache-Control"] == "private"
        assert gone.headers["Vary"] == "X-Token"
        assert set_cookies(gone) == []
        assert h.rec.calls == [Call("delete", key)]
        assert self.raw_get(key) is None

        h.events.clear()
        stale = h.client.get("/", headers={"X-Token": token})
        assert stale.text == "|False"
        assert h.events.names() == ["missed"]

    def test_e2_header_token_and_cookie_token_are_not_interchangeable(self):
        """E2 (binding): the header token is refused as a cookie and the cookie token as
        a header, both `invalid` with zero store calls; a token under another header
        name is refused too; a header-mode middleware never falls back to the cookie."""
        reader = lambda environ, session: f"{session.is_new} {dict(session)}"  # noqa: E731
        writer = lambda environ, session: session.__setitem__("who", environ["PATH_INFO"])  # noqa: E731
        by_header = self.make(writer, external_key=HeaderKey("X-Token"))
        by_cookie = self.make(writer)
        token = by_header.get("/header").headers["X-Token"]
        cookie = jar(by_cookie.get("/cookie"))

        header_reader = self.make(reader, external_key=HeaderKey("X-Token"))
        cookie_reader = self.make(reader)
        other_reader = self.make(reader, external_key=HeaderKey("X-Other"))
        assert (
            header_reader.client.get("/", headers={"X-Token": token}).text
            == "False {'who': '/header'}"
        )
        assert cookie_reader.get("/", cookie=cookie).text == "False {'who': '/cookie'}"
        header_reader.rec.clear()
        header_reader.events.clear()
        cookie_reader.rec.clear()
        cookie_reader.events.clear()

        response = cookie_reader.get("/", cookie=f"session={token}")
        assert response.text == "True {}"
        assert cookie_reader.events.names() == ["invalid"]
        assert cookie_reader.rec.calls == []

        response = header_reader.client.get("/", headers={"X-Token": cookie.partition("=")[2]})
        assert response.text == "True {}"
        assert header_reader.events.names() == ["invalid"]
        assert header_reader.rec.calls == []

        response = other_reader.client.get("/", headers={"X-Other": token})
        assert response.text == "True {}"
        assert other_reader.events.names() == ["invalid"]
        assert other_reader.rec.calls == []

        header_reader.events.clear()
        response = header_reader.get("/", cookie=f"session={token}")
        assert response.text == "True {}"
        assert header_reader.events == []
        assert header_reader.rec.calls == []
        response = header_reader.client.get("/", headers={"X-Token": ""})
        assert response.text == "True {}"
        assert header_reader.events == []

    # ==============================================================================
    # Store-mode security and options
    # ==============================================================================

    def test_record_key_is_prefix_and_sha256_hex_and_holds_no_plaintext(self):
        """Item 83: the record key is 'session:' + sha256hex(id) (never the id itself);
        the stored bytes and the cookie contain no plaintext: no data value, data key or
        session id."""
        marker = "plaintext-marker-7f3a9c"

        def handler(environ, session):
            session["secret_field"] = marker
            session["nested"] = {"list": [marker, 1]}
            return session.id

        h = self.make(handler)
        response = h.get("/")
        sid = response.text
        assert len(sid) >= 43
        ((op, key, _),) = h.rec.calls
        assert op == self.op("create")
        assert KEY_RE.fullmatch(key)
        assert key == store_key(sid)
        assert sid not in key
        stored = self.raw_get(key)
        assert stored == h.rec.written[0][1]  # exactly the bytes the middleware gave
        for needle in (marker, "secret_field", "nested", sid):
            assert needle.encode() not in stored, needle
        token = cookie_value(response)
        raw_token = unb64(token)
        for needle in (marker, "secret_field", sid):
            assert needle not in token
            assert needle.encode() not in raw_token
        assert len(raw_token) < 200  # the cookie holds metadata only, not the data

    def test_record_copied_to_another_key_is_invalid(self):
        """A record is bound to its key: Alice's record copied under Bob's key is
        `invalid` for Bob (fresh session, Alice's data never shown); Alice is unaffected."""
        alice, alice_id = self.populate({"owner": "alice"})
        bob, bob_id = self.populate({"owner": "bob"})
        self.store.set(store_key(bob_id), self.store.get(store_key(alice_id)), 3600)
        h = self.make(show)
        response = h.get("/", cookie=bob)
        assert response.text == "{}"
        assert set_cookies(response) == []
        assert [(e.name, e.reason) for e in h.events] == [("invalid", "tampered")]
        assert h.rec.calls == [Call("get", store_key(bob_id))]
        assert h.get("/", cookie=alice).text == "{'owner': 'alice'}"

    def test_garbage_or_foreign_cookie_makes_zero_store_calls(self):
        """Item 37: garbage, tampered, cookie-mode, other-secret, other-namespace and
        other-cookie-name tokens are refused before any store call."""
        own = self.make(lambda environ, session: session.__setitem__("a", 1))
        good = cookie_value(own.get("/"))
        middle = len(good) // 2
        tampered = good[:middle] + ("A" if good[middle] != "A" else "B") + good[middle + 1 :]
        cookie_mode = Harness(
            lambda environ, session: session.__setitem__("a", 1), clock=self.clock
        )
        foreign = {
            "garbage": "invalid-key",
            "symbols": "!!!***",
            "too-long": "A" * 5000,
            "random": base64.urlsafe_b64encode(b"\x01" + os.urandom(63)).decode().rstrip("="),
            "tampered": tampered,
            "cookie-mode": cookie_value(cookie_mode.get("/")),
            "other-secret": cookie_value(
                self.make(lambda e, s: s.__setitem__("a", 1), secret_keys=[OTHER_SECRET]).get("/")
            ),
            "other-namespace": cookie_value(
                self.make(lambda e, s: s.__setitem__("a", 1), namespace="other").get("/")
            ),
            "other-name": cookie_value(
                self.make(lambda e, s: s.__setitem__("a", 1), cookie_name="other").get("/"),
                "other",
            ),
        }
        h = self.make(lambda environ, session: str(session.is_new))
        for label, value in foreign.items():
            h.events.clear()
            response = h.get("/", cookie=f"session={value}")
            assert response.text == "True", label
            assert set_cookies(response) == [], label
            assert h.events.names() in (["invalid"], ["unknown_key"]), label
            assert h.rec.calls == [], label
        assert h.get("/", cookie=f"session={good}").text == "False"
        assert h.rec.ops() == ["get"]

    def test_client_never_chooses_its_id(self):
        """A token whose record is gone (logout elsewhere, restart, eviction) → `missed`
        and a fresh session with a NEW id on write; the old key is never recreated."""
        cookie, old_id = self.populate({"user": "alice"})
        old_key = store_key(old_id)
        self.store.delete(old_key)
        h = self.make(lambda environ, session: (session.__setitem__("x", 1), session.id)[1])
        response = h.get("/", cookie=cookie)
        new_id = response.text
        assert new_id != old_id
        assert h.events.names() == ["missed", "created"]
        assert h.rec.calls == [
            Call("get", old_key),
            Call(self.op("create"), store_key(new_id), DAY),
        ]
        assert self.raw_get(old_key) is None
        assert cookie_value(response) != cookie.partition("=")[2]
        reader = self.make(lambda environ, session: f"{session.id == new_id} {dict(session)}")
        assert reader.get("/", cookie=jar(response)).text == "True {'x': 1}"

    def test_rolling_refreshes_with_touch_not_update(self):
        """rolling=True on an unchanged session refreshes the record's TTL with touch
        (the fallback store: a rewrite with set) and never calls update; a changed
        session is written with update."""
        h = self.make(
            routes(set=replace_foo_bar, index=show, add=lambda e, s: s.__setitem__("n", 1)),
            rolling=True,
        )
        first = h.get("/set")
        key = h.rec.calls[0].key
        self.set_remaining(key, 10)
        h.rec.clear()
        second = h.get("/", cookie=jar(first))
        assert h.rec.ops() == ["get", *[c.op for c in self.writes("touch", "k", None)]]
        assert "update" not in h.rec.ops()
        self.assert_ttl(key, DAY)
        if "touch" in self.methods:
            assert h.rec.written == []  # touch moved the TTL without rewriting the record
        h.rec.clear()
        h.get("/add", cookie=jar(second))
        assert h.rec.ops() == ["get", *[c.op for c in self.writes("update", "k", None)]]

    def test_max_age_none_record_ttl_is_a_day(self):
        """max_age=None: the record's TTL is 24 h from the last save (DESIGN §8)."""
        h = self.make(
            routes(set=replace_foo_bar, add=lambda e, s: s.__setitem__("n", 1)), max_age=None
        )
        first = h.get("/set")
        ((op, key, ttl),) = h.rec.calls
        assert op == self.op("create")
        assert ttl == DAY
        self.assert_ttl(key, DAY)
        self.clock.advance(3600)
        self.set_remaining(key, 100)
        h.rec.clear()
        h.get("/add", cookie=jar(first))
        assert h.rec.calls[-1] == self.writes("update", key, DAY)[-1]
        self.assert_ttl(key, DAY)

    def test_absolute_max_age_caps_the_ttl(self):
        """absolute_max_age caps the record TTL (and Max-Age) at the remaining absolute
        lifetime, also with max_age=None; once reached the session is `expired`."""
        h = self.make(
            lambda environ, session: session.__setitem__("n", session.get("n", 0) + 1),
            max_age=DAY,
            absolute_max_age=600,
        )
        first = h.get("/")
        ((op, key, ttl),) = h.rec.calls
        assert op == self.op("create")
        assert ttl == 600
        self.assert_ttl(key, 600)
        assert "Max-Age=600" in set_cookies(first)[0]
        self.clock.advance(300)
        h.rec.clear()
        second = h.get("/", cookie=jar(first))
        assert h.rec.calls == [Call("get", key), *self.writes("update", key, 300)]
        self.assert_ttl(key, 300)
        assert "Max-Age=300" in set_cookies(second)[0]
        self.clock.advance(300)
        h.rec.clear()
        h.events.clear()
        h.get("/", cookie=jar(second))
        assert h.events.names()[0] == "expired"
        assert h.rec.calls[0].op == self.op("create")
        assert h.rec.calls[0].key != key

        browser = self.make(replace_foo_bar, max_age=None, absolute_max_age=600)
        browser.get("/")
        ((op, key, ttl),) = browser.rec.calls
        assert op == self.op("create")
        assert ttl == 600
        self.assert_ttl(key, 600)

    def test_prefix_option_namespaces_records(self):
        """prefix: records live under prefix + 64 hex ('' allowed); a middleware with
        another prefix does not find them (`missed`)."""
        for prefix in ("app1:", ""):
            h = self.make(replace_foo_bar, prefix=prefix)
            response = h.get("/")
            ((op, key, _),) = h.rec.calls
            assert op == self.op("create")
            assert re.fullmatch(re.escape(prefix) + r"[0-9a-f]{64}", key)
            assert self.raw_get(key) is not None
        other = self.make(show, prefix="app2:")
        stale = other.get("/", cookie=jar(response))
        assert stale.text == "{}"
        assert other.events.names() == ["missed"]
        assert other.rec.calls[0].key.startswith("app2:")
        same = self.make(show, prefix="")
        assert same.get("/", cookie=jar(response)).text == "{'foo': 'bar'}"

    def test_genid_custom_ids(self):
        """genid(environ) supplies new ids: session.id is its value, the record key is
        prefix + sha256hex(it), and a loaded session does not call genid."""
        calls: list[str] = []

        def genid(environ):
            calls.append(environ["PATH_INFO"])
            return f"custom-{len(calls)}"

        h = self.make(
            lambda environ, session: (session.__setitem__("a", 1), session.id)[1], genid=genid
        )
        first = h.get("/first")
        assert first.text == "custom-1"
        assert calls == ["/first"]
        assert h.rec.calls == [Call(self.op("create"), store_key("custom-1"), DAY)]
        again = h.get("/again", cookie=jar(first))
        assert again.text == "custom-1"
        assert calls == ["/first"]
        other = h.get("/other")
        assert other.text == "custom-2"
        assert calls == ["/first", "/other"]

    def test_genid_collision_never_overwrites(self):
        """A new session whose genid id already has a record is not written over it
        (create is SET NX): StoreError at commit, `store_error`, no cookie; the existing
        session is intact."""
        h = self.make(
            lambda environ, session: (session.__setitem__("who", environ["PATH_INFO"]), "ok")[1],
            genid=lambda environ: "same-id",
        )
        first = h.get("/alice")
        with pytest.raises(StoreError):
            call_wsgi(h.mw, "/mallory")
        assert "store_error" in h.events.names()
        reader = self.make(show)
        assert reader.get("/", cookie=jar(first)).text == "{'who': '/alice'}"

    # ==============================================================================
    # Logouts that always stick (issue 11 items 3-6, DESIGN §10)
    # ==============================================================================

    def logout_then_flash(self, status: str = "200 OK", commit: bool = False):
        """A handler: ``/login`` saves a user; ``/logout`` invalidates, then leaves a
        "logged out" flash (the usual pattern), answers ``status`` and, with ``commit``,
        calls ``session.commit()``; ``/`` shows the session."""

        def handler(environ, session):
            path = environ["PATH_INFO"]
            if path == "/login":
                session["user"] = "alice"
                session.commit()
                return session.id
            if path == "/logout":
                session.invalidate()
                session["_flash"] = ["you have been logged out"]
                if commit:
                    session.commit()
                return status, session.id
            return show(environ, session)

        return handler

    @pytest.mark.parametrize("status", ["500 Internal Server Error", "503 Service Unavailable"])
    def test_logout_then_write_on_an_error_page_still_deletes(self, status):
        """invalidate() + a write + a 5xx answer: the deletion cookie goes out and the
        record is deleted; the write (a new session) is not saved (no commit on 5xx)."""
        h = self.make(self.logout_then_flash(status))
        login = h.get("/login")
        key = store_key(login.text)
        assert self.raw_get(key) is not None
        response = h.get("/logout", cookie=jar(login), expect_errors=True)
        assert response.status == status
        assert set_cookies(response) == [DELETION]
        assert self.raw_get(key) is None
        assert self.raw_get(store_key(response.text)) is None  # nothing saved for the flash
        assert ("destroyed", "invalidate") in [(e.name, e.reason) for e in h.events]

    def test_logout_then_write_without_auto_commit_still_deletes(self):
        """auto_commit=False: the logout counts as a commit of its own; the write after
        it belongs to a new session, which is only saved by commit()."""
        h = self.make(self.logout_then_flash(), auto_commit=False)
        login = h.get("/login")
        key = store_key(login.text)
        response = h.get("/logout", cookie=jar(login))
        assert set_cookies(response) == [DELETION]
        assert self.raw_get(key) is None
        assert self.raw_get(store_key(response.text)) is None
        assert h.get("/", cookie=jar(login)).text == "{}"

    def test_logout_then_write_with_commit_starts_a_new_session(self):
        """auto_commit=False and commit() after the write: the old record is gone and a
        new session (new id) holds only the flash."""
        h = self.make(self.logout_then_flash(commit=True), auto_commit=False)
        login = h.get("/login")
        response = h.get("/logout", cookie=jar(login))
        assert cookie_value(response) not in (None, "", cookie_value(login))
        assert response.text != login.text
        assert self.raw_get(store_key(login.text)) is None
        assert self.raw_get(store_key(response.text)) is not None
        assert h.get("/", cookie=jar(response)).text == "{'_flash': ['you have been logged out']}"
        assert h.get("/", cookie=jar(login)).text == "{}"

    def test_logout_then_write_saves_a_new_session_by_default(self):
        h = self.make(self.logout_then_flash())
        login = h.get("/login")
        response = h.get("/logout", cookie=jar(login))
        assert response.text != login.text
        assert self.raw_get(store_key(login.text)) is None
        assert h.get("/", cookie=jar(response)).text == "{'_flash': ['you have been logged out']}"

    def two_sessions(self) -> tuple[str, str, str, str]:
        """Two valid sessions of the same app: (cookie A, id A, cookie B, id B)."""
        cookie_a, id_a = self.populate({"user": "victim"})
        cookie_b, id_b = self.populate({"user": "attacker"})
        assert id_a != id_b
        return cookie_a, id_a, cookie_b, id_b

    @pytest.mark.parametrize("how", ["invalidate", "assign_none"])
    def test_logout_with_a_tossed_cookie_deletes_every_authenticated_record(self, how):
        """An attacker's valid cookie sent beside the victim's (cookie tossing, possible
        without __Host-): the session is ambiguous (fresh), and its logout deletes both
        records, so the victim's session does not outlive the logout."""

        def logout(environ, session):
            if how == "invalidate":
                session.invalidate()
            else:
                environ["session"] = None
            return "bye"

        cookie_a, id_a, cookie_b, id_b = self.two_sessions()
        h = self.make(logout)
        response = h.get("/", cookie=f"{cookie_b}; {cookie_a}")
        if how == "invalidate":  # loaded: two ids, so no session (DESIGN §9)
            assert ("duplicate", "ambiguous") in [(e.name, e.reason) for e in h.events]
        assert set_cookies(response) == [DELETION]
        assert self.raw_get(store_key(id_a)) is None
        assert self.raw_get(store_key(id_b)) is None

    def test_logout_of_a_duplicate_pair_deletes_both_records(self):
        """The user's cookie first, a junk copy, then a tossed valid one: ambiguous too,
        and the logout deletes both records."""

        def logout(environ, session):
            session.invalidate()
            return "bye"

        cookie_a, id_a, cookie_b, id_b = self.two_sessions()
        h = self.make(logout)
        h.get("/", cookie=f"{cookie_a}; session=garbage; {cookie_b}")
        assert self.raw_get(store_key(id_a)) is None
        assert self.raw_get(store_key(id_b)) is None

    def test_logout_of_a_loaded_session_also_deletes_a_second_copy(self):
        """Same id twice (the first wins) plus an expired-looking junk value: one delete
        of the one record; an untouched logout (assign None) finds it from the token."""

        def logout(environ, session):
            environ["session"] = None
            return "bye"

        cookie_a, id_a = self.populate({"user": "victim"})
        h = self.make(logout)
        response = h.get("/", cookie=f"{cookie_a}; {cookie_a}")
        assert set_cookies(response) == [DELETION]
        assert self.raw_get(store_key(id_a)) is None

    def test_a_slow_save_after_a_concurrent_logout_never_recreates_the_record(self):
        """A request that loaded the session, then saves after another request logged it
        out, must not write it back (DESIGN §8) — also on a get/set/delete store, which
        checks that the record exists right before writing."""
        cookie, sid = self.populate({"n": 1})
        logout = self.make(lambda environ, session: environ.__setitem__("session", None))

        def slow(environ, session):
            session["n"] += 1  # loaded, changed...
            logout.get("/", cookie=cookie)  # ...and meanwhile logged out elsewhere
            return "saved?"

        h = self.make(slow)
        response = h.get("/", cookie=cookie)
        assert set_cookies(response) == []
        assert self.raw_get(store_key(sid)) is None
        assert ("interrupted", "record_gone") in [(e.name, e.reason) for e in h.events]

    def test_a_slow_rolling_refresh_after_a_concurrent_logout_never_recreates(self):
        cookie, sid = self.populate({"n": 1})
        logout = self.make(lambda environ, session: environ.__setitem__("session", None))

        def slow(environ, session):
            _ = session["n"]
            logout.get("/", cookie=cookie)
            return "read"

        h = self.make(slow, rolling=True)
        response = h.get("/", cookie=cookie)
        assert set_cookies(response) == []
        assert self.raw_get(store_key(sid)) is None
        assert "interrupted" in h.events.names()

    def test_regenerate_racing_a_logout_leaves_no_record(self):
        cookie, sid = self.populate({"user": "alice"})
        logout = self.make(lambda environ, session: environ.__setitem__("session", None))

        def login(environ, session):
            _ = session["user"]
            logout.get("/", cookie=cookie)
            session.regenerate()
            return session.id

        h = self.make(login)
        response = h.get("/", cookie=cookie)
        assert set_cookies(response) == []
        assert self.raw_get(store_key(sid)) is None
        assert self.raw_get(store_key(response.text)) is None

    # ==============================================================================
    # A user's sessions: list, revoke one, log out everywhere (issue 15 item 6)
    # ==============================================================================

    def user_app(self, **options) -> Harness:
        """``/login/<user>`` binds the session (a "device"); ``/me`` shows the bound
        user; ``/logout`` invalidates."""

        def handler(environ, session):
            path = environ["PATH_INFO"]
            if path.startswith("/login/"):
                session["user"] = path.rsplit("/", 1)[1]
                session.regenerate()
                session.bind_user(session["user"])
                return session.id
            if path == "/logout":
                session.invalidate()
                return "bye"
            return f"{session.user_id}:{session.get('user')}"

        return self.make(handler, **options)

    def test_a_user_lists_and_revokes_their_sessions(self):
        h = self.user_app()
        phone = jar(h.get("/login/alice"))
        laptop = jar(h.get("/login/alice"))
        jar(h.get("/login/bob"))
        mw = h.mw
        listed = mw.sessions_of("alice")
        assert len(listed) == 2 and len(mw.sessions_of("bob")) == 1
        for info in listed:  # opaque: neither the id nor the record key
            assert re.fullmatch(r"[0-9a-f]{32}", info.handle)
            assert info.created == info.last_seen == T0 and info.expires == T0 + DAY
        assert h.get("/me", cookie=phone).text == "alice:alice"
        own = mw.open_session(value=cookie_value_of(laptop))
        own.get("user")
        laptop_handle = mw.handle_of(own)
        assert laptop_handle in {info.handle for info in listed}
        phone_handle = ({info.handle for info in listed} - {laptop_handle}).pop()
        assert mw.revoke("alice", phone_handle) is True
        assert mw.revoke("alice", phone_handle) is False  # already gone
        assert mw.revoke("bob", laptop_handle) is False  # not bob's
        assert h.get("/me", cookie=phone).text == "None:None"  # logged out there
        assert h.get("/me", cookie=laptop).text == "alice:alice"
        assert [i.handle for i in mw.sessions_of("alice")] == [laptop_handle]

    def test_log_out_everywhere_but_here(self):
        h = self.user_app()
        devices = [jar(h.get("/login/alice")) for _ in range(3)]
        here = h.mw.open_session(value=cookie_value_of(devices[0]))
        here.get("user")
        h.mw.revoke_all("alice", keep=here)
        assert h.get("/me", cookie=devices[0]).text == "alice:alice"
        assert [h.get("/me", cookie=d).text for d in devices[1:]] == ["None:None"] * 2
        assert len(h.mw.sessions_of("alice")) == 1
        h.mw.revoke_all("alice")
        assert h.get("/me", cookie=devices[0]).text == "None:None"
        assert h.mw.sessions_of("alice") == []

    def test_logout_regenerate_and_expiry_keep_the_list_true(self):
        h = self.user_app(max_age=2)  # short: Redis waits for real
        first = jar(h.get("/login/carol"))
        h.get("/login/carol", cookie=first)  # regenerate on an existing session
        assert len(h.mw.sessions_of("carol")) == 1  # the old id is not listed
        second = jar(h.get("/login/carol"))
        h.get("/logout", cookie=second)
        assert len(h.mw.sessions_of("carol")) == 1
        self.elapse(2.2)
        assert h.mw.sessions_of("carol") == []

    def test_revocation_generation_in_store_mode_too(self):
        """With revocation_store, revoke_all also refuses every session saved under an
        older generation — the way "log out everywhere" works on a store without an
        index (memcached)."""
        generations = MemoryStore()
        h = self.user_app(revocation_store=generations)
        device = jar(h.get("/login/dave"))
        assert h.get("/me", cookie=device).text == "dave:dave"
        h.mw.revoke_all("dave")
        h.events.clear()
        assert h.get("/me", cookie=device).text == "None:None"
        seen = [(e.name, e.reason) for e in h.events]
        if hasattr(self.store, "index_revoke"):  # the record itself was deleted
            assert ("missed", "no_record") in seen
        else:  # the record is there, but saved under the old generation
            assert ("invalid", "revoked") in seen


class TestMemoryStore(StoreContract):
    """The contract over MemoryStore, sharing the middleware's injected clock."""

    @pytest.fixture
    def store(self, clock):
        return MemoryStore(clock=clock)

    def remaining(self, key):
        return self.store.ttl(key)

    def set_remaining(self, key, seconds):
        assert self.store.touch(key, seconds)

    def raw_get(self, key):
        return self.store.get(key)

    def elapse(self, seconds):
        self.clock.advance(seconds)


class RedisHooks:
    """The contract's inspection hooks over a raw redis-py client ``self.raw`` (set by
    the ``store`` fixture): TTLs by PTTL, real waits. Shared with the Cluster and
    Sentinel contract classes."""

    raw: Any

    def remaining(self, key):
        ms = self.raw.pttl(key)
        if ms == -2:
            raise KeyError(key)
        return None if ms == -1 else ms / 1000

    def set_remaining(self, key, seconds):
        assert self.raw.expire(key, seconds)

    def raw_get(self, key):
        return self.raw.get(key)

    def elapse(self, seconds):
        time.sleep(seconds)  # a real Redis TTL: the one wait of the Redis contracts


class TestRedisStore(RedisHooks, StoreContract):
    """The contract over RedisStore(url=...) on a real redis-server; TTLs are read with
    a separate raw client (PTTL)."""

    @pytest.fixture
    def raw(self, redis_server, redis_url):
        client = redis_server.client()
        yield client
        client.close()

    @pytest.fixture
    def store(self, redis_url, raw):
        from wsgisession import RedisStore

        self.raw = raw
        store = RedisStore(url=redis_url)
        yield store
        store.client.close()


class TestMinimalStore(StoreContract):
    """A store with only get/set/delete: the middleware falls back to set() for
    create/update/touch. The conditional-method tests do not apply."""

    methods = frozenset()
    test_create_only_if_absent = None
    test_update_only_if_present = None
    test_touch_only_if_present_and_moves_the_ttl = None
    test_genid_collision_never_overwrites = None  # set() cannot refuse: documented limit
    # No index methods: "my sessions" is not available on such a store (revoke_all works
    # with revocation_store: test_revocation_generation_in_store_mode_too).
    test_a_user_lists_and_revokes_their_sessions = None
    test_log_out_everywhere_but_here = None
    test_logout_regenerate_and_expiry_keep_the_list_true = None
    test_index_put_and_get_round_trip_entries_exactly = None
    test_index_members_expire_on_their_own = None
    test_index_revoke_deletes_records_and_members_together = None

    @pytest.fixture
    def store(self, clock):
        return MinimalStore(clock)

    def remaining(self, key):
        return self.store.inner.ttl(key)

    def set_remaining(self, key, seconds):
        assert self.store.inner.touch(key, seconds)

    def raw_get(self, key):
        return self.store.inner.get(key)

    def elapse(self, seconds):
        self.clock.advance(seconds)

    def test_minimal_store_has_no_conditional_methods(self):
        """The fallback path really is exercised: the recorder offers no create/update/touch."""
        rec = Recorder(self.store)
        for name in ("create", "update", "touch"):
            assert getattr(rec, name, None) is None
