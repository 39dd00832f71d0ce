"""The Flask adapter — a ``SessionInterface`` on the seam — driven through real Flask
(and Flask-Login) apps and Flask's own test client, with no WSGI middleware in the
path. Runs against Flask 3.1 and, in ``tox -e py311-flask23``, Flask 2.3."""

from __future__ import annotations

import datetime
import importlib.util
import sys
import uuid
from pathlib import Path
from typing import Any

import flask
import pytest
from flask import Flask, flash, get_flashed_messages, redirect, session
from flask.globals import request_ctx
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from werkzeug.http import dump_cookie, http_date

from tests.conftest import OTHER_SECRET, SECRET, T0, Clock
from wsgisession import (
    ConfigurationError,
    HeaderKey,
    JSONSerializer,
    MemoryStore,
    SessionEvent,
    SessionTooLarge,
)
from wsgisession.adapters._flask_cookies import HAS_PARTITIONED, template_for
from wsgisession.adapters.flask import (
    FlaskJSONSerializer,
    FlaskSession,
    FlaskSessionManager,
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
            "type": type(session._get_current_object()).__name__,  # type: ignore[attr-defined]
        }

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
        return {"messages": [[c, str(m), isinstance(m, Markup)] for c, m in got]}

    @app.get("/clear")
    def clear() -> str:
        session.clear()
        return "cleared"

    @app.get("/fail")
    def fail() -> Any:
        session["during_error"] = 1
        return "broken", 503

    @app.get("/logout-on-error")
    def logout_on_error() -> Any:
        session.invalidate()  # type: ignore[attr-defined]
        return "broken", 500

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


def vary(response: Any) -> list[str]:
    return [v.strip() for v in ",".join(response.headers.getlist("Vary")).split(",") if v]


# -- basics -------------------------------------------------------------------------


def test_get_and_set_across_requests_without_secret_key_or_wsgi_wrapping() -> None:
    app = make_app()
    assert app.secret_key is None
    assert isinstance(app.session_interface, WSGISessionInterface)
    assert app.extensions["wsgisession"] is app.session_interface
    assert app.wsgi_app.__func__ is Flask.wsgi_app  # type: ignore[attr-defined]
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
    assert vary(response) == ["Cookie"]
    assert response.headers["Cache-Control"] == "private"
    response = client.get("/untouched")
    assert set_cookies(response) == []
    assert "Vary" not in response.headers
    # Read only, not permanent: Vary but no cookie.
    response = client.get("/get/a")
    assert set_cookies(response) == []
    assert response.headers["Vary"] == "Cookie"
    assert "Cache-Control" not in response.headers


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
    assert vary(response) == ["Cookie"]
    assert client.get("/get/a").text == "None"


def test_our_cookie_is_spelled_as_werkzeug_spells_it() -> None:
    """The cached templates render exactly what ``response.set_cookie`` and
    ``delete_cookie`` would (Werkzeug's ``dump_cookie``)."""
    extra = {"partitioned": True} if HAS_PARTITIONED else {}
    cases = [
        dict(domain=None, path="/", secure=False, httponly=True, samesite="Lax"),
        dict(domain=".example.com", path="/a b", secure=True, httponly=False, samesite=None),
        dict(domain="example.com", path="/x", secure=True, httponly=True, samesite="Strict"),
    ]
    for attrs in cases:
        template = template_for("session", partitioned=False, **attrs)  # type: ignore[arg-type]
        assert template.render("tok", None, None) == dump_cookie("session", "tok", **attrs)
        expected = dump_cookie("session", "tok", max_age=60, expires=T0, **attrs)
        assert template.render("tok", 60, T0) == expected
        assert template.deletion == dump_cookie("session", "", max_age=0, expires=0, **attrs)
    template = template_for("s", None, "/", True, True, "Lax", True)
    expected = dump_cookie("s", "v", path="/", secure=True, httponly=True, samesite="Lax", **extra)
    assert template.render("v", None, None) == expected + ("" if extra else "; Partitioned")


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
        "other_dollar": {"$t": [1]},
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
    assert back["other_dollar"] == {"$t": [1]}
    assert type(back["tuple"]) is tuple
    # Data with nothing to tag is the base serializer's, byte for byte.
    plain = {"a": [1, "b", {"c": None}], "t": (1,)}
    assert serializer.dumps(plain) == JSONSerializer().dumps(plain)


_keys = st.one_of(st.sampled_from(["$", "$html", "$t", "$x", "a", " t"]), st.text(max_size=5))
_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(max_size=8),
        st.text(max_size=8).map(Markup),
        st.binary(max_size=4),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_keys, inner, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=4))
def test_serializer_round_trips_any_data_exactly(data: dict[str, Any]) -> None:
    serializer = FlaskJSONSerializer()

    def typed(value: Any) -> Any:
        if isinstance(value, dict):
            return ("dict", {k: typed(v) for k, v in value.items()})
        if isinstance(value, list | tuple):
            return (type(value).__name__, [typed(v) for v in value])
        return (type(value).__name__, value)

    assert typed(serializer.loads(serializer.dumps(data))) == typed(data)


def test_serializer_reads_what_the_previous_adapter_wrote() -> None:
    """The previous adapter escaped every single-``$``-key dict itself; those tokens
    still open to the same data."""
    old_form = {"x": {"$": [["$x", 1]]}, "m": {"$html": "<b>"}}
    data = FlaskJSONSerializer().loads(JSONSerializer().dumps(old_form))
    assert data == {"x": {"$x": 1}, "m": Markup("<b>")}


# -- permanent / lifetime / refresh ------------------------------------------------------


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
    assert attributes(cookie)["expires"] == http_date(T0 + LIFETIME)
    # SESSION_REFRESH_EACH_REQUEST (default True): a read re-sends the cookie.
    clock.advance(100)
    response = client.get("/get/x")
    assert attributes(our_cookie(response))["max-age"] == str(LIFETIME)
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    assert set_cookies(client.get("/get/x")) == []


def test_refresh_re_sends_a_permanent_cookie_on_a_request_that_never_touches_it() -> None:
    """As Flask does (its test_session_refresh_vary): the cookie, with Vary: Cookie."""
    clock = Clock(T0)
    app = make_app(clock=clock)
    client = app.test_client()
    client.get("/permanent/1")
    clock.advance(100)
    response = client.get("/untouched")
    cookie = our_cookie(response)
    assert attributes(cookie)["expires"] == http_date(T0 + 100 + LIFETIME)
    assert vary(response) == ["Cookie"]
    clock.advance(LIFETIME - 10)  # still alive: the refresh moved the token's expiry too
    assert client.get("/get/x").text == "1"


def test_an_untouched_non_permanent_session_sends_nothing_and_is_not_opened_without_refresh() -> (
    None
):
    opened = []

    def valid(environ: dict[str, Any], session: Any) -> bool:
        opened.append(1)
        return True

    app = make_app(valid=valid)
    client = app.test_client()
    client.get("/permanent/0")
    opened.clear()
    # Refresh on (Flask's default): the cookie is opened to see whether it is
    # permanent (Flask decodes every request's cookie); it is not, so nothing is sent.
    response = client.get("/untouched")
    assert set_cookies(response) == [] and "Vary" not in response.headers
    assert opened == [1]
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    response = client.get("/untouched")
    assert set_cookies(response) == [] and "Vary" not in response.headers
    assert opened == [1]  # never opened
    assert app.test_client().get("/untouched").headers.get("Set-Cookie") is None


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


# -- modified / accessed after the response ----------------------------------------------


def flags() -> tuple[bool, bool]:
    """The request's session's (accessed, modified), read as Flask's tests read them
    (Flask ≥ 3.1.3 keeps it in ``_session``; reading ``.session`` would set accessed)."""
    fields = vars(request_ctx._get_current_object())  # type: ignore[attr-defined]
    current = fields.get("_session", fields.get("session"))
    return current.accessed, current.modified


def test_modified_and_accessed_are_flasks_after_the_response() -> None:
    app = make_app()
    client = app.test_client()
    with client:
        client.get("/untouched")
        assert flags() == (False, False)
    with client:
        client.get("/set/a/1")
        assert flags() == (True, True)
    with client:
        client.get("/get/a")
        assert flags() == (True, False)
    with client:
        # The cookie is opened to check `permanent` (refresh): that is not an access.
        client.get("/untouched")
        assert flags() == (False, False)
    with client:
        client.get("/clear")
        assert flags() == (True, True)


def test_setting_modified_forces_a_save_and_on_an_empty_session_a_deletion() -> None:
    app = make_app()

    @app.get("/touch")
    def touch() -> str:
        session.get("a")
        session.modified = True
        return "ok"

    client = app.test_client()
    # Empty and modified: Flask's deletion cookie (even with no cookie to delete).
    assert our_cookie(client.get("/touch")).startswith("session=;")
    client.get("/set/a/1")
    assert set_cookies(client.get("/get/a")) == []
    our_cookie(client.get("/touch"))
    assert client.get("/get/a").text == "'1'"


# -- cookie settings --------------------------------------------------------------------


def test_flask_cookie_settings_apply_and_are_read_at_each_request() -> None:
    app = make_app()
    client = app.test_client()
    manager = app.session_interface.app_manager(app)  # type: ignore[attr-defined]
    cookie = our_cookie(client.get("/set/a/1"))
    assert attributes(cookie)["path"] == "/" and "domain" not in attributes(cookie)
    app.config.update(
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_DOMAIN="example.test",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=False,
    )
    cookie = our_cookie(client.get("/set/a/2", base_url="https://example.test"))
    attrs = attributes(cookie)
    assert attrs["path"] == "/app"
    assert attrs["domain"].lstrip(".") == "example.test"
    assert attrs["samesite"] == "Strict"
    assert "secure" in attrs
    assert "httponly" not in attrs
    # Cookie attributes never select another manager: nothing was rebuilt.
    assert app.session_interface.app_manager(app) is manager  # type: ignore[attr-defined]


def test_cookie_name_and_lifetime_select_a_manager_from_a_small_cache() -> None:
    app = make_app()
    interface: WSGISessionInterface = app.session_interface  # type: ignore[assignment]
    client = app.test_client()
    client.get("/set/a/1")
    first = interface.app_manager(app)
    assert isinstance(first, FlaskSessionManager) and first.name == "session"
    app.config["SESSION_COOKIE_NAME"] = "other"
    response = client.get("/get/a")
    assert response.text == "None"  # the token is bound to its cookie name
    our_cookie(client.get("/set/a/2"), "other")
    assert interface.app_manager(app) is not first
    app.config["SESSION_COOKIE_NAME"] = "session"
    assert interface.app_manager(app) is first
    assert client.get("/get/a").text == "'1'"
    for days in range(1, 20):
        app.config["PERMANENT_SESSION_LIFETIME"] = datetime.timedelta(days=days)
        client.get("/get/a")
    assert interface.manager_count <= 8


def test_application_root_is_the_default_path() -> None:
    app = make_app()
    app.config["APPLICATION_ROOT"] = "/bar"
    cookie = our_cookie(app.test_client().get("/set/a/1"))
    assert attributes(cookie)["path"] == "/bar"


def test_deletion_cookie_under_server_name_and_application_root() -> None:
    """Flask's test_session_using_session_settings: the cookie set, then the deletion
    after emptying the session, both with Domain, Path, Secure, SameSite, Partitioned."""
    app = make_app()
    app.config.update(
        SERVER_NAME="www.example.com:8080",
        APPLICATION_ROOT="/test",
        SESSION_COOKIE_DOMAIN=".example.com",
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_PARTITIONED=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
    )

    @app.get("/drop")
    def drop() -> str:
        session.pop("a", None)
        return "gone"

    client = app.test_client()
    base = "http://www.example.com:8080/test/"
    for cookie in (
        our_cookie(client.get("/set/a/1", base)),
        our_cookie(client.get("/drop", base)),
    ):
        attrs = attributes(cookie)
        assert attrs["domain"].lstrip(".") == "example.com"
        assert attrs["path"] == "/"
        assert {"secure", "partitioned"} <= set(attrs) and "httponly" not in attrs
        assert attrs["samesite"] == "Lax"
    assert cookie.startswith("session=;") and attrs["max-age"] == "0"
    assert client.get("/get/a", base).text == "None"


def test_samesite_is_lax_unless_the_app_sets_it() -> None:
    app = make_app()
    client = app.test_client()
    assert attributes(our_cookie(client.get("/set/a/1")))["samesite"] == "Lax"
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    assert attributes(our_cookie(client.get("/set/a/2")))["samesite"] == "Strict"
    app.config["SESSION_COOKIE_SAMESITE"] = "None"  # cross-site: always Secure
    cookie = our_cookie(client.get("/set/a/3"))
    assert attributes(cookie)["samesite"] == "None" and "secure" in attributes(cookie)
    app.config["SESSION_COOKIE_SAMESITE"] = "bogus"  # Werkzeug refuses it, as for Flask
    app.testing = True
    with pytest.raises(ValueError, match="SameSite"):
        client.get("/set/a/4")
    app.testing = False
    assert client.get("/set/a/5").status_code == 500
    # No SameSite at all: say so to init_app.
    omitted = make_app(samesite=None)
    assert "samesite" not in attributes(our_cookie(omitted.test_client().get("/set/a/1")))


def test_secure_on_https_by_default_and_always_when_flask_says_so() -> None:
    events: list[SessionEvent] = []
    app = make_app(on_event=events.append)
    client = app.test_client()
    assert "secure" not in attributes(our_cookie(client.get("/set/a/1")))
    cookie = our_cookie(client.get("/set/a/1", base_url="https://localhost"))
    assert "secure" in attributes(cookie)
    app.config["SESSION_COOKIE_SECURE"] = True
    assert "secure" in attributes(our_cookie(client.get("/set/a/2")))
    our_cookie(client.get("/set/a/3"))
    assert [e.reason for e in events if e.name == "insecure_transport"] == ["http_scheme"]
    host = make_app(cookie_name="__Host-session")
    assert "secure" in attributes(our_cookie(host.test_client().get("/set/a/1"), "__Host-session"))


def test_explicit_options_override_flask_settings() -> None:
    app = make_app(cookie_name="explicit", samesite="Lax", domain="example.org", path="/p")
    app.config["SESSION_COOKIE_NAME"] = "ignored"
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    app.config["SESSION_COOKIE_DOMAIN"] = "ignored.example"
    client = app.test_client()
    response = client.get("/set/a/1", base_url="http://example.org/p")
    attrs = attributes(our_cookie(response, "explicit"))
    assert attrs["samesite"] == "Lax" and attrs["path"] == "/p"
    assert attrs["domain"].lstrip(".") == "example.org"
    assert not any(c.startswith("ignored=") for c in set_cookies(response))
    assert client.get("/get/a", base_url="http://example.org/p").text == "'1'"
    per_request = make_app(domain=lambda environ: environ["HTTP_HOST"].split(":")[0])
    cookie = our_cookie(per_request.test_client().get("/set/a/1", base_url="http://a.example"))
    assert attributes(cookie)["domain"].lstrip(".") == "a.example"


def test_explicit_max_age_overrides_permanent_session_lifetime() -> None:
    app = make_app(max_age=600)
    client = app.test_client()
    assert attributes(our_cookie(client.get("/permanent/1")))["max-age"] == "600"
    # An explicit max_age is the cookie's lifetime whatever ``permanent`` says.
    assert attributes(our_cookie(client.get("/permanent/0")))["max-age"] == "600"
    app.config["PERMANENT_SESSION_LIFETIME"] = 5
    assert attributes(our_cookie(client.get("/permanent/0")))["max-age"] == "600"


def test_secret_keys_from_init_app_and_missing_keys() -> None:
    with pytest.raises(ConfigurationError, match="WSGISESSION_SECRET_KEYS"):
        init_app(Flask(__name__))
    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        session["k"] = "v"
        return repr(session["k"])

    interface = init_app(app, secret_keys=[OTHER_SECRET])
    assert app.session_interface is interface
    client = app.test_client()
    assert client.get("/").text == "'v'"
    # A cookie sealed with another key is not accepted.
    other_client = make_app().test_client()
    other_client.set_cookie("session", client.get_cookie("session").value)  # type: ignore[union-attr]
    assert other_client.get("/get/k").text == "None"
    # One key as a plain string is a list of one.
    single = Flask(__name__)
    single.config["WSGISESSION_SECRET_KEYS"] = SECRET
    assert init_app(single).options.secret_keys == (SECRET,)


def test_init_app_fails_at_once_on_a_bad_option_or_setting() -> None:
    for options, option in (
        ({"max_age": 0}, "max_age"),
        ({"samesite": "sometimes"}, "samesite"),
        ({"unknown": 1}, "unknown"),
        ({"secure": False, "cookie_name": "__Host-s"}, "secure"),
    ):
        with pytest.raises(ConfigurationError) as info:
            init_app(Flask(__name__), secret_keys=[SECRET], **options)
        assert info.value.option == option
    app = Flask(__name__)
    app.config["SESSION_COOKIE_NAME"] = "bad name"
    with pytest.raises(ConfigurationError) as info:
        init_app(app, secret_keys=[SECRET])
    assert info.value.option == "cookie_name"


def test_one_interface_can_serve_every_app_of_a_flask_subclass() -> None:
    class MyFlask(Flask):
        session_interface = WSGISessionInterface(secret_keys=[SECRET])

    apps = [MyFlask(f"app{i}") for i in range(2)]
    apps[1].config["SESSION_COOKIE_NAME"] = "second"
    for app in apps:

        @app.get("/")
        def index() -> str:
            session["n"] = session.get("n", 0) + 1
            return str(session["n"])

    clients = [app.test_client() for app in apps]
    assert [c.get("/").text for c in clients + clients] == ["1", "1", "2", "2"]
    assert clients[1].get_cookie("second") is not None


# -- errors, caching, big sessions -------------------------------------------------------


def test_a_5xx_saves_nothing_but_a_logout_still_clears_the_cookie() -> None:
    app = make_app()
    client = app.test_client()
    client.get("/set/a/1")
    response = client.get("/fail")
    assert response.status_code == 503 and set_cookies(response) == []
    assert client.get("/get/during_error").text == "None"
    response = client.get("/logout-on-error")
    assert our_cookie(response).startswith("session=;")
    assert client.get("/get/a").text == "None"


def test_commit_on_error_saves_on_a_5xx_as_flask_does() -> None:
    app = make_app(commit_on_error=True)
    client = app.test_client()
    our_cookie(client.get("/fail"))
    assert client.get("/get/during_error").text == "1"


def test_cache_control_is_made_private_and_vary_merged() -> None:
    app = make_app()

    @app.get("/public")
    def public() -> Any:
        session["p"] = 1
        response = flask.make_response("cached?")
        response.headers["Cache-Control"] = "public, max-age=60, s-maxage=600"
        response.vary.add("Accept-Encoding")
        return response

    @app.get("/own-cookie")
    def own_cookie() -> Any:
        session["o"] = 1
        response = flask.make_response("mine")
        response.set_cookie("session", "the app's own")
        response.set_cookie("other", "kept")
        return response

    client = app.test_client()
    response = client.get("/public")
    assert response.headers["Cache-Control"] == "private, max-age=60"
    assert response.headers.getlist("Vary") == ["Accept-Encoding, Cookie"]
    names = [c.split("=", 1)[0] for c in set_cookies(client.get("/own-cookie"))]
    assert sorted(names) == ["other", "session"]
    assert client.get("/get/o").text == "1"


def test_a_session_too_large_for_a_cookie_is_an_error() -> None:
    def big_app(**config: Any) -> Flask:
        app = make_app()
        app.config.update({"TESTING": True, **config})

        @app.get("/big/<int:size>")
        def big(size: int) -> str:
            session["blob"] = "x" * size
            return "ok"

        return app

    def length(size: int) -> int:
        return len(our_cookie(big_app().test_client().get(f"/big/{size}")))

    with pytest.raises(SessionTooLarge):
        big_app().test_client().get("/big/5000")
    # Near the limit, the cookie's own attributes (here a long Domain) count too.
    size = 2800
    while length(size + 10) <= 4096 - 60:
        size += 10
    domain = "a-long-domain-name-for-a-cookie." * 3 + "example"
    client = big_app(SESSION_COOKIE_DOMAIN=domain).test_client()
    assert length(size) <= 4096
    with pytest.raises(SessionTooLarge):
        client.get(f"/big/{size}")
    # Outside testing, Flask answers with its error page, and no cookie.
    app = big_app(TESTING=False)
    response = app.test_client().get("/big/5000")
    assert response.status_code == 500 and set_cookies(response) == []


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
        login_user(User(name))
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


# -- store mode, header tokens, auto_commit -----------------------------------------------


def test_store_mode_keeps_the_data_on_the_server_and_deletes_it_on_clear() -> None:
    store = MemoryStore()
    app = make_app(store=store)
    client = app.test_client()
    cookie = our_cookie(client.get("/set/a/" + "y" * 3000))  # larger than a cookie could hold
    assert len(cookie) < 300 and len(store) == 1
    assert client.get("/get/a").text == repr("y" * 3000)
    with client.session_transaction() as sess:
        assert sess["a"] == "y" * 3000
        sess["b"] = 2
    assert client.get("/get/b").text == "2"
    client.get("/clear")
    assert len(store) == 0


def test_a_header_token_instead_of_a_cookie() -> None:
    app = make_app(store=MemoryStore(), external_key=HeaderKey("X-Session"))
    client = app.test_client()
    response = client.get("/set/a/1")
    token = response.headers["X-Session"]
    assert set_cookies(response) == [] and vary(response) == ["X-Session"]
    assert response.headers["Cache-Control"] == "private"
    assert client.get("/get/a", headers={"X-Session": token}).text == "'1'"
    assert client.get("/get/a").text == "None"
    assert client.get("/clear", headers={"X-Session": token}).headers["X-Session"] == ""


def test_auto_commit_off_saves_only_on_commit() -> None:
    app = make_app(auto_commit=False)

    @app.get("/commit/<value>")
    def commit(value: str) -> str:
        session["a"] = value
        session.wsgisession.commit()  # type: ignore[attr-defined]
        return "ok"

    client = app.test_client()
    assert set_cookies(client.get("/set/a/1")) == []
    our_cookie(client.get("/commit/2"))
    assert client.get("/get/a").text == "'2'"


# -- without a request: Flask's test helpers ---------------------------------------------


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
        # A second save of the same session sends the same cookie.
        again = app.process_response(app.make_response("body"))
    cookie = our_cookie(response)
    assert our_cookie(again) == cookie
    assert response.headers["Vary"] == "Cookie"
    assert "max-age" not in attributes(cookie)
    client = app.test_client()
    client.set_cookie("session", cookie.split(";")[0].split("=", 1)[1])
    assert client.get("/get/x").text == "Markup('<b>1</b>')"


# -- the example -----------------------------------------------------------------------------


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("flask_example", EXAMPLES / "flask_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["flask_example"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["flask_example"]
    return module


def test_example_login_flash_logout_flow_in_store_mode() -> None:
    store = MemoryStore()
    app = load_example().create_app([SECRET], store=store)
    client = app.test_client()
    assert "Not logged in" in client.get("/").text
    before = client.get_cookie("session").value  # type: ignore[union-attr]
    assert client.get("/private").status_code == 302
    response = client.post(
        "/login", data={"username": "alice", "password": "nope"}, follow_redirects=True
    )
    assert "error: Wrong user name or password." in response.text
    response = client.post(
        "/login",
        data={"username": "alice", "password": "wonderland", "remember": "on"},
        follow_redirects=True,
    )
    assert "success: Welcome, <b>alice</b>!" in response.text  # Markup kept, not escaped
    assert "Logged in as alice" in response.text
    assert client.get_cookie("session").value != before  # type: ignore[union-attr]
    assert client.get("/private").status_code == 200
    assert len(store) == 1
    response = client.post("/logout", follow_redirects=True)
    assert "info: You have been logged out." in response.text
    assert "Not logged in" in response.text
    assert client.get_cookie("remember_token") is None
    assert client.get("/private").status_code == 302
    assert len(store) == 1  # the logged-in record is gone; a new anonymous one counts views


def test_example_app_is_found_by_flask_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from flask.cli import ScriptInfo

    monkeypatch.setenv("WSGISESSION_SECRET_KEY", SECRET)
    monkeypatch.delenv("WSGISESSION_REDIS_URL", raising=False)
    app = ScriptInfo(app_import_path=str(EXAMPLES / "flask_app.py")).load_app()
    sys.modules.pop("flask_app", None)
    assert isinstance(app.session_interface, WSGISessionInterface)
    assert isinstance(app.session_interface.options.store, MemoryStore)


# -- migrating from Flask's own session (the recipe of docs/flask.md) ---------------------


class MigratingInterface(WSGISessionInterface):
    """docs/flask.md's recipe: a cookie of Flask's own session (signed with
    ``SECRET_KEY``; ours never holds a ".") is read once and its data carried over."""

    def open_session(self, app: Flask, request: Any) -> FlaskSession:
        session = super().open_session(app, request)
        value = request.cookies.get(app.config["SESSION_COOKIE_NAME"], "")
        if "." in value:
            from flask.sessions import SecureCookieSessionInterface
            from itsdangerous import BadSignature

            legacy = SecureCookieSessionInterface().get_signing_serializer(app)
            lifetime = int(app.permanent_session_lifetime.total_seconds())
            try:
                data = legacy.loads(value, max_age=lifetime)  # type: ignore[union-attr]
            except BadSignature:
                return session
            if session.new:
                session.update(data)  # saved as our cookie, under the same name
        return session


def test_the_migration_recipe_keeps_flask_session_users_logged_in() -> None:
    def build(own: bool) -> Flask:
        app = Flask(__name__)
        app.secret_key = "the-old-flask-secret-key"

        @app.get("/login")
        def login() -> str:
            session["user"] = "alice"
            session.permanent = True
            return "in"

        @app.get("/me")
        def me() -> str:
            return session.get("user", "anonymous")

        if not own:
            app.config["WSGISESSION_SECRET_KEYS"] = [SECRET]
            app.session_interface = MigratingInterface(secret_keys=[SECRET])
        return app

    old, new = build(own=True), build(own=False)
    client = old.test_client()
    client.get("/login")
    legacy = client.get_cookie("session").value  # type: ignore[union-attr]
    assert "." in legacy
    client = new.test_client()
    client.set_cookie("session", legacy)
    response = client.get("/me")
    assert response.text == "alice"
    assert "." not in client.get_cookie("session").value  # type: ignore[union-attr]
    assert client.get("/me").text == "alice"
    forged = new.test_client()
    forged.set_cookie("session", legacy[:-2] + "xx")
    assert forged.get("/me").text == "anonymous"
