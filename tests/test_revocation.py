"""Log out everywhere in cookie mode (issue 15 item 6): with ``revocation_store`` a bound
session's token carries its user's generation, and ``revoke_all`` makes every token
issued before — a stolen copy included — stop working. Store-mode listing and revoking
run over every store in ``tests/stores/test_contract.py``."""

from __future__ import annotations

import pytest

from tests.conftest import Harness, cookie_value, set_cookies
from tests.stores.test_contract import MinimalStore, Recorder, no_jar
from wsgisession import MemoryStore, StoreError, WSGISessionError


def login_app(**options) -> Harness:
    def handler(environ, session):
        path = environ["PATH_INFO"]
        if path.startswith("/login/"):
            session["user"] = path.rsplit("/", 1)[1]
            session.bind_user(session["user"])
            return "in"
        if path == "/everywhere":
            environ["wsgisession.test.mw"].revoke_all(session.user_id, keep=session)
            return "revoked"
        if path == "/write":
            session["n"] = session.get("n", 0) + 1
        return f"{session.user_id}:{session.get('user')}"

    h = no_jar(Harness(handler, **options))
    app = h.mw.app

    def with_mw(environ, start_response):
        environ["wsgisession.test.mw"] = h.mw
        return app(environ, start_response)

    h.mw.app = with_mw
    return h


def cookie(response) -> str:
    return f"session={cookie_value(response)}"


def test_a_stolen_cookie_stops_working_after_log_out_everywhere():
    generations = Recorder(MemoryStore())
    h = login_app(revocation_store=generations)
    mine = cookie(h.get("/login/alice"))
    stolen = mine  # an attacker's copy of the same cookie
    assert h.get("/me", cookie=stolen).text == "alice:alice"
    out = h.get("/everywhere", cookie=mine)
    renewed = cookie(out)  # this device is re-saved under the new generation
    h.events.clear()
    assert h.get("/me", cookie=stolen).text == "None:None"
    assert [(e.name, e.reason) for e in h.events] == [("invalid", "revoked")]
    assert set_cookies(h.get("/me", cookie=stolen)) == []  # a refusal alone sends nothing
    assert h.get("/me", cookie=renewed).text == "alice:alice"
    other = cookie(h.get("/login/alice"))  # a login after it is fine
    assert h.get("/me", cookie=other).text == "alice:alice"


def test_one_store_read_per_request_and_none_for_unbound_sessions():
    generations = Recorder(MemoryStore())
    h = login_app(revocation_store=generations)
    mine = cookie(h.get("/login/alice"))
    generations.clear()
    h.get("/me", cookie=mine)
    assert generations.ops() == ["get"]
    anonymous = cookie(h.get("/write"))
    generations.clear()
    h.get("/write", cookie=anonymous)
    assert generations.ops() == []


def test_revocation_store_down_gives_a_read_only_empty_session():
    class Down(MinimalStore):
        failing = False

        def get(self, key):
            if self.failing:
                raise StoreError("down")
            return super().get(key)

    from tests.conftest import Clock

    clock = Clock()
    store = Down(clock)
    h = login_app(revocation_store=store, clock=clock, on_store_error="ignore")
    mine = cookie(h.get("/login/alice"))
    store.failing = True
    h.events.clear()
    response = h.get("/write", cookie=mine)
    assert response.text == "None:None"  # not served as alice while unverifiable
    assert set_cookies(response) == []  # and not logged out either
    assert "store_error" in h.events.names()
    store.failing = False
    assert h.get("/me", cookie=mine).text == "alice:alice"


def test_listing_needs_store_mode():
    h = login_app(revocation_store=MemoryStore())
    with pytest.raises(WSGISessionError, match="store mode"):
        h.mw.sessions_of("alice")
    plain = login_app()
    with pytest.raises(WSGISessionError):
        plain.mw.revoke_all("alice")  # cookie mode without revocation_store: nothing to do


def test_bind_user_checks_its_argument():
    def handler(environ, session):
        session.bind_user("")

    h = Harness(handler)
    with pytest.raises(WSGISessionError):
        h.client.get("/")
