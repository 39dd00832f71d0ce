"""The Flask adapter, driven through real Flask (and Flask-Login) apps and Flask's own
test client, which calls ``app.wsgi_app`` — the layer ``init_app`` wraps."""

from __future__ import annotations

import datetime
import importlib.util
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, flash, get_flashed_messages, redirect, session
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from markupsafe import Markup

from tests.conftest import OTHER_SECRET, SECRET, T0, Clock
from wsgisession import ConfigurationError, SessionMiddleware
from wsgisession.adapters.flask import (
    FlaskJSONSerializer,
    FlaskSession,
    FlaskSessionWSGI,
    WSGISessionInterface,
    init_app,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LIFETIME = 3600


def make_app(**options: Any) -> Flask:
    """A Flask app with no SECRET_KEY and a few session views, set up by ``init_app``."""
    app = Flask(__name__)
    app.config["WSGISESSION_SECRET_KEYS"] = [SECRET]
    app.config["PERMANENT_SESSION_LIFETIME"] = datetime.timedelta(seconds=LIFETIME)

    @app.get("/set/<key>/<value>")
    def set_value(key: str, value: str) -> str:
        session[key] = value
        return "ok"

    @app.get("/get/<key>")
    def get_value(key: str) -> str:
        return repr(session.get(key))

    @app.get("/append/<value>")
    def append(value: str) -> str:
        session.setdefault("cart", {"items": []})
        return "ok"

    @app.get("/nested/<value>")
    def nested(value: str) -> str:
        session["cart"]["items"].append(value)  # no session.modified = True
        return "ok"

    @app.get("/permanent/<flag>")
    def permanent(flag: str) -> str:
        session.permanent = flag == "1"
        session["x"] = 1
        return "ok"

    @app.get("/meta")
    def meta() -> dict[str, Any]:
        return {
            "new": session.new,
            "modified": session.modified,
            "type": type(session._get_current_object()).__name__,
        }  # type: ignore[attr-defined]

    @app.get("/untouched")
    def untouched() -> str:
        return "nothing"

    @app.get("/flash")
    def do_flash() -> Any:
        flash("plain <b>text</b>")
        flash(Markup("<i>markup</i>"), "warning")
        return redirect("/messages")

    @app.get("/messages")
    def messages() -> dict[str, Any]:
        got = get_flashed_messages(with_categories=True)
        return {
            "messages": [[c, str(m), isinstance(m, Markup)] for c, m in got],
        }

    @app.get("/clear")
    def clear() -> str:
        session.clear()
        return "cleared"

    init_app(app, **options)
    return app


def set_cookies(response: Any) -> list[str]:
    return list(response.headers.getlist("Set-Cookie"))


def our_cookie(response: Any, name: str = "session") -> str:
    cookies = [c for c in set_cookies(response) if c.startswith(name + "=")]
    assert len(cookies) == 1, set_cookies(response)
    return cookies[0]


def attributes(cookie: str) -> dict[str, str]:
    out = {}
    for part in cookie.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        out[name.lower()] = value
    return out


# -- basics -------------------------------------------------------------------------


def test_get_and_set_across_requests_without_secret_key() -> None:
    app = make_app()
    assert app.secret_key is None
    assert isinstance(app.wsgi_app, FlaskSessionWSGI)
    assert isinstance(app.session_interface, WSGISessionInterface)
    client = app.test_client()
    response = client.get("/set/a/hello")
    assert response.status_code == 200
    our_cookie(response)
    assert client.get("/get/a").text == "'hello'"
    # A second client has no cookie, hence no session.
    assert app.test_client().get("/get/a").text == "None"


def test_session_object_is_flask_compatible() -> None:
    app = make_app()
    client = app.test_client()
    assert client.get("/meta").json == {"new": True, "modified": False, "type": "FlaskSession"}
    client.get("/set/a/1")
    assert client.get("/meta").json == {"new": False, "modified": False, "type": "FlaskSession"}


def test_one_set_cookie_and_one_vary_and_none_when_untouched() -> None:
    app = make_app()
    client = app.test_client()
    response = client.get("/set/a/1")
    assert len(set_cookies(response)) == 1
    assert [v.strip() for v in ",".join(response.headers.getlist("Vary")).split(",")] == ["Cookie"]
    response = client.get("/untouched")
    assert set_cookies(response) == []
    assert "Vary" not in response.headers
    # Read only, not permanent: Vary but no cookie.
    response = client.get("/get/a")
    assert set_cookies(response) == []
    assert response.headers["Vary"] == "Cookie"


def test_nested_mutation_is_saved_without_modified() -> None:
    app = make_app()
    client = app.test_client()
    client.get("/append/x")
    response = client.get("/nested/apple")
    our_cookie(response)
    client.get("/nested/pear")
    assert client.get("/get/cart").text == "{'items': ['apple', 'pear']}"


def test_clearing_the_session_deletes_the_cookie() -> None:
    app = make_app()
    client = app.test_client()
    client.get("/set/a/1")
    response = client.get("/clear")
    cookie = our_cookie(response)
    assert cookie.startswith("session=;")
    assert attributes(cookie)["max-age"] == "0"
    assert client.get("/get/a").text == "None"


# -- flash and Markup -------------------------------------------------------------------


def test_flash_across_a_redirect_keeps_markup() -> None:
    app = make_app()
    client = app.test_client()
    response = client.get("/flash", follow_redirects=True)
    assert response.json == {
        "messages": [
            ["message", "plain <b>text</b>", False],
            ["warning", "<i>markup</i>", True],
        ]
    }
    # Shown once only.
    assert client.get("/messages").json == {"messages": []}


def test_serializer_round_trips_markup_and_look_alike_dicts() -> None:
    serializer = FlaskJSONSerializer()
    value = {
        "m": Markup("<b>x</b>"),
        "nested": [("cat", Markup("&amp;")), {"deep": Markup("y")}],
        "looks_like_tag": {"$html": "<script>"},
        "dollar": {"$": [["k", "v"]]},
        "tuple": (1, "a"),
        "when": datetime.date(2024, 1, 2),
    }
    back = serializer.loads(serializer.dumps(value))
    assert back == value
    assert type(back["m"]) is Markup
    assert type(back["nested"][0][1]) is Markup
    assert type(back["nested"][1]["deep"]) is Markup
    assert back["looks_like_tag"] == {"$html": "<script>"}
    assert type(back["looks_like_tag"]["$html"]) is str
    assert back["dollar"] == {"$": [["k", "v"]]}
    assert type(back["tuple"]) is tuple


# -- permanent / lifetime ----------------------------------------------------------------


def test_non_permanent_session_gets_a_browser_cookie_but_expires_on_the_server() -> None:
    clock = Clock(T0)
    app = make_app(clock=clock)
    client = app.test_client()
    cookie = our_cookie(client.get("/permanent/0"))
    assert "max-age" not in attributes(cookie)
    assert "expires" not in attributes(cookie)
    clock.advance(LIFETIME - 10)
    assert client.get("/get/x").text == "1"
    clock.advance(20)  # PERMANENT_SESSION_LIFETIME after the last save
    assert client.get("/get/x").text == "None"


def test_permanent_session_cookie_lasts_permanent_session_lifetime() -> None:
    clock = Clock(T0)
    app = make_app(clock=clock)
    client = app.test_client()
    cookie = our_cookie(client.get("/permanent/1"))
    assert attributes(cookie)["max-age"] == str(LIFETIME)
    assert "expires" in attributes(cookie)
    # SESSION_REFRESH_EACH_REQUEST (default True): a read re-sends the cookie.
    clock.advance(100)
    response = client.get("/get/x")
    assert attributes(our_cookie(response))["max-age"] == str(LIFETIME)
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    assert set_cookies(client.get("/get/x")) == []


def test_permanent_session_lifetime_is_read_at_each_request() -> None:
    app = make_app()
    client = app.test_client()
    app.config["PERMANENT_SESSION_LIFETIME"] = 120  # seconds, as Flask also accepts
    cookie = our_cookie(client.get("/permanent/1"))
    assert attributes(cookie)["max-age"] == "120"
    app.config["PERMANENT_SESSION_LIFETIME"] = datetime.timedelta(days=2)
    cookie = our_cookie(client.get("/permanent/1"))
    assert attributes(cookie)["max-age"] == str(2 * 86400)


def test_switching_permanent_off_gives_a_browser_cookie_again() -> None:
    app = make_app()
    client = app.test_client()
    assert "max-age" in attributes(our_cookie(client.get("/permanent/1")))
    cookie = our_cookie(client.get("/permanent/0"))
    assert "max-age" not in attributes(cookie)


@pytest.mark.parametrize(
    ("permanent", "refresh", "expect_cookie"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_cookie_refresh_matrix_as_flask(
    permanent: bool, refresh: bool, expect_cookie: bool
) -> None:
    # Flask's own test_session_cookie_setting, on wsgisession.
    app = make_app()
    app.config["SESSION_REFRESH_EACH_REQUEST"] = refresh

    @app.get("/bump")
    def bump() -> str:
        value = session["foo"] = session.get("foo", 0) + 1
        session.permanent = permanent
        return str(value)

    client = app.test_client()
    assert [client.get("/bump").text for _ in range(3)] == ["1", "2", "3"]
    response = client.get("/get/foo")
    assert response.text == "3"
    assert bool(set_cookies(response)) is expect_cookie


def test_session_written_in_after_request_and_special_types() -> None:
    app = make_app()
    the_uuid = uuid.uuid4()
    now = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)

    @app.after_request
    def modify(response: Any) -> Any:
        session["m"] = Markup("Hello!")
        session["u"] = the_uuid
        session["dt"] = now
        session["b"] = b"\xff"
        session["t"] = (1, 2, 3)
        return response

    @app.get("/dump")
    def dump() -> str:
        return repr({k: (type(v).__name__, v) for k, v in sorted(session.items())})

    client = app.test_client()
    assert client.get("/dump").text == "{}"
    expected = {
        "b": ("bytes", b"\xff"),
        "dt": ("datetime", now),
        "m": ("Markup", Markup("Hello!")),
        "t": ("tuple", (1, 2, 3)),
        "u": ("UUID", the_uuid),
    }
    assert client.get("/dump").text == repr(expected)


# -- cookie settings ---------------------------------------------------------------------


def test_flask_cookie_settings_apply_and_are_read_at_each_request() -> None:
    app = make_app()
    app.config.update(
        SESSION_COOKIE_NAME="flask_sess",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_DOMAIN="example.test",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=False,
    )
    client = app.test_client()
    response = client.get("/set/a/1", base_url="https://example.test")
    cookie = our_cookie(response, "flask_sess")
    attrs = attributes(cookie)
    assert attrs["path"] == "/app"
    assert attrs["domain"].lstrip(".") == "example.test"
    assert attrs["samesite"] == "Strict"
    assert "secure" in attrs
    assert "httponly" not in attrs


def test_application_root_is_the_default_path() -> None:
    app = make_app()
    app.config["APPLICATION_ROOT"] = "/bar"
    cookie = our_cookie(app.test_client().get("/set/a/1"))
    assert attributes(cookie)["path"] == "/bar"


def test_explicit_options_override_flask_settings() -> None:
    app = make_app(cookie_name="explicit", samesite="Lax")
    app.config["SESSION_COOKIE_NAME"] = "ignored"
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    client = app.test_client()
    response = client.get("/set/a/1")
    cookie = our_cookie(response, "explicit")
    assert attributes(cookie)["samesite"] == "Lax"
    assert not any(c.startswith("ignored=") for c in set_cookies(response))
    assert client.get("/get/a").text == "'1'"


def test_explicit_max_age_overrides_permanent_session_lifetime() -> None:
    app = make_app(max_age=600)
    client = app.test_client()
    assert attributes(our_cookie(client.get("/permanent/1")))["max-age"] == "600"
    # An explicit max_age is the cookie's lifetime whatever ``permanent`` says.
    assert attributes(our_cookie(client.get("/permanent/0")))["max-age"] == "600"


def test_secret_keys_from_init_app_and_missing_keys() -> None:
    app = Flask(__name__)
    with pytest.raises(ConfigurationError, match="WSGISESSION_SECRET_KEYS"):
        init_app(app)
    app2 = Flask(__name__)

    @app2.get("/")
    def index() -> str:
        session["k"] = "v"
        return repr(session["k"])

    wsgi = init_app(app2, secret_keys=[OTHER_SECRET])
    assert isinstance(wsgi.middleware(), SessionMiddleware)
    client = app2.test_client()
    assert client.get("/").text == "'v'"
    # A cookie sealed with another key is not accepted.
    other = make_app()
    other_client = other.test_client()
    other_client.set_cookie("session", client.get_cookie("session").value)  # type: ignore[union-attr]
    assert other_client.get("/get/k").text == "None"


# -- Flask-Login --------------------------------------------------------------------------


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def login_app(**config: Any) -> Flask:
    app = make_app()
    app.config.update(config)
    manager = LoginManager(app)

    @manager.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id in {"alice", "bob"} else None

    @app.get("/login/<name>")
    def login(name: str) -> str:
        session.regenerate()  # type: ignore[attr-defined]
        login_user(User(name), remember="remember" in config.get("FLAGS", ()))
        return "logged in"

    @app.get("/remember/<name>")
    def remember(name: str) -> str:
        login_user(User(name), remember=True)
        return "logged in"

    @app.get("/me")
    def me() -> str:
        return current_user.id if current_user.is_authenticated else "anonymous"

    @app.get("/logout")
    def logout() -> str:
        logout_user()
        return "logged out"

    return app


def test_flask_login_login_and_logout_without_secret_key() -> None:
    app = login_app()
    assert app.secret_key is None
    client = app.test_client()
    assert client.get("/me").text == "anonymous"
    client.get("/set/before/1")
    before = client.get_cookie("session").value  # type: ignore[union-attr]
    response = client.get("/login/alice")
    assert our_cookie(response) != "session=" + before
    assert client.get("/me").text == "alice"
    assert client.get("/get/_user_id").text == "'alice'"
    client.get("/logout")
    assert client.get("/me").text == "anonymous"
    assert client.get("/get/_user_id").text == "None"
    # The old (pre-login) cookie still works as a session but was never logged in.
    other = app.test_client()
    other.set_cookie("session", before)
    assert other.get("/me").text == "anonymous"


def test_flask_login_remember_me_logs_in_again_without_our_cookie() -> None:
    # Flask-Login signs its own remember cookie with SECRET_KEY; our session doesn't.
    app = login_app(SECRET_KEY="flask-login-remember-cookie-key")
    client = app.test_client()
    response = client.get("/remember/bob")
    names = [c.split("=", 1)[0] for c in set_cookies(response)]
    assert sorted(names) == ["remember_token", "session"]
    assert client.get("/me").text == "bob"
    client.delete_cookie("session")
    assert client.get_cookie("remember_token") is not None
    assert client.get("/me").text == "bob"
    client.get("/logout")
    assert client.get("/me").text == "anonymous"
    client.delete_cookie("session")
    assert client.get("/me").text == "anonymous"


def fixation_app(**init_options: Any) -> tuple[Flask, Any]:
    """A typical Flask-Login app in store mode whose login view does NOT regenerate the
    session itself (most don't): only the adapter can stop session fixation."""
    from wsgisession import MemoryStore

    store = MemoryStore()
    app = Flask(__name__)
    app.config["WSGISESSION_SECRET_KEYS"] = [SECRET]
    app.config["SECRET_KEY"] = "flask-login-remember-cookie-key"
    init_app(app, store=store, **init_options)
    manager = LoginManager(app)

    @manager.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id == "victim" else None

    @app.get("/visit")
    def visit() -> str:
        session["lang"] = "en"  # any anonymous session, e.g. a CSRF token or a cart
        return "hello"

    @app.get("/login")
    def login() -> str:
        login_user(User("victim"), remember=True)
        return "logged in"

    @app.get("/me")
    def me() -> str:
        return current_user.id if current_user.is_authenticated else "anonymous"

    return app, store


def test_flask_login_login_rotates_a_planted_session_id_in_store_mode() -> None:
    """Issue 11 item 7: the attacker's pre-login cookie, planted in the victim's browser,
    must not end up pointing at the logged-in session."""
    app, store = fixation_app()
    attacker = app.test_client()
    attacker.get("/visit")
    planted = attacker.get_cookie("session").value  # type: ignore[union-attr]
    victim = app.test_client()
    victim.set_cookie("session", planted)
    assert victim.get("/me").text == "anonymous"
    response = victim.get("/login")
    assert our_cookie(response) != "session=" + planted
    assert victim.get("/me").text == "victim"
    assert victim.get("/visit").text == "hello"  # the data moved along
    assert attacker.get("/me").text == "anonymous"  # the planted id is not logged in
    assert len(store) == 1  # the old record was moved, not copied


def test_flask_login_remember_cookie_login_rotates_the_id_too() -> None:
    app, _ = fixation_app()
    victim = app.test_client()
    victim.get("/login")
    remember = victim.get_cookie("remember_token").value  # type: ignore[union-attr]
    attacker = app.test_client()
    attacker.get("/visit")
    planted = attacker.get_cookie("session").value  # type: ignore[union-attr]
    victim.set_cookie("session", planted)  # remember cookie kept, session cookie planted
    assert victim.get_cookie("remember_token").value == remember  # type: ignore[union-attr]
    response = victim.get("/me")
    assert response.text == "victim"
    assert our_cookie(response) != "session=" + planted
    assert attacker.get("/me").text == "anonymous"


def test_regenerate_on_login_can_be_turned_off() -> None:
    app, _ = fixation_app(regenerate_on_login=False)
    attacker = app.test_client()
    attacker.get("/visit")
    planted = attacker.get_cookie("session").value  # type: ignore[union-attr]
    victim = app.test_client()
    victim.set_cookie("session", planted)
    victim.get("/login")
    # Documented consequence of turning it off: the planted id is now logged in.
    assert attacker.get("/me").text == "victim"
    with pytest.raises(ConfigurationError) as info:
        init_app(Flask(__name__), secret_keys=[SECRET], regenerate_on_login="yes")
    assert info.value.option == "regenerate_on_login"


# -- without the middleware in the WSGI path ---------------------------------------------


def test_session_transaction_and_test_request_context() -> None:
    app = make_app()
    client = app.test_client()
    with client.session_transaction() as sess:
        assert isinstance(sess, FlaskSession)
        sess["from_transaction"] = Markup("<b>t</b>")
        sess["cart"] = {"items": []}
    assert client.get("/get/from_transaction").text == "Markup('<b>t</b>')"
    client.get("/nested/apple")
    with client.session_transaction() as sess:
        assert sess["cart"] == {"items": ["apple"]}
        sess["cart"]["items"].append("pear")  # nested, no modified
    assert client.get("/get/cart").text == "{'items': ['apple', 'pear']}"
    with app.test_request_context("/"):
        assert session.get("anything") is None
        session["x"] = 1
        assert session.new


def test_untouched_session_transaction_sets_nothing() -> None:
    app = make_app()
    client = app.test_client()
    client.get("/set/a/1")
    before = client.get_cookie("session").value  # type: ignore[union-attr]
    with client.session_transaction():
        pass
    assert client.get_cookie("session").value == before  # type: ignore[union-attr]
    assert client.get("/get/a").text == "'1'"


def test_test_request_context_saves_onto_the_flask_response() -> None:
    app = make_app()
    with app.test_request_context("/"):
        session["x"] = Markup("<b>1</b>")
        response = app.process_response(app.make_response("body"))
    cookie = our_cookie(response)
    assert response.headers["Vary"] == "Cookie"
    assert "max-age" not in attributes(cookie)
    client = app.test_client()
    client.set_cookie("session", cookie.split(";")[0].split("=", 1)[1])
    assert client.get("/get/x").text == "Markup('<b>1</b>')"


def test_setting_modified_forces_a_save() -> None:
    app = make_app()

    @app.get("/touch")
    def touch() -> str:
        session.get("a")
        session.modified = True
        return "ok"

    client = app.test_client()
    assert set_cookies(client.get("/touch")) == []  # empty: nothing to save
    client.get("/set/a/1")
    assert set_cookies(client.get("/get/a")) == []
    our_cookie(client.get("/touch"))
    assert client.get("/get/a").text == "'1'"


# -- the example -----------------------------------------------------------------------------


def test_example_login_flash_logout_flow() -> None:
    spec = importlib.util.spec_from_file_location("flask_example", EXAMPLES / "flask_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["flask_example"] = module
    try:
        spec.loader.exec_module(module)
        app = module.create_app([SECRET])
    finally:
        del sys.modules["flask_example"]
    client = app.test_client()
    assert "Not logged in" in client.get("/").text
    assert client.get("/private").status_code == 302
    response = client.post(
        "/login", data={"username": "alice", "password": "nope"}, follow_redirects=True
    )
    assert "error: Wrong user name or password." in response.text
    response = client.post(
        "/login", data={"username": "alice", "password": "wonderland"}, follow_redirects=True
    )
    assert "success: Welcome, <b>alice</b>!" in response.text  # Markup kept, not escaped
    assert "Logged in as alice" in response.text
    assert client.get("/private").status_code == 200
    response = client.get("/logout", follow_redirects=True)
    assert "info: You have been logged out." in response.text
    assert "Not logged in" in response.text
    assert client.get("/private").status_code == 302
