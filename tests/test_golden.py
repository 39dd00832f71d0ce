"""Golden vectors for token format v1 (security.md §3 item 19).

``tests/fixtures/tokens_v1.json`` pins, for fixed secrets, namespaces, nonces and
plaintexts, the exact token text (purposes ``data`` and ``sid``) or token bytes
(purpose ``store``, hex) that format v1 produces, the HKDF-derived key ids and keys,
and complete cookies that the middleware must accept.

These vectors must NEVER change. Cookies and store records written by a deployed
release have to keep opening after an upgrade; a failure here means the byte layout,
the key derivation, the associated data or the encoding changed. Such a change needs a
new format version (a new version byte and a new ``tokens_v2.json``), never an edit of
this file. The fixture was generated once and is committed as data; there is no
generator in the repository on purpose.

Besides comparing against the codec, the tests re-derive keys with a stdlib HKDF
(RFC 5869) and open tokens with a hand-built associated data (security.md §1.6-§1.8),
so the fixture is tied to the written specification and not only to the code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from tests.conftest import Clock, Harness, set_cookies
from wsgisession.codec import TokenCodec, b64decode, b64encode, derive_keys

FIXTURE = Path(__file__).parent / "fixtures" / "tokens_v1.json"
GOLDEN = json.loads(FIXTURE.read_text(encoding="ascii"))


def _secret(index: int) -> str | bytes:
    entry = GOLDEN["secrets"][index]
    return entry["text"] if "text" in entry else bytes.fromhex(entry["hex"])


def _secret_bytes(index: int) -> bytes:
    secret = _secret(index)
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _codec(vector: dict) -> TokenCodec:
    return TokenCodec([_secret(i) for i in vector["secret_keys"]], vector["namespace"])


def _token_bytes(vector: dict) -> bytes:
    if "token_hex" in vector:
        return bytes.fromhex(vector["token_hex"])
    return b64decode(vector["token"])


def _derived(secret: int, namespace: str) -> dict:
    (entry,) = [
        d for d in GOLDEN["derived"] if d["secret"] == secret and d["namespace"] == namespace
    ]
    return entry


def _hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with the stdlib, independent of ``cryptography``."""
    prk = hmac.digest(salt, ikm, "sha256")
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        okm += block
        counter += 1
    return okm[:length]


VECTOR_IDS = [v["name"] for v in GOLDEN["tokens"]]


def test_fixture_shape():
    assert GOLDEN["format"] == "wsgisession token v1"
    purposes = {v["purpose"] for v in GOLDEN["tokens"]}
    assert purposes == {"data", "sid", "store"}
    assert {d["namespace"] for d in GOLDEN["derived"]} == {"default", "app1"}
    assert len(GOLDEN["cookies"]) >= 1
    # The text secret is >= 32 bytes and the bytes one is exactly 32.
    assert [len(_secret_bytes(i)) for i in range(len(GOLDEN["secrets"]))] == [53, 32]


@pytest.mark.parametrize(
    "entry", GOLDEN["derived"], ids=lambda d: f"{d['secret']}-{d['namespace']}"
)
def test_derive_keys_pinned(entry):
    kid, k_aead, k_store = derive_keys(_secret_bytes(entry["secret"]), entry["namespace"])
    assert kid.hex() == entry["kid"]
    assert k_aead.hex() == entry["k_aead"]
    assert k_store.hex() == entry["k_store"]


@pytest.mark.parametrize(
    "entry", GOLDEN["derived"], ids=lambda d: f"{d['secret']}-{d['namespace']}"
)
def test_derivation_matches_rfc5869_spec(entry):
    """security.md §1.6: salt b"wsgisession/v1", info labels per purpose and namespace."""
    ikm = _secret_bytes(entry["secret"])
    ns = entry["namespace"].encode("ascii")
    salt = b"wsgisession/v1"
    assert _hkdf_sha256(ikm, salt, b"wsgisession/v1 kid " + ns, 4).hex() == entry["kid"]
    assert _hkdf_sha256(ikm, salt, b"wsgisession/v1 aead " + ns, 32).hex() == entry["k_aead"]
    assert _hkdf_sha256(ikm, salt, b"wsgisession/v1 store " + ns, 32).hex() == entry["k_store"]


@pytest.mark.parametrize(
    "entry", GOLDEN["derived"], ids=lambda d: f"{d['secret']}-{d['namespace']}"
)
def test_key_ids_pinned(entry):
    codec = TokenCodec([_secret(entry["secret"])], entry["namespace"])
    assert codec.key_ids == [entry["kid"]]
    assert codec.primary_kid.hex() == entry["kid"]


@pytest.mark.parametrize("vector", GOLDEN["tokens"], ids=VECTOR_IDS)
def test_reseal_is_byte_exact(vector):
    codec = _codec(vector)
    nonce = bytes.fromhex(vector["nonce"])
    plaintext = bytes.fromhex(vector["plaintext_hex"])
    if vector["purpose"] == "store":
        raw = codec.seal_bytes(plaintext, "store", vector["binding"], _nonce=nonce)
        assert raw.hex() == vector["token_hex"]
    else:
        token = codec.seal(plaintext, vector["purpose"], vector["binding"], _nonce=nonce)
        assert token == vector["token"]
        # seal() is exactly b64url_nopad(seal_bytes()).
        raw = codec.seal_bytes(plaintext, vector["purpose"], vector["binding"], _nonce=nonce)
        assert b64encode(raw) == token


@pytest.mark.parametrize("vector", GOLDEN["tokens"], ids=VECTOR_IDS)
def test_fixture_tokens_open(vector):
    plaintext = bytes.fromhex(vector["plaintext_hex"])
    kid = bytes.fromhex(_derived(vector["secret_keys"][0], vector["namespace"])["kid"])
    codec = _codec(vector)
    if vector["purpose"] == "store":
        got = codec.open_bytes(bytes.fromhex(vector["token_hex"]), "store", vector["binding"])
    else:
        got = codec.open(vector["token"], vector["purpose"], vector["binding"])
    assert got == (plaintext, kid)


@pytest.mark.parametrize("vector", GOLDEN["tokens"], ids=VECTOR_IDS)
def test_fixture_tokens_open_after_rotation(vector):
    """An old token keeps opening when its secret is no longer first (either order)."""
    sealer = vector["secret_keys"][0]
    other = 1 - sealer
    plaintext = bytes.fromhex(vector["plaintext_hex"])
    raw = _token_bytes(vector)
    for order in ([other, sealer], [sealer, other]):
        codec = TokenCodec([_secret(i) for i in order], vector["namespace"])
        assert codec.open_bytes(raw, vector["purpose"], vector["binding"])[0] == plaintext


@pytest.mark.parametrize("vector", GOLDEN["tokens"], ids=VECTOR_IDS)
def test_fixture_layout_and_spec_associated_data(vector):
    """Open each token with AESGCMSIV directly, AD built by hand from security.md §1.7."""
    raw = _token_bytes(vector)
    derived = _derived(vector["secret_keys"][0], vector["namespace"])
    plaintext = bytes.fromhex(vector["plaintext_hex"])
    kid = bytes.fromhex(derived["kid"])
    nonce = bytes.fromhex(vector["nonce"])
    assert raw[0] == 0x01
    assert raw[1:5] == kid
    assert raw[5:17] == nonce
    assert len(raw) == 1 + 4 + 12 + len(plaintext) + 16
    key = derived["k_store"] if vector["purpose"] == "store" else derived["k_aead"]
    ad = (
        raw[:5]
        + b"\x00wsgisession/v1\x00"
        + vector["namespace"].encode("ascii")
        + b"\x00"
        + vector["purpose"].encode("ascii")
        + b"\x00"
        + vector["binding"].encode("utf-8")
    )
    assert AESGCMSIV(bytes.fromhex(key)).decrypt(nonce, raw[17:], ad) == plaintext


def test_fixture_cookie_text_is_strict_base64url():
    for vector in GOLDEN["tokens"]:
        if "token" in vector:
            token = vector["token"]
            assert "=" not in token
            assert set(token) <= set(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            )
            assert b64encode(b64decode(token)) == token


def test_hand_built_cookie_plaintext_is_pinned():
    """(c): the cookie plaintext is built by hand, sealed with a fixed nonce, pinned."""
    (vector,) = [v for v in GOLDEN["tokens"] if v["name"] == "data-default"]
    plaintext = b'{"c":1800000000,"e":1800086400,"s":"abc","d":{"user":"alice"}}'
    assert bytes.fromhex(vector["plaintext_hex"]) == plaintext
    codec = TokenCodec([_secret(0)])
    sealed = codec.seal(plaintext, "data", "session", _nonce=bytes.fromhex(vector["nonce"]))
    assert sealed == vector["token"]
    (cookie,) = [c for c in GOLDEN["cookies"] if c["name"] == "current-key"]
    assert cookie["header"] == "session=" + sealed


@pytest.mark.parametrize("cookie", GOLDEN["cookies"], ids=lambda c: c["name"])
def test_golden_cookie_opens_in_middleware(cookie):
    seen = []

    def handler(environ, session):
        seen.append(
            (session.is_new, dict(session), session.id, session.created_at, session.expires_at)
        )
        return "ok"

    h = Harness(
        handler,
        secret_keys=[_secret(i) for i in cookie["secret_keys"]],
        namespace=cookie["namespace"],
        cookie_name=cookie["cookie_name"],
        clock=Clock(cookie["now"]),
    )
    response = h.get("/", cookie=cookie["header"])
    assert response.status_int == 200
    assert seen == [(False, cookie["data"], "abc", cookie["created"], cookie["expires"])]
    assert seen[0][1]["user"] == "alice"
    if cookie["event"] is None:
        assert h.events.names() == []
        assert set_cookies(response) == []
    else:
        name, reason = cookie["event"]
        assert [(e.name, e.reason) for e in h.events] == [(name, reason)]
        # Rotation re-issues the cookie under the primary (first) secret's kid.
        (header,) = set_cookies(response)
        value = header.partition("=")[2].split(";", 1)[0]
        primary = bytes.fromhex(_derived(cookie["secret_keys"][0], cookie["namespace"])["kid"])
        assert b64decode(value)[1:5] == primary


def test_golden_cookie_expires_exactly_at_e():
    """The pinned cookie's ``e`` is enforced: valid at e-1, expired (idle) at e."""
    (cookie,) = [c for c in GOLDEN["cookies"] if c["name"] == "current-key"]
    for now, expected in ((cookie["expires"] - 1, []), (cookie["expires"], [("expired", "idle")])):
        seen = []
        h = Harness(
            lambda environ, session: seen.append(dict(session)),
            secret_keys=[_secret(0)],
            clock=Clock(now),
        )
        response = h.get("/", cookie=cookie["header"])
        assert response.status_int == 200
        assert [(e.name, e.reason) for e in h.events] == expected
        assert seen == ([cookie["data"]] if not expected else [{}])
        assert set_cookies(response) == []


def test_store_key_in_fixture_is_sha256_of_id():
    (vector,) = [v for v in GOLDEN["tokens"] if v["name"] == "store-default"]
    assert vector["binding"] == "session:" + hashlib.sha256(b"abc").hexdigest()


# -- the production sealing path, byte for byte ------------------------------------------


@pytest.mark.parametrize("vector", GOLDEN["tokens"], ids=VECTOR_IDS)
def test_the_bound_sealers_are_byte_exact(vector):
    """sealer()/raw_sealer(), which the middleware binds once, are the one sealing
    implementation: with the vector's nonce they give its bytes."""
    codec = _codec(vector)
    nonce = bytes.fromhex(vector["nonce"])
    plaintext = bytes.fromhex(vector["plaintext_hex"])
    raw = codec.raw_sealer(vector["purpose"], vector["binding"], _nonce=nonce)(plaintext)
    if vector["purpose"] == "store":
        assert raw.hex() == vector["token_hex"]
    else:
        assert (
            codec.sealer(vector["purpose"], vector["binding"], _nonce=nonce)(plaintext)
            == (vector["token"])
        )
        assert b64encode(raw) == vector["token"]


def test_the_middleware_writes_the_golden_cookie_with_a_fixed_nonce(monkeypatch):
    """End to end: a middleware built while os.urandom returns the vector's nonce writes
    exactly the data-default token for the same session (created at T0, 24 h, id "abc")."""
    import os

    (vector,) = [v for v in GOLDEN["tokens"] if v["name"] == "data-default"]
    nonce = bytes.fromhex(vector["nonce"])
    monkeypatch.setattr(os, "urandom", lambda size: nonce[:size])
    h = Harness(
        lambda environ, session: session.update(user="alice"),
        secret_keys=[_secret(0)],
        genid=lambda environ: "abc",
        clock=Clock(1_800_000_000),
    )
    (header,) = set_cookies(h.client.get("/"))
    assert header.startswith(f"session={vector['token']};")
