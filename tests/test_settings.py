"""Options from strings: from_settings, its converters, and the PasteDeploy filter."""

from __future__ import annotations

import textwrap
import time

import pytest
import webtest
from paste.deploy import loadapp

from tests.conftest import OLD_SECRET, SECRET, session_app
from wsgisession import (
    ConfigurationError,
    HeaderKey,
    JSONSerializer,
    MemoryStore,
    SessionMiddleware,
)
from wsgisession.settings import asbool, parse_settings


def counter(environ, session):
    session["n"] = session.get("n", 0) + 1
    return str(session["n"])


def make_app(global_conf=None, **local_conf):
    """A PasteDeploy app factory (``call:tests.test_settings:make_app``)."""
    return session_app(counter)


def test_every_option_from_strings():
    settings = {
        "session.secret_keys": f"{SECRET}\n  {OLD_SECRET}",
        "session.cookie_name": "__Host-sid",
        "session.max_age": "3600",
        "session.absolute_max_age": "none",
        "session.auto_commit": "yes",
        "session.overwrite": "off",
        "session.httponly": "1",
        "session.secure": "none",
        "session.samesite": "STRICT",
        "session.path": "/",
        "session.domain": "",
        "session.partitioned": "false",
        "session.rolling": "on",
        "session.renew": "0",
        "session.serializer": "wsgisession.serializers:JSONSerializer",
        "session.store": "memory",
        "session.external_key": "X-Session-Token",
        "session.genid": "tests.test_settings:fixed_id",
        "session.prefix": "app:",
        "session.on_store_error": "ignore",
        "session.valid": "tests.test_settings:always_valid",
        "session.before_save": "tests.test_settings:noop",
        "session.on_event": "tests.test_settings:noop",
        "session.environ_key": "wsgisession.session",
        "session.namespace": "shop",
        "session.commit_on_error": "true",
        "session.cache_control": "no",
        "session.max_cookie_size": "2048",
        "session.clock": "time:time",
        "other.thing": "ignored",
        "unprefixed": "ignored",
    }
    mw = SessionMiddleware.from_settings(session_app(), settings)
    assert mw.cookie_name == "__Host-sid"
    assert mw.max_age == 3600 and mw.absolute_max_age is None
    assert mw.auto_commit is True and mw.overwrite is False and mw.httponly is True
    assert mw.secure is None and mw.samesite == "Strict" and mw.domain is None
    assert mw.rolling is True and mw.renew is False and mw.partitioned is False
    assert isinstance(mw.options.serializer, JSONSerializer)
    assert isinstance(mw.store, MemoryStore)
    assert isinstance(mw.external_key, HeaderKey) and mw.external_key.name == "X-Session-Token"
    assert mw.options.genid is fixed_id and mw.options.valid is always_valid
    assert mw.prefix == "app:" and mw.on_store_error == "ignore"
    assert mw.environ_key == "wsgisession.session" and mw.namespace == "shop"
    assert mw.commit_on_error is True and mw.cache_control is False
    assert mw.max_cookie_size == 2048 and mw.options.clock is time.time
    assert len(mw.codec.key_ids) == 2


def fixed_id(environ):
    return "fixed-id"


def always_valid(environ, session):
    return True


def noop(*args):
    return None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("session.max_age", "soon"),
        ("session.rolling", "maybe"),
        ("session.secure", "sometimes"),
        ("session.samesite", "lax; secure"),
        ("session.store", "mongodb://x"),
        ("session.valid", "no.such.module:thing"),
        ("session.genid", "tests.test_settings:missing"),
        ("session.genid", "nocolon"),
        ("session.secret_keys", "   "),
        ("session.max_cookie_size", "big"),
        ("session.external_key", "bad header"),
        ("session.colour", "blue"),
    ],
)
def test_bad_settings_name_the_key(key, value):
    settings = {"session.secret_keys": SECRET, key: value}
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware.from_settings(session_app(), settings)
    assert info.value.option == key
    assert key in str(info.value)
    assert SECRET not in str(info.value)


def test_middleware_errors_are_named_with_the_prefix():
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware.from_settings(
            session_app(), {"session.secret_keys": SECRET, "session.path": "no-slash"}
        )
    assert info.value.option == "session.path"
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware.from_settings(session_app(), {"session.secret_keys": "short"})
    assert info.value.option == "session.secret_keys"


def test_non_string_values_pass_through_and_empty_samesite_omits_it():
    store = MemoryStore()
    options = parse_settings(
        {"s.store": store, "s.max_age": 60, "s.samesite": "", "s.secure": "True"}, "s."
    )
    assert options == {"store": store, "max_age": 60, "samesite": None, "secure": True}
    assert parse_settings({"store": "cookie", "external_key": ""}) == {
        "store": None,
        "external_key": None,
    }
    assert parse_settings({"serializer": "tests.test_settings:noop"})["serializer"] is noop


@pytest.mark.parametrize("word", ["true", "YES", "On", "1", " true "])
def test_asbool_true(word):
    assert asbool(word) is True


@pytest.mark.parametrize("word", ["false", "NO", "off", "0"])
def test_asbool_false(word):
    assert asbool(word) is False


@pytest.mark.parametrize("word", ["", "2", "y", "enable"])
def test_asbool_refuses(word):
    with pytest.raises(ValueError):
        asbool(word)


def test_redis_store_from_a_url():
    from wsgisession import RedisStore

    mw = SessionMiddleware.from_settings(
        session_app(), {"session.secret_keys": SECRET, "session.store": "redis://127.0.0.1:1/0"}
    )
    assert isinstance(mw.store, RedisStore)
    mw.store.client.close()


def test_pastedeploy_pipeline_gets_sessions_with_no_code(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(
        textwrap.dedent(
            f"""
            [pipeline:main]
            pipeline = session app

            [filter:session]
            use = egg:wsgisession-aead#session
            secret_keys =
                {SECRET}
                {OLD_SECRET}
            max_age = 600
            samesite = strict
            httponly = true

            [app:app]
            use = call:tests.test_settings:make_app
            """
        )
    )
    app = loadapp(f"config:{ini}")
    assert isinstance(app, SessionMiddleware)
    client = webtest.TestApp(app)
    first = client.get("/")
    assert first.text == "1"
    header = first.headers["Set-Cookie"]
    assert "Max-Age=600" in header and "SameSite=Strict" in header and "HttpOnly" in header
    assert client.get("/").text == "2"


def test_pastedeploy_filter_rejects_unknown_options(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text(
        textwrap.dedent(
            f"""
            [pipeline:main]
            pipeline = session app

            [filter:session]
            use = egg:wsgisession-aead#session
            secret_keys = {SECRET}
            colour = blue

            [app:app]
            use = call:tests.test_settings:make_app
            """
        )
    )
    with pytest.raises(ConfigurationError) as info:
        loadapp(f"config:{ini}")
    assert info.value.option == "colour"
