"""Issue 11 (hardening) items that are not store-contract tests: logouts that stick in
cookie mode and through store failures, stores written to the bare protocol (only
get/set/delete; ``touch()`` returning None), and store outages that say why in the log.

The store-mode logout tests that every store must pass are in
``tests/stores/test_contract.py`` (section "Logouts that always stick")."""

from __future__ import annotations

import logging
import sys

import pytest

from tests.conftest import SECRET, Harness, call_wsgi, cookie_value, set_cookies
from tests.stores.test_contract import DELETION, MinimalStore, jar, store_key
from wsgisession import MemoryStore, SessionMiddleware, SessionTooLarge, StoreError


def flash_after_logout(status: str = "200 OK", big: bool = False):
    def handler(environ, session):
        if environ["PATH_INFO"] == "/login":
            session["user"] = "alice"
            return None
        session.invalidate()
        session["_flash"] = ["x" * 5000] if big else ["you have been logged out"]
        return status, None

    return handler


# -- cookie mode ------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["500 Internal Server Error", "502 Bad Gateway"])
def test_cookie_mode_logout_then_flash_on_an_error_page_clears_the_cookie(status):
    h = Harness(flash_after_logout(status))
    login = h.get("/login")
    response = h.get("/logout", cookie=jar(login), expect_errors=True)
    assert set_cookies(response) == [DELETION]
    assert ("destroyed", "invalidate") in [(e.name, e.reason) for e in h.events]


def test_cookie_mode_logout_then_flash_without_auto_commit_clears_the_cookie():
    h = Harness(flash_after_logout(), auto_commit=False)
    login = h.get("/login")
    assert set_cookies(login) == []  # auto_commit=False: the login itself was not saved
    h2 = Harness(flash_after_logout())
    login = h2.get("/login")
    response = h.get("/logout", cookie=jar(login))
    assert set_cookies(response) == [DELETION]


def test_cookie_mode_logout_then_oversized_flash_still_logs_out_on_the_error_page():
    """The new session is too large for a cookie: SessionTooLarge surfaces from
    start_response, and the error page (start_response with exc_info) carries the
    deletion cookie: the logout is not lost with the flash."""
    login = Harness(flash_after_logout()).get("/login")
    seen: list[object] = []

    def app(environ, start_response):
        flash_after_logout(big=True)(environ, environ["session"])
        try:
            start_response("200 OK", [("Content-Type", "text/plain")])
        except SessionTooLarge as exc:
            seen.append(exc)
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b""]

    mw = SessionMiddleware(app, secret_keys=[SECRET])
    result = call_wsgi(mw, "/logout", cookie=jar(login))
    assert len(seen) == 1
    assert [v for n, v in result.headers if n == "Set-Cookie"] == [DELETION]


# -- store mode: the logout comes first ---------------------------------------------------


class FailingCreate(MemoryStore):
    """A real MemoryStore whose create() fails once ``failing`` is set, like a store
    that became full or read-only for new keys (a fault MemoryStore cannot produce on
    demand)."""

    failing = False

    def create(self, key, value, ttl):
        if self.failing:
            raise StoreError("create refused")
        return super().create(key, value, ttl)


@pytest.mark.parametrize("on_store_error", ["ignore", "raise"])
def test_logout_survives_a_failed_save_of_the_new_session(on_store_error):
    """invalidate() + a flash, and saving the new session fails: the old record is
    deleted first, so the logout holds whatever happens to the flash."""
    store = FailingCreate()
    h = Harness(flash_after_logout(), store=store, on_store_error=on_store_error)
    login = h.get("/login")
    assert len(store) == 1
    store.failing = True
    if on_store_error == "ignore":
        out = h.get("/logout", cookie=jar(login))
        assert set_cookies(out) == [DELETION]
    else:
        with pytest.raises(StoreError):
            h.get("/logout", cookie=jar(login))
    assert len(store) == 0
    assert "store_error" in h.events.names()


# -- stores with only get/set/delete ------------------------------------------------------


class LogoutDuringWrite(MinimalStore):
    """A get/set/delete store where a concurrent logout of ``victim`` lands right after
    regenerate()'s fallback wrote the new record (injected: one request's check and
    write cannot be interleaved with another request's on demand)."""

    victim: str | None = None

    def set(self, key, value, ttl):
        super().set(key, value, ttl)
        if self.victim is not None and key != self.victim:
            self.inner.delete(self.victim)  # the logout, between write and delete


def test_minimal_store_regenerate_racing_a_logout_leaves_no_record(clock):
    store = LogoutDuringWrite(clock)

    def handler(environ, session):
        if environ["PATH_INFO"] == "/login":
            session.regenerate()
        else:
            session["user"] = "a"
        return session.id

    h = Harness(handler, clock=clock, store=store)
    first = h.get("/")
    store.victim = store_key(first.text)
    out = h.get("/login", cookie=jar(first))
    assert set_cookies(out) == []
    assert store.get(store.victim) is None
    assert store.get(store_key(out.text)) is None  # the new record was undone
    assert "interrupted" in h.events.names()


def test_a_store_without_create_and_update_is_announced_once_at_construction(caplog):
    app = lambda environ, start_response: []  # noqa: E731
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        SessionMiddleware(app, secret_keys=[SECRET], store=MinimalStore(time_clock))
    [record] = [r for r in caplog.records if r.name == "wsgisession"]
    assert "create()/update()" in record.getMessage()
    assert "MinimalStore" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        SessionMiddleware(app, secret_keys=[SECRET], store=MemoryStore())
    assert [r for r in caplog.records if r.name == "wsgisession"] == []


def time_clock() -> float:
    return 0.0


class ProtocolTouch(MinimalStore):
    """A store written to the DESIGN §5 protocol: ``touch()`` declares no return value."""

    def touch(self, key, ttl):
        self.inner.touch(key, ttl)  # returns None, like the protocol says


def test_touch_returning_none_is_success(clock):
    """rolling with a touch() that returns None: the record's TTL is refreshed and the
    cookie re-issued; not reported as `interrupted` (only an explicit False is)."""
    store = ProtocolTouch(clock)

    def handler(environ, session):
        session.setdefault("n", 1)
        return session.id

    first = Harness(handler, clock=clock, store=store).get("/")
    key = store_key(first.text)
    clock.advance(100)
    h = Harness(handler, clock=clock, store=store, rolling=True)
    rolled = h.get("/", cookie=jar(first))
    assert cookie_value(rolled) not in (None, "")
    assert "interrupted" not in h.events.names()
    assert 86390 < store.inner.ttl(key) <= 86400
