"""The demo application in-process (the subprocess run is in test_cli.py)."""

from __future__ import annotations

import re

import webtest

from tests.conftest import SECRET, Clock
from wsgisession.demo import make_demo


def client() -> webtest.TestApp:
    return webtest.TestApp(make_demo([SECRET], clock=Clock()))


def views(response) -> int:
    return int(re.search(r"<span id=views>(\d+)</span>", response.text).group(1))


def test_counter_persists_and_restarts_without_the_cookie():
    app = client()
    assert [views(app.get("/")) for _ in range(3)] == [1, 2, 3]
    app.reset()
    assert views(app.get("/")) == 1


def test_login_regenerates_and_flashes_once():
    app = client()
    app.get("/")
    before = app.cookies["session"]
    form = app.get("/login")
    assert 'name="user"' in form.text
    response = app.post("/login", {"user": "alice"})
    assert response.status_int == 303
    assert app.cookies["session"] != before
    page = app.get("/")
    assert "<b id=user>alice</b>" in page.text
    assert "Welcome, alice!" in page.text
    assert "Welcome, alice!" not in app.get("/").text


def test_login_without_a_name_is_guest_and_names_are_escaped():
    app = client()
    app.post("/login", {"user": ""})
    assert "<b id=user>guest</b>" in app.get("/").text
    app.post("/login", {"user": "<script>"})
    assert "&lt;script&gt;" in app.get("/").text


def test_flash_survives_the_redirect():
    app = client()
    assert app.get("/flash", {"msg": "hi there"}).status_int == 303
    assert "hi there" in app.get("/").text
    assert "hi there" not in app.get("/").text


def test_logout_clears_the_cookie():
    app = client()
    app.post("/login", {"user": "bob"})
    response = app.get("/logout")
    [cookie] = response.headers.getall("Set-Cookie")
    assert cookie.startswith("session=; Max-Age=0;")
    assert "Not logged in." in app.get("/").text


def test_session_page_shows_metadata_and_attributes():
    app = client()
    app.get("/")
    text = app.get("/session").text
    for label in ("is_new", "created_at", "expires_at", "HttpOnly", "SameSite", "Lax"):
        assert label in text
    assert "views" in text


def test_too_big_is_an_error_page_without_a_cookie():
    app = client()
    app.get("/")
    response = app.get("/big", expect_errors=True)
    assert response.status_int == 500
    assert "Session too large" in response.text
    assert response.headers.getall("Set-Cookie") == []
    assert views(app.get("/")) == 2  # the old session is intact


def test_unknown_page_is_404():
    assert client().get("/nope", expect_errors=True).status_int == 404


def test_store_mode_demo_keeps_large_sessions_and_logs_out():
    from wsgisession import MemoryStore

    store = MemoryStore()
    app = webtest.TestApp(make_demo([SECRET], clock=Clock(), store=store))
    assert [views(app.get("/")) for _ in range(2)] == [1, 2]
    assert "Stored 6000 characters" in app.get("/big").text
    assert "store (MemoryStore)" in app.get("/session").text
    app.post("/login", {"user": "carol"})
    assert "<b id=user>carol</b>" in app.get("/").text
    assert len(store) == 1
    app.get("/logout")
    assert len(store) == 0
