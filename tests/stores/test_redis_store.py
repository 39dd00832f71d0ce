"""RedisStore on its own: construction checks, touch without TTL, move and its fallback,
and the demo served in store mode (memory and Redis) by the real CLI."""

from __future__ import annotations

import http.client
import re
import urllib.parse

import pytest
import redis

import wsgisession
import wsgisession.stores
from tests.test_cli import DEMO_SECRET, Demo, assert_one_line_error, free_port, run_cli
from wsgisession import ConfigurationError, StoreError
from wsgisession.stores.redis import RedisStore


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({}, "store"),
        ({"url": "redis://x", "client": object()}, "store"),
        ({"url": "http://127.0.0.1:6379"}, "store"),
        ({"url": "redis://127.0.0.1", "timeout": 0}, "timeout"),
        ({"url": "redis://127.0.0.1", "connect_timeout": True}, "connect_timeout"),
        ({"url": "redis://127.0.0.1", "retries": 9}, "retries"),
    ],
)
def test_bad_construction_names_the_option(kwargs, option):
    with pytest.raises(ConfigurationError) as info:
        RedisStore(**kwargs)
    assert info.value.option == option


def test_lazy_exports():
    assert wsgisession.RedisStore is RedisStore
    assert wsgisession.stores.RedisStore is RedisStore
    with pytest.raises(AttributeError):
        _ = wsgisession.NoSuchThing
    with pytest.raises(AttributeError):
        _ = wsgisession.stores.NoSuchThing
    assert repr(RedisStore(url="redis://127.0.0.1:1/0")) == "<RedisStore>"


def test_touch_without_ttl_persists(redis_url):
    store = RedisStore(url=redis_url)
    store.set("k", b"v", 100)
    assert store.touch("k", None) is True
    assert store.client.ttl("k") == -1
    assert store.touch("k", None) is True  # already persistent, still present
    assert store.touch("missing", None) is False
    store.client.close()


def test_move_is_conditional(redis_url):
    store = RedisStore(url=redis_url)
    assert store.move("old", "new", b"v", 50) is False  # no old record
    store.set("old", b"x", 50)
    store.set("taken", b"y", 50)
    assert store.move("old", "taken", b"v", 50) is False  # never overwrites
    assert store.move("old", "new", b"v", 50) is True
    assert store.get("old") is None and store.get("new") == b"v"
    assert 0 < store.client.ttl("new") <= 50
    store.set("old2", b"x", None)
    assert store.move("old2", "new2", b"w", None) is True
    assert store.client.ttl("new2") == -1
    store.client.close()


class CrossSlot:
    """Stands in for the Lua call on Redis Cluster, whose two keys sit in different
    slots: a single server cannot produce CROSSSLOT on demand."""

    def __call__(self, keys, args, client=None):
        raise redis.exceptions.ResponseError(
            "CROSSSLOT Keys in request don't hash to the same slot"
        )


def test_move_falls_back_without_lua_across_slots(redis_url):
    store = RedisStore(url=redis_url)
    store._move = CrossSlot()
    assert store.move("old", "new", b"v", 50) is False
    store.set("old", b"x", 50)
    store.set("taken", b"y", 50)
    assert store.move("old", "taken", b"v", 50) is False
    assert store.get("old") == b"x"
    assert store.move("old", "new", b"v", 50) is True
    assert store.get("old") is None and store.get("new") == b"v"
    store.client.close()


def test_move_reports_other_script_errors(redis_url):
    store = RedisStore(url=redis_url)

    def broken(keys, args, client=None):
        raise redis.exceptions.ResponseError("ERR something else")

    store._move = broken
    with pytest.raises(StoreError) as info:
        store.move("old", "new", b"v", 50)
    assert isinstance(info.value.original_error, redis.exceptions.ResponseError)
    store.client.close()


def _request(
    demo: Demo, method: str, path: str, cookie: str | None = None, form: dict | None = None
) -> tuple[int, str, str | None, str | None]:
    """(status, body, Set-Cookie, Location) of one request to the demo."""
    headers = {"Cookie": cookie} if cookie else {}
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", demo.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8")
        location = response.getheader("Location")
        return response.status, text, response.getheader("Set-Cookie"), location
    finally:
        conn.close()


def _get(demo: Demo, path: str, cookie: str | None = None) -> tuple[int, str, str | None]:
    status, body, set_cookie, _ = _request(demo, "GET", path, cookie)
    return status, body, set_cookie


def _token(body: str) -> str:
    [token] = re.findall(r'name="csrf_token" value="([A-Za-z0-9_-]+)"', body)
    return token


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_demo_in_store_mode(tmp_path, store, request):
    arg = "memory" if store == "memory" else request.getfixturevalue("redis_url")
    demo = Demo(tmp_path, "--secret-key", DEMO_SECRET, "--store", arg)
    try:
        demo.wait_ready()
        status, body, set_cookie = _get(demo, "/")
        assert status == 200 and "<span id=views>1</span>" in body
        cookie = set_cookie.split(";", 1)[0]
        status, body, _ = _get(demo, "/big", cookie)
        assert status == 200 and "Stored 6000 characters" in body
        status, body, _ = _get(demo, "/", cookie)
        assert "<span id=views>2</span>" in body
        assert re.search(r"store \((Memory|Redis)Store\)", _get(demo, "/session", cookie)[1])

        # Log in with the form's token (kept in the store record); a new session id.
        old_token = _token(_get(demo, "/login", cookie)[1])
        status, _, set_cookie, location = _request(
            demo, "POST", "/login", cookie, {"user": "alice", "csrf_token": old_token}
        )
        assert (status, location) == (303, "/")
        alice = set_cookie.split(";", 1)[0]
        assert alice != cookie
        status, body, _ = _get(demo, "/", alice)
        assert "<b id=user>alice</b>" in body and "<span id=views>3</span>" in body

        # Logout needs the new token: the pre-login one was replaced at login.
        assert _request(demo, "POST", "/logout", alice, {"csrf_token": old_token})[0] == 403
        status, body, set_cookie = _get(demo, "/logout", alice)
        assert status == 200 and "Logged out" not in body and set_cookie is None
        status, body, set_cookie, _ = _request(
            demo, "POST", "/logout", alice, {"csrf_token": _token(body)}
        )
        assert status == 200 and "Logged out" in body
        assert set_cookie.startswith("session=; Max-Age=0;")
        # The record is gone: the logged-in cookie, replayed, is a fresh session.
        status, body, _ = _get(demo, "/", alice)
        assert "<span id=views>1</span>" in body and "Not logged in." in body
        assert "Traceback" not in demo.stderr()
    finally:
        demo.stop()


def test_demo_refuses_an_unknown_store(tmp_path):
    from wsgisession.__main__ import main

    assert main(["demo", "--store", "bogus", "--secret-key", DEMO_SECRET]) == 64
    assert main(["demo", "--store", "redis://x", "--secret-key", "short"]) == 64


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:notaport/0",
        "redis://[::1/0",
        "redis://127.0.0.1/0?socket_timeout=soon",
        "redis://a..b/0",
        "redis://127.0.0.1/\n0",
        "redis://\udcff/0",  # a byte that is not UTF-8, as argv carries it
    ],
)
def test_demo_refuses_a_malformed_redis_url_in_one_line(url):
    # A subprocess with a timeout: a demo that accepted the URL would serve forever.
    args = ["demo", "--port", str(free_port()), "--secret-key", DEMO_SECRET, "--store", url]
    line = assert_one_line_error(run_cli(*args, timeout=10), 64)
    assert line.startswith("error: --store")


def test_demo_refuses_an_unreachable_redis():
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    args = ["demo", "--port", str(free_port()), "--secret-key", DEMO_SECRET, "--store", nobody]
    line = assert_one_line_error(run_cli(*args, timeout=10), 69)
    assert "unreachable" in line and "ConnectionError" in line
