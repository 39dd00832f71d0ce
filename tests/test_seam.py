"""The public seam (issue 12 item 5): a :class:`SessionManager` opens a session from a
request's cookie or header value, lets code read and change it, and turns it into the
cookie to send — without any WSGI middleware in the path — with the policy points
framework integrations need. The middleware itself is a user of it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SECRET, T0, Clock, Harness, call_wsgi, cookie_value
from wsgisession import (
    ConfigurationError,
    CookieUpdate,
    MemoryStore,
    Options,
    Session,
    SessionManager,
    SessionMiddleware,
)
from wsgisession.errors import InvalidToken
from wsgisession.payload import UNSET


def manager(**options) -> SessionManager:
    options.setdefault("secret_keys", [SECRET])
    options.setdefault("clock", Clock())
    return SessionManager(**options)


def test_a_round_trip_without_any_wsgi_middleware():
    m = manager()
    session = m.open_session()  # no environ, no cookie: a new session
    session["user"] = "alice"
    update = m.save_session(session)
    assert isinstance(update, CookieUpdate) and not update.deletion
    assert update.max_age == 86400 and update.expires == T0 + 86400
    assert update.header.startswith(f"session={update.value}; Max-Age=86400; Path=/;")
    again = m.open_session(value=update.value)
    assert isinstance(again, Session)
    assert dict(again) == {"user": "alice"} and again.is_new is False
    assert m.save_session(again) is None  # unchanged: nothing to send


def test_open_session_reads_the_environ_like_the_middleware():
    m = manager()
    session = m.open_session()
    session["n"] = 1
    value = m.save_session(session).value
    from_environ = m.open_session({"HTTP_COOKIE": f"other=1; session={value}"})
    assert from_environ["n"] == 1
    copies = m.open_session(value=[value, "garbage"])  # several copies, header order
    assert copies["n"] == 1


def test_an_untouched_session_commits_to_nothing():
    m = manager()
    session = m.open_session(value="garbage-token")
    assert m.save_session(session) is None
    assert session.accessed is False


def test_destroy_and_failed_responses():
    m = manager()
    session = m.open_session()
    session["a"] = 1
    value = m.save_session(session).value
    loaded = m.open_session(value=value)
    loaded["a"] = 2
    assert m.save_session(loaded, failed=True) is None  # a 5xx writes nothing
    gone = m.open_session(value=value)
    gone.invalidate()
    update = m.save_session(gone, failed=True)  # ...but a logout still clears it
    assert update.deletion and update.max_age == 0
    assert update.header.startswith("session=; Max-Age=0; Path=/; expires=Thu, 01-Jan-1970")


class BrowserCookies(SessionManager):
    """A framework's policy: browser-session cookies (Flask's permanent=False, Django's
    SESSION_EXPIRE_AT_BROWSER_CLOSE, Pyramid's max_age=None with a timeout)."""

    def cookie_max_age(self, session, seconds):
        return None


def test_cookie_max_age_hook_gives_a_browser_cookie_with_a_server_side_timeout():
    clock = Clock()
    m = BrowserCookies(secret_keys=[SECRET], max_age=1200, clock=clock)
    session = m.open_session()
    session["user"] = "alice"
    update = m.save_session(session)
    assert update.max_age is None and update.expires is None
    assert "Max-Age" not in update.header and "expires" not in update.header
    payload = m.decode(update.value)
    assert payload.expires == T0 + 1200  # the server still enforces the idle timeout
    clock.advance(1201)
    late = m.open_session(value=update.value)
    assert late.is_new and dict(late) == {}


def test_the_middleware_uses_the_hook_too():
    class Browser(SessionMiddleware):
        def cookie_max_age(self, session, seconds):
            return None if not session.get("remember") else seconds

    def app(environ, start_response):
        environ["session"]["remember"] = environ["PATH_INFO"] == "/remember"
        start_response("200 OK", [])
        return [b""]

    mw = Browser(app, secret_keys=[SECRET], clock=Clock())
    [header] = [v for n, v in call_wsgi(mw, "/").headers if n == "Set-Cookie"]
    assert "Max-Age" not in header
    [header] = [v for n, v in call_wsgi(mw, "/remember").headers if n == "Set-Cookie"]
    assert "Max-Age=86400" in header


def test_del_max_age_returns_to_the_default_lifetime():
    """Django's set_expiry(None): the token must not pin today's default."""
    m = manager(max_age=600)
    session = m.open_session()
    session["a"] = 1
    session.max_age = 60
    value = m.save_session(session).value
    assert m.decode(value).max_age == 60
    loaded = m.open_session(value=value)
    assert loaded.max_age == 60 and loaded.default_max_age == 600
    del loaded.max_age
    assert loaded.max_age == 600
    update = m.save_session(loaded)  # forced: the session's own value leaves the token
    assert update is not None
    assert m.decode(update.value).max_age is UNSET
    assert b'"m"' not in m.codec.open(update.value, "data", "session")[0]
    longer = manager(max_age=7200, clock=m.options.clock)  # a later change of max_age
    assert longer.open_session(value=update.value).max_age == 7200


def test_decode_names_why_a_token_fails():
    m = manager()
    with pytest.raises(InvalidToken) as info:
        m.decode("not-a-token!")
    assert (info.value.event, info.value.reason) == ("invalid", "malformed")
    session = m.open_session()
    session["a"] = 1
    value = m.save_session(session).value
    payload = m.decode(value)
    assert payload.data == {"a": 1} and payload.kid == m.codec.primary_kid
    with pytest.raises(InvalidToken) as info:
        m.decode(value, now=T0 + 86400)
    assert (info.value.event, info.value.reason) == ("expired", "idle")


def test_store_mode_through_the_seam():
    store = MemoryStore()
    m = manager(store=store)
    session = m.open_session()
    session["cart"] = ["book"]
    update = m.save_session(session)
    key = m.store_key(session.id)
    assert store.get(key) is not None and len(store) == 1
    loaded = m.open_session(value=update.value)
    loaded["cart"].append("pen")  # a nested change
    m.save_session(loaded)
    assert dict(m.open_session(value=update.value)) == {"cart": ["book", "pen"]}
    bye = m.open_session(value=update.value)
    bye.invalidate()
    assert m.save_session(bye).deletion and len(store) == 0


def test_options_are_read_on_the_manager_and_checked_once():
    m = manager(cookie_name="sid", max_age=60)
    assert (m.cookie_name, m.max_age, m.options.cookie_name) == ("sid", 60, "sid")
    assert m.environ_key == "session" and m.always_secure is False
    with pytest.raises(AttributeError):
        m.options.max_age = 5  # read-only
    with pytest.raises(ConfigurationError) as info:
        SessionManager(secret_keys=[SECRET], colour="blue")
    assert info.value.option == "colour"
    options = Options(secret_keys=[SECRET], cookie_name="a")
    assert SessionManager(options=options).cookie_name == "a"
    assert options.replace(cookie_name="b").cookie_name == "b" and options.cookie_name == "a"
    with pytest.raises(ConfigurationError) as info:
        SessionManager(secret_keys=[SECRET], options=options)
    assert info.value.option == "options"
    assert "SECRET" not in repr(options) and SECRET not in repr(options)


def test_the_harness_middleware_is_a_manager():
    h = Harness(lambda environ, session: session.update(a=1))
    assert isinstance(h.mw, SessionManager)
    value = cookie_value(h.client.get("/"))
    assert dict(h.mw.open_session(value=value)) == {"a": 1}
    assert json.loads(h.mw.options.serializer.dumps({"a": 1})) == {"a": 1}


def test_save_session_not_final_keeps_the_session_open_for_more_saves():
    """A framework that saves more than once per request (Django's session.save(), then
    its middleware) passes final=False: each call decides afresh."""
    store = MemoryStore()
    m = manager(store=store)
    session = m.open_session()
    session["a"] = 1
    first = m.save_session(session, final=False)
    session["b"] = 2  # not a late write: the session is still open
    second = m.save_session(session, final=False)
    assert first is not None and second is not None and first.value != second.value
    assert dict(m.open_session(value=second.value)) == {"a": 1, "b": 2}
    assert m.save_session(session, final=False) is None  # nothing new
    session.clear()  # emptying a saved session destroys it
    gone = m.save_session(session, final=False)
    assert gone is not None and gone.deletion and len(store) == 0
    session["c"] = 3  # ...and later writes make a new one
    third = m.save_session(session, final=False)
    assert third is not None and not third.deletion and len(store) == 1
