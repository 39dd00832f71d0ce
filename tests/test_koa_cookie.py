"""koa-session's cookie-mode scenarios (research/koa-session.md §6.2, C1-C43), ported.

One test per koa scenario, same intent. Where DESIGN.md differs from koa-session the
docstring says so and the test asserts DESIGN's behaviour.
"""

from __future__ import annotations

import base64
import json
import re

import pytest
import webob
import webtest

from tests.conftest import (
    SECRET,
    T0,
    TOKEN_RE,
    Clock,
    Harness,
    call_wsgi,
    cookie_value,
    set_cookies,
)
from wsgisession import (
    ConfigurationError,
    SerializationError,
    SessionEvent,
    SessionMiddleware,
)

DELETION = (
    "session=; Max-Age=0; Path=/; expires=Thu, 01-Jan-1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
)
EXPIRES_1D = "expires=Sat, 16-Jan-2027 08:00:00 GMT"  # T0 + 86400, WebOb spelling


def _ok_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def routes(**table):
    """A handler dispatching on PATH_INFO (``/set`` → ``table["set"]``, ``/`` → ``table["index"]``)."""

    def handler(environ, session):
        name = environ["PATH_INFO"].strip("/") or "index"
        return table[name](environ, session)

    return handler


def populated(h: Harness, **data) -> str:
    """Have the harness write ``data`` into a fresh session; return the Cookie header."""
    response = h.get("/set", cookie="", extra_environ={"test.data": data})
    value = cookie_value(response)
    assert value, set_cookies(response)
    return f"session={value}"


def _set_from_environ(environ, session):
    session.update(environ["test.data"])


def test_c01_populated_session_answers_200():
    """C1: session with keys, handler sets message='hi' and returns the session → 200 with a session cookie."""
    h = Harness(lambda environ, session: (session.__setitem__("message", "hi"), dict(session))[1])
    response = h.client.get("/")
    assert response.status_int == 200
    assert response.text == "{'message': 'hi'}"
    assert len(set_cookies(response)) == 1
    assert TOKEN_RE.match(cookie_value(response))
    assert h.events.names() == ["created"]


def test_c02_no_secret_keys_is_a_configuration_error():
    """C2 (no app.keys → 500 at request time): DESIGN differs — ConfigurationError at construction naming secret_keys."""
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(_ok_app)
    assert info.value.option == "secret_keys"
    assert "secret_keys" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(_ok_app, secret_keys=[])
    assert info.value.option == "secret_keys"


def test_c03_no_app_is_a_configuration_error():
    """C3 (no app instance → throw at construction): maps to ConfigurationError naming `app` (a missing argument is Python's TypeError)."""
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(None, secret_keys=[SECRET])
    assert info.value.option == "app"
    with pytest.raises(TypeError):
        SessionMiddleware()  # type: ignore[call-arg]


def test_c04_token_is_opaque_not_signed_plaintext():
    """C4 (signed:false works without keys): not applicable, every cookie is encrypted; the plaintext never appears in the Set-Cookie."""
    h = Harness(lambda environ, session: session.__setitem__("message", "plaintext-marker"))
    response = h.client.get("/")
    assert response.status_int == 200
    header = set_cookies(response)[0]
    value = cookie_value(response)
    assert TOKEN_RE.match(value)
    assert "plaintext-marker" not in header
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert b"plaintext-marker" not in raw
    assert b"message" not in raw


def test_c05_round_trip_on_204_with_samesite_lax():
    """C5: POST sets string=';' with 204, GET reads it back; DESIGN differs on SameSite: default is Lax, so the attribute is present."""

    def app(environ, start_response):
        session = environ["session"]
        if environ["REQUEST_METHOD"] == "POST":
            session["string"] = ";"
            start_response("204 No Content", [])
            return []
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [session["string"].encode()]

    h = Harness(app=app)
    response = h.client.post("/", status=204)
    header = set_cookies(response)[0]
    assert header.endswith("; HttpOnly; SameSite=Lax")
    assert h.client.get("/").text == ";"


def test_c06_untouched_new_session_sends_nothing():
    """C6: handler never touches the session → no Set-Cookie (and, per DESIGN §4, no Vary)."""
    h = Harness(lambda environ, session: "ok")
    response = h.client.get("/")
    assert response.status_int == 200
    assert set_cookies(response) == []
    assert "Vary" not in response.headers
    assert "Cache-Control" not in response.headers
    assert h.events == []


def test_c07_accessed_only_sends_no_cookie():
    """C7: `ctx.session;` only → no Set-Cookie; DESIGN adds `Vary: Cookie` because the session was touched."""
    h = Harness(lambda environ, session: str(session.is_new))
    response = h.client.get("/")
    assert response.text == "True"
    assert set_cookies(response) == []
    assert response.headers.getall("Vary") == ["Cookie"]
    assert "Cache-Control" not in response.headers


def test_c08_written_new_session_sets_cookie():
    """C8: new session, message='hello', empty body → Set-Cookie for our cookie name."""
    h = Harness(lambda environ, session: session.__setitem__("message", "hello"))
    response = h.client.get("/")
    assert response.body == b""
    (header,) = set_cookies(response)
    assert re.fullmatch(
        r"session=[A-Za-z0-9_-]+; Max-Age=86400; Path=/; "
        + EXPIRES_1D
        + "; HttpOnly; SameSite=Lax",
        header,
    )


def test_c09_returning_empty_session_sends_no_cookie():
    """C9: body = empty new session (read only) → no Set-Cookie."""
    h = Harness(lambda environ, session: dict(session))
    response = h.client.get("/")
    assert response.text == "{}"
    assert set_cookies(response) == []


def test_c10_saved_session_not_accessed_sends_nothing():
    """C10: with the C8 cookie, session not accessed → no Set-Cookie, no Vary."""
    h = Harness(routes(set=_set_from_environ, index=lambda environ, session: "ok"))
    cookie = populated(h, message="hello")
    response = h.get("/", cookie=cookie)
    assert set_cookies(response) == []
    assert "Vary" not in response.headers


def test_c11_saved_session_is_loaded():
    """C11: with the C8 cookie → session['message'] == 'hello', 200, not new."""
    h = Harness(
        routes(
            set=_set_from_environ,
            index=lambda environ, session: f"{session['message']} {session.is_new}",
        )
    )
    cookie = populated(h, message="hello")
    response = h.get("/", cookie=cookie)
    assert response.status_int == 200
    assert response.text == "hello False"


def test_c12_saved_session_read_only_sends_no_cookie():
    """C12: with the C8 cookie, read only → no Set-Cookie (Vary: Cookie only)."""
    h = Harness(routes(set=_set_from_environ, index=lambda environ, session: session["message"]))
    cookie = populated(h, message="hello")
    response = h.get("/", cookie=cookie)
    assert response.text == "hello"
    assert set_cookies(response) == []
    assert response.headers.getall("Vary") == ["Cookie"]


def test_c13_saved_session_changed_sets_cookie():
    """C13: with the C8 cookie, set money='$$$' → Set-Cookie; DESIGN differs: it carries SameSite=Lax, and both keys survive."""
    h = Harness(
        routes(
            set=_set_from_environ,
            money=lambda environ, session: session.__setitem__("money", "$$$"),
            index=lambda environ, session: json.dumps(dict(session), sort_keys=True),
        )
    )
    cookie = populated(h, message="hello")
    response = h.get("/money", cookie=cookie)
    (header,) = set_cookies(response)
    assert header.startswith("session=")
    assert header.endswith("; SameSite=Lax")
    new_cookie = f"session={cookie_value(response)}"
    assert new_cookie != cookie
    assert h.get("/", cookie=new_cookie).text == '{"message": "hello", "money": "$$$"}'


def test_c14_write_then_null_sends_one_deletion_cookie():
    """C14 (signed: session=null → koa.sess and koa.sess.sig cleared): DESIGN has no .sig cookie — exactly one deletion Set-Cookie."""

    def handler(environ, session):
        session["hello"] = {}
        environ["session"] = None
        return str(environ["session"] is None)

    h = Harness(handler)
    response = h.client.get("/")
    assert response.status_int == 200
    assert response.text == "True"
    assert set_cookies(response) == [DELETION]
    assert h.events.names() == ["destroyed"]


def test_c15_null_with_incoming_cookie_deletes_it():
    """C15 (signed:false, session=null → clearing cookie): with a valid incoming cookie, exactly one deletion Set-Cookie and a `destroyed` event."""

    def destroy(environ, session):
        session["hello"] = {}
        environ["session"] = None

    h = Harness(routes(set=_set_from_environ, index=destroy))
    cookie = populated(h, hello="world")
    response = h.get("/", cookie=cookie)
    assert set_cookies(response) == [DELETION]
    assert h.events.names() == ["created", "destroyed"]
    # The destroyed session is the one that came in (same id hash as when it was created).
    assert h.events[1].session_id_hash == h.events[0].session_id_hash is not None
    # The cookie no longer matters on the next request: a fresh session.
    follow = Harness(lambda environ, session: str(session.is_new))
    assert follow.get("/", cookie="session=").text == "True"


def test_c16_null_deletion_keeps_scope_attributes():
    """C16 (defaults, session=null → `koa.sess=;`): the deletion cookie carries the same name/Path/Domain/Secure/HttpOnly/SameSite as a normal write."""
    h = Harness(
        lambda environ, session: environ.__setitem__("session", None),
        cookie_name="sid",
        path="/app",
        domain="example.com",
        samesite="Strict",
    )
    response = h.client.get("/app/x", extra_environ={"wsgi.url_scheme": "https"})
    assert set_cookies(response) == [
        "sid=; Domain=example.com; Max-Age=0; Path=/app; expires=Thu, 01-Jan-1970 00:00:00 GMT; "
        "secure; HttpOnly; SameSite=Strict"
    ]


def test_c17_invalid_cookie_gives_new_session_without_set_cookie():
    """C17: Cookie `session=invalid-session` → is_new True, 200; DESIGN adds exactly one `invalid` event and NO Set-Cookie."""
    h = Harness(lambda environ, session: str(session.is_new))
    response = h.get("/", cookie="session=invalid-session;")
    assert response.status_int == 200
    assert response.text == "True"
    assert set_cookies(response) == []
    assert h.events.names() == ["invalid"]
    assert h.events[0].session_id_hash is None


class _LoadsFails:
    """A serializer whose ``loads`` always raises (koa C18's throwing decode)."""

    def dumps(self, obj):
        return json.dumps(obj).encode()

    def loads(self, data):
        raise RuntimeError("decode error")


def test_c18_decode_error_gives_fresh_session_not_500():
    """C18 (decode throws → 500 with clearing cookie): DESIGN differs — fresh session + `invalid` event (reason `decode`), 200, no Set-Cookie."""
    writer = Harness(lambda environ, session: session.__setitem__("foo", "bar"))
    cookie = f"session={cookie_value(writer.client.get('/'))}"
    h = Harness(
        lambda environ, session: f"{session.is_new} {dict(session)}", serializer=_LoadsFails()
    )
    response = h.get("/", cookie=cookie)
    assert response.status_int == 200
    assert response.text == "True {}"
    assert set_cookies(response) == []
    assert [(e.name, e.reason) for e in h.events] == [("invalid", "decode")]


class _DumpsFails:
    def __init__(self):
        self.error = RuntimeError("encode error")

    def dumps(self, obj):
        raise self.error

    def loads(self, data):
        return json.loads(data)


def test_c19_encode_error_propagates_and_sends_no_cookie():
    """C19 (encode throws → 500, app error event): the error propagates out of the middleware (as SerializationError chained to it) and no header is sent."""
    serializer = _DumpsFails()
    h = Harness(lambda environ, session: session.__setitem__("foo", "bar"), serializer=serializer)
    calls = []
    environ = webob.Request.blank("/").environ
    with pytest.raises(SerializationError) as info:
        h.mw(environ, lambda status, headers, exc_info=None: calls.append(headers))
    assert info.value.__cause__ is serializer.error
    assert calls == []  # nothing reached the server: no cookie
    assert "created" not in h.events.names()
    with pytest.raises(SerializationError):
        h.client.get("/")


def test_c20_session_contents_and_cookie():
    """C20: foo='bar', body = the session's contents → {'foo': 'bar'} and a non-empty session cookie, 200."""
    h = Harness(lambda environ, session: (session.__setitem__("foo", "bar"), dict(session))[1])
    response = h.client.get("/")
    assert response.status_int == 200
    assert response.text == "{'foo': 'bar'}"
    assert re.match(r"session=[A-Za-z0-9_-]+;", set_cookies(response)[0])


def test_c21_length():
    """C21: foo='bar', body = len(session) → '1', with a session cookie."""
    h = Harness(lambda environ, session: (session.__setitem__("foo", "bar"), str(len(session)))[1])
    response = h.client.get("/")
    assert response.text == "1"
    assert re.match(r"session=[A-Za-z0-9_-]+;", set_cookies(response)[0])


def test_c22_populated():
    """C22: foo='bar', body = populated → 'True' (koa `populated` is bool(session) here); an empty session is falsy."""
    h = Harness(
        routes(
            set=lambda environ, session: (session.__setitem__("foo", "bar"), str(bool(session)))[1],
            index=lambda environ, session: str(bool(session)),
        )
    )
    response = h.client.get("/set")
    assert response.text == "True"
    assert cookie_value(response)
    assert Harness(lambda environ, session: str(bool(session))).client.get("/").text == "False"


def test_c23_save_forces_empty_new_session():
    """C23: save() on an empty new session → a session cookie is written, body 'hello'; it loads back as an existing empty session."""
    h = Harness(
        routes(
            set=lambda environ, session: (session.save(), "hello")[1],
            index=lambda environ, session: f"{session.is_new} {len(session)}",
        )
    )
    response = h.client.get("/set")
    assert response.text == "hello"
    value = cookie_value(response)
    assert value and TOKEN_RE.match(value)
    assert h.events.names() == ["created"]
    assert h.get("/", cookie=f"session={value}").text == "False 0"


def test_c24_null_without_cookie_still_clears():
    """C24: session = None with no cookie sent → a (deletion) Set-Cookie, 200."""
    h = Harness(lambda environ, session: environ.__setitem__("session", None))
    response = h.client.get("/")
    assert response.status_int == 200
    assert set_cookies(response) == [DELETION]
    assert response.headers["Cache-Control"] == "private"


def test_c25_assign_empty_dict_sends_nothing():
    """C25: session = {} → no Set-Cookie."""
    h = Harness(lambda environ, session: environ.__setitem__("session", {}))
    response = h.client.get("/")
    assert set_cookies(response) == []
    assert h.events == []


def test_c26_assign_dict_writes_it():
    """C26: session = {'message': 'hello'} → Set-Cookie; the next request reads it."""
    h = Harness(
        routes(
            set=lambda environ, session: environ.__setitem__("session", {"message": "hello"}),
            index=lambda environ, session: session["message"],
        )
    )
    response = h.client.get("/set")
    assert len(set_cookies(response)) == 1
    assert cookie_value(response)
    assert h.client.get("/").text == "hello"


def test_c27_assign_other_type_is_type_error():
    """C27: session = 'asdf' → 500 in koa; here a TypeError out of the middleware, no header sent."""
    h = Harness(lambda environ, session: environ.__setitem__("session", "asdf"))
    with pytest.raises(TypeError):
        h.client.get("/")
    calls = []
    with pytest.raises(TypeError):
        h.mw(webob.Request.blank("/").environ, lambda *args: calls.append(args))
    assert calls == []


class _Unauthorized(Exception):
    pass


def test_c28_caught_401_still_commits():
    """C28: handler writes name='funny' then throws 401, caught by a layer that answers 401 → Set-Cookie present (non-5xx commits)."""

    def app(environ, start_response):
        environ["session"]["name"] = "funny"
        raise _Unauthorized()

    def catching(environ, start_response):
        try:
            return app(environ, start_response)
        except _Unauthorized:
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"Unauthorized"]

    h = Harness(app=catching)
    response = h.client.get("/", status=401)
    assert response.text == "Unauthorized"
    value = cookie_value(response)
    assert value and TOKEN_RE.match(value)
    reader = Harness(lambda environ, session: session["name"])
    assert reader.get("/", cookie=f"session={value}").text == "funny"


def test_c29_short_max_age_round_trip():
    """C29: max_age=100, POST sets message='hi' → Set-Cookie; an immediate GET (clock +50 s) reads 'hi'."""
    h = Harness(
        routes(
            set=lambda environ, session: (session.__setitem__("message", "hi"), "200")[1],
            index=lambda environ, session: session.get("message", ""),
        ),
        max_age=100,
    )
    response = h.client.post("/set")
    assert "Max-Age=100;" in set_cookies(response)[0]
    h.clock.advance(50)
    assert h.client.get("/").text == "hi"


def test_c30_expired_session_is_new():
    """C30: max_age=100, POST then (instead of sleeping) the clock advances past max_age → body '', `expired` event, no Set-Cookie."""
    h = Harness(
        routes(
            set=lambda environ, session: session.__setitem__("message", "hi"),
            index=lambda environ, session: session.get("message", ""),
        ),
        max_age=100,
    )
    cookie = f"session={cookie_value(h.client.post('/set'))}"
    h.clock.advance(100)  # now == e: no longer valid (valid only while now < e)
    response = h.get("/", cookie=cookie)
    assert response.text == ""
    assert set_cookies(response) == []
    assert [(e.name, e.reason) for e in h.events] == [("created", "new"), ("expired", "idle")]


def test_c31_max_age_is_exposed():
    """C31: max_age=100 → session.max_age == 100 (seconds here, ms in koa)."""
    h = Harness(lambda environ, session: str(session.max_age), max_age=100)
    assert h.client.get("/").text == "100"


def test_c32_setting_max_age_sets_expiry():
    """C32: foo='bar' then session.max_age=100 → the Set-Cookie has Max-Age=100 and a matching Expires."""

    def handler(environ, session):
        session["foo"] = "bar"
        session.max_age = 100

    h = Harness(handler)
    (header,) = set_cookies(h.client.get("/"))
    assert "; Max-Age=100; Path=/; expires=Fri, 15-Jan-2027 08:01:40 GMT;" in header


def test_c33_setting_max_age_forces_empty_save():
    """C33: only session.max_age=100 on an empty session → forced save with Max-Age=100/Expires."""
    h = Harness(lambda environ, session: (setattr(session, "max_age", 100), dict(session))[1])
    response = h.client.get("/")
    assert response.text == "{}"
    (header,) = set_cookies(response)
    assert cookie_value(response)
    assert "; Max-Age=100; Path=/; expires=Fri, 15-Jan-2027 08:01:40 GMT;" in header


def test_c34_assigning_dict_with_maxage_key_is_plain_data():
    """C34 (session = {maxAge: 100} sets the lifetime): DESIGN differs — a replacing dict is data only; max_age is set via the attribute, so the default Max-Age applies."""
    h = Harness(
        routes(
            set=lambda environ, session: environ.__setitem__("session", {"maxAge": 100}),
            index=lambda environ, session: f"{dict(session)} {session.max_age}",
        )
    )
    response = h.client.get("/set")
    (header,) = set_cookies(response)
    assert f"; Max-Age=86400; Path=/; {EXPIRES_1D};" in header
    assert h.client.get("/").text == "{'maxAge': 100} 86400"


def test_c35_regenerate_issues_new_cookie_and_id():
    """C35: session set, then a request with the cookie calls regenerate() → new Set-Cookie differing from the first, same data, new id."""

    def handler(environ, session):
        if environ["PATH_INFO"] == "/set":
            environ["session"] = {"message": "hi"}
            return None
        old = session.id
        session.regenerate()
        assert session["message"] == "hi"
        return f"{old}|{session.id}"

    h = Harness(handler)
    first = h.client.get("/set")
    first_header = set_cookies(first)[0]
    assert first_header.startswith("session=")
    second = h.client.get("/")
    assert second.status_int == 200
    (second_header,) = set_cookies(second)
    assert second_header.startswith("session=")
    assert second_header != first_header
    old_id, new_id = second.text.split("|")
    assert old_id != new_id
    assert "regenerated" in h.events.names()
    reader = Harness(lambda environ, session: f"{session['message']} {session.id == new_id}")
    assert reader.get("/", cookie=f"session={cookie_value(second)}").text == "hi True"


def test_c36_write_from_an_inner_layer_is_kept():
    """C36 (middleware before session() writes ctx.session): mapped to a WSGI layer between SessionMiddleware and the app writing foo='hi'; kept and readable."""

    def app(environ, start_response):
        body = repr(dict(environ["session"])).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    def layer(environ, start_response):
        environ["session"]["foo"] = "hi"
        return app(environ, start_response)

    h = Harness(app=layer)
    first = h.client.get("/")
    assert first.text == "{'foo': 'hi'}"
    assert set_cookies(first)[0].startswith("session=")
    second = h.client.get("/")
    assert second.status_int == 200
    assert second.text == "{'foo': 'hi'}"
    assert h.events.names() == ["created"]  # the second request found the session


def test_c37_samesite_none_needs_secure():
    """C37: samesite="None" → `SameSite=None` with `secure` (over https; and on http too, since None requires Secure)."""
    h = Harness(
        lambda environ, session: (environ.__setitem__("session", {"foo": "bar"}), "bar")[1],
        samesite="None",
    )
    response = h.client.get("/", extra_environ={"wsgi.url_scheme": "https"})
    assert response.text == "bar"
    (header,) = set_cookies(response)
    assert header.endswith(
        f"; Max-Age=86400; Path=/; {EXPIRES_1D}; secure; HttpOnly; SameSite=None"
    )
    assert h.events.names() == ["created"]
    (header,) = set_cookies(h.client.get("/"))
    assert header.endswith("; secure; HttpOnly; SameSite=None")


def test_c38_samesite_lax():
    """C38: samesite="Lax" → `Path=/; ...; HttpOnly; SameSite=Lax` (WebOb's attribute order)."""
    h = Harness(
        lambda environ, session: environ.__setitem__("session", {"foo": "bar"}), samesite="lax"
    )
    (header,) = set_cookies(h.client.get("/"))
    assert header.endswith(f"; Max-Age=86400; Path=/; {EXPIRES_1D}; HttpOnly; SameSite=Lax")


def _uid(environ):
    for part in environ.get("HTTP_COOKIE", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "uid":
            return value
    return None


def test_c39_valid_and_before_save_uid_flow():
    """C39: valid() compares the session's uid with a `uid` cookie, before_save() stores it; same uid → same session, other uid → fresh session + `invalid` (reason `valid`)."""
    clock = Clock()

    def handler(environ, session):
        if "foo" not in session:
            session["foo"] = f"{int(clock())}|uid:{_uid(environ)}"
        return json.dumps({"foo": session["foo"], "uid": _uid(environ)})

    h = Harness(
        handler,
        clock=clock,
        valid=lambda environ, session: session.get("uid") == _uid(environ),
        before_save=lambda environ, session: session.__setitem__("uid", _uid(environ)),
    )
    first = h.get("/", cookie="uid=123")
    value = cookie_value(first)
    assert value
    clock.advance(10)
    second = h.get("/", cookie=f"session={value}; uid=123")
    assert json.loads(second.text) == json.loads(first.text)
    assert set_cookies(second) == []
    clock.advance(10)
    third = h.get("/", cookie=f"session={value}; uid=456")
    body = json.loads(third.text)
    assert body["uid"] == "456"
    assert body["foo"] != json.loads(first.text)["foo"]
    assert body["foo"] == f"{T0 + 20}|uid:456"
    assert [(e.name, e.reason) for e in h.events] == [
        ("created", "new"),
        ("invalid", "valid"),
        ("created", "new"),
    ]


class _Envelope:
    """koa C40's custom encode/decode: wraps the payload in {"enveloped": ...}."""

    def __init__(self):
        self.dumped = 0
        self.loaded = 0

    def dumps(self, obj):
        self.dumped += 1
        return json.dumps({"enveloped": obj}).encode()

    def loads(self, data):
        self.loaded += 1
        return json.loads(data)["enveloped"]


def test_c40_custom_serializer_round_trips():
    """C40: a custom serializer (envelope) is used to encode then decode; counter 1 then 2; its raw JSON never shows in the cookie (sealed)."""
    serializer = _Envelope()

    def handler(environ, session):
        session["counter"] = session.get("counter", 0) + 1
        return str(session["counter"])

    h = Harness(handler, serializer=serializer)
    first = h.client.get("/")
    assert first.text == "1"
    assert serializer.dumped >= 1
    assert serializer.loaded == 0
    assert TOKEN_RE.match(cookie_value(first))
    assert "enveloped" not in set_cookies(first)[0]
    second = h.client.get("/")
    assert second.text == "2"
    assert serializer.loaded == 1


def test_c41_rolling_does_not_write_empty_new_session():
    """C41: rolling=True, no cookie, body = session → {} and no Set-Cookie."""
    h = Harness(lambda environ, session: dict(session), rolling=True)
    response = h.client.get("/")
    assert response.text == "{}"
    assert set_cookies(response) == []


def test_c42_rolling_reissues_exactly_one_cookie():
    """C42: rolling=True: /set → exactly ONE Set-Cookie (no .sig cookie); a later read with the cookie → exactly ONE fresh Set-Cookie with a moved expiry."""
    h = Harness(
        routes(
            set=lambda environ, session: (environ.__setitem__("session", {"foo": "bar"}), "set")[1],
            index=lambda environ, session: repr(dict(session)),
        ),
        rolling=True,
    )
    first = h.client.get("/set")
    assert len(set_cookies(first)) == 1
    h.clock.advance(3600)
    second = h.client.get("/")
    assert second.text == "{'foo': 'bar'}"
    (header,) = set_cookies(second)
    assert cookie_value(second) != cookie_value(first)
    assert "; Max-Age=86400; Path=/; expires=Sat, 16-Jan-2027 09:00:00 GMT;" in header


def test_c43_two_middlewares_coexist():
    """C43 (two session() on one app don't throw): two nested SessionMiddleware with different cookie_name/environ_key each keep their own data (koa #62)."""

    def app(environ, start_response):
        outer, inner = environ["outer_session"], environ["inner_session"]
        outer["n"] = outer.get("n", 0) + 1
        inner["m"] = inner.get("m", 0) + 10
        body = f"{dict(outer)} {dict(inner)}".encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    clock = Clock()
    inner_mw = SessionMiddleware(
        app, secret_keys=[SECRET], cookie_name="inner", environ_key="inner_session", clock=clock
    )
    outer_mw = SessionMiddleware(
        inner_mw,
        secret_keys=[SECRET],
        cookie_name="outer",
        environ_key="outer_session",
        clock=clock,
    )
    client = webtest.TestApp(outer_mw)
    first = client.get("/")
    assert first.text == "{'n': 1} {'m': 10}"
    assert sorted(h.split("=", 1)[0] for h in set_cookies(first)) == ["inner", "outer"]
    assert first.headers.getall("Vary") == ["Cookie"]
    second = client.get("/")
    assert second.text == "{'n': 2} {'m': 20}"
    assert len(set_cookies(second)) == 2
    # Each token is bound to its cookie name: swapping names yields nothing.
    swapped = f"outer={cookie_value(second, 'inner')}; inner={cookie_value(second, 'outer')}"
    events: list[SessionEvent] = []
    probe = SessionMiddleware(
        lambda environ, start_response: (
            start_response("200 OK", []),
            [str(len(environ["session"])).encode()],
        )[1],
        secret_keys=[SECRET],
        cookie_name="outer",
        on_event=events.append,
        clock=clock,
    )
    body = call_wsgi(probe, cookie=swapped).body
    assert body == b"0"
    assert [e.name for e in events] == ["invalid"]
