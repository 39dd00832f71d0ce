"""``HeaderKey`` hardening (issue 11 item 8): reserved header names are refused, a
header token is sealed for its transport (purpose ``header``, pinned by golden vectors)
so it never opens as a cookie — not even one with the header's name — and a response
carries exactly one token header, ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from tests.conftest import SECRET, Harness, call_wsgi, set_cookies
from wsgisession import ConfigurationError, HeaderKey, MemoryStore, SessionMiddleware
from wsgisession.codec import TokenCodec, b64decode
from wsgisession.errors import InvalidToken
from wsgisession.external import RESERVED_HEADERS

FIXTURES = Path(__file__).parent / "fixtures"
BASE = json.loads((FIXTURES / "tokens_v1.json").read_text(encoding="ascii"))
HEADER = json.loads((FIXTURES / "tokens_v1_header.json").read_text(encoding="ascii"))


def _secret(index: int) -> str | bytes:
    entry = BASE["secrets"][index]
    return entry["text"] if "text" in entry else bytes.fromhex(entry["hex"])


@pytest.mark.parametrize(
    "name",
    [
        "Content-Length",
        "transfer-encoding",
        "Connection",
        "Host",
        "Cookie",
        "Set-Cookie",
        "Trailer",
        "Upgrade",
        "TE",
        "Keep-Alive",
        "Vary",
        "Cache-Control",
        "CDN-Cache-Control",
    ],
)
def test_reserved_header_names_are_a_configuration_error(name):
    with pytest.raises(ConfigurationError) as info:
        HeaderKey(name)
    assert info.value.option == "external_key"
    assert name in str(info.value)


def test_reserved_names_are_lower_case_tokens():
    assert all(name == name.lower() for name in RESERVED_HEADERS)
    HeaderKey("X-Session-Token")  # an ordinary name is fine
    HeaderKey("Authorization-Token")


@pytest.mark.parametrize("vector", HEADER["vectors"], ids=[v["name"] for v in HEADER["vectors"]])
def test_header_golden_vectors_reseal_byte_exact(vector):
    codec = TokenCodec([_secret(i) for i in vector["secret_keys"]], vector["namespace"])
    plaintext = bytes.fromhex(vector["plaintext_hex"])
    nonce = bytes.fromhex(vector["nonce"])
    assert codec.seal(plaintext, "header", vector["binding"], _nonce=nonce) == vector["token"]
    assert codec.open(vector["token"], "header", vector["binding"])[0] == plaintext


@pytest.mark.parametrize("vector", HEADER["vectors"], ids=[v["name"] for v in HEADER["vectors"]])
def test_header_golden_vectors_follow_the_written_layout(vector):
    """AD = header ‖ 00 "wsgisession/v1" 00 ‖ namespace ‖ 00 "header" 00 ‖ binding, with
    the k_aead of tokens_v1.json: built by hand, independent of the codec."""
    (derived,) = [
        d
        for d in BASE["derived"]
        if d["secret"] == vector["secret_keys"][0] and d["namespace"] == vector["namespace"]
    ]
    raw = b64decode(vector["token"])
    header = raw[:5]
    assert header == b"\x01" + bytes.fromhex(derived["kid"])
    ad = (
        header
        + b"\x00wsgisession/v1\x00"
        + vector["namespace"].encode()
        + b"\x00header\x00"
        + vector["binding"].encode()
    )
    aead = AESGCMSIV(bytes.fromhex(derived["k_aead"]))
    assert aead.decrypt(raw[5:17], raw[17:], ad).hex() == vector["plaintext_hex"]
    # The same bytes under the sid purpose (a cookie of that name) do not open.
    sid_ad = ad.replace(b"\x00header\x00", b"\x00sid\x00")
    with pytest.raises(InvalidTag):
        aead.decrypt(raw[5:17], raw[17:], sid_ad)


@pytest.mark.parametrize("vector", HEADER["vectors"], ids=[v["name"] for v in HEADER["vectors"]])
def test_header_vectors_never_open_as_cookie_tokens(vector):
    codec = TokenCodec([_secret(i) for i in vector["secret_keys"]], vector["namespace"])
    for purpose in ("sid", "data"):
        with pytest.raises(InvalidToken) as info:
            codec.open(vector["token"], purpose, vector["binding"])
        assert info.value.reason == "tampered"


def _token_app(environ, start_response):
    session = environ["session"]
    if environ["PATH_INFO"] == "/write":
        session["who"] = "header user"
    body = repr(dict(session)).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def test_a_header_token_is_refused_as_a_cookie_of_the_same_name():
    """Two store-mode middlewares on one store: one reads the token from the header
    ``x-token``, the other from a cookie named ``x-token``. Before the transport was part
    of the associated data, the header token opened as that cookie."""
    store = MemoryStore()
    by_header = Harness(app=_token_app, store=store, external_key=HeaderKey("x-token"))
    by_cookie = Harness(app=_token_app, store=store, cookie_name="x-token")
    token = by_header.client.get("/write").headers["x-token"]
    assert by_header.client.get("/", headers={"x-token": token}).text == "{'who': 'header user'}"

    response = by_cookie.get("/", cookie=f"x-token={token}")
    assert response.text == "{}"
    assert by_cookie.events.names() == ["invalid"]
    assert by_cookie.events.reasons() == ["tampered"]
    assert set_cookies(response) == []


def test_the_response_carries_one_token_header_ours():
    def app(environ, start_response):
        environ["session"]["n"] = 1
        start_response(
            "200 OK",
            [("X-Token", "app-value"), ("Content-Type", "text/plain"), ("x-token", "again")],
        )
        return [b""]

    h = Harness(app=app, store=MemoryStore(), external_key=HeaderKey("X-Token"))
    values = h.client.get("/").headers.getall("X-Token")
    assert len(values) == 1 and values[0] not in ("app-value", "again")
    assert h.client.get("/", headers={"X-Token": values[0]}).headers.getall("X-Token") != []


def test_the_app_header_is_replaced_on_the_merging_path_too():
    """With a Vary header already present the middleware takes its merging path."""

    def app(environ, start_response):
        environ["session"]["n"] = 1
        start_response("200 OK", [("Vary", "Accept"), ("X-Token", "app-value")])
        return [b""]

    h = Harness(app=app, store=MemoryStore(), external_key=HeaderKey("X-Token"))
    response = h.client.get("/")
    [value] = response.headers.getall("X-Token")
    assert value != "app-value"
    assert response.headers["Vary"] == "Accept, X-Token"


def test_a_destroy_replaces_the_app_header_with_the_empty_one():
    def app(environ, start_response):
        environ["session"] = None
        start_response("200 OK", [("X-Token", "stale")])
        return [b""]

    mw = SessionMiddleware(
        app, secret_keys=[SECRET], store=MemoryStore(), external_key=HeaderKey("X-Token")
    )
    result = call_wsgi(mw)
    assert [v for n, v in result.headers if n.lower() == "x-token"] == [""]
