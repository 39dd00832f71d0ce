"""Commit rules (DESIGN §4, §8, §9) and response-header checks (security.md §3 E, 49-64)."""

from __future__ import annotations

import datetime
import sys

import pytest
import webob

from tests.conftest import (
    OTHER_SECRET,
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
    JSONSerializer,
    SessionMiddleware,
    SessionTooLarge,
    WSGISessionError,
)

DELETION = (
    "session=; Max-Age=0; Path=/; expires=Thu, 01-Jan-1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
)
MAX_COOKIE_AGE = 400 * 24 * 3600  # 34_560_000


def _ok_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def make_app(action, status="200 OK", headers=()):
    """A WSGI app: ``action(environ, session)`` then a response with extra ``headers``."""

    def app(environ, start_response):
        result = action(environ, environ["session"])
        body = b"" if result is None else str(result).encode()
        start_response(status, [("Content-Type", "text/plain"), *headers])
        return [body]

    return app


def header_values(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def cookie_for(data, **options) -> str:
    """A ``Cookie`` header carrying a session with ``data`` (written by a fresh harness)."""
    writer = Harness(lambda environ, session: session.update(data), **options)
    value = cookie_value(writer.client.get("/"))
    assert value
    return f"session={value}"


def parse_attrs(header):
    """``{"max-age": "...", "expires": "...", ...}`` from one Set-Cookie value."""
    attrs = {}
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        attrs[key.lower()] = value
    return attrs


# -- 51, 50: touching and Vary --------------------------------------------------------


def test_untouched_session_adds_nothing_even_with_cookie():
    """51: never accessed (even with a valid cookie) → no Set-Cookie, no Vary, no Cache-Control."""
    cookie = cookie_for({"a": 1})
    h = Harness(app=make_app(lambda environ, session: "x", headers=[("Vary", "Accept")]))
    response = h.get("/", cookie=cookie)
    assert set_cookies(response) == []
    assert response.headers.getall("Vary") == ["Accept"]
    assert "Cache-Control" not in response.headers
    assert h.events == []


@pytest.mark.parametrize(
    ("app_vary", "expected"),
    [
        (None, ["Cookie"]),
        ("Accept-Encoding", ["Accept-Encoding, Cookie"]),
        ("*", ["*"]),
        ("Cookie", ["Cookie"]),
        ("accept-encoding, cookie", ["accept-encoding, cookie"]),
        ("Accept, Accept-Language", ["Accept, Accept-Language, Cookie"]),
    ],
)
def test_read_only_merges_vary(app_vary, expected):
    """50: touched read-only → no Set-Cookie; `Cookie` merged into Vary once; `Vary: *` left alone."""
    cookie = cookie_for({"a": 1})
    headers = [] if app_vary is None else [("Vary", app_vary)]
    h = Harness(app=make_app(lambda environ, session: session["a"], headers=headers))
    response = h.get("/", cookie=cookie)
    assert response.text == "1"
    assert set_cookies(response) == []
    assert response.headers.getall("Vary") == expected
    assert "Cache-Control" not in response.headers


@pytest.mark.parametrize(
    ("app_vary", "expected"),
    [
        ([("Vary", "Accept"), ("Vary", "Cookie")], ["Accept", "Cookie"]),
        ([("Vary", "Accept"), ("Vary", "*")], ["Accept", "*"]),
    ],
    ids=["cookie-in-second-field", "star-in-second-field"],
)
def test_read_only_merges_vary_across_several_fields(app_vary, expected):
    """50: with several Vary fields (RFC 9110 lists), `Cookie` is not duplicated and `*` is left alone."""
    cookie = cookie_for({"a": 1})
    h = Harness(app=make_app(lambda environ, session: session["a"], headers=app_vary))
    response = h.get("/", cookie=cookie)
    assert response.headers.getall("Vary") == expected


def test_written_session_has_exactly_one_cookie_with_safe_value():
    """49: a modified session → exactly one Set-Cookie for our name, base64url value, default attributes."""
    h = Harness(lambda environ, session: session.__setitem__("a", 1))
    response = h.client.get("/", extra_environ={"wsgi.url_scheme": "https"})
    (header,) = set_cookies(response)
    assert TOKEN_RE.match(cookie_value(response))
    assert header.endswith(
        "; Max-Age=86400; Path=/; expires=Sat, 16-Jan-2027 08:00:00 GMT; secure; HttpOnly; "
        "SameSite=Lax"
    )
    assert "Domain" not in header
    assert response.headers.getall("Vary") == ["Cookie"]


# -- 52: Cache-Control ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_cc", "expected", "overridden"),
    [
        (None, ["private"], False),
        ("public, max-age=600, s-maxage=600", ["private, max-age=600"], True),
        ("max-age=600", ["private, max-age=600"], False),
        ("no-store", ["no-store"], False),
        ("private, max-age=10", ["private, max-age=10"], False),
        ("no-cache, no-store, must-revalidate", ["no-cache, no-store, must-revalidate"], False),
    ],
)
def test_set_cookie_makes_response_private(app_cc, expected, overridden):
    """52: a Set-Cookie makes the response private; public/s-maxage replaced with an event; no-store/private kept."""
    headers = [] if app_cc is None else [("Cache-Control", app_cc)]
    h = Harness(app=make_app(lambda environ, session: session.update(a=1), headers=headers))
    response = h.client.get("/")
    assert len(set_cookies(response)) == 1
    assert response.headers.getall("Cache-Control") == expected
    names = h.events.names()
    assert names.count("cache_control_overridden") == (1 if overridden else 0)


def test_set_cookie_makes_response_private_across_several_fields():
    """52: `public` in a second Cache-Control field is replaced too (the fields form one list)."""
    h = Harness(
        app=make_app(
            lambda environ, session: session.update(a=1),
            headers=[("Cache-Control", "no-cache"), ("Cache-Control", "public, s-maxage=60")],
        )
    )
    response = h.client.get("/")
    assert len(set_cookies(response)) == 1
    directives = [
        d.strip().lower()
        for value in response.headers.getall("Cache-Control")
        for d in value.split(",")
    ]
    assert "private" in directives
    assert "public" not in directives
    assert not any(d.startswith("s-maxage") for d in directives)
    assert h.events.names().count("cache_control_overridden") == 1


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("CDN-Cache-Control", "max-age=3600", "cdn_cache_control"),
        ("CDN-Cache-Control", "public, s-maxage=60", "cdn_cache_control"),
        ("Cloudflare-CDN-Cache-Control", "max-age=60", "cdn_cache_control"),
        ("Surrogate-Control", "max-age=86400", "surrogate_control"),
        ("surrogate-control", "private, max-age=60", "surrogate_control"),
    ],
)
def test_cdn_fields_that_let_a_cdn_store_the_cookie_are_dropped(field, value, reason):
    """Issue 11 item 9: a CDN obeys its own field before Cache-Control, so with a
    Set-Cookie a field that lets it store the response is dropped (the CDN falls back
    to the private Cache-Control), with the cache_control_overridden event."""
    h = Harness(
        app=make_app(
            lambda environ, session: session.update(a=1),
            headers=[(field, value), ("Cache-Control", "max-age=60")],
        )
    )
    response = h.client.get("/")
    assert len(set_cookies(response)) == 1
    assert field not in response.headers
    assert response.headers.getall("Cache-Control") == ["private, max-age=60"]
    assert h.events.reasons("cache_control_overridden") == [reason]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("CDN-Cache-Control", "no-store"),
        ("CDN-Cache-Control", "private"),
        ("Surrogate-Control", "no-store"),
    ],
)
def test_cdn_fields_that_forbid_storing_are_kept(field, value):
    h = Harness(
        app=make_app(lambda environ, session: session.update(a=1), headers=[(field, value)])
    )
    response = h.client.get("/")
    assert response.headers[field] == value
    assert response.headers["Cache-Control"] == "private"
    assert "cache_control_overridden" not in h.events.names()


def test_cdn_fields_are_left_alone_without_a_set_cookie():
    cookie = cookie_for({"a": 1})
    h = Harness(
        app=make_app(
            lambda environ, session: session["a"],
            headers=[("CDN-Cache-Control", "max-age=3600"), ("Surrogate-Control", "max-age=9")],
        )
    )
    response = h.get("/", cookie=cookie)
    assert set_cookies(response) == []
    assert response.headers["CDN-Cache-Control"] == "max-age=3600"
    assert response.headers["Surrogate-Control"] == "max-age=9"


def test_cdn_field_and_public_both_reported():
    h = Harness(
        app=make_app(
            lambda environ, session: session.update(a=1),
            headers=[("Cache-Control", "public"), ("Surrogate-Control", "max-age=9")],
        )
    )
    response = h.client.get("/")
    assert "Surrogate-Control" not in response.headers
    assert response.headers["Cache-Control"] == "private"
    assert h.events.reasons("cache_control_overridden") == ["public", "surrogate_control"]


def test_cache_control_false_leaves_headers_alone():
    """cache_control=False: the app's Cache-Control is untouched and none is added."""
    public = "public, max-age=600, s-maxage=600"
    h = Harness(
        app=make_app(
            lambda environ, session: session.update(a=1), headers=[("Cache-Control", public)]
        ),
        cache_control=False,
    )
    response = h.client.get("/")
    assert len(set_cookies(response)) == 1
    assert response.headers.getall("Cache-Control") == [public]
    h2 = Harness(lambda environ, session: session.update(a=1), cache_control=False)
    response = h2.client.get("/")
    assert "Cache-Control" not in response.headers
    assert "cache_control_overridden" not in h.events.names() + h2.events.names()


def test_deletion_cookie_also_makes_response_private():
    """52: the deletion cookie is a Set-Cookie too → `private`."""
    h = Harness(
        app=make_app(
            lambda environ, session: environ.__setitem__("session", None),
            headers=[("Cache-Control", "public, max-age=60")],
        )
    )
    response = h.client.get("/")
    assert set_cookies(response) == [DELETION]
    assert response.headers.getall("Cache-Control") == ["private, max-age=60"]


# -- 55, 56: the app's own Set-Cookie headers ----------------------------------------------


APP_COOKIES = [
    ("Set-Cookie", "other=1; Path=/"),
    ("Set-Cookie", "session=app-value; Path=/"),
    ("Set-Cookie", "sessionid=x"),
    ("Set-Cookie", "theme=dark"),
]


def test_overwrite_drops_app_cookie_of_our_name_when_we_write():
    """55/56: overwrite=True and we write → the app's `session=` Set-Cookie is dropped; unrelated ones pass as separate headers."""
    h = Harness(app=make_app(lambda environ, session: session.update(a=1), headers=APP_COOKIES))
    response = h.client.get("/")
    cookies = set_cookies(response)
    assert cookies[:3] == ["other=1; Path=/", "sessionid=x", "theme=dark"]
    assert len(cookies) == 4
    assert cookies[3].startswith("session=") and cookie_value(response) != "app-value"


def test_overwrite_keeps_app_cookie_when_we_do_not_write():
    """55: overwrite=True removes the app's cookie only when we write ours (DESIGN §9)."""
    h = Harness(app=make_app(lambda environ, session: session.get("a"), headers=APP_COOKIES))
    response = h.client.get("/")
    assert set_cookies(response) == [v for _, v in APP_COOKIES]


def test_overwrite_false_keeps_app_cookie_of_our_name():
    """overwrite=False: the app's `session=` Set-Cookie is kept alongside ours (koa `overwrite:false`)."""
    h = Harness(
        app=make_app(lambda environ, session: session.update(a=1), headers=APP_COOKIES),
        overwrite=False,
    )
    cookies = set_cookies(h.client.get("/"))
    assert cookies[:4] == [v for _, v in APP_COOKIES]
    assert len(cookies) == 5
    assert cookies[4].startswith("session=") and not cookies[4].startswith("session=app-value")


def test_overwrite_drops_app_cookie_on_destroy():
    """overwrite=True with a deletion: only our deletion cookie for our name goes out."""
    h = Harness(
        app=make_app(
            lambda environ, session: environ.__setitem__("session", None),
            headers=[("Set-Cookie", "session=app-value; Path=/")],
        )
    )
    assert set_cookies(h.client.get("/")) == [DELETION]


# -- 58: 5xx and exceptions -------------------------------------------------------------


def test_5xx_does_not_write():
    """58: the app answers 500 after writing → no Set-Cookie (Vary still added)."""
    h = Harness(app=make_app(lambda environ, session: session.update(a=1), status="500 Oops"))
    response = h.client.get("/", status=500)
    assert set_cookies(response) == []
    assert response.headers.getall("Vary") == ["Cookie"]
    assert "created" not in h.events.names()


def test_5xx_with_commit_on_error_writes():
    """commit_on_error=True: a 503 still writes the session."""
    h = Harness(
        app=make_app(lambda environ, session: session.update(a=1), status="503 Unavailable"),
        commit_on_error=True,
    )
    response = h.client.get("/", status=503)
    assert len(set_cookies(response)) == 1
    assert TOKEN_RE.match(cookie_value(response))
    assert h.events.names() == ["created"]


@pytest.mark.parametrize("how", ["none", "invalidate", "clear"])
def test_5xx_destroy_still_sends_deletion(how):
    """DESIGN §9: destroy (None, invalidate(), or emptying, which is "destroyed like invalidate()") clears the cookie even on a 5xx."""
    cookie = cookie_for({"user": "alice"})

    def action(environ, session):
        if how == "none":
            environ["session"] = None
        elif how == "invalidate":
            session.invalidate()
        else:
            session.clear()

    h = Harness(app=make_app(action, status="500 Oops"))
    response = h.get("/", cookie=cookie, status=500)
    assert set_cookies(response) == [DELETION]
    assert h.events.names() == ["destroyed"]


class _Boom(Exception):
    pass


def test_app_exception_propagates_unchanged_without_cookie():
    """58: the app raises → the same exception object propagates; nothing was started, no cookie."""
    error = _Boom("boom")

    def app(environ, start_response):
        environ["session"]["a"] = 1
        raise error

    h = Harness(app=app)
    with pytest.raises(_Boom) as info:
        call_wsgi(h.mw)
    assert info.value is error
    assert h.events == []


def _late_error_app(environ, start_response):
    """Writes the session, starts a 200, then fails and restarts as a 500 with exc_info."""
    environ["session"]["a"] = 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise _Boom("late")
    except _Boom:
        start_response(
            "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
        )
    return [b"error"]


def test_exception_after_start_response_with_exc_info_drops_cookie():
    """59: start_response again with exc_info and a 500 → the replacement headers carry no session Set-Cookie."""
    h = Harness(app=_late_error_app)
    result = call_wsgi(h.mw)
    calls, body = result.calls, result.body
    assert body == b"error"
    assert len(calls) == 2
    assert len(header_values(calls[0][1], "Set-Cookie")) == 1
    status, headers, exc_info = calls[1]
    assert status.startswith("500") and exc_info is not None
    assert header_values(headers, "Set-Cookie") == []
    assert header_values(headers, "Vary") == ["Cookie"]


def test_exc_info_retry_with_commit_on_error_resends_cookie():
    """59 + commit_on_error: the exc_info retry recomputes consistently — the 500 headers that replace the first ones still carry the cookie."""
    h = Harness(app=_late_error_app, commit_on_error=True)
    calls = call_wsgi(h.mw).calls
    assert len(calls) == 2
    first = header_values(calls[0][1], "Set-Cookie")
    second = header_values(calls[1][1], "Set-Cookie")
    assert len(first) == 1
    assert len(second) == 1
    assert second[0].startswith("session=")
    assert TOKEN_RE.match(second[0].split(";")[0].partition("=")[2])


def test_exc_info_retry_with_destroy_keeps_one_deletion():
    """59: destroy + an exc_info retry → each header list carries exactly one deletion cookie."""

    def app(environ, start_response):
        environ["session"] = None
        start_response("200 OK", [])
        try:
            raise _Boom("late")
        except _Boom:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b""]

    calls = call_wsgi(Harness(app=app).mw).calls
    assert [header_values(headers, "Set-Cookie") for _, headers, _ in calls] == [
        [DELETION],
        [DELETION],
    ]


# -- auto_commit=False ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "writes"),
    [
        (lambda environ, session: session.update(a=2), False),
        (lambda environ, session: (session.update(a=2), session.commit()), True),
        (lambda environ, session: session.commit(), False),
        (lambda environ, session: session.save(), True),
        (lambda environ, session: session.regenerate(), True),
        (lambda environ, session: setattr(session, "max_age", 60), True),
    ],
    ids=["write", "write+commit", "commit-unchanged", "save", "regenerate", "max_age"],
)
def test_auto_commit_false(action, writes):
    """auto_commit=False: nothing is written unless commit() (with a change), save(), regenerate() or max_age= asks for it."""
    cookie = cookie_for({"a": 1})
    h = Harness(app=make_app(action), auto_commit=False)
    response = h.get("/", cookie=cookie)
    assert len(set_cookies(response)) == (1 if writes else 0)
    if writes:
        assert TOKEN_RE.match(cookie_value(response))


def test_auto_commit_false_new_session_needs_commit():
    """auto_commit=False on a new session: a write alone sends nothing; commit() sends it."""
    h = Harness(lambda environ, session: session.update(a=1), auto_commit=False)
    assert set_cookies(h.client.get("/")) == []

    def write_and_commit(environ, session):
        session["a"] = 1
        session.commit()

    h2 = Harness(write_and_commit, auto_commit=False)
    assert len(set_cookies(h2.client.get("/"))) == 1
    assert h2.events.names() == ["created"]


def test_auto_commit_false_destroy_still_deletes():
    """auto_commit=False with environ['session'] = None: the deletion is still sent (library choice; DESIGN lists only writes)."""
    cookie = cookie_for({"a": 1})
    h = Harness(
        app=make_app(lambda environ, session: environ.__setitem__("session", None)),
        auto_commit=False,
    )
    assert set_cookies(h.get("/", cookie=cookie)) == [DELETION]


# -- rolling / renew ----------------------------------------------------------------------


def test_rolling_writes_only_populated_touched_sessions():
    """rolling: re-issue on a touched populated session; not for an untouched one, a new empty one, or a loaded empty one."""
    populated = cookie_for({"a": 1})
    saver = Harness(lambda environ, session: session.save())
    empty = f"session={cookie_value(saver.client.get('/'))}"
    read = Harness(app=make_app(lambda environ, session: len(session)), rolling=True)
    untouched = Harness(app=make_app(lambda environ, session: "x"), rolling=True)

    response = read.get("/", cookie=populated)
    assert response.text == "1"
    assert len(set_cookies(response)) == 1
    assert set_cookies(untouched.get("/", cookie=populated)) == []
    assert set_cookies(read.get("/", cookie="")) == []
    response = read.get("/", cookie=empty)
    assert response.text == "0"
    assert set_cookies(response) == []


@pytest.mark.parametrize(
    ("elapsed", "writes"), [(0, False), (499, False), (500, False), (501, True)]
)
def test_renew_only_past_half_life(elapsed, writes):
    """renew: re-issue only when less than half of max_age remains (1000 s: after 500 s)."""
    clock = Clock()
    cookie = cookie_for({"a": 1}, max_age=1000, clock=clock)
    clock.advance(elapsed)
    h = Harness(
        app=make_app(lambda environ, session: session["a"]), renew=True, max_age=1000, clock=clock
    )
    response = h.get("/", cookie=cookie)
    assert response.text == "1"
    cookies = set_cookies(response)
    assert len(cookies) == (1 if writes else 0)
    if writes:
        attrs = parse_attrs(cookies[0])
        assert attrs["max-age"] == "1000"
        assert attrs["expires"] == "Fri, 15-Jan-2027 08:25:01 GMT"  # T0 + 501 + 1000


# -- Max-Age / Expires -----------------------------------------------------------------------


def test_max_age_none_is_a_browser_session_cookie():
    """64: max_age=None → neither Max-Age nor Expires; the token has no idle expiry."""
    h = Harness(
        lambda environ, session: (session.__setitem__("n", session.get("n", 0) + 1), session["n"])[
            1
        ],
        max_age=None,
    )
    response = h.client.get("/")
    (header,) = set_cookies(response)
    assert header == f"session={cookie_value(response)}; Path=/; HttpOnly; SameSite=Lax"
    h.clock.advance(400 * 86400)
    assert h.client.get("/").text == "2"


def test_max_age_capped_at_400_days():
    """64: Max-Age never above 34560000 (400 days); Expires clamped the same way."""
    h = Harness(lambda environ, session: session.update(a=1), max_age=datetime.timedelta(days=1000))
    attrs = parse_attrs(set_cookies(h.client.get("/"))[0])
    assert attrs["max-age"] == str(MAX_COOKIE_AGE)
    expected = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=T0 + MAX_COOKIE_AGE)
    assert attrs["expires"] == expected.strftime("%a, %d-%b-%Y %H:%M:%S GMT")


def test_max_age_capped_by_remaining_absolute_lifetime():
    """64: Max-Age never above the remaining absolute_max_age; saves never extend it."""

    def handler(environ, session):
        session["n"] = session.get("n", 0) + 1
        return session["n"]

    h = Harness(handler, max_age=86400, absolute_max_age=1000)
    first = h.client.get("/")
    assert parse_attrs(set_cookies(first)[0])["max-age"] == "1000"
    h.clock.advance(600)
    second = h.client.get("/")
    assert second.text == "2"
    attrs = parse_attrs(set_cookies(second)[0])
    assert attrs["max-age"] == "400"
    assert attrs["expires"] == "Fri, 15-Jan-2027 08:16:40 GMT"  # T0 + 1000
    h.clock.advance(399)
    assert h.client.get("/").text == "3"
    h.clock.advance(1)  # T0 + 1000: the absolute lifetime is over
    response = h.client.get("/")
    assert response.text == "1"
    assert ("expired", "absolute") in [(e.name, e.reason) for e in h.events]


def test_absolute_max_age_not_extended_by_rolling_or_regenerate():
    """absolute_max_age is counted from creation, never extended by rolling saves or regenerate()."""

    def handler(environ, session):
        if environ["PATH_INFO"] == "/regen":
            session.regenerate()
        session.setdefault("user", "alice")
        return session.created_at

    h = Harness(handler, max_age=300, absolute_max_age=1000, rolling=True)
    assert h.client.get("/").text == str(T0)
    for step in range(4):
        h.clock.advance(200)
        path = "/regen" if step == 1 else "/"
        response = h.client.get(path)
        assert response.text == str(T0)
        attrs = parse_attrs(set_cookies(response)[0])
        assert attrs["max-age"] == str(min(300, 1000 - 200 * (step + 1)))
    h.clock.advance(200)  # T0 + 1000
    response = h.client.get("/")
    assert response.text == str(T0 + 1000)  # a fresh session
    assert h.events.reasons("expired") == ["absolute"]


# -- 53, 54: size ------------------------------------------------------------------------------


def test_too_large_raises_with_event_and_no_cookie():
    """53: a ~3100-byte payload → SessionTooLarge (a ValueError) from start_response, a `too_large` event, nothing sent."""
    h = Harness(lambda environ, session: session.__setitem__("blob", "x" * 3100))
    calls = []
    with pytest.raises(SessionTooLarge) as info:
        h.mw(webob.Request.blank("/").environ, lambda *args: calls.append(args))
    assert isinstance(info.value, ValueError)
    assert info.value.limit == 4096
    assert info.value.size > 4096
    assert calls == []
    assert h.events.names() == ["too_large"]
    assert "x" * 20 not in str(info.value)


def test_too_large_privilege_drop_is_an_error():
    """53: an admin session rewritten without `admin` but over the budget → error, never a silent success."""
    cookie = cookie_for({"admin": True, "user": "alice"})

    def handler(environ, session):
        del session["admin"]
        session["notes"] = "y" * 3100

    h = Harness(handler)
    calls = []
    environ = webob.Request.blank("/").environ
    environ["HTTP_COOKIE"] = cookie
    with pytest.raises(SessionTooLarge):
        h.mw(environ, lambda *args: calls.append(args))
    assert calls == []
    assert h.events.names() == ["too_large"]


def _size_probe(**options):
    box = {"n": 0}
    h = Harness(lambda environ, session: session.__setitem__("v", "x" * box["n"]), **options)

    def fits(n):
        box["n"] = n
        try:
            response = h.client.get("/")
        except SessionTooLarge:
            return None
        return set_cookies(response)[0]

    return fits


def _largest_fitting(fits, hi):
    lo = 0
    assert fits(lo) is not None
    assert fits(hi) is None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid) is None:
            hi = mid
        else:
            lo = mid
    return lo


def test_size_boundary():
    """54: the largest value that fits is accepted (header ≤ 4096); one more character raises SessionTooLarge."""
    fits = _size_probe()
    n = _largest_fitting(fits, 4096)
    header = fits(n)
    assert len(header) <= 4096
    assert fits(n + 1) is None
    # base64 grows 4 characters per 3 bytes: the largest fit is within 3 of the limit.
    assert 4093 <= len(header) <= 4096
    assert 2800 <= n <= 3000  # ≈ 3033 B of plaintext minus metadata and attributes
    # Never a Set-Cookie over the limit, whatever the payload.
    for extra in range(1, 6):
        assert fits(n + extra) is None


def test_max_cookie_size_changes_the_limit():
    """max_cookie_size=1024: the boundary moves below 1024 bytes; a value fitting by default is refused."""
    small = _size_probe(max_cookie_size=1024)
    n = _largest_fitting(small, 1024)
    assert len(small(n)) <= 1024
    assert small(n + 1) is None
    assert 500 <= n < 900
    assert _size_probe()(n + 200) is not None


# -- 61, 62: construction-time validation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"cookie_name": "s\r\nX: y"}, "cookie_name"),
        ({"cookie_name": "a;b"}, "cookie_name"),
        ({"cookie_name": "a=b"}, "cookie_name"),
        ({"cookie_name": ""}, "cookie_name"),
        ({"path": "/\r\nX-Injected: 1"}, "path"),
        ({"path": "/a;b"}, "path"),
        ({"path": "app"}, "path"),
        ({"domain": "example.com; SameSite=None"}, "domain"),
        ({"domain": "example.com\r\nX: y"}, "domain"),
        ({"samesite": "Lax; Secure=false"}, "samesite"),
        ({"max_age": "1; Domain=evil"}, "max_age"),
        ({"cookie_name": "__Host-session", "secure": False}, "secure"),
        ({"cookie_name": "__Host-session", "domain": "example.com"}, "domain"),
        ({"cookie_name": "__Host-session", "path": "/app"}, "path"),
        ({"cookie_name": "__Secure-session", "secure": False}, "secure"),
        ({"samesite": "None", "secure": False}, "secure"),
        ({"partitioned": True, "secure": False}, "secure"),
    ],
)
def test_injection_and_prefix_rules_fail_at_construction(options, option):
    """61/62: header injection and cookie-prefix rules → ConfigurationError naming the option."""
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(_ok_app, secret_keys=[SECRET], **options)
    assert info.value.option == option
    assert isinstance(info.value, ValueError)


def test_valid_prefixed_names_are_accepted():
    """62: `__Host-` with path "/" and no domain, `__Secure-` with a domain, are fine."""
    SessionMiddleware(_ok_app, secret_keys=[SECRET], cookie_name="__Host-session")
    SessionMiddleware(
        _ok_app, secret_keys=[SECRET], cookie_name="__Secure-s", domain="example.com", secure=True
    )


# -- Secure -------------------------------------------------------------------------------------


def test_secure_none_follows_the_scheme():
    """secure=None: Secure only on https."""
    h = Harness(lambda environ, session: session.update(a=1))
    plain = set_cookies(h.client.get("/"))[0]
    tls = set_cookies(h.client.get("/", extra_environ={"wsgi.url_scheme": "https"}))[0]
    assert "secure" not in plain.lower()
    assert tls.endswith("; secure; HttpOnly; SameSite=Lax")
    assert "insecure_transport" not in h.events.names()


def test_secure_none_with_host_prefix_is_always_secure():
    """secure=None with a `__Host-` name: Secure even on http."""
    h = Harness(lambda environ, session: session.update(a=1), cookie_name="__Host-session")
    response = h.client.get("/")
    (header,) = set_cookies(response)
    assert header.startswith("__Host-session=")
    assert header.endswith(
        "; Path=/; expires=Sat, 16-Jan-2027 08:00:00 GMT; secure; HttpOnly; SameSite=Lax"
    )
    assert cookie_value(response, "__Host-session")


def test_secure_true_on_http_warns_once_per_instance():
    """63: secure=True over http → Secure anyway, and exactly one `insecure_transport` per middleware instance."""
    h = Harness(lambda environ, session: session.update(n=session.get("n", 0) + 1), secure=True)
    for _ in range(3):
        response = h.client.get("/")
        assert set_cookies(response)[0].endswith("; secure; HttpOnly; SameSite=Lax")
    assert h.events.names().count("insecure_transport") == 1
    other = Harness(lambda environ, session: session.update(a=1), secure=True)
    other.client.get("/")
    other.client.get("/")
    assert other.events.names().count("insecure_transport") == 1
    tls = Harness(lambda environ, session: session.update(a=1), secure=True)
    tls.client.get("/", extra_environ={"wsgi.url_scheme": "https"})
    assert "insecure_transport" not in tls.events.names()


# -- 60: HEAD and 304 ---------------------------------------------------------------------------


def test_head_and_304_behave_like_get():
    """60: HEAD and a 304 response get the same cookie handling as a GET 200."""

    def app(environ, start_response):
        session = environ["session"]
        session["n"] = session.get("n", 0) + 1
        if environ["PATH_INFO"] == "/304":
            start_response("304 Not Modified", [])
            return []
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"body"]

    h = Harness(app=app)
    expected_tail = (
        "; Max-Age=86400; Path=/; expires=Sat, 16-Jan-2027 08:00:00 GMT; HttpOnly; SameSite=Lax"
    )
    for response in (
        h.client.get("/"),
        h.client.head("/"),
        h.client.get("/304", status=304),
    ):
        (header,) = set_cookies(response)
        assert header.endswith(expected_tail)
        assert response.headers.getall("Vary") == ["Cookie"]
        assert response.headers.getall("Cache-Control") == ["private"]
    reader = Harness(lambda environ, session: session["n"])
    assert reader.get("/", cookie=f"session={cookie_value(response)}").text == "3"


def test_read_only_304_adds_only_vary():
    """60: a read-only 304 → Vary: Cookie, no Set-Cookie."""
    cookie = cookie_for({"etag": "x"})

    def app(environ, start_response):
        environ["session"].get("etag")
        start_response("304 Not Modified", [("ETag", '"x"')])
        return []

    response = Harness(app=app).get("/", cookie=cookie, status=304)
    assert set_cookies(response) == []
    assert response.headers.getall("Vary") == ["Cookie"]


# -- domain callable, partitioned ----------------------------------------------------------------


def test_domain_callable_per_request():
    """koa #188: domain may be a callable environ -> str | None, evaluated per request."""

    def domain(environ):
        host = environ["HTTP_HOST"].split(":")[0]
        return None if host == "localhost" else host

    h = Harness(lambda environ, session: session.update(a=1), domain=domain)
    a = set_cookies(h.client.get("/", extra_environ={"HTTP_HOST": "a.example.com"}))[0]
    b = set_cookies(h.client.get("/", extra_environ={"HTTP_HOST": "b.example.org:8080"}))[0]
    local = set_cookies(h.client.get("/", extra_environ={"HTTP_HOST": "localhost"}))[0]
    assert "; Domain=a.example.com; Max-Age=86400; Path=/;" in a
    assert "; Domain=b.example.org; Max-Age=86400; Path=/;" in b
    assert "Domain" not in local
    d = Harness(lambda environ, session: environ.__setitem__("session", None), domain=domain)
    deletion = set_cookies(d.client.get("/", extra_environ={"HTTP_HOST": "c.example.com"}))[0]
    assert deletion == (
        "session=; Domain=c.example.com; Max-Age=0; Path=/; "
        "expires=Thu, 01-Jan-1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
    )


def test_domain_callable_returning_garbage_is_refused():
    """A domain callable returning an injection string → WSGISessionError, never a header (library choice)."""
    h = Harness(
        lambda environ, session: session.update(a=1), domain=lambda environ: "x.com; Secure"
    )
    with pytest.raises(WSGISessionError):
        h.client.get("/")


def test_partitioned_adds_attribute():
    """partitioned=True → `Partitioned` (with Secure)."""
    h = Harness(lambda environ, session: session.update(a=1), partitioned=True, samesite="None")
    response = h.client.get("/", extra_environ={"wsgi.url_scheme": "https"})
    assert set_cookies(response)[0].endswith("; secure; HttpOnly; SameSite=None; Partitioned")


# -- emptied, invalidated, replaced --------------------------------------------------------------


@pytest.mark.parametrize(
    "empty",
    [
        lambda session: session.clear(),
        lambda session: session.pop("a"),
        lambda session: session.__delitem__("a"),
        lambda session: session.popitem(),
    ],
    ids=["clear", "pop", "del", "popitem"],
)
def test_emptied_loaded_session_is_destroyed(empty):
    """DESIGN §9: a loaded session emptied by the request → deletion cookie + `destroyed` (reason `emptied`)."""
    cookie = cookie_for({"a": 1})
    h = Harness(app=make_app(lambda environ, session: empty(session)))
    response = h.get("/", cookie=cookie)
    assert set_cookies(response) == [DELETION]
    assert [(e.name, e.reason) for e in h.events] == [("destroyed", "emptied")]


def test_replacing_loaded_session_with_empty_dict_destroys():
    """environ['session'] = {} on a loaded session empties it → deletion cookie + `destroyed` (reason `emptied`)."""
    cookie = cookie_for({"a": 1})
    h = Harness(app=make_app(lambda environ, session: environ.__setitem__("session", {})))
    response = h.get("/", cookie=cookie)
    assert set_cookies(response) == [DELETION]
    assert [(e.name, e.reason) for e in h.events] == [("destroyed", "emptied")]


def test_emptied_then_save_still_writes():
    """DESIGN §9: save() on an emptied (or new empty) session still writes a session cookie."""
    cookie = cookie_for({"a": 1})
    h = Harness(app=make_app(lambda environ, session: (session.clear(), session.save())))
    response = h.get("/", cookie=cookie)
    value = cookie_value(response)
    assert value and TOKEN_RE.match(value)
    reader = Harness(lambda environ, session: f"{session.is_new} {dict(session)}")
    assert reader.get("/", cookie=f"session={value}").text == "False {}"


def test_clearing_a_new_session_sends_nothing():
    """A new empty session cleared → nothing to destroy, no Set-Cookie."""
    h = Harness(lambda environ, session: session.clear())
    assert set_cookies(h.client.get("/")) == []
    assert h.events == []


def test_invalidate_alone_deletes():
    """invalidate() → deletion cookie + `destroyed` (reason `invalidate`)."""
    cookie = cookie_for({"a": 1})
    h = Harness(app=make_app(lambda environ, session: session.invalidate()))
    assert set_cookies(h.get("/", cookie=cookie)) == [DELETION]
    assert [(e.name, e.reason) for e in h.events] == [("destroyed", "invalidate")]


def test_invalidate_then_write_starts_a_new_session():
    """invalidate() then a write in the same request → a new session cookie with a new id, not a deletion."""
    cookie = cookie_for({"a": 1, "admin": True})

    def action(environ, session):
        old = session.id
        session.invalidate()
        session["b"] = 2
        return f"{old}|{session.id}|{session.is_new}"

    h = Harness(app=make_app(action))
    response = h.get("/", cookie=cookie)
    old_id, new_id, is_new = response.text.split("|")
    assert old_id != new_id
    assert is_new == "True"
    value = cookie_value(response)
    assert value and TOKEN_RE.match(value)
    reader = Harness(lambda environ, session: f"{dict(session)} {session.id == new_id}")
    assert reader.get("/", cookie=f"session={value}").text == "{'b': 2} True"


def test_assign_dict_replaces_contents():
    """DESIGN §9: environ['session'] = {...} replaces the data at commit."""
    cookie = cookie_for({"a": 1, "admin": True})
    h = Harness(app=make_app(lambda environ, session: environ.__setitem__("session", {"b": 2})))
    response = h.get("/", cookie=cookie)
    value = cookie_value(response)
    assert value
    reader = Harness(lambda environ, session: repr(dict(session)))
    assert reader.get("/", cookie=f"session={value}").text == "{'b': 2}"


def test_assign_identical_dict_is_unchanged():
    """DESIGN §9: replacing with identical content counts as unchanged → no Set-Cookie."""
    cookie = cookie_for({"a": 1, "b": [1, 2]})

    def action(environ, session):
        session.get("a")
        environ["session"] = {"a": 1, "b": [1, 2]}

    h = Harness(app=make_app(action))
    response = h.get("/", cookie=cookie)
    assert set_cookies(response) == []
    assert response.headers.getall("Vary") == ["Cookie"]


# -- incoming cookie alone never writes -------------------------------------------------------------


def test_expired_or_invalid_cookie_alone_sends_nothing():
    """An expired, tampered or unknown-key cookie alone, even when read, never causes a Set-Cookie."""
    clock = Clock()
    expired = cookie_for({"a": 1}, max_age=10, clock=clock)
    foreign = cookie_for({"a": 1}, secret_keys=[OTHER_SECRET])
    good = cookie_for({"a": 1})
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    clock.advance(10)
    h = Harness(app=make_app(lambda environ, session: len(session)), max_age=10, clock=clock)
    for cookie in (expired, foreign, tampered):
        response = h.get("/", cookie=cookie)
        assert response.text == "0"
        assert set_cookies(response) == []
    assert h.events.names() == ["expired", "unknown_key", "invalid"]


# -- option validation ----------------------------------------------------------------------------


def test_unknown_options_are_named():
    """Unknown keyword options → ConfigurationError naming the option."""
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(_ok_app, secret_keys=[SECRET], max_agee=10)
    assert info.value.option == "max_agee"
    assert "max_agee" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(_ok_app, secret_keys=[SECRET], signed=False)
    assert info.value.option == "signed"


BAD_OPTIONS = [
    ("secret_keys", SECRET),
    ("secret_keys", [b"short"]),
    ("secret_keys", [123]),
    ("secret_keys", [SECRET, SECRET]),
    ("secret_keys", None),
    ("cookie_name", 123),
    ("cookie_name", "has space"),
    ("max_age", "3600"),
    ("max_age", 0),
    ("max_age", -5),
    ("max_age", True),
    ("max_age", float("inf")),
    ("absolute_max_age", "x"),
    ("absolute_max_age", 0),
    ("auto_commit", "yes"),
    ("overwrite", 1),
    ("httponly", None),
    ("secure", "true"),
    ("samesite", True),
    ("samesite", "Sometimes"),
    ("path", b"/"),
    ("path", ""),
    ("domain", 123),
    ("domain", "exa mple.com"),
    ("partitioned", "no"),
    ("rolling", 1),
    ("renew", "1"),
    ("serializer", object()),
    ("genid", "uuid"),
    ("prefix", 1),
    ("on_store_error", "explode"),
    ("valid", True),
    ("before_save", 1),
    ("on_event", "log"),
    ("environ_key", 1),
    ("environ_key", ""),
    ("namespace", 1),
    ("namespace", "has space"),
    ("namespace", "x" * 65),
    ("commit_on_error", "x"),
    ("cache_control", None),
    ("max_cookie_size", "4096"),
    ("max_cookie_size", 511),
    ("max_cookie_size", 8193),
    ("max_cookie_size", True),
    ("clock", 5),
    ("clock", None),
]


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS)
def test_bad_option_values_are_named(option, value):
    """DESIGN §2: every ill-typed or out-of-range option → ConfigurationError naming it."""
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(_ok_app, **{"secret_keys": [SECRET], option: value})
    assert info.value.option == option
    assert option in str(info.value)


def test_good_option_values_are_accepted():
    """The same options with good values construct fine (the table above is not vacuous)."""
    SessionMiddleware(
        _ok_app,
        secret_keys=[SECRET, b"b" * 32],
        cookie_name="sid",
        max_age=datetime.timedelta(hours=1),
        absolute_max_age=7200.5,
        auto_commit=False,
        overwrite=False,
        httponly=False,
        secure=True,
        samesite="strict",
        path="/app",
        domain=".example.com",
        partitioned=True,
        rolling=True,
        renew=True,
        serializer=JSONSerializer(),
        genid=lambda environ: "x",
        prefix="p:",
        on_store_error="ignore",
        valid=lambda environ, session: True,
        before_save=lambda environ, session: None,
        on_event=lambda event: None,
        environ_key="wsgisession.session",
        namespace="my-app.v2",
        commit_on_error=True,
        cache_control=False,
        max_cookie_size=512,
        clock=lambda: 0.0,
    )
    SessionMiddleware(_ok_app, secret_keys=[SECRET], max_cookie_size=8192, samesite=None)
