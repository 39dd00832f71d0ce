"""The Pyramid adapter, driven through real Pyramid applications and WebTest: the
session factory (no middleware) and the factory over ``SessionMiddleware``; Pyramid's
own session tests (tests/yardsticks/pyramid_suite.py); the example starter."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest
import webtest
from paste.deploy import loadapp
from pyramid import testing
from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy, check_csrf_token
from pyramid.exceptions import BadCSRFToken
from pyramid.httpexceptions import HTTPFound
from pyramid.interfaces import ISession, ISessionFactory
from pyramid.response import Response
from zope.interface.verify import verifyObject

from tests.conftest import OTHER_SECRET, SECRET, T0, Clock
from wsgisession import ConfigurationError, MemoryStore, SessionMiddleware, SessionTooLarge
from wsgisession.adapters.pyramid import (
    FactorySession,
    MissingSessionMiddleware,
    PyramidSession,
    PyramidSessionFactory,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
YARDSTICK = ROOT / "tests" / "yardsticks" / "pyramid_suite.py"
COOKIE = "session"


# -- the application ----------------------------------------------------------------


def verify_view(request):
    session = request.session
    verifyObject(ISession, session)
    return {"verified": isinstance(session, PyramidSession)}


def kind_view(request):
    return {"kind": type(request.session).__name__}


def get_view(request):
    return {"value": request.session.get(request.matchdict["key"])}


def set_view(request):
    request.session[request.matchdict["key"]] = request.params["value"]
    return {}


def meta_view(request):
    session = request.session
    return {"new": session.new, "created": session.created, "type": type(session.created).__name__}


def flash_view(request):
    queue = request.params.get("queue", "")
    allow = request.params.get("dup", "1") == "1"
    request.session.flash(request.params["msg"], queue, allow_duplicate=allow)
    return HTTPFound(location="/peek?queue=" + queue)


def peek_view(request):
    return {"peek": request.session.peek_flash(request.params.get("queue", ""))}


def pop_view(request):
    return {"pop": request.session.pop_flash(request.params.get("queue", ""))}


def invalidate_view(request):
    request.session.invalidate()
    if "then" in request.params:
        request.session["after"] = request.params["then"]
    return {"keys": sorted(request.session)}


def keys_view(request):
    return {"keys": sorted(request.session)}


def nested_view(request):
    session = request.session
    cart = session.setdefault("cart", {"items": []})
    if "add" in request.params:
        # A list inside a dict read through session.get(): changed() forces the save,
        # as Pyramid's ISession asks.
        session.get("cart")["items"].append(request.params["add"])
        session.changed()
    return {"cart": cart}


def touch_changed_view(request):
    request.session.changed()
    return {}


def dict_api_view(request):
    session = request.session
    steps = {"empty": bool(session), "len0": len(session), "eq0": session == {}}
    session.update({"a": 1}, b=2)
    session["c"] = [3]
    steps["eq"] = [session == {"a": 1, "b": 2, "c": [3]}, session != {"a": 1}]
    steps["mapping"] = isinstance(session, Mapping) and dict(session) == {"a": 1, "b": 2, "c": [3]}
    steps["setdefault"] = [session.setdefault("a", 9), session.setdefault("d", 4)]
    steps["keys"] = sorted(session.keys())
    steps["values"] = sorted(map(str, session.values()))
    steps["items"] = sorted((k, str(v)) for k, v in session.items())
    steps["in"] = ["a" in session, "zz" in session, "c" in list(session)]
    del session["d"]
    steps["pop"] = [session.pop("b"), session.pop("zz", "dflt"), session.pop("zz", None)]
    try:
        session.pop("zz")
    except KeyError:
        steps["pop_missing"] = "KeyError"
    steps["copy"] = session.copy()
    steps["popitem"] = list(session.popitem())
    steps["len"] = len(session)
    steps["bool"] = bool(session)
    steps["repr"] = f"{type(session).__name__} <Session id_hash=" in repr(session)
    if "clear" in request.params:
        session.clear()
    return steps


def regenerate_view(request):
    before = request.session.wsgisession.id
    request.session.regenerate()
    return {"moved": request.session.wsgisession.id != before}


def csrf_view(request):
    session = request.session
    if "new" in request.params:
        return {"token": session.new_csrf_token()}
    return {"token": session.get_csrf_token()}


def check_view(request):
    check_csrf_token(request)  # raises BadCSRFToken on a mismatch
    return {"ok": True}


def guarded_view(request):
    return {"ok": True}


def plain_view(request):
    return {"plain": True}  # never touches request.session


def remember_view(request):
    request.session["user"] = "alice"
    request.session.wsgisession.max_age = 30 * 86400  # "remember me"
    return {}


def raise_view(request):
    request.session[request.params.get("key", "k")] = "v"
    if "logout" in request.params:
        request.session.invalidate()
    raise HTTPFound(location="/keys")


class Boom(Exception):
    pass


def boom_view(request):
    request.session["k"] = "v"
    raise Boom("boom")


def boom_page(exc, request):
    request.response.status = 500
    return {"error": str(exc)}


def own_headers_view(request):
    request.session["k"] = "v"
    response = Response(json_body={})
    response.cache_control = "public, max-age=60"
    response.set_cookie(COOKIE, "the-apps-own")
    response.set_cookie("other", "kept")
    return response


def big_view(request):
    request.session["big"] = "x" * 5000
    return {}


VIEWS = {
    "verify": ("/verify", verify_view, {}),
    "kind": ("/kind", kind_view, {}),
    "get": ("/get/{key}", get_view, {}),
    "set": ("/set/{key}", set_view, {}),
    "meta": ("/meta", meta_view, {}),
    "flash": ("/flash", flash_view, {}),
    "peek": ("/peek", peek_view, {}),
    "pop": ("/pop", pop_view, {}),
    "invalidate": ("/invalidate", invalidate_view, {}),
    "keys": ("/keys", keys_view, {}),
    "nested": ("/nested", nested_view, {}),
    "changed": ("/changed", touch_changed_view, {}),
    "csrf": ("/csrf", csrf_view, {}),
    "dict": ("/dict", dict_api_view, {}),
    "regenerate": ("/regenerate", regenerate_view, {}),
    "check": ("/check", check_view, {"request_method": "POST"}),
    "guarded": ("/guarded", guarded_view, {"require_csrf": True}),
    "plain": ("/plain", plain_view, {}),
    "remember": ("/remember", remember_view, {}),
    "raise": ("/raise", raise_view, {}),
    "boom": ("/boom", boom_view, {}),
    "own_headers": ("/own-headers", own_headers_view, {}),
    "big": ("/big", big_view, {}),
}


def main(global_config=None, **settings):
    """PasteDeploy app factory: the Pyramid application (the include picks the factory)."""
    with Configurator(settings=settings) as config:
        config.include("wsgisession.adapters.pyramid")
        config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
        for name, (pattern, view, extra) in VIEWS.items():
            config.add_route(name, pattern)
            renderer = None if name == "own_headers" else "json"
            config.add_view(view, route_name=name, renderer=renderer, **extra)
        config.add_exception_view(boom_page, context=Boom, renderer="json")
        return config.make_wsgi_app()


def factory_app(clock, **arguments):
    """The application on the session factory, configured through ``session.*``
    settings (strings, as from an .ini; objects pass through)."""
    settings = {"session.secret_keys": SECRET, "session.clock": clock}
    settings.update({f"session.{k}": v for k, v in arguments.items()})
    return main({}, **settings)


def factory_of(app) -> PyramidSessionFactory:
    return app.registry.queryUtility(ISessionFactory)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=["factory", "middleware"])
def client(request, clock):
    """The same application on the session factory (Pyramid's defaults: a read
    re-issues the cookie) and on the middleware."""
    if request.param == "factory":
        app = webtest.TestApp(factory_app(clock))
    else:
        app = webtest.TestApp(SessionMiddleware(main({}), secret_keys=[SECRET], clock=clock))
    app.mode = request.param
    return app


def cookie_of(response):
    """The value our Set-Cookie sets ('' for a deletion), or None when none is sent."""
    for header in response.headers.getall("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE:
            return rest.partition(";")[0]
    return None


def set_cookie_header(response):
    (header,) = [h for h in response.headers.getall("Set-Cookie") if h.startswith(COOKIE + "=")]
    return header


# -- ISession, through both factories -----------------------------------------------------


def test_sessions_implement_isession(client):
    assert client.get("/verify").json == {"verified": True}


def test_values_persist_across_requests(client):
    assert client.get("/get/color").json == {"value": None}
    response = client.get("/set/color", {"value": "blue"})
    assert cookie_of(response)
    assert client.get("/get/color").json == {"value": "blue"}
    assert client.get("/keys").json == {"keys": ["color"]}


def test_a_read_reissues_the_cookie_only_under_reissue_time_0(client):
    client.get("/set/color", {"value": "blue"})
    read = client.get("/get/color")
    if client.mode == "factory":
        assert cookie_of(read)  # Pyramid's default reissue_time=0
    else:
        assert cookie_of(read) is None


def test_new_and_created(client, clock):
    first = client.get("/meta").json
    assert first == {"new": True, "created": float(T0), "type": "float"}
    client.get("/set/k", {"value": "v"})
    clock.advance(30)
    later = client.get("/meta").json
    assert later == {"new": False, "created": float(T0), "type": "float"}


def test_dict_api_and_dict_equality(client):
    steps = client.get("/dict").json
    assert steps == {
        "empty": False,
        "len0": 0,
        "eq0": True,
        "eq": [True, True],
        "mapping": True,
        "setdefault": [1, 4],
        "keys": ["a", "b", "c", "d"],
        "values": ["1", "2", "4", "[3]"],
        "items": [["a", "1"], ["b", "2"], ["c", "[3]"], ["d", "4"]],
        "in": [True, False, True],
        "pop": [2, "dflt", None],
        "pop_missing": "KeyError",
        "copy": {"a": 1, "c": [3]},
        "popitem": ["c", [3]],
        "len": 1,
        "bool": True,
        "repr": True,
    }
    assert client.get("/keys").json == {"keys": ["a"]}
    cleared = client.get("/dict", {"clear": "1"})
    assert cookie_of(cleared) == ""  # emptied: destroyed, as the core does
    assert client.get("/keys").json == {"keys": []}


def test_regenerate_keeps_the_data_under_a_new_cookie(client):
    client.get("/set/user", {"value": "alice"})
    old = client.cookies[COOKIE]
    response = client.get("/regenerate")
    assert response.json == {"moved": True}
    assert cookie_of(response) not in (None, "", old)
    assert client.get("/get/user").json == {"value": "alice"}


def test_a_request_that_never_touches_the_session_sends_nothing(client):
    client.get("/set/user", {"value": "alice"})
    response = client.get("/plain")
    assert cookie_of(response) is None
    assert "Vary" not in response.headers


# -- flash --------------------------------------------------------------------------


def test_flash_queues_across_a_redirect(client):
    redirect = client.get("/flash", {"msg": "saved"})
    assert redirect.status_int == 302
    assert redirect.follow().json == {"peek": ["saved"]}
    client.get("/flash", {"msg": "careful", "queue": "warn"})
    assert client.get("/peek").json == {"peek": ["saved"]}  # peek leaves it
    assert client.get("/peek", {"queue": "warn"}).json == {"peek": ["careful"]}
    assert client.get("/keys").json == {"keys": ["_f_", "_f_warn"]}
    assert client.get("/pop").json == {"pop": ["saved"]}
    assert client.get("/pop").json == {"pop": []}
    assert client.get("/pop", {"queue": "warn"}).json == {"pop": ["careful"]}


def test_flash_allow_duplicate(client):
    client.get("/flash", {"msg": "hi"})
    client.get("/flash", {"msg": "hi"})
    assert client.get("/peek").json == {"peek": ["hi", "hi"]}
    client.get("/flash", {"msg": "hi", "dup": "0"})
    client.get("/flash", {"msg": "bye", "dup": "0"})
    assert client.get("/pop").json == {"pop": ["hi", "hi", "bye"]}


def test_popping_an_empty_queue_writes_nothing(client):
    response = client.get("/pop")
    assert response.json == {"pop": []}
    assert cookie_of(response) is None


# -- invalidate / changed -----------------------------------------------------------


def test_invalidate_alone_clears_the_cookie(client):
    client.get("/set/user", {"value": "alice"})
    response = client.get("/invalidate")
    assert response.json == {"keys": []}
    assert cookie_of(response) == ""
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert client.get("/get/user").json == {"value": None}
    assert client.get("/meta").json["new"] is True


def test_a_write_after_invalidate_starts_a_new_session(client, clock):
    client.get("/set/user", {"value": "alice"})
    old = client.cookies[COOKIE]
    clock.advance(100)
    response = client.get("/invalidate", {"then": "fresh"})
    assert response.json == {"keys": ["after"]}
    new = cookie_of(response)
    assert new and new != old
    assert client.get("/keys").json == {"keys": ["after"]}
    assert client.get("/meta").json == {"new": False, "created": float(T0 + 100), "type": "float"}
    # The old cookie no longer carries the user into the new session's place.
    other = webtest.TestApp(client.app)
    other.set_cookie(COOKIE, new)
    assert other.get("/get/user").json == {"value": None}


def test_changed_saves_a_nested_mutation(client):
    client.get("/nested")
    first = client.get("/nested", {"add": "apple"})
    assert cookie_of(first)
    assert client.get("/nested", {"add": "pear"}).json == {"cart": {"items": ["apple", "pear"]}}
    assert client.get("/nested").json == {"cart": {"items": ["apple", "pear"]}}


def test_changed_forces_a_save_of_an_unchanged_session(clock):
    for app in (
        factory_app(clock, reissue_time="none"),
        SessionMiddleware(main({}), secret_keys=[SECRET], clock=clock),
    ):
        client = webtest.TestApp(app)
        client.get("/set/k", {"value": "v"})
        assert cookie_of(client.get("/get/k")) is None
        assert cookie_of(client.get("/changed"))


# -- CSRF ---------------------------------------------------------------------------


def test_csrf_token_is_kept_in_the_session(client):
    token = client.get("/csrf").json["token"]
    assert len(token) == 40 and int(token, 16) >= 0
    assert client.get("/csrf").json["token"] == token
    assert client.get("/keys").json == {"keys": ["_csrft_"]}
    renewed = client.get("/csrf", {"new": "1"}).json["token"]
    assert renewed != token
    assert client.get("/csrf").json["token"] == renewed


def test_check_csrf_token_accepts_the_right_token(client):
    token = client.get("/csrf").json["token"]
    assert client.post("/check", {"csrf_token": token}).json == {"ok": True}
    assert client.post("/check", headers={"X-CSRF-Token": token}).json == {"ok": True}


def test_check_csrf_token_refuses_a_wrong_token(client):
    client.get("/csrf")
    refused = client.post("/check", {"csrf_token": "0" * 40}, status=400)
    assert refused.status_int == BadCSRFToken.code
    assert "Bad CSRF token" in refused.text


def test_require_csrf_view_option(client):
    token = client.get("/csrf").json["token"]
    assert client.post("/guarded", {"csrf_token": token}).json == {"ok": True}
    assert "Bad CSRF token" in client.post("/guarded", {"csrf_token": "wrong"}, status=400)
    assert "Bad CSRF token" in client.post("/guarded", status=400)


def test_csrf_token_of_another_session_is_refused(client):
    token = client.get("/csrf").json["token"]
    stranger = webtest.TestApp(client.app)
    stranger.get("/csrf")
    assert "Bad CSRF token" in stranger.post("/check", {"csrf_token": token}, status=400)


# -- the session factory: Pyramid's arguments -----------------------------------------------


def test_defaults_browser_session_cookie_with_a_20_minute_timeout(clock):
    client = webtest.TestApp(factory_app(clock, reissue_time="none"))
    header = set_cookie_header(client.get("/set/user", {"value": "alice"}))
    assert "Max-Age" not in header and "expires" not in header.lower()
    assert "HttpOnly" in header and "SameSite=Lax" in header and "secure" not in header
    payload = factory_of(client.app).manager.decode(cookie_of(client.get("/changed")))
    assert payload.expires == T0 + 1200  # the server's deadline, inside the token
    clock.advance(1199)
    assert client.get("/get/user").json == {"value": "alice"}
    clock.advance(2)
    assert client.get("/get/user").json == {"value": None}  # idle for 1200 s


def test_secure_follows_the_scheme_unless_given(clock):
    client = webtest.TestApp(factory_app(clock), extra_environ={"wsgi.url_scheme": "https"})
    assert "secure" in set_cookie_header(client.get("/set/k", {"value": "v"}))
    never = webtest.TestApp(factory_app(clock, secure="false"))
    https = {"wsgi.url_scheme": "https"}
    assert "secure" not in set_cookie_header(
        never.get("/set/k", {"value": "v"}, extra_environ=https)
    )


def test_reissue_time_0_slides_the_timeout_on_every_access(clock):
    client = webtest.TestApp(factory_app(clock))
    client.get("/set/user", {"value": "alice"})
    for _ in range(3):
        clock.advance(1000)
        read = client.get("/get/user")
        assert read.json == {"value": "alice"}
        assert cookie_of(read)  # re-issued with a new deadline
    assert cookie_of(client.get("/plain")) is None  # not accessed: nothing re-issued


def test_reissue_time_none_never_extends(clock):
    client = webtest.TestApp(factory_app(clock, reissue_time="none"))
    client.get("/set/user", {"value": "alice"})
    clock.advance(1000)
    assert cookie_of(client.get("/get/user")) is None
    clock.advance(201)
    assert client.get("/get/user").json == {"value": None}


def test_reissue_time_re_issues_once_that_many_seconds_passed(clock):
    client = webtest.TestApp(factory_app(clock, reissue_time="120"))
    client.get("/set/user", {"value": "alice"})
    clock.advance(120)
    assert cookie_of(client.get("/get/user")) is None
    clock.advance(1)
    reissued = client.get("/get/user")
    assert cookie_of(reissued)
    expires = factory_of(client.app).manager.decode(cookie_of(reissued)).expires
    assert expires == T0 + 121 + 1200
    assert cookie_of(client.get("/get/user")) is None  # just issued


def test_max_age_is_the_cookies_and_timeout_none_uses_it_for_the_token(clock):
    client = webtest.TestApp(factory_app(clock, max_age="3600", timeout="none"))
    header = set_cookie_header(client.get("/set/user", {"value": "alice"}))
    assert "Max-Age=3600" in header
    clock.advance(3599)
    assert client.get("/get/user").json == {"value": "alice"}  # (and re-issued)
    clock.advance(3601)
    assert client.get("/get/user").json == {"value": None}  # the server enforces it too
    capped = webtest.TestApp(factory_app(clock, max_age="86400"))
    # The cookie never outlives the token (timeout=1200).
    assert "Max-Age=1200" in set_cookie_header(capped.get("/set/k", {"value": "v"}))


def test_a_session_with_its_own_lifetime_gets_a_persistent_cookie(clock):
    client = webtest.TestApp(factory_app(clock))
    header = set_cookie_header(client.get("/remember"))
    assert f"Max-Age={30 * 86400}" in header
    clock.advance(5 * 86400)
    assert client.get("/get/user").json == {"value": "alice"}


def test_set_on_exception(clock):
    default = webtest.TestApp(factory_app(clock))
    raised = default.get("/raise", {"key": "a"})
    assert raised.status_int == 302 and cookie_of(raised)
    assert raised.follow().json == {"keys": ["a"]}
    error_page = default.get("/boom", status=500)
    assert cookie_of(error_page)  # Pyramid saves on an exception view's page too

    strict = webtest.TestApp(factory_app(clock, set_on_exception="false"))
    strict.get("/set/user", {"value": "alice"})
    assert cookie_of(strict.get("/raise", {"key": "a"})) is None
    assert cookie_of(strict.get("/boom", status=500)) is None
    assert strict.get("/keys").json == {"keys": ["user"]}
    logout = strict.get("/raise", {"logout": "1"})
    assert cookie_of(logout) == ""  # a logout still clears the cookie
    assert strict.get("/keys").json == {"keys": []}


def test_response_headers_vary_private_and_our_cookie_last(clock):
    client = webtest.TestApp(factory_app(clock))
    response = client.get("/own-headers")
    assert response.headers["Vary"] == "Cookie"
    assert response.headers["Cache-Control"] == "private, max-age=60"
    cookies = response.headers.getall("Set-Cookie")
    assert [c.partition("=")[0] for c in cookies] == ["other", COOKIE]  # ours replaces theirs
    assert response.headerlist[-1][0] == "Set-Cookie"
    assert client.get("/get/k").json == {"value": "v"}
    read = webtest.TestApp(factory_app(clock, reissue_time="none")).get("/get/k")
    assert read.headers["Vary"] == "Cookie" and "Cache-Control" not in read.headers


def test_too_large_a_session_is_an_error_not_a_dropped_cookie(clock):
    client = webtest.TestApp(factory_app(clock))
    with pytest.raises(SessionTooLarge):
        client.get("/big")


def test_login_with_invalidate_gives_a_new_session_id_in_store_mode(clock):
    store = MemoryStore()
    app = factory_app(clock, store=store)
    client = webtest.TestApp(app)
    manager = factory_of(app).manager
    token = client.get("/csrf").json["token"]
    before = client.cookies[COOKIE]
    old_id = manager.decode(before).sid
    assert store.get(manager.store_key(old_id)) is not None
    login = client.get("/invalidate", {"then": "alice"})  # invalidate(), then the user
    new_id = manager.decode(cookie_of(login)).sid
    assert new_id != old_id
    assert store.get(manager.store_key(old_id)) is None  # the old record is gone
    assert client.get("/keys").json == {"keys": ["after"]}
    assert client.get("/csrf").json["token"] != token  # the token went with it
    replay = webtest.TestApp(app)
    replay.set_cookie(COOKIE, before)
    assert replay.get("/keys").json == {"keys": []}  # a planted pre-login cookie is worthless


def test_store_mode_reissue_refreshes_without_rewriting(clock):
    store = MemoryStore()
    client = webtest.TestApp(factory_app(clock, store=store))
    client.get("/set/user", {"value": "alice"})
    clock.advance(1000)
    assert cookie_of(client.get("/get/user"))
    clock.advance(1000)
    assert client.get("/get/user").json == {"value": "alice"}


def test_settings_errors_name_the_setting(clock):
    with pytest.raises(ConfigurationError) as info:
        factory_app(clock, timeout="soon")
    assert info.value.option == "session.timeout"
    with pytest.raises(ConfigurationError) as info:
        factory_app(clock, set_on_exception="maybe")
    assert info.value.option == "session.set_on_exception"
    with pytest.raises(ConfigurationError) as info:
        factory_app(clock, type="file")  # e.g. a pyramid_beaker leftover
    assert info.value.option == "session.type"
    with pytest.raises(ConfigurationError) as info:
        main({}, **{"session.secret_keys": "short"})
    assert info.value.option == "session.secret_keys"


def test_factory_arguments_are_checked():
    bad_arguments = (
        {"timeout": 0},
        {"max_age": "x"},
        {"reissue_time": -1},
        {"max_age": True},
        {"middleware_key": ""},
    )
    for bad in bad_arguments:
        with pytest.raises(ConfigurationError) as info:
            PyramidSessionFactory([SECRET], **bad)
        assert info.value.option == next(iter(bad))
    with pytest.raises(ConfigurationError):
        PyramidSessionFactory([SECRET], set_on_exception="yes")
    with pytest.raises(ConfigurationError):
        PyramidSessionFactory([SECRET], environ_key="session")
    factory = PyramidSessionFactory([SECRET], timeout="600", reissue_time="0", max_age=60.5)
    assert (factory.timeout, factory.reissue_time) == (600, 0)
    assert factory.manager.cookie_age == 61 and factory.manager.options.max_age == 600
    assert "secret" not in repr(factory).lower() and "timeout=600" in repr(factory)


def test_the_factory_in_code_with_another_key_rotation(clock):
    def build(keys):
        with Configurator() as config:
            config.set_session_factory(PyramidSessionFactory(keys, clock=clock))
            for name in ("get", "set"):
                pattern, view, _ = VIEWS[name]
                config.add_route(name, pattern)
                config.add_view(view, route_name=name, renderer="json")
            return config.make_wsgi_app()

    client = webtest.TestApp(build([OTHER_SECRET]))
    client.get("/set/k", {"value": "v"})
    rotated = webtest.TestApp(build([SECRET, OTHER_SECRET]))
    rotated.set_cookie(COOKIE, client.cookies[COOKIE])
    response = rotated.get("/get/k")
    assert response.json == {"value": "v"}
    assert cookie_of(response)  # re-sealed under the new key


def test_migrate_from_pyramids_own_sessions_keeps_users_logged_in(clock):
    from pyramid.session import SignedCookieSessionFactory

    old_secret = "the-old-pyramid-secret"
    with Configurator(session_factory=SignedCookieSessionFactory(old_secret)) as config:
        for name in ("get", "set"):
            pattern, view, _ = VIEWS[name]
            config.add_route(name, pattern)
            config.add_view(view, route_name=name, renderer="json")
        before = webtest.TestApp(config.make_wsgi_app())
    before.get("/set/user", {"value": "alice"})
    legacy = before.cookies[COOKIE]

    legacy_factory = SignedCookieSessionFactory(old_secret, reissue_time=None)
    settings = {"session.secret_keys": SECRET, "session.clock": clock}
    factory = PyramidSessionFactory.from_settings(settings, migrate_from=legacy_factory)
    app = main({})
    app.registry.registerUtility(factory, ISessionFactory)
    after = webtest.TestApp(app)
    after.set_cookie(COOKIE, legacy)
    first = after.get("/get/user")
    assert first.json == {"value": "alice"}
    assert len(first.headers.getall("Set-Cookie")) == 1  # ours, replacing the old one
    assert factory.manager.decode(cookie_of(first)).data == {"user": "alice"}
    assert after.get("/get/user").json == {"value": "alice"}

    forged = webtest.TestApp(app)
    forged.set_cookie(COOKIE, legacy[:-2] + "xx")
    assert forged.get("/get/user").json == {"value": None}
    with pytest.raises(ConfigurationError):
        PyramidSessionFactory([SECRET], migrate_from="pyramid")


# -- unit tests with pyramid.testing.DummyRequest -------------------------------------------


def test_dummy_request_round_trip():
    factory = PyramidSessionFactory([SECRET])
    request = testing.DummyRequest()
    session = factory(request)
    assert isinstance(session, FactorySession) and session == {} and session.new
    verifyObject(ISession, session)
    session["user"] = "alice"
    response = Response()
    request._process_response_callbacks(response)
    value = response.headers["Set-Cookie"].partition("=")[2].partition(";")[0]

    again = factory(testing.DummyRequest(cookies={COOKIE: value}))
    assert again == {"user": "alice"} and not again.new
    from_header = factory(testing.DummyRequest(environ={"HTTP_COOKIE": f"{COOKIE}={value}"}))
    assert from_header == {"user": "alice"}


def test_dummy_request_with_a_foreign_cookie_gets_an_empty_session():
    factory = PyramidSessionFactory([SECRET])
    for value in ("abc", b"abc", "", 42):
        assert factory(testing.DummyRequest(cookies={COOKIE: value})) == {}


# -- behind the middleware ------------------------------------------------------------------


def test_missing_middleware_is_a_clear_error():
    bare = webtest.TestApp(main({}))
    with pytest.raises(MissingSessionMiddleware) as info:
        bare.get("/get/k")
    message = str(info.value)
    assert "SessionMiddleware" in message and "egg:wsgisession-aead#session" in message
    assert "'session'" in message and "session.secret_keys" in message
    assert "PyramidSessionFactory" in message


def test_environ_key_setting():
    app = main({}, **{"wsgisession.environ_key": "wsgisession.session"})
    client = webtest.TestApp(
        SessionMiddleware(app, secret_keys=[SECRET], environ_key="wsgisession.session")
    )
    client.get("/set/k", {"value": "v"})
    assert client.get("/get/k").json == {"value": "v"}
    mismatched = webtest.TestApp(SessionMiddleware(app, secret_keys=[SECRET]))
    with pytest.raises(MissingSessionMiddleware, match=r"'wsgisession\.session'"):
        mismatched.get("/get/k")


def test_with_session_settings_a_wrapped_app_keeps_the_middlewares_session():
    """An app that passes its session.* settings to SessionMiddleware.from_settings and
    includes the adapter (the previous setup) behaves as before: the middleware's
    session and cookie (max_age is the token's lifetime there)."""
    settings = {"session.secret_keys": SECRET, "session.max_age": "600"}
    client = webtest.TestApp(SessionMiddleware.from_settings(main({}, **settings), settings))
    assert client.get("/kind").json == {"kind": "PyramidSession"}
    response = client.get("/set/k", {"value": "v"})
    assert [h for h in response.headers.getall("Set-Cookie")] == [set_cookie_header(response)]
    assert "Max-Age=600" in response.headers["Set-Cookie"]
    assert cookie_of(client.get("/get/k")) is None  # the middleware does not re-issue

    bare = webtest.TestApp(main({}, **settings))  # the same settings, no middleware
    assert bare.get("/kind").json == {"kind": "FactorySession"}
    assert "Max-Age=600" in set_cookie_header(bare.get("/set/k", {"value": "v"}))

    keyed = {**settings, "wsgisession.environ_key": "wsgisession.session"}
    app = main({}, **keyed)
    wrapped = SessionMiddleware(app, secret_keys=[SECRET], environ_key="wsgisession.session")
    assert webtest.TestApp(wrapped).get("/kind").json == {"kind": "PyramidSession"}
    assert webtest.TestApp(app).get("/kind").json == {"kind": "FactorySession"}
    in_code = main({}, **settings)
    in_code.registry.registerUtility(PyramidSessionFactory([SECRET]), ISessionFactory)
    wrapped = SessionMiddleware(in_code, secret_keys=[SECRET])
    assert webtest.TestApp(wrapped).get("/kind").json == {"kind": "FactorySession"}  # never


def test_environ_key_setting_must_be_a_name():
    with pytest.raises(ConfigurationError) as info:
        main({}, **{"wsgisession.environ_key": "  "})
    assert info.value.option == "wsgisession.environ_key"


def test_the_core_does_not_import_pyramid():
    code = (
        "import sys, wsgisession, wsgisession.settings, wsgisession.adapters; "
        "assert not any(m == 'pyramid' or m.startswith('pyramid.') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ini_pipeline_with_the_pastedeploy_filter(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(
        textwrap.dedent(
            f"""
            [app:main]
            use = call:tests.adapters.test_pyramid:main
            filter-with = session

            [filter:session]
            use = egg:wsgisession-aead#session
            secret_keys = {SECRET}
            max_age = 600
            """
        )
    )
    app = loadapp(f"config:{ini}")
    assert isinstance(app, SessionMiddleware)
    client = webtest.TestApp(app)
    response = client.get("/set/color", {"value": "green"})
    assert "Max-Age=600" in response.headers["Set-Cookie"]
    assert client.get("/get/color").json == {"value": "green"}
    assert client.get("/flash", {"msg": "hi"}).follow().json == {"peek": ["hi"]}
    token = client.get("/csrf").json["token"]
    assert client.post("/guarded", {"csrf_token": token}).json == {"ok": True}


def test_ini_settings_configure_the_factory(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(
        textwrap.dedent(
            f"""
            [app:main]
            use = call:tests.adapters.test_pyramid:main
            session.secret_keys = {SECRET}
            session.cookie_name = sid
            session.max_age = 600
            session.timeout = 300
            session.reissue_time = none
            session.set_on_exception = false
            session.store = memory
            """
        )
    )
    app = loadapp(f"config:{ini}")
    factory = factory_of(app)
    assert isinstance(factory, PyramidSessionFactory)
    assert (factory.timeout, factory.reissue_time, factory.set_on_exception) == (300, None, False)
    client = webtest.TestApp(app)
    response = client.get("/set/color", {"value": "green"})
    assert response.headers["Set-Cookie"].startswith("sid=")
    assert "Max-Age=300" in response.headers["Set-Cookie"]
    assert client.get("/get/color").json == {"value": "green"}


# -- Pyramid's own tests ----------------------------------------------------------------------


def test_pyramids_own_session_tests():
    """tests/yardsticks/pyramid_suite.py: Pyramid's tests/test_session.py (downloaded for
    the installed version) against the factory, in cookie and store mode."""
    done = subprocess.run(
        [sys.executable, str(YARDSTICK)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert " 0 failed unexpectedly, 0 passed unexpectedly" in summary
    print(summary)


# -- the example ------------------------------------------------------------------------------


def load_example(monkeypatch):
    """Import examples/pyramid_app.py by path (Pyramid looks its module up by name)."""
    spec = importlib.util.spec_from_file_location("pyramid_app", EXAMPLES / "pyramid_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pyramid_app", module)
    spec.loader.exec_module(module)
    return module


def csrf_field(page):
    return page.html.find("input", attrs={"name": "csrf_token"})["value"]


@pytest.fixture
def example(monkeypatch):
    """The shipped examples/pyramid_app.ini (``call:pyramid_app:main``), loaded as is."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("pyramid_app", None)
    try:
        app = loadapp(f"config:{EXAMPLES / 'pyramid_app.ini'}")
        assert isinstance(factory_of(app), PyramidSessionFactory)
        yield webtest.TestApp(app)
    finally:
        sys.modules.pop("pyramid_app", None)


def test_example_login_flash_logout(example):
    manager = factory_of(example.app).manager
    assert manager.options.store is not None  # store mode, from the .ini
    page = example.get("/")
    assert "Not logged in" in page.text
    token = csrf_field(page)
    anonymous = manager.decode(example.cookies[COOKIE]).sid

    wrong = example.post("/login", {"csrf_token": token, "username": "alice", "password": "x"})
    assert "Wrong username or password." in wrong.follow().text

    done = example.post(
        "/login", {"csrf_token": token, "username": "alice", "password": "wonderland"}
    )
    assert done.status_int == 303
    assert manager.decode(example.cookies[COOKIE]).sid != anonymous  # a new session id
    home = done.follow()
    assert "Hello, alice" in home.text and "Welcome, alice!" in home.text
    again = example.get("/")
    assert "Welcome" not in again.text and "visits: 2" in again.text

    flashed = example.get("/flash").follow()
    assert "This message is shown once." in flashed.text
    assert "This message is shown once." not in example.get("/").text

    # The pre-login token went with the invalidated session.
    assert "Bad CSRF token" in example.post("/logout", {"csrf_token": token}, status=400)
    out = example.post("/logout", {"csrf_token": csrf_field(example.get("/"))}).follow()
    assert "You are logged out." in out.text and "Not logged in" in out.text


def test_example_main_in_code(monkeypatch):
    module = load_example(monkeypatch)
    client = webtest.TestApp(module.main({}, **{"session.secret_keys": SECRET}))
    assert "Not logged in" in client.get("/").text
    refused = client.post("/login", {"username": "alice", "password": "wonderland"}, status=400)
    assert "Bad CSRF token" in refused


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_example_ini_serves_with_pserve_and_no_extra_server(tmp_path):
    """``pserve examples/pyramid_app.ini`` works with Pyramid's own wsgiref runner."""
    port = free_port()
    ini = tmp_path / "pyramid_app.ini"
    ini.write_text((EXAMPLES / "pyramid_app.ini").read_text().replace("6543", str(port)))
    pserve = Path(sys.executable).with_name("pserve")
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES)}
    with subprocess.Popen(
        [str(pserve), str(ini)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as server:
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                        body = page.read().decode()
                        cookie = page.headers["Set-Cookie"]
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.1)
        finally:
            server.terminate()
            server.wait(timeout=10)
    assert "Not logged in" in body
    assert cookie.startswith("session=") and "HttpOnly" in cookie and "Max-Age" not in cookie
