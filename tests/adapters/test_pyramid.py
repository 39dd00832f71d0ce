"""The Pyramid adapter, driven through a real Pyramid application and WebTest."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest
import webtest
from paste.deploy import loadapp
from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy, check_csrf_token
from pyramid.exceptions import BadCSRFToken
from pyramid.httpexceptions import HTTPFound
from pyramid.interfaces import ISession
from zope.interface.verify import verifyObject

from tests.conftest import SECRET, T0, Clock
from wsgisession import ConfigurationError, SessionMiddleware
from wsgisession.adapters.pyramid import MissingSessionMiddleware, PyramidSession

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COOKIE = "session"


# -- the application ----------------------------------------------------------------


def verify_view(request):
    session = request.session
    verifyObject(ISession, session)
    return {"verified": isinstance(session, PyramidSession)}


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
    steps = {"empty": bool(session), "len0": len(session)}
    session.update({"a": 1}, b=2)
    session["c"] = [3]
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
    steps["repr"] = repr(session).startswith("<PyramidSession <Session id_hash=")
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


def main(global_config=None, **settings):
    """PasteDeploy app factory: the Pyramid application (not wrapped)."""
    with Configurator(settings=settings) as config:
        config.include("wsgisession.adapters.pyramid")
        config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
        views = {
            "verify": ("/verify", verify_view, {}),
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
        }
        for name, (pattern, view, extra) in views.items():
            config.add_route(name, pattern)
            config.add_view(view, route_name=name, renderer="json", **extra)
        return config.make_wsgi_app()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def client(clock):
    return webtest.TestApp(SessionMiddleware(main({}), secret_keys=[SECRET], clock=clock))


def cookie_of(response):
    """The value our Set-Cookie sets ('' for a deletion), or None when none is sent."""
    for header in response.headers.getall("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE:
            return rest.partition(";")[0]
    return None


# -- ISession -----------------------------------------------------------------------


def test_sessions_implement_isession(client):
    assert client.get("/verify").json == {"verified": True}


def test_values_persist_across_requests(client):
    assert client.get("/get/color").json == {"value": None}
    response = client.get("/set/color", {"value": "blue"})
    assert cookie_of(response)
    assert client.get("/get/color").json == {"value": "blue"}
    assert client.get("/keys").json == {"keys": ["color"]}


def test_a_request_that_only_reads_sends_no_cookie(client):
    client.get("/set/color", {"value": "blue"})
    assert cookie_of(client.get("/get/color")) is None


def test_new_and_created(client, clock):
    first = client.get("/meta").json
    assert first == {"new": True, "created": float(T0), "type": "float"}
    client.get("/set/k", {"value": "v"})
    clock.advance(30)
    later = client.get("/meta").json
    assert later == {"new": False, "created": float(T0), "type": "float"}


def test_dict_api_is_delegated(client):
    steps = client.get("/dict").json
    assert steps == {
        "empty": False,
        "len0": 0,
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


def test_changed_forces_a_save_of_an_unchanged_session(client):
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


# -- configuration ------------------------------------------------------------------


def test_missing_middleware_is_a_clear_error():
    bare = webtest.TestApp(main({}))
    with pytest.raises(MissingSessionMiddleware) as info:
        bare.get("/get/k")
    message = str(info.value)
    assert "SessionMiddleware" in message and "egg:wsgisession#session" in message
    assert "'session'" in message


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


def test_environ_key_setting_must_be_a_name():
    with pytest.raises(ConfigurationError) as info:
        main({}, **{"wsgisession.environ_key": "  "})
    assert info.value.option == "wsgisession.environ_key"


def test_the_core_does_not_import_pyramid():
    import subprocess

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
            use = egg:wsgisession#session
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


# -- the example --------------------------------------------------------------------


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
        assert isinstance(app, SessionMiddleware)
        yield webtest.TestApp(app)
    finally:
        sys.modules.pop("pyramid_app", None)


def test_example_login_flash_logout(example):
    page = example.get("/")
    assert "Not logged in" in page.text
    token = csrf_field(page)
    anonymous = example.cookies[COOKIE]

    wrong = example.post("/login", {"csrf_token": token, "username": "alice", "password": "x"})
    assert "Wrong username or password." in wrong.follow().text

    done = example.post(
        "/login", {"csrf_token": token, "username": "alice", "password": "wonderland"}
    )
    assert done.status_int == 303
    assert example.cookies[COOKIE] != anonymous  # invalidate + write: a new session
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


def test_example_main_wrapped_in_code(monkeypatch):
    module = load_example(monkeypatch)
    client = webtest.TestApp(SessionMiddleware(module.main({}), secret_keys=[SECRET]))
    assert "Not logged in" in client.get("/").text
    refused = client.post("/login", {"username": "alice", "password": "wonderland"}, status=400)
    assert "Bad CSRF token" in refused
