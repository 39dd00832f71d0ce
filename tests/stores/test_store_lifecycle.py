"""Store-mode lifecycle corners: what the application does after start_response, a custom
serializer, manual commits, records written before absolute_max_age was configured, and
faults while the response closes."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Harness, cookie_value
from wsgisession import MemoryStore, WSGISessionError


class Failing(MemoryStore):
    """A real MemoryStore whose writes can be made to fail (StoreError), as a dead Redis
    would fail them."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.broken = False

    def _check(self):
        if self.broken:
            from wsgisession import StoreError

            raise StoreError("store down")

    def update(self, key, value, ttl):
        self._check()
        return super().update(key, value, ttl)

    def delete(self, key):
        self._check()
        super().delete(key)


def streaming(action):
    """A generator app: headers first, then ``action(session)`` while the body streams."""

    def app(environ, start_response):
        session = environ["session"]
        if environ["PATH_INFO"] == "/seed":
            session["user"] = "alice"
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"head "
        if environ["PATH_INFO"] != "/seed":
            action(session)
        yield b"tail"

    return app


def read_app(environ, start_response):
    body = json.dumps(dict(environ["session"]), sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def seeded(action, **options):
    store = options.pop("store", None)
    if store is None:  # (an empty store is falsy: it has a length)
        store = MemoryStore()
    h = Harness(app=streaming(action), store=store, **options)
    cookie = "session=" + cookie_value(h.client.get("/seed"))
    reader = Harness(app=read_app, store=store, clock=h.clock)
    return h, reader, store, cookie


def test_save_after_headers_is_done_at_close():
    def action(session):
        session.get("user")
        session.save()

    h, _, store, cookie = seeded(action, rolling=False)
    h.clock.advance(100)
    response = h.get("/", cookie=cookie)
    assert response.body == b"head tail"
    assert "late_write" not in h.events.names()
    [key] = list(store._data)
    assert store.ttl(key) == pytest.approx(86400, abs=2)


def test_commit_after_headers_saves_a_change_at_close():
    def action(session):
        session["n"] = 1
        session.commit()

    store = MemoryStore()
    seeder = Harness(lambda environ, session: session.update(user="alice"), store=store)
    cookie = "session=" + cookie_value(seeder.client.get("/"))
    h = Harness(app=streaming(action), store=store, clock=seeder.clock, auto_commit=False)
    assert h.get("/", cookie=cookie).body == b"head tail"
    reader = Harness(app=read_app, store=store, clock=seeder.clock)
    assert json.loads(reader.get("/", cookie=cookie).body) == {"n": 1, "user": "alice"}
    assert "late_write" not in h.events.names()


def test_invalidate_after_headers_deletes_the_record_at_close():
    h, reader, store, cookie = seeded(lambda session: session.invalidate())
    assert len(store) == 1
    h.get("/", cookie=cookie)
    assert len(store) == 0
    assert json.loads(reader.get("/", cookie=cookie).body) == {}


def test_regenerate_after_headers_raises():
    errors = []

    def action(session):
        try:
            session.regenerate()
        except WSGISessionError as exc:
            errors.append(str(exc))

    h, _, _, cookie = seeded(action)
    h.get("/", cookie=cookie)
    assert errors == ["session.regenerate() after start_response: headers already sent"]


def test_a_late_save_that_fails_is_reported_not_raised():
    store = Failing()

    def action(session):
        session["late"] = True
        store.broken = True

    h, _, store, cookie = seeded(action, store=store)
    response = h.get("/", cookie=cookie)
    assert response.body == b"head tail"
    assert ("store_error", "write") in [(e.name, e.reason) for e in h.events]


def test_nothing_is_saved_late_after_a_5xx():
    def app(environ, start_response):
        session = environ["session"]
        if environ["PATH_INFO"] == "/seed":
            session["user"] = "alice"
            start_response("200 OK", [])
            return [b""]
        session.get("user")
        start_response("500 Internal Server Error", [])
        session["late"] = True
        return [b"oops"]

    store = MemoryStore()
    h = Harness(app=app, store=store)
    cookie = "session=" + cookie_value(h.client.get("/seed"))
    h.client.get("/", headers={"Cookie": cookie}, expect_errors=True)
    reader = Harness(app=read_app, store=store, clock=h.clock)
    assert json.loads(reader.get("/", cookie=cookie).body) == {"user": "alice"}
    assert "late_write" in h.events.names()


class Reversed:
    """A custom serializer (not the built-in JSON one): JSON with reversed bytes."""

    def dumps(self, obj):
        return json.dumps(obj).encode()[::-1]

    def loads(self, data):
        return json.loads(bytes(data)[::-1])


def test_store_mode_with_a_custom_serializer():
    def handler(environ, session):
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    store = MemoryStore()
    h = Harness(handler, store=store, serializer=Reversed(), absolute_max_age=1000)
    h.client.get("/")
    assert h.client.get("/").text == "2"
    session_max_age = Harness(
        lambda environ, session: setattr(session, "max_age", None) or "ok",
        store=store,
        serializer=Reversed(),
        clock=h.clock,
    )
    cookie = "session=" + h.client.cookies["session"]
    assert cookie_value(session_max_age.get("/", cookie=cookie))


def test_manual_commit_mode_does_not_destroy_an_emptied_session_without_commit():
    def handler(environ, session):
        if environ["PATH_INFO"] == "/seed":
            session["x"] = 1
            session.commit()
        else:
            session.clear()

    store = MemoryStore()
    h = Harness(handler, store=store, auto_commit=False)
    h.client.get("/seed")
    assert len(store) == 1
    assert h.client.get("/clear").headers.getall("Set-Cookie") == []
    assert len(store) == 1


def test_absolute_max_age_added_later_applies_to_old_records():
    def handler(environ, session):
        if environ["PATH_INFO"] == "/seed":
            session["x"] = 1
        return repr(dict(session))

    store = MemoryStore()
    h = Harness(handler, store=store)
    cookie = "session=" + cookie_value(h.client.get("/seed"))
    later = Harness(handler, store=store, clock=h.clock, absolute_max_age=3600)
    assert later.get("/", cookie=cookie).text == "{'x': 1}"
    h.clock.advance(3601)
    assert later.get("/", cookie=cookie).text == "{}"
    assert ("expired", "absolute") in [(e.name, e.reason) for e in later.events]


def test_destroying_an_untouched_session_skips_bad_copies():
    def handler(environ, session):
        if environ["PATH_INFO"] == "/seed":
            session["x"] = 1
        else:
            environ["session"] = None

    store = MemoryStore()
    h = Harness(handler, store=store)
    value = cookie_value(h.client.get("/seed"))
    assert len(store) == 1
    h.get("/logout", cookie=f"session=garbage; session={value}")
    assert len(store) == 0


def test_regenerate_without_move_checks_the_old_record():
    class NoMove(MemoryStore):
        move = None  # the optional method is absent

    store = NoMove()

    def handler(environ, session):
        if environ["PATH_INFO"] == "/seed":
            session["x"] = 1
        elif environ["PATH_INFO"] == "/login":
            session.get("x")
            store.delete(h.mw.store_key(session.id))  # a concurrent logout, after the load
            session.regenerate()
        return repr(dict(session))

    h = Harness(handler, store=store)
    cookie = "session=" + cookie_value(h.client.get("/seed"))
    response = h.get("/login", cookie=cookie)
    assert cookie_value(response) is None
    assert len(store) == 0
    assert ("interrupted", "record_gone") in [(e.name, e.reason) for e in h.events]
    # Without the race, the same store regenerates normally.
    cookie = "session=" + cookie_value(h.client.get("/seed"))
    plain = Harness(lambda environ, session: session.regenerate(), store=store, clock=h.clock)
    assert cookie_value(plain.get("/", cookie=cookie))
    assert len(store) == 1
