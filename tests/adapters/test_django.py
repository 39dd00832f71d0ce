"""The Django adapter, driven through a real Django project (SQLite, contrib.auth,
contrib.messages, CSRF in the session) wrapped by wsgisession and WebTest.

Django's test Client calls the handler without WSGI middleware, so every request
goes through ``webtest.TestApp(wrap(get_wsgi_application()))`` instead. Django is set
up once, by a module-scoped fixture (``DJANGO_SETTINGS_MODULE`` + ``django.setup()``);
all Django tests live in this module so no other test module sees Django settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import django
import pytest
import webtest

from tests.conftest import SECRET

SETTINGS = "tests.adapters.django_project.settings"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "django_project"
COOKIE = "sessionid"
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

    assert settings.SETTINGS_MODULE == SETTINGS
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    User.objects.create_user("alice", password="wonderland")
    User.objects.create_user("bob", password="builder")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def make_app(**overrides):
    from django.core.wsgi import get_wsgi_application

    from wsgisession.adapters.django import wrap

    return webtest.TestApp(wrap(get_wsgi_application(), **overrides))


@pytest.fixture
def app(django_setup):
    return make_app()


def cookie_headers(res, name=COOKIE):
    return [v for k, v in res.headerlist if k.lower() == "set-cookie" and v.startswith(name + "=")]


def cookie_value(res, name=COOKIE):
    (header,) = cookie_headers(res, name)
    return header.split(";", 1)[0].split("=", 1)[1]


# -- the session API ------------------------------------------------------------------


def test_request_session_is_a_session_base(app):
    res = app.get("/isinstance")
    assert res.json == {"base": True, "ours": True}
    assert cookie_headers(res) == []  # untouched: no cookie


def test_get_set_across_requests(app):
    res = app.get("/set/color?value=blue")
    assert len(cookie_headers(res)) == 1
    assert "Cookie" in res.headers["Vary"]
    assert app.get("/get/color").json == {"value": "blue"}
    res = app.get("/get/color")
    assert cookie_headers(res) == []  # read only: no Set-Cookie
    # another client does not see it
    assert make_app().get("/get/color").json == {"value": None}


def test_default_cookie_follows_django_settings(app):
    res = app.get("/set/k?value=v")
    (header,) = cookie_headers(res)
    attrs = [a.strip().lower() for a in header.split(";")]
    assert "max-age=1209600" in attrs  # SESSION_COOKIE_AGE, two weeks
    assert "httponly" in attrs
    assert "samesite=lax" in attrs
    assert "path=/" in attrs
    assert "secure" not in attrs  # http request, SESSION_COOKIE_SECURE = False
    assert app.get("/meta").json["cookie_age"] == 1209600


def test_untouched_session_is_not_accessed(django_setup):
    from django.conf import settings
    from django.test import override_settings

    # CsrfViewMiddleware reads the session on every request when CSRF_USE_SESSIONS
    # is on (as with Django's own sessions), so leave it out here.
    without_csrf = [m for m in settings.MIDDLEWARE if "csrf" not in m]
    with override_settings(MIDDLEWARE=without_csrf):
        res = make_app().get("/untouched")
    assert res.json == {"accessed": False, "modified": False}
    assert cookie_headers(res) == []
    assert "Vary" not in res.headers


def test_meta(app):
    res = app.get("/untouched")
    assert res.json == {"accessed": True, "modified": False}  # CSRF read it
    assert cookie_headers(res) == []
    meta = app.get("/meta").json
    assert meta["type"] == "DjangoSession"
    assert meta["wsgisession"] is True
    assert meta["is_empty"] is True
    assert meta["accessed"] is True
    assert meta["modified"] is False
    assert isinstance(meta["session_key"], str) and len(meta["session_key"]) >= 32
    app.get("/set/a?value=1")
    meta = app.get("/meta").json
    assert meta["is_empty"] is False


def test_dict_api(app):
    res = app.get("/dict")
    steps = res.json
    assert steps["empty"] is True
    assert steps["accessed0"] is True  # CsrfViewMiddleware read it
    assert steps["modified0"] is False
    assert steps["modified1"] is True
    assert steps["setdefault"] == [1, [3]]
    assert steps["in"] == [True, False]
    assert steps["keys"] == ["a", "b", "c"]
    assert steps["values"] == ["1", "2", "[3, 4]"]
    assert steps["items"] == [["a", "1"], ["b", "2"], ["c", "[3, 4]"]]
    assert steps["pop"] == [2, "dflt", None]
    assert steps["pop_missing"] == "KeyError"
    assert steps["get_missing"] == "KeyError"
    assert steps["len"] == 1
    assert steps["iter"] == ["c"]
    assert steps["is_empty"] is False
    assert steps["load"] == {"c": [3, 4]}
    assert steps["repr"] is True
    assert app.get("/get/c").json == {"value": [3, 4]}  # nested append was saved


def test_clear_destroys_and_modified_forces_a_save(app):
    app.get("/set/a?value=1")
    res = app.get("/clear")
    (header,) = cookie_headers(res)
    assert "Max-Age=0" in header
    assert COOKIE not in app.cookies
    # a new empty session is written only when forced with modified = True
    assert cookie_headers(app.get("/untouched")) == []
    res = app.get("/force")
    assert len(cookie_headers(res)) == 1


def test_cycle_key_keeps_data_under_a_new_key(app):
    res = app.get("/set/a?value=1")
    old_cookie = cookie_value(res)
    res = app.get("/cycle")
    body = res.json
    assert body["before"] != body["after"]
    assert cookie_value(res) != old_cookie
    assert app.get("/meta").json["session_key"] == body["after"]
    assert app.get("/get/a").json == {"value": "1"}


def test_flush_sends_a_deletion_cookie_and_starts_afresh(app):
    app.get("/set/a?value=1")
    res = app.get("/flush")
    assert res.json == {"changed": True, "keys": []}
    (header,) = cookie_headers(res)
    assert header.startswith(COOKIE + "=;") and "Max-Age=0" in header
    assert app.get("/get/a").json == {"value": None}
    # a write after flush() in the same request starts a new session
    app.get("/set/a?value=1")
    res = app.get("/flush?then=fresh")
    assert res.json == {"changed": True, "keys": ["after"]}
    (header,) = cookie_headers(res)
    assert "Max-Age=0" not in header
    assert app.get("/get/a").json == {"value": None}
    assert app.get("/get/after").json == {"value": "fresh"}


# -- expiry ---------------------------------------------------------------------------


def test_set_expiry_zero_gives_a_browser_session_cookie(app):
    res = app.get("/expiry?value=0")
    assert res.json["browser_close"] is True
    assert res.json["age"] == 1209600  # Django: the cookie age for browser sessions
    (header,) = cookie_headers(res)
    assert "max-age" not in header.lower() and "expires" not in header.lower()
    meta = app.get("/meta").json
    assert meta["browser_close"] is True


def test_set_expiry_seconds_is_kept_on_the_next_request(app):
    res = app.get("/expiry?value=300")
    assert res.json["age"] == 300
    assert res.json["browser_close"] is False
    (header,) = cookie_headers(res)
    assert "Max-Age=300" in header
    meta = app.get("/meta").json
    assert meta["age"] == 300
    assert meta["browser_close"] is False
    # a later write keeps the per-session lifetime
    res = app.get("/set/z?value=1")
    assert "Max-Age=300" in cookie_headers(res)[0]


def test_set_expiry_timedelta_datetime_and_none(app):
    res = app.get("/expiry?value=td600")
    assert res.json["age"] == 600
    assert "Max-Age=600" in cookie_headers(res)[0]
    res = app.get("/expiry?value=dt900")
    assert 895 <= res.json["age"] <= 900
    (header,) = cookie_headers(res)
    assert "Max-Age=89" in header or "Max-Age=900" in header
    res = app.get("/expiry?value=none")
    assert res.json["age"] == 1209600
    assert "Max-Age=1209600" in cookie_headers(res)[0]
    assert app.get("/meta").json["age"] == 1209600


def test_set_expiry_none_does_not_pin_the_default_into_the_token(django_setup):
    """Django's set_expiry(None) means "the global policy": the token keeps no lifetime
    of its own, so a later change of max_age reaches the session (issue 12 bug 2)."""
    app = make_app(max_age=600)
    res = app.get("/expiry?value=300")
    res = app.get("/expiry?value=none")
    token = cookie_value(res)
    middleware = app.app
    plaintext, _ = middleware.codec.open(token, "data", COOKIE)
    assert b'"m"' not in plaintext
    assert "Max-Age=600" in cookie_headers(res)[0]
    longer = make_app(max_age=7200)
    longer.set_cookie(COOKIE, token)
    assert longer.get("/meta").json["age"] == 7200


def test_get_expiry_date(django_setup, app):
    import datetime

    from django.utils import timezone

    app.get("/expiry?value=300")
    meta = app.get("/meta").json
    expires = datetime.datetime.fromisoformat(meta["expiry_date"])
    delta = (expires - timezone.now()).total_seconds()
    assert 295 <= delta <= 300


def test_get_expiry_age_kwargs(django_setup):
    """Django's keyword arguments, on a session made by a real middleware request."""
    import datetime

    from django.utils import timezone

    from wsgisession import SessionMiddleware
    from wsgisession.adapters.django import DjangoSession

    seen = {}

    def inner(environ, start_response):
        s = DjangoSession(environ["session"])
        now = timezone.now()
        seen["int"] = s.get_expiry_age(expiry=60)
        seen["dt"] = s.get_expiry_age(modification=now, expiry=now + datetime.timedelta(seconds=90))
        seen["none"] = s.get_expiry_age(expiry=None)
        seen["date"] = s.get_expiry_date(modification=now, expiry=60) - now
        seen["date_dt"] = s.get_expiry_date(expiry=now) == now
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    webtest.TestApp(SessionMiddleware(inner, secret_keys=[SECRET], max_age=120)).get("/")
    assert seen == {
        "int": 60,
        "dt": 90,
        "none": 120,
        "date": datetime.timedelta(seconds=60),
        "date_dt": True,
    }


# -- test cookie helpers ----------------------------------------------------------------


def test_test_cookie_helpers(app):
    assert app.get("/testcookie/check").json == {"worked": False}
    assert app.get("/testcookie/set").json == {"worked": True}
    assert app.get("/testcookie/check").json == {"worked": True}
    res = app.get("/testcookie/delete")
    assert res.json == {"worked": False}
    assert app.get("/testcookie/check").json == {"worked": False}


# -- django.contrib.auth ---------------------------------------------------------------


def test_login_cycles_the_key_and_logout_flushes(app):
    res = app.get("/set/cart?value=3")
    anonymous_cookie = cookie_value(res)
    anonymous_key = app.get("/meta").json["session_key"]
    assert app.get("/whoami").json == {"user": None}

    res = app.post("/login", {"username": "alice", "password": "wonderland"})
    assert res.json["ok"] is True
    assert res.json["before"] == anonymous_key
    assert res.json["after"] != anonymous_key
    assert cookie_value(res) != anonymous_cookie
    assert app.get("/meta").json["session_key"] == res.json["after"]
    assert app.get("/whoami").json == {"user": "alice"}
    assert app.get("/get/cart").json == {"value": "3"}  # cycle_key kept the data

    # the pre-login cookie (session fixation) does not carry the login
    fixated = make_app()
    fixated.set_cookie(COOKIE, anonymous_cookie)
    assert fixated.get("/whoami").json == {"user": None}

    res = app.get("/logout")
    (header,) = cookie_headers(res)
    assert "Max-Age=0" in header
    assert app.get("/whoami").json == {"user": None}
    assert app.get("/get/cart").json == {"value": None}


def test_login_as_another_user_flushes(app):
    app.post("/login", {"username": "alice", "password": "wonderland"})
    app.get("/set/mine?value=alice")
    res = app.post("/login", {"username": "bob", "password": "builder"})
    assert res.json["ok"] is True
    assert app.get("/whoami").json == {"user": "bob"}
    assert app.get("/get/mine").json == {"value": None}  # flush(), not cycle_key()


def test_bad_password_is_refused(app):
    app.post("/login", {"username": "alice", "password": "nope"}, status=403)
    assert app.get("/whoami").json == {"user": None}


# -- django.contrib.messages -----------------------------------------------------------


def test_messages_with_session_storage_across_a_redirect(app):
    res = app.get("/flash?msg=saved")
    assert res.status_int == 302
    assert len(cookie_headers(res)) == 1
    res = res.follow()
    assert res.json == {"messages": [["info", "saved"], ["warning", "careful"]]}
    assert app.get("/messages").json == {"messages": []}  # shown once


# -- CSRF in the session ---------------------------------------------------------------


def test_csrf_use_sessions(app):
    from django.conf import settings

    assert settings.CSRF_USE_SESSIONS is True
    res = app.get("/form")
    token = res.json["token"]
    assert "csrftoken" not in app.cookies  # the secret lives in the session
    assert len(cookie_headers(res)) == 1
    assert app.post("/form", {"csrfmiddlewaretoken": token, "text": "hi"}).text == "posted hi"
    # wrong token, no token, or the right token without the session: 403
    app.post("/form", {"csrfmiddlewaretoken": "x" * 64, "text": "hi"}, status=403)
    app.post("/form", {"text": "hi"}, status=403)
    make_app().post("/form", {"csrfmiddlewaretoken": token, "text": "hi"}, status=403)
    # the token keeps working for the session
    app.post("/form", {"csrfmiddlewaretoken": token, "text": "again"}, status=200)


def test_login_rotates_the_csrf_secret(app):
    token = app.get("/form").json["token"]
    app.post("/login", {"username": "alice", "password": "wonderland"})
    app.post("/form", {"csrfmiddlewaretoken": token}, status=403)
    new = app.get("/form").json["token"]
    assert app.post("/form", {"csrfmiddlewaretoken": new, "text": "ok"}).text == "posted ok"


# -- configuration ---------------------------------------------------------------------


def test_missing_outer_middleware_is_improperly_configured(django_setup):
    from django.core.exceptions import ImproperlyConfigured
    from django.core.wsgi import get_wsgi_application
    from django.test import override_settings

    bare = webtest.TestApp(get_wsgi_application())
    with override_settings(DEBUG_PROPAGATE_EXCEPTIONS=True):
        with pytest.raises(ImproperlyConfigured) as info:
            bare.get("/get/a")
    message = str(info.value)
    assert "request.environ['session'] is missing" in message
    assert "application = wrap(get_wsgi_application())" in message
    assert "from wsgisession.adapters.django import wrap" in message


def test_explicit_options_override_django_settings(django_setup):
    from django.test import override_settings

    with override_settings(
        SESSION_COOKIE_NAME="django_name",
        SESSION_COOKIE_AGE=1000,
        SESSION_COOKIE_PATH="/",
        WSGISESSION={"secret_keys": [SECRET], "cookie_name": "explicit", "max_age": 50},
    ):
        app = make_app()
        res = app.get("/set/a?value=1")
        assert cookie_headers(res, "django_name") == []
        (header,) = cookie_headers(res, "explicit")
        assert "Max-Age=50" in header
        assert app.get("/get/a").json == {"value": "1"}
        assert app.get("/meta").json["cookie_age"] == 50


def test_django_cookie_settings_are_read(django_setup):
    from django.test import override_settings

    with override_settings(
        SESSION_COOKIE_NAME="djsess",
        SESSION_COOKIE_AGE=777,
        SESSION_COOKIE_DOMAIN="localhost.example",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SAMESITE="Strict",
    ):
        res = make_app().get("/set/a?value=1", extra_environ={"wsgi.url_scheme": "https"})
        (header,) = cookie_headers(res, "djsess")
        attrs = [a.strip().lower() for a in header.split(";")]
        assert "max-age=777" in attrs
        assert "domain=localhost.example" in attrs
        assert "secure" in attrs
        assert "httponly" not in attrs
        assert "samesite=strict" in attrs


def test_expire_at_browser_close_setting(django_setup):
    from django.test import override_settings

    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True):
        app = make_app()
        res = app.get("/set/a?value=1")
        assert "max-age" not in cookie_headers(res)[0].lower()
        meta = app.get("/meta").json
        assert meta["browser_close"] is True
        assert meta["age"] == 1209600  # SESSION_COOKIE_AGE, as Django answers


def test_missing_or_bad_secrets_are_improperly_configured(django_setup):
    from django.core.exceptions import ImproperlyConfigured
    from django.core.wsgi import get_wsgi_application
    from django.test import override_settings

    from wsgisession.adapters.django import wrap

    with override_settings(WSGISESSION={}):
        with pytest.raises(ImproperlyConfigured, match="WSGISESSION = "):
            wrap(get_wsgi_application())
    with override_settings(WSGISESSION={"secret_keys": ["short"]}):
        with pytest.raises(ImproperlyConfigured, match="'secret_keys'"):
            wrap(get_wsgi_application())
    with override_settings(WSGISESSION={"secret_keys": [SECRET], "bogus": 1}):
        with pytest.raises(ImproperlyConfigured, match="'bogus'"):
            wrap(get_wsgi_application())
    with override_settings(WSGISESSION=["nope"]):
        with pytest.raises(ImproperlyConfigured, match="must be a dict"):
            wrap(get_wsgi_application())


def test_environ_key_setting(django_setup):
    from django.test import override_settings

    with override_settings(
        WSGISESSION={"secret_keys": [SECRET], "environ_key": "wsgisession.session"}
    ):
        app = make_app()
        app.get("/set/a?value=1")
        assert app.get("/get/a").json == {"value": "1"}


# -- the example project ---------------------------------------------------------------


def test_example_project_login_flow(tmp_path):
    """Import examples/django_project's wsgi application (in a fresh interpreter: one
    Django settings module per process) and log in, flash, log out through WebTest."""
    script = textwrap.dedent(
        """
        import json, sys
        import webtest
        from djdemo.wsgi import application
        from django.core.management import call_command
        from django.contrib.auth.models import User

        call_command("migrate", run_syncdb=True, verbosity=0)
        User.objects.create_user("demo", password="demo-password")
        app = webtest.TestApp(application)
        out = {}
        page = app.get("/")
        out["anonymous"] = "Not logged in" in page.text
        form = app.get("/login").forms["login"]
        form["username"] = "demo"
        form["password"] = "demo-password"
        res = form.submit()
        out["login_status"] = res.status_int
        page = res.follow()
        out["logged_in"] = "Logged in as demo" in page.text
        out["flash_login"] = "Welcome, demo" in page.text
        out["flash_once"] = "Welcome, demo" not in app.get("/").text
        logged_in_cookie = app.cookies["sessionid"]
        res = app.get("/").forms["logout"].submit()
        # flush() then the "Goodbye" message: a new session replaces the old cookie
        out["logout_cookie"] = app.cookies["sessionid"] not in ("", logged_in_cookie)
        page = res.follow()
        out["logged_out"] = "Not logged in" in page.text and "Goodbye" in page.text
        bad = app.get("/login").forms["login"]
        bad["username"] = "demo"
        bad["password"] = "wrong"
        out["bad_login"] = "Wrong username or password" in bad.submit().text
        print(json.dumps(out))
        """
    )
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["DJANGO_DEMO_DB"] = str(tmp_path / "demo.sqlite3")
    env["SESSION_SECRET"] = SECRET
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE), str(ROOT)])
    proc = subprocess.run(
        [sys.executable, *WARNING_FLAGS, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {
        "anonymous": True,
        "login_status": 302,
        "logged_in": True,
        "flash_login": True,
        "flash_once": True,
        "logout_cookie": True,
        "logged_out": True,
        "bad_login": True,
    }


def test_save_every_request_maps_to_rolling_and_https_gets_secure(django_setup):
    from django.test import override_settings

    with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
        app = make_app()
        app.get("/set/a?value=1")
        res = app.get("/get/a")  # read only, yet re-issued (rolling)
        assert len(cookie_headers(res)) == 1
    app = make_app()
    app.get("/set/a?value=1")
    assert cookie_headers(app.get("/get/a")) == []
    # SESSION_COOKIE_SECURE = False means "Secure on https", not "never Secure"
    res = make_app().get("/set/a?value=1", extra_environ={"wsgi.url_scheme": "https"})
    assert "secure" in [a.strip().lower() for a in cookie_headers(res)[0].split(";")]


def test_async_api(django_setup):
    """Django 5's async session methods act on the same wsgisession session."""
    import asyncio

    from wsgisession import SessionMiddleware
    from wsgisession.adapters.django import DjangoSession

    seen = {}

    async def steps(s):
        await s.aset("a", 1)
        seen["aget"] = await s.aget("a")
        seen["ahas_key"] = await s.ahas_key("a")
        seen["akeys"] = list(await s.akeys())
        await s.aset_expiry(0)
        seen["browser"] = await s.aget_expire_at_browser_close()
        await s.aset_expiry(300)
        seen["age"] = await s.aget_expiry_age()
        before = s.session_key
        await s.acycle_key()
        seen["cycled"] = s.session_key != before
        seen["apop"] = await s.apop("a")
        await s.aset("b", 2)
        await s.aflush()
        seen["flushed"] = list(await s.akeys())

    def inner(environ, start_response):
        asyncio.run(steps(DjangoSession(environ["session"])))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    res = webtest.TestApp(SessionMiddleware(inner, secret_keys=[SECRET])).get("/")
    assert seen == {
        "aget": 1,
        "ahas_key": True,
        "akeys": ["a"],
        "browser": True,
        "age": 300,
        "cycled": True,
        "apop": 1,
        "flushed": [],
    }
    (header,) = cookie_headers(res, "session")
    assert "Max-Age=0" in header


def test_django_test_client_drives_the_flows(django_setup):
    """Django's own test ``Client`` calls the handler, not the WSGI app: the adapter
    opens and commits the session itself for it, with the same options and codec."""
    from django.test import Client

    client = Client()
    assert client.get("/set/color", {"value": "blue"}).status_code == 200
    cookie = client.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert client.get("/get/color").json() == {"value": "blue"}

    before = client.cookies[COOKIE].value
    response = client.post("/login", {"username": "alice", "password": "wonderland"})
    assert response.json()["ok"] is True
    assert response.json()["before"] != response.json()["after"]  # cycle_key
    assert client.cookies[COOKIE].value != before
    assert client.get("/whoami").json() == {"user": "alice"}
    assert "Cookie" in client.get("/whoami")["Vary"]

    client.get("/flash", {"msg": "hello"})
    shown = client.get("/messages").json()
    assert "hello" in json.dumps(shown)
    assert "hello" not in json.dumps(client.get("/messages").json())

    logout = client.get("/logout")
    assert logout.cookies[COOKIE].value == ""
    assert str(logout.cookies[COOKIE]["max-age"]) == "0"
    assert client.get("/whoami").json() == {"user": None}


def test_real_servers_still_need_the_wsgi_middleware(django_setup):
    """Only the test Client is served without the WSGI middleware; a plain WSGI
    request still gets the ImproperlyConfigured that names the fix."""
    from wsgisession.adapters.django import _from_test_client

    assert _from_test_client({"wsgi.input": object()}) is False
    assert _from_test_client({}) is False
