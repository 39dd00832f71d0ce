"""wsgisession's Django session engine (``SESSION_ENGINE = "wsgisession.adapters.django"``)
driven through a real Django project (SQLite, contrib.auth, contrib.messages, CSRF in
the session, the admin's checks): Django's own ``SessionMiddleware``, test ``Client``,
``AsyncClient`` and ``LiveServerTestCase``, in cookie mode and in store mode
(``MemoryStore``); then the WSGI fast path (``wrap()``) through WebTest.

Django is set up once, by a module-scoped fixture (``DJANGO_SETTINGS_MODULE`` +
``django.setup()``); all in-process Django tests live in this module.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import shutil
import subprocess
import sys
import textwrap
import unittest
import urllib.request
from pathlib import Path

import django
import pytest
import webtest

from tests.conftest import SECRET
from wsgisession import MemoryStore, StoreError

SETTINGS = "tests.adapters.django_project.settings"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "django_project"
COOKIE = "sessionid"
OURS = "wsgisession.adapters.django.SessionMiddleware"
DJANGOS = "django.contrib.sessions.middleware.SessionMiddleware"
# The subprocess gets the same warning filters as setup.cfg's pytest section.
WARNING_FLAGS = ["-W", "error", "-W", "ignore:'cgi' is deprecated:DeprecationWarning"]


@pytest.fixture(scope="module")
def django_setup(tmp_path_factory):
    db = tmp_path_factory.mktemp("django") / "db.sqlite3"
    saved = {k: os.environ.get(k) for k in ("DJANGO_SETTINGS_MODULE", "WSGISESSION_DJANGO_TEST_DB")}
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    os.environ["WSGISESSION_DJANGO_TEST_DB"] = str(db)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    assert settings.SETTINGS_MODULE == SETTINGS
    call_command("migrate", run_syncdb=True, verbosity=0)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def users(django_setup):
    from django.contrib.auth.models import User

    for name, password in (("alice", "wonderland"), ("bob", "builder")):
        if not User.objects.filter(username=name).exists():
            User.objects.create_user(name, password=password)
    return User.objects


@pytest.fixture(params=["cookie", "store", "django-cache"])
def mode(request, users):
    """Every test using it runs in cookie mode and in store mode: on a MemoryStore and
    on a DjangoCacheStore over the project's own (LocMem) cache."""
    if request.param == "cookie":
        yield None
        return
    from django.core.cache import caches
    from django.test import override_settings

    from wsgisession.stores.djangocache import DjangoCacheStore

    store = MemoryStore() if request.param == "store" else DjangoCacheStore(alias="default")
    with override_settings(WSGISESSION={"secret_keys": [SECRET], "store": store}):
        caches["default"].clear()
        yield store


@pytest.fixture
def client(mode):
    from django.test import Client

    return Client()


def manager():
    from wsgisession.adapters.django import session_manager

    return session_manager()


def token_of(response):
    morsel = response.cookies.get(COOKIE)
    return None if morsel is None else morsel.value


# -- the engine: Django's SessionMiddleware and test Client ---------------------------


def test_session_key_is_the_token_django_writes(client, mode):
    response = client.get("/set/color", {"value": "blue"})
    token = token_of(response)
    assert token and "Cookie" in response["Vary"]
    meta = client.get("/meta").json()
    assert meta["type"] == "SessionStore" and meta["base"] is True
    assert meta["session_key"] == token
    payload = manager().decode(token)
    assert payload.sid == meta["id"]
    if mode is None:
        assert payload.data == {"color": "blue"}  # the data, sealed in the cookie
    else:
        assert payload.data is None and mode.get(manager().store_key(payload.sid))
    assert client.get("/get/color").json() == {"value": "blue"}
    assert token_of(client.get("/get/color")) is None  # read only: no Set-Cookie
    from django.test import Client

    assert Client().get("/get/color").json() == {"value": None}


def test_cookie_attributes_come_from_django(client):
    response = client.get("/set/k", {"value": "v"})
    morsel = response.cookies[COOKIE]
    assert morsel["max-age"] == 1209600 and morsel["httponly"] is True
    assert morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert not morsel["secure"]
    assert client.get("/meta").json()["cookie_age"] == 1209600


def test_django_cookie_settings_are_followed(users):
    from django.test import Client, override_settings

    with override_settings(
        SESSION_COOKIE_NAME="djsess",
        SESSION_COOKIE_AGE=777,
        SESSION_COOKIE_DOMAIN=".example.local",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SAMESITE="Strict",
    ):
        client = Client()
        response = client.get("/set/a", {"value": "1"})
        morsel = response.cookies["djsess"]
        assert morsel["max-age"] == 777 and morsel["secure"] is True
        assert morsel["domain"] == ".example.local" and morsel["samesite"] == "Strict"
        assert not morsel["httponly"]
        payload = manager().decode(morsel.value)  # bound to the cookie name
        assert payload.expires is not None
        assert client.get("/get/a").json() == {"value": "1"}


def test_untouched_request_sets_nothing(users):
    from django.conf import settings
    from django.test import Client, override_settings

    # CsrfViewMiddleware reads the session on every request with CSRF_USE_SESSIONS
    # (as with Django's own sessions), so leave it out here.
    without_csrf = [m for m in settings.MIDDLEWARE if "csrf" not in m]
    with override_settings(MIDDLEWARE=without_csrf):
        response = Client().get("/untouched")
    assert response.json() == {"accessed": False, "modified": False}
    assert response.cookies == {} and not response.has_header("Vary")


def test_dict_api_and_nested_changes(client):
    steps = client.get("/dict").json()
    assert steps["empty"] is True and steps["modified0"] is False
    assert steps["modified1"] is True
    assert steps["setdefault"] == [1, [3]]
    assert steps["in"] == [True, False, True]
    assert steps["keys"] == ["a", "b", "c"]
    assert steps["pop"] == [2, "dflt", None]
    assert steps["pop_missing"] == steps["get_missing"] == "KeyError"
    assert steps["repr"] is True
    assert client.get("/get/c").json() == {"value": [3]}
    # A change in place is saved without ``modified = True``.
    client.get("/cart")
    assert client.get("/nested", {"item": "b"}).json() == {"modified": True}
    assert client.get("/get/cart").json() == {"value": ["a", "b"]}


def test_clear_saves_an_empty_session_and_modified_forces_a_save(client, mode):
    client.get("/set/a", {"value": "1"})
    response = client.get("/clear")
    assert response.json() == {"empty": False}  # it still has its key, as in Django
    assert token_of(response)  # saved empty (Django's rule), not deleted
    assert client.get("/get/a").json() == {"value": None}
    response = client.get("/force")
    assert token_of(response)


def test_flush_deletes_the_cookie_and_the_record(client, mode):
    client.get("/set/a", {"value": "1"})
    response = client.get("/flush")
    assert response.json()["old_record"] is (None if mode is None else False)
    morsel = response.cookies[COOKIE]
    assert morsel.value == "" and morsel["max-age"] == 0  # Django's deletion cookie
    assert client.get("/get/a").json() == {"value": None}
    # a write after flush() belongs to a new session
    client.get("/set/a", {"value": "1"})
    response = client.get("/flush", {"then": "fresh"})
    assert response.json()["keys"] == ["after"] and token_of(response)
    assert client.get("/get/after").json() == {"value": "fresh"}
    assert client.get("/get/a").json() == {"value": None}


def test_cycle_key_gives_a_new_id_and_drops_the_old_record_at_once(client, mode):
    response = client.get("/set/a", {"value": "1"})
    old_token = token_of(response)
    body = client.get("/cycle").json()
    assert body["before"] != body["after"]
    if mode is not None:
        assert body["old_record"] is False and body["new_record"] is True
        from django.test import Client

        stale = Client()
        stale.cookies[COOKIE] = old_token
        assert stale.get("/get/a").json() == {"value": None}
    assert client.get("/get/a").json() == {"value": "1"}
    assert client.get("/meta").json()["id"] == body["after"]


def test_login_rotates_the_session_id_and_logout_destroys(client, mode):
    client.get("/set/cart", {"value": "3"})
    anonymous = client.cookies[COOKIE].value
    body = client.post("/login", {"username": "alice", "password": "wonderland"}).json()
    assert body["ok"] is True and body["before"] != body["after"]
    if mode is not None:
        assert body["old_record"] is False  # gone before the response
    assert client.get("/whoami").json() == {"user": "alice"}
    assert client.get("/get/cart").json() == {"value": "3"}  # cycle_key kept the data
    # The pre-login cookie (session fixation) does not carry the login.
    from django.test import Client

    fixated = Client()
    fixated.cookies[COOKIE] = anonymous
    assert fixated.get("/whoami").json() == {"user": None}
    logged_in = client.cookies[COOKIE].value
    response = client.get("/logout")
    assert response.json()["old_record"] is (None if mode is None else False)
    assert response.cookies[COOKIE].value == ""
    assert client.get("/whoami").json() == {"user": None}
    if mode is not None:  # store mode: the logged-in token is dead on the server too
        replay = Client()
        replay.cookies[COOKIE] = logged_in
        assert replay.get("/whoami").json() == {"user": None}


def test_login_as_another_user_flushes(client):
    client.post("/login", {"username": "alice", "password": "wonderland"})
    client.get("/set/mine", {"value": "alice"})
    client.post("/login", {"username": "bob", "password": "builder"})
    assert client.get("/whoami").json() == {"user": "bob"}
    assert client.get("/get/mine").json() == {"value": None}


def test_test_client_login_force_login_logout_and_session(client, users, mode):
    assert client.login(username="alice", password="wonderland") is True
    assert client.get("/whoami").json() == {"user": "alice"}
    assert client.session["_auth_user_id"] == str(users.get(username="alice").pk)
    client.logout()
    assert client.get("/whoami").json() == {"user": None}
    client.force_login(users.get(username="bob"))
    assert client.get("/whoami").json() == {"user": "bob"}
    assert client.login(username="alice", password="wrong") is False


def test_session_saved_in_a_test_follows_the_cookie_in_store_mode(client, mode):
    session = client.session  # a new session, saved: the Client has its cookie
    session["seeded"] = "yes"
    session.save()
    expected = "yes" if mode is not None else None  # cookie mode: a new token
    assert client.get("/get/seeded").json() == {"value": expected}


def test_set_expiry(client):
    meta = client.get("/expiry", {"value": "0"}).json()
    assert meta["browser_close"] is True and meta["age"] == 1209600
    response = client.get("/expiry", {"value": "0"})
    assert response.cookies[COOKIE]["max-age"] == ""  # a browser-session cookie
    # ... whose token still expires after SESSION_COOKIE_AGE, as Django's do
    assert manager().decode(token_of(response)).expires is not None
    response = client.get("/expiry", {"value": "300"})
    assert response.cookies[COOKIE]["max-age"] == 300
    payload = manager().decode(token_of(response))
    assert payload.max_age == 300  # the session's own lifetime, in the token
    assert client.get("/meta").json()["age"] == 300
    response = client.get("/expiry", {"value": "td600"})
    assert manager().decode(token_of(response)).max_age in (599, 600)
    response = client.get("/expiry", {"value": "dt900"})
    assert manager().decode(token_of(response)).max_age in (899, 900)
    response = client.get("/expiry", {"value": "none"})
    assert response.cookies[COOKIE]["max-age"] == 1209600
    options = manager().options
    plaintext, _ = manager().codec.open(token_of(response), options.purpose, COOKIE)
    assert b'"m"' not in plaintext  # back to the default: nothing of its own
    # An expiry in the past: nothing is saved, the session is gone.
    response = client.get("/expiry", {"value": "-5"})
    assert client.get("/get/x").json() == {"value": None}


def test_expire_at_browser_close_and_save_every_request(users):
    from django.test import Client, override_settings

    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True):
        client = Client()
        response = client.get("/set/a", {"value": "1"})
        assert response.cookies[COOKIE]["max-age"] == ""
        assert manager().decode(token_of(response)).expires is not None
        assert client.get("/meta").json()["browser_close"] is True
    with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
        client = Client()
        client.get("/set/a", {"value": "1"})
        assert token_of(client.get("/get/a"))  # read only, yet re-issued


def test_explicit_options_win_and_the_manager_is_built_once(users):
    from django.test import Client, override_settings

    first = manager()
    Client().get("/set/a", {"value": "1"})
    assert manager() is first  # not rebuilt per request
    with override_settings(WSGISESSION={"secret_keys": [SECRET], "max_age": 50}):
        other = manager()
        assert other is not first
        response = Client().get("/set/a", {"value": "1"})
        assert response.cookies[COOKIE]["max-age"] == 50
    assert manager() is first  # back to the first configuration: cached


def test_hooks_get_a_stand_in_environ(users):
    from django.test import Client, override_settings

    seen = []

    def genid(environ):
        seen.append(dict(environ))
        return "x" * 43

    with override_settings(WSGISESSION={"secret_keys": [SECRET], "genid": genid}):
        Client().get("/set/a", {"value": "1"})
    with override_settings(
        SESSION_COOKIE_SECURE=True, WSGISESSION={"secret_keys": [SECRET], "genid": genid}
    ):
        Client().get("/set/a", {"value": "1"})
    assert seen[0] == {} and seen[-1] == {"wsgi.url_scheme": "https"}


@pytest.mark.parametrize(
    ("wsgisession", "message"),
    [
        ({}, "WSGISESSION = "),
        ({"secret_keys": ["short"]}, "'secret_keys'"),
        ({"secret_keys": [SECRET], "bogus": 1}, "'bogus'"),
        ({"secret_keys": [SECRET], "cookie_name": "x"}, "set SESSION_COOKIE_NAME instead"),
        ({"secret_keys": [SECRET], "rolling": True}, "set SESSION_SAVE_EVERY_REQUEST"),
        ({"secret_keys": [SECRET], "environ_key": "s"}, "plain WSGI middleware"),
        (["nope"], "must be a dict"),
    ],
)
def test_bad_configuration_is_improperly_configured(django_setup, wsgisession, message):
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from wsgisession.adapters.django import SessionStore

    with override_settings(WSGISESSION=wsgisession):
        with pytest.raises(ImproperlyConfigured, match=message):
            SessionStore()


def test_5xx_is_not_saved(client):
    response = client.get("/error")
    assert response.status_code == 500 and token_of(response) is None
    assert client.get("/get/on_error").json() == {"value": None}


def test_a_concurrent_logout_is_not_undone(client, mode):
    client.get("/set/a", {"value": "1"})
    response = client.get("/interrupted")
    # store mode: UpdateError, which Django's middleware turns into SessionInterrupted
    assert response.status_code == (200 if mode is None else 400)
    if mode is not None:
        assert token_of(response) is None
        assert client.get("/get/late").json() == {"value": None}


def test_a_store_outage_logs_nobody_out(users):
    from django.test import Client, override_settings

    class FlakyStore(MemoryStore):
        down = False

        def get(self, key):
            if self.down:
                raise StoreError("down")
            return super().get(key)

    store = FlakyStore()
    with override_settings(WSGISESSION={"secret_keys": [SECRET], "store": store}):
        client = Client()
        client.get("/set/a", {"value": "1"})
        store.down = True
        response = client.get("/get/a")
        assert response.json() == {"value": None}  # unreadable, for this request
        assert COOKIE not in response.cookies  # no deletion cookie
        store.down = False
        assert client.get("/get/a").json() == {"value": "1"}


def test_messages_across_a_redirect(client):
    response = client.get("/flash", {"msg": "saved"})
    assert response.status_code == 302 and token_of(response)
    assert client.get("/messages").json() == {
        "messages": [["info", "saved"], ["warning", "careful"]]
    }
    assert client.get("/messages").json() == {"messages": []}


def test_csrf_use_sessions_and_login_rotates_the_secret(client):
    from django.conf import settings
    from django.test import Client

    assert settings.CSRF_USE_SESSIONS is True
    client = Client(enforce_csrf_checks=True)
    token = client.get("/form").json()["token"]
    assert "csrftoken" not in client.cookies  # the secret lives in the session
    assert client.post("/form", {"csrfmiddlewaretoken": token, "text": "hi"}).content == (
        b"posted hi"
    )
    assert client.post("/form", {"csrfmiddlewaretoken": "x" * 64}).status_code == 403
    assert Client(enforce_csrf_checks=True).post(
        "/form", {"csrfmiddlewaretoken": token}
    ).status_code == (403)
    client.post("/login", {"username": "alice", "password": "wonderland"})
    assert client.post("/form", {"csrfmiddlewaretoken": token}).status_code == 403
    new = client.get("/form").json()["token"]
    assert client.post("/form", {"csrfmiddlewaretoken": new, "text": "ok"}).status_code == 200


def test_test_cookie_helpers(client):
    assert client.get("/testcookie/check").json() == {"worked": False}
    assert client.get("/testcookie/set").json() == {"worked": True}
    assert client.get("/testcookie/check").json() == {"worked": True}
    assert client.get("/testcookie/delete").json() == {"worked": False}


def test_async_client_and_async_session_methods(mode, users):
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    alice = users.get(username="alice")
    modern = django.VERSION >= (5, 0)  # SessionBase's async methods came with 5.0

    async def steps():
        client = AsyncClient()  # ASGI: Django's middleware runs its async path
        await client.get("/set/a", {"value": "1"})
        out = [(await client.get("/get/a")).json()]
        await sync_to_async(client.force_login)(alice)
        out.append((await client.get("/whoami")).json())
        if modern:
            out += [(await client.get("/async")).json() for _ in range(2)]
        return out

    out = asyncio.run(steps())
    assert out[:2] == [{"value": "1"}, {"user": "alice"}]
    if modern:
        assert out[2:] == [{"counter": 1, "has": True}, {"counter": 2, "has": True}]


def test_the_admins_checks_pass(django_setup):
    from django.core import checks
    from django.test import override_settings

    assert checks.run_checks() == []
    with override_settings(MIDDLEWARE=[OURS if m == DJANGOS else m for m in _middleware()]):
        assert checks.run_checks() == []  # ours is a Django SessionMiddleware (admin.E410)


def _middleware():
    from django.conf import settings

    return list(settings.MIDDLEWARE)


@pytest.mark.usefixtures("users")
class TestLiveServer:
    """LiveServerTestCase: a real threaded server over Django's WSGIHandler."""

    def test_a_browser_like_client_keeps_its_session(self):
        from django.test import LiveServerTestCase

        class Case(LiveServerTestCase):
            def runTest(self):
                jar = http.cookiejar.CookieJar()
                opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
                opener.open(f"{self.live_server_url}/set/color?value=green").read()
                body = opener.open(f"{self.live_server_url}/get/color").read()
                self.assertEqual(json.loads(body), {"value": "green"})
                self.assertEqual([c.name for c in jar], [COOKIE])

        result = unittest.TestResult()
        unittest.TestSuite([Case()]).run(result)  # with setUpClass: the server thread
        assert result.wasSuccessful(), result.errors + result.failures


# -- the WSGI fast path: wrap() ---------------------------------------------------------


def fast_app(**overrides):
    from django.core.wsgi import get_wsgi_application
    from django.test import override_settings

    from wsgisession.adapters.django import wrap

    with override_settings(MIDDLEWARE=[OURS if m == DJANGOS else m for m in _middleware()]):
        return webtest.TestApp(wrap(get_wsgi_application(), **overrides))


def set_cookie_headers(res):
    return [v for k, v in res.headerlist if k.lower() == "set-cookie" and v.startswith(COOKIE)]


def test_fast_path_commits_in_the_wsgi_middleware(users):
    app = fast_app()
    res = app.get("/set/color?value=blue")
    (header,) = set_cookie_headers(res)
    attrs = [a.strip().lower() for a in header.split(";")]
    assert "max-age=1209600" in attrs and "httponly" in attrs and "samesite=lax" in attrs
    assert "Cookie" in res.headers["Vary"] and res.headers["Cache-Control"] == "private"
    assert app.get("/get/color").json == {"value": "blue"}
    assert set_cookie_headers(app.get("/get/color")) == []
    assert app.get("/meta").json["session_key"] == app.cookies[COOKIE]  # the token
    body = app.post("/login", {"username": "alice", "password": "wonderland"}).json
    assert body["before"] != body["after"]
    assert app.get("/whoami").json == {"user": "alice"}
    res = app.get("/flash?msg=hi").follow()
    assert res.json["messages"][0] == ["info", "hi"]
    res = app.get("/logout")
    assert "Max-Age=0" in set_cookie_headers(res)[0]
    assert app.get("/whoami").json == {"user": None}


def test_fast_path_store_mode_and_expiry(users):
    from django.test import override_settings

    store = MemoryStore()
    with override_settings(WSGISESSION={"secret_keys": [SECRET], "store": store}):
        app = fast_app()
        app.get("/set/a?value=1")
        body = app.post("/login", {"username": "alice", "password": "wonderland"}).json
        # regenerated when the response started: the old record is gone by now
        assert store.get(manager().store_key(body["before"])) is None
        res = app.get("/expiry?value=0")
        (header,) = set_cookie_headers(res)
        assert "max-age" not in header.lower()
        res = app.get("/expiry?value=300")
        assert "Max-Age=300" in set_cookie_headers(res)[0]
        assert app.get("/meta").json["age"] == 300
    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True):
        res = fast_app().get("/set/a?value=1")
        assert "max-age" not in set_cookie_headers(res)[0].lower()


def test_tokens_work_on_both_paths(users):
    from django.test import Client

    client = Client()
    client.login(username="alice", password="wonderland")
    app = fast_app()
    app.set_cookie(COOKIE, client.cookies[COOKIE].value)
    assert app.get("/whoami").json == {"user": "alice"}
    app.get("/set/via?value=wsgi")
    client.cookies[COOKIE] = app.cookies[COOKIE]
    assert client.get("/get/via").json() == {"value": "wsgi"}


def test_fast_path_untouched_sets_nothing(users):
    from django.test import override_settings

    without_csrf = [m for m in _middleware() if "csrf" not in m]
    with override_settings(MIDDLEWARE=without_csrf):
        res = fast_app().get("/untouched")
    assert res.json == {"accessed": False, "modified": False}
    assert set_cookie_headers(res) == [] and "Vary" not in res.headers


def test_fast_path_refuses_djangos_own_middleware_beside_it(django_setup):
    from django.core.exceptions import ImproperlyConfigured
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.wsgi import get_wsgi_application
    from django.test import override_settings

    from wsgisession.adapters.django import wrap

    with pytest.raises(ImproperlyConfigured, match=f"Replace it with '{OURS}'"):
        wrap(get_wsgi_application())  # Django's own SessionMiddleware is listed
    with override_settings(MIDDLEWARE=[m for m in _middleware() if m != DJANGOS]):
        with pytest.raises(ImproperlyConfigured, match="needs 'wsgisession"):
            wrap(get_wsgi_application())
    with override_settings(MIDDLEWARE=[*_middleware(), OURS]):
        with pytest.raises(ImproperlyConfigured, match="keep one"):
            wrap(get_wsgi_application())
        with pytest.raises(ImproperlyConfigured, match="keep one"):
            WSGIHandler()
    fast = [OURS if m == DJANGOS else m for m in _middleware()]
    with override_settings(MIDDLEWARE=fast, SESSION_ENGINE="django.contrib.sessions.backends.db"):
        with pytest.raises(ImproperlyConfigured, match="needs SESSION_ENGINE"):
            WSGIHandler()


def test_the_test_client_works_beside_the_fast_path(users):
    """Requests that do not come through wrap() (test Client, ASGI) go through Django's
    own middleware code and the engine."""
    from django.test import Client, override_settings

    with override_settings(MIDDLEWARE=[OURS if m == DJANGOS else m for m in _middleware()]):
        client = Client()
        client.login(username="alice", password="wonderland")
        assert client.get("/whoami").json() == {"user": "alice"}
        assert token_of(client.get("/set/a", {"value": "1"}))


# -- the example project ---------------------------------------------------------------


def test_example_project(tmp_path):
    """examples/django_project (a default startproject with two settings changed), in a
    fresh interpreter: the admin's checks, migrate, then log in, flash and log out with
    Django's test Client."""
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    script = textwrap.dedent(
        """
        import json, os
        import django
        os.environ["DJANGO_SETTINGS_MODULE"] = "djdemo.settings"
        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.contrib.auth.models import User
        from django.test import Client
        from django.test.utils import setup_test_environment

        def text(response):
            return response.content.decode()

        setup_test_environment()
        call_command("check", verbosity=0)
        call_command("migrate", verbosity=0)
        User.objects.create_user("demo", password="demo-password")
        client = Client()
        out = {"engine": settings.SESSION_ENGINE}
        out["anonymous"] = "Not logged in" in text(client.get("/"))
        res = client.post("/login", {"username": "demo", "password": "demo-password"})
        out["login"] = res.status_code
        page = text(client.get("/"))
        out["logged_in"] = "Logged in as demo" in page and "Welcome, demo" in page
        out["flash_once"] = "Welcome, demo" not in text(client.get("/"))
        res = client.post("/logout", follow=True)
        out["logged_out"] = "Not logged in" in text(res) and "Goodbye" in text(res)
        res = client.post("/login", {"username": "demo", "password": "wrong"})
        out["bad_login"] = "Wrong username or password" in text(res)
        print(json.dumps(out))
        """
    )
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["WSGISESSION_SECRET_KEY"] = SECRET
    env["PYTHONPATH"] = os.pathsep.join([str(project), str(ROOT)])
    proc = subprocess.run(
        [sys.executable, *WARNING_FLAGS, "-c", script],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "engine": "wsgisession.adapters.django",
        "anonymous": True,
        "login": 302,
        "logged_in": True,
        "flash_once": True,
        "logged_out": True,
        "bad_login": True,
    }
