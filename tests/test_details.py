"""Small corners: reprs, tag decoding errors, the writer cache, error attributes."""

from __future__ import annotations

import pytest

from tests.conftest import SECRET, Harness, cookie_value
from wsgisession import ConfigurationError, JSONSerializer, StoreError, WSGISessionError
from wsgisession.session import UNSET


def test_repr_of_small_objects():
    assert repr(UNSET) == "UNSET"
    assert repr(JSONSerializer()) == "JSONSerializer()"


def test_store_error_keeps_the_original_error():
    cause = OSError("connection refused")
    error = StoreError("redis GET failed", cause)
    assert isinstance(error, WSGISessionError)
    assert error.original_error is cause
    assert StoreError("x").original_error is None


def test_cookie_name_length_is_limited():
    with pytest.raises(ConfigurationError) as info:
        Harness(cookie_name="a" * 257)
    assert info.value.option == "cookie_name"


@pytest.mark.parametrize(
    "blob",
    [
        b'{"$s":"!!"}',
        b'{"$s":"AAAA"}',
        b'{"$k":[["a"]]}',
        b'{"$k":[[1,2]]}',
        b'{"$":[["a",1],["b",2]]}',
        b'{"$":[[1,2]]}',
        b'{"$zz":1}',
        b'{"$b":"**"}',
    ],
)
def test_malformed_tags_are_refused(blob):
    with pytest.raises(ValueError):
        JSONSerializer().loads(blob)


def test_id_hash_matches_the_event_hash():
    seen = {}

    def handler(environ, session):
        session["x"] = 1
        seen["hash"] = session.id_hash

    h = Harness(handler)
    h.client.get("/")
    assert h.events[0].name == "created"
    assert h.events[0].session_id_hash == seen["hash"]


def test_domain_callable_writers_are_cached_and_bounded():
    def handler(environ, session):
        session["x"] = environ["PATH_INFO"]

    h = Harness(handler, domain=lambda environ: environ["PATH_INFO"].strip("/") + ".example")
    for i in range(70):
        response = h.client.get(f"/h{i}")
        assert f"Domain=h{i}.example" in response.headers["Set-Cookie"]
    assert h.mw.cookies.writer_count <= 64


def test_replace_with_a_custom_serializer_compares_decoded_content():
    class Plain:
        def dumps(self, obj):
            return repr(obj).encode()

        def loads(self, data):
            import ast

            return ast.literal_eval(data.decode())

    def write(environ, session):
        session["a"] = 1
        session["b"] = 2

    h = Harness(write, serializer=Plain())
    token = cookie_value(h.client.get("/"))

    def replace(environ, session):
        environ["session"] = {"b": 2, "a": 1}

    h2 = Harness(replace, serializer=Plain(), secret_keys=[SECRET])
    response = h2.get("/", cookie=f"session={token}")
    # Equal content in another key order is no change, whatever the serializer
    # (DESIGN §9 "Replacing"): the decoded values are compared, types included.
    assert cookie_value(response) is None

    def change_type(environ, session):
        environ["session"] = {"b": 2, "a": True}  # 1 == True, but not the same content

    h3 = Harness(change_type, serializer=Plain(), secret_keys=[SECRET])
    assert cookie_value(h3.get("/", cookie=f"session={token}"))


def test_vary_is_appended_to_the_first_of_several_vary_headers():
    def app(environ, start_response):
        environ["session"].get("x")
        start_response("200 OK", [("Vary", "Accept"), ("Vary", "Origin")])
        return [b""]

    h = Harness(app=app)
    assert h.client.get("/").headers.getall("Vary") == ["Accept, Cookie", "Origin"]


@pytest.mark.parametrize("kind", ["subclass", "flask"])
def test_replace_in_another_key_order_with_a_json_serializer_subclass_sends_nothing(kind):
    """Issue 12 bug 1: the equal-content rule held only for JSONSerializer itself; a
    subclass (the project's own Flask serializer included) re-sent the cookie."""
    from wsgisession import JSONSerializer

    if kind == "flask":
        from wsgisession.adapters.flask import FlaskJSONSerializer as serializer_class
    else:

        class serializer_class(JSONSerializer):
            pass

    h = Harness(
        lambda environ, session: session.update(a=1, b=[1, 2]), serializer=serializer_class()
    )
    token = cookie_value(h.client.get("/"))

    def replace(environ, session):
        environ["session"] = {"b": [1, 2], "a": 1}

    h2 = Harness(replace, serializer=serializer_class())
    assert cookie_value(h2.get("/", cookie=f"session={token}")) is None
