"""Unit tests of ``wsgisession.codec``: strict base64url, key derivation, secret and
namespace validation, the AES-GCM-SIV self-test, ``repr`` hygiene and the bindings
of purpose, binding (cookie name / header name / store key) and namespace.

References: DESIGN.md §3, §9 ("Ranges"); security.md §1.5-§1.10 and §3 items 9, 10,
20, 23-25, 27, 28.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from hypothesis import given, settings
from hypothesis import strategies as st

import wsgisession.codec as codec_module
from tests.conftest import OLD_SECRET, OTHER_SECRET, SECRET
from wsgisession import ConfigurationError, SessionMiddleware
from wsgisession.codec import MAX_TOKEN_CHARS, TokenCodec, b64decode, b64encode, derive_keys
from wsgisession.errors import InvalidToken, WSGISessionError

ALPHABET = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

# Two different 40-byte secrets whose 4-byte key ids collide in namespace "default"
# (found once by a birthday search with a stdlib HKDF; pinned here, no mocking needed).
COLLIDING_A = "kid-collision-secret-0000096433-padding!"
COLLIDING_B = "kid-collision-secret-0000165607-padding!"


def _app(environ, start_response):  # pragma: no cover - never called
    start_response("200 OK", [])
    return [b""]


def _raises_invalid(fn, *args) -> InvalidToken:
    with pytest.raises(InvalidToken) as info:
        fn(*args)
    return info.value


# -- strict base64url ---------------------------------------------------------------


def test_strict_decoder_regression_stdlib_accepts_qu_bang_jd():
    """``base64.urlsafe_b64decode`` skips ``!``; our decoder must refuse it."""
    assert base64.urlsafe_b64decode("QU!JD") == b"ABC"  # the stdlib is lenient...
    with pytest.raises(ValueError):
        b64decode("QU!JD")  # ...we are not
    assert b64decode("QUJD") == b"ABC"


def test_strict_decoder_regression_stdlib_accepts_space():
    assert base64.urlsafe_b64decode("QU JD") == b"ABC"
    with pytest.raises(ValueError):
        b64decode("QU JD")


@pytest.mark.parametrize(
    "text",
    [
        "QUI=",  # padding
        "QQ==",
        "QUJD====",
        "QU+D",  # standard alphabet
        "QU/D",
        "QU JD",
        "QUJD ",
        " QUJD",
        "QU%3D",
        "QUJD%3D",
        "QU\tJD",
        "QUJD\n",  # a trailing newline must not slip through like with re "$"
        "QUJD\r\n",
        "QU!JD",
        "QU.D",
        "QU\x00D",
        "QUJ\u0661",  # ARABIC-INDIC DIGIT ONE: a Unicode \d, not base64
        "\uff21UJD",  # FULLWIDTH A
        "QUJ\u00e9",
        "",
    ],
)
def test_strict_decoder_rejects(text):
    with pytest.raises(ValueError):
        b64decode(text)


@pytest.mark.parametrize("text", ["A", "QUJDR", "QUJDRUZHS", "A" * 4093])
def test_strict_decoder_rejects_length_one_mod_four(text):
    assert len(text) % 4 == 1
    with pytest.raises(ValueError):
        b64decode(text)


@pytest.mark.parametrize("size", range(0, 41))
def test_b64_round_trip_without_padding(size):
    raw = bytes((i * 37 + size) % 256 for i in range(size))
    text = b64encode(raw)
    assert "=" not in text
    assert set(text) <= ALPHABET
    assert len(text) % 4 != 1
    if size:
        assert b64decode(text) == raw


def test_b64encode_uses_url_alphabet():
    raw = b"\xfb\xff\xbf"  # "+/+/" in the standard alphabet
    assert base64.b64encode(raw) == b"+/+/"
    assert b64encode(raw) == "-_-_"
    assert b64decode("-_-_") == raw


def stdlib_strict_b64decode(text: str) -> bytes:
    """The reference decoder, with the standard library only (security.md §1.10)."""
    if not text or not set(text) <= ALPHABET or len(text) % 4 == 1:
        raise ValueError("not strict base64url")
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=3100))
def test_b64_agrees_with_the_standard_library_on_any_bytes(raw):
    """base64 itself is pybase64's: same text out, same bytes back, as the stdlib."""
    text = b64encode(raw)
    assert text == base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if raw:
        assert b64decode(text) == raw == stdlib_strict_b64decode(text)


@settings(max_examples=2000, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(sorted(ALPHABET) + list("=+/ !.%\t\n\x00\u00e9\u0661\uff21")),
        max_size=70,
    )
)
def test_b64decode_agrees_with_the_standard_library_on_any_text(text):
    """Mostly-alphabet text with a sprinkling of near misses: our decoder refuses
    exactly what the standard-library reference refuses, and decodes the rest alike."""
    try:
        expected = stdlib_strict_b64decode(text)
    except ValueError:
        with pytest.raises(ValueError):
            b64decode(text)
    else:
        assert b64decode(text) == expected


@pytest.mark.parametrize("text", ["QU!JD", "QUJD=", "QU+D", "A", "QU%3D", "QU\tJD"])
def test_codec_open_maps_bad_base64_to_malformed(text):
    codec = TokenCodec([SECRET])
    exc = _raises_invalid(codec.open, text, "data", "session")
    assert (exc.event, exc.reason) == ("invalid", "malformed")


# -- key derivation ---------------------------------------------------------------------


def test_str_and_bytes_forms_of_a_secret_are_identical():
    """Item 25: the same UTF-8 secret as str, bytes or bytearray → same kid and keys."""
    secret = SECRET + "\u00e9\u20ac"  # non-ASCII: UTF-8 encoding is what counts
    as_bytes = secret.encode("utf-8")
    codecs = [
        TokenCodec([secret]),
        TokenCodec([as_bytes]),
        TokenCodec([bytearray(as_bytes)]),
    ]
    assert len({c.primary_kid for c in codecs}) == 1
    assert codecs[0].primary_kid == derive_keys(as_bytes, "default")[0]
    nonce = bytes(12)
    tokens = {c.seal(b'{"x":1}', "data", "session", _nonce=nonce) for c in codecs}
    assert len(tokens) == 1  # same kid and same AEAD key → same token
    token = tokens.pop()
    for c in codecs:
        assert c.open(token, "data", "session") == (b'{"x":1}', c.primary_kid)
    store = {c.seal_bytes(b"v", "store", "k", _nonce=nonce) for c in codecs}
    assert len(store) == 1  # same store key too


def test_derive_keys_shapes_and_determinism():
    kid, k_aead, k_store = derive_keys(SECRET.encode(), "default")
    assert (len(kid), len(k_aead), len(k_store)) == (4, 32, 32)
    assert derive_keys(SECRET.encode(), "default") == (kid, k_aead, k_store)


def test_derived_keys_differ_from_secret_and_each_other():
    """Item 27: keys ≠ secret bytes; distinct per purpose, namespace and secret."""
    secret = bytes(range(32))
    all_keys = []
    for ns in ("default", "app1", "app2"):
        kid, k_aead, k_store = derive_keys(secret, ns)
        for key in (k_aead, k_store):
            assert key != secret
            assert key not in secret and secret not in key
        assert kid not in secret
        assert k_aead != k_store
        assert kid not in (k_aead[:4], k_store[:4])
        all_keys += [kid, k_aead, k_store]
    assert len(set(all_keys)) == len(all_keys)  # nothing shared across namespaces
    other = derive_keys(bytes(range(1, 33)), "default")
    assert not set(other) & set(all_keys)


def test_derived_keys_differ_for_similar_namespaces():
    secret = SECRET.encode()
    a = derive_keys(secret, "app")
    b = derive_keys(secret, "app1")
    c = derive_keys(secret, "App")
    assert len({a[0], b[0], c[0]}) == 3
    assert len({a[1], b[1], c[1]}) == 3
    assert len({a[2], b[2], c[2]}) == 3


def test_key_ids_primary_first_and_public():
    codec = TokenCodec([SECRET, OLD_SECRET, OTHER_SECRET])
    expected = [
        derive_keys(s.encode(), "default")[0].hex() for s in (SECRET, OLD_SECRET, OTHER_SECRET)
    ]
    assert codec.key_ids == expected
    assert codec.primary_kid == bytes.fromhex(expected[0])
    reordered = TokenCodec([OLD_SECRET, SECRET])
    assert reordered.key_ids == [expected[1], expected[0]]  # stable across reordering


# -- secret validation (items 23, 24) -----------------------------------------------------


@pytest.mark.parametrize(
    "secret_keys",
    [
        [],
        (),
        None,
        SECRET,  # a bare str instead of a list
        SECRET.encode(),  # bare bytes
        bytearray(SECRET.encode()),
        {SECRET},  # unordered: "first = current" would be meaningless
        iter([SECRET]),
        42,
        [123],
        [None],
        [SECRET, 5],
        [SECRET, ["nested"]],
        ["x" * 31],
        [b"x" * 31],
        ["\u00e9" * 15],  # 15 characters, 30 UTF-8 bytes
        [""],
        [SECRET, "short"],
        ["\udcff" * 40],  # lone surrogates: what non-UTF-8 argv bytes decode to
        [SECRET, "abc\ud800" + "x" * 40],
    ],
    ids=repr,
)
def test_bad_secret_keys_raise_configuration_error(secret_keys):
    with pytest.raises(ConfigurationError) as info:
        TokenCodec(secret_keys)
    exc = info.value
    assert isinstance(exc, ValueError)
    assert isinstance(exc, WSGISessionError)
    assert exc.option == "secret_keys"
    assert "secret_keys" in str(exc)
    assert SECRET not in str(exc)
    assert "xxxxxxxx" not in str(exc)


@pytest.mark.parametrize(
    "secret_keys",
    [[], None, "x" * 40, [123], ["x" * 31], [SECRET, SECRET]],
    ids=repr,
)
def test_middleware_rejects_bad_secret_keys_at_construction(secret_keys):
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(_app, secret_keys=secret_keys)
    assert isinstance(info.value, ValueError)
    assert info.value.option == "secret_keys"
    assert "secret_keys" in str(info.value)


def test_middleware_requires_secret_keys():
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(_app)
    assert info.value.option == "secret_keys"


@pytest.mark.parametrize(
    "secret",
    ["x" * 32, b"\x00" * 32, "\u00e9" * 16, bytearray(b"k" * 32)],
    ids=["str32", "bytes32", "utf8-16chars-32bytes", "bytearray32"],
)
def test_secret_of_exactly_32_bytes_is_accepted(secret):
    codec = TokenCodec([secret])
    token = codec.seal(b"{}", "data", "session")
    assert codec.open(token, "data", "session")[0] == b"{}"


def test_tuple_of_secrets_is_accepted():
    codec = TokenCodec((SECRET, OLD_SECRET))
    assert len(codec.key_ids) == 2


@pytest.mark.parametrize(
    "secret_keys",
    [
        [SECRET, SECRET],
        [SECRET, SECRET.encode()],
        [OLD_SECRET, SECRET, bytearray(OLD_SECRET.encode())],
        [COLLIDING_A, COLLIDING_B],  # different secrets, colliding key ids
    ],
    ids=["same-str", "str-and-bytes", "third-repeats-first", "kid-collision"],
)
def test_repeated_secret_or_kid_collision_is_a_configuration_error(secret_keys):
    with pytest.raises(ConfigurationError) as info:
        TokenCodec(secret_keys)
    assert info.value.option == "secret_keys"
    assert "secret_keys" in str(info.value)
    for secret in secret_keys:
        text = secret if isinstance(secret, str) else bytes(secret).decode()
        assert text not in str(info.value)


def test_colliding_secrets_really_collide_only_in_default_namespace():
    a, b = COLLIDING_A.encode(), COLLIDING_B.encode()
    assert a != b
    assert derive_keys(a, "default")[0] == derive_keys(b, "default")[0]
    assert derive_keys(a, "default")[1] != derive_keys(b, "default")[1]
    # The kid is per namespace, so the same pair is fine elsewhere.
    assert len(TokenCodec([COLLIDING_A, COLLIDING_B], "app1").key_ids) == 2


# -- namespace validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "namespace",
    ["", "a" * 65, "a b", "a/b", "a:b", "a\x00b", "ns\n", "caf\u00e9", "a;b", b"default", None, 5],
    ids=repr,
)
def test_bad_namespace(namespace):
    with pytest.raises(ConfigurationError) as info:
        TokenCodec([SECRET], namespace)
    assert isinstance(info.value, ValueError)
    assert info.value.option == "namespace"
    assert "namespace" in str(info.value)


@pytest.mark.parametrize("namespace", ["a", "a" * 64, "My-App_1.2", "default", "0"])
def test_good_namespace(namespace):
    codec = TokenCodec([SECRET], namespace)
    assert codec.namespace == namespace
    assert codec.primary_kid == derive_keys(SECRET.encode(), namespace)[0]


def test_middleware_rejects_bad_namespace_naming_it():
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(_app, secret_keys=[SECRET], namespace="bad namespace")
    assert info.value.option == "namespace"


# -- AES-GCM-SIV known-answer self-test (item 20) -------------------------------------------


class _UnsupportedAESGCMSIV:
    def __init__(self, key: bytes) -> None:
        raise UnsupportedAlgorithm("AES-GCM-SIV is not supported by this version of OpenSSL")


class _WrongAESGCMSIV:
    """A broken AEAD: real AES-GCM-SIV with the last output byte flipped."""

    def __init__(self, key: bytes) -> None:
        self._inner = AESGCMSIV(key)

    def encrypt(self, nonce, data, associated_data):
        out = bytearray(self._inner.encrypt(nonce, data, associated_data))
        out[-1] ^= 1
        return bytes(out)

    def decrypt(self, nonce, data, associated_data):
        return self._inner.decrypt(nonce, data, associated_data)


class _RecordingAESGCMSIV:
    """A spy that records every encryption and passes it through."""

    calls: list[tuple[bytes, bytes, bytes, bytes | None]] = []

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._inner = AESGCMSIV(key)

    def encrypt(self, nonce, data, associated_data):
        type(self).calls.append((self._key, nonce, data, associated_data))
        return self._inner.encrypt(nonce, data, associated_data)

    def decrypt(self, nonce, data, associated_data):
        return self._inner.decrypt(nonce, data, associated_data)


def test_rfc8452_vector_with_real_aesgcmsiv():
    """The vector from RFC 8452 App. C.2 as quoted in security.md §1.5."""
    got = AESGCMSIV(bytes.fromhex("01" + "00" * 31)).encrypt(
        bytes.fromhex("03" + "00" * 11), bytes.fromhex("0100000000000000"), None
    )
    assert got.hex() == "c2ef328e5c71c83b843122130f7364b761e0b97427e3df28"


def test_self_test_runs_the_rfc_vector_at_construction(monkeypatch):
    monkeypatch.setattr(_RecordingAESGCMSIV, "calls", [])
    monkeypatch.setattr(codec_module, "AESGCMSIV", _RecordingAESGCMSIV)
    TokenCodec([SECRET])
    assert (
        bytes.fromhex("01" + "00" * 31),
        bytes.fromhex("03" + "00" * 11),
        bytes.fromhex("0100000000000000"),
        None,
    ) in _RecordingAESGCMSIV.calls


def test_unsupported_algorithm_is_a_configuration_error(monkeypatch):
    monkeypatch.setattr(codec_module, "AESGCMSIV", _UnsupportedAESGCMSIV)
    with pytest.raises(ConfigurationError) as info:
        TokenCodec([SECRET])
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value.__cause__, UnsupportedAlgorithm)
    assert "AES-256-GCM-SIV" in str(info.value)
    assert "cryptography" in str(info.value)  # says what to install


def test_unsupported_algorithm_fails_middleware_construction(monkeypatch):
    monkeypatch.setattr(codec_module, "AESGCMSIV", _UnsupportedAESGCMSIV)
    with pytest.raises(ConfigurationError):
        SessionMiddleware(_app, secret_keys=[SECRET])


def test_wrong_aead_output_fails_self_test(monkeypatch):
    monkeypatch.setattr(codec_module, "AESGCMSIV", _WrongAESGCMSIV)
    with pytest.raises(ConfigurationError) as info:
        TokenCodec([SECRET])
    assert "self-test" in str(info.value)
    with pytest.raises(ConfigurationError):
        SessionMiddleware(_app, secret_keys=[SECRET])


def test_missing_aesgcmsiv_class_is_a_configuration_error(monkeypatch):
    """An old cryptography without the class (the import fallback sets it to None)."""
    monkeypatch.setattr(codec_module, "AESGCMSIV", None)
    with pytest.raises(ConfigurationError) as info:
        TokenCodec([SECRET])
    assert "cryptography" in str(info.value)


# -- repr hygiene (item 28) -----------------------------------------------------------------


def _forbidden_strings(secret: str | bytes, namespaces=("default",)) -> list[str]:
    raw = secret.encode() if isinstance(secret, str) else secret
    out = [raw.decode("latin-1"), raw.hex(), repr(raw), base64.b64encode(raw).decode()]
    if isinstance(secret, str):
        out.append(secret)
    for ns in namespaces:
        _, k_aead, k_store = derive_keys(raw, ns)
        for key in (k_aead, k_store):
            out += [
                key.hex(),
                key.hex().upper(),
                repr(key),
                b64encode(key),
                base64.b64encode(key).decode(),
            ]
    return out


def test_repr_never_contains_secrets_or_derived_keys():
    secrets_ = [SECRET, OLD_SECRET.encode()]
    codec = TokenCodec(secrets_, "app1")
    text = repr(codec) + str(codec)
    for secret in secrets_:
        for bad in _forbidden_strings(secret, ("app1",)):
            assert bad not in text
    assert "app1" in repr(codec)
    assert codec.key_ids[0] in repr(codec)  # key ids are public


def test_middleware_repr_never_contains_secrets_or_derived_keys():
    mw = SessionMiddleware(_app, secret_keys=[SECRET, OLD_SECRET], namespace="shop")
    text = repr(mw) + str(mw)
    for secret in (SECRET, OLD_SECRET):
        for bad in _forbidden_strings(secret, ("shop",)):
            assert bad not in text


def test_invalid_token_message_never_contains_the_token():
    codec = TokenCodec([SECRET])
    token = codec.seal(b'{"secret":"data"}', "data", "session")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    exc = _raises_invalid(codec.open, tampered, "data", "session")
    assert tampered not in str(exc) and tampered not in repr(exc)
    assert "secret" not in str(exc)


# -- token layout, nonces --------------------------------------------------------------------


def test_token_layout():
    codec = TokenCodec([SECRET])
    nonce = bytes(range(12))
    raw = codec.seal_bytes(b"hello", "data", "session", _nonce=nonce)
    assert raw[0] == 0x01
    assert raw[1:5] == codec.primary_kid
    assert raw[5:17] == nonce
    assert len(raw) == 17 + 5 + 16
    assert codec.seal(b"hello", "data", "session", _nonce=nonce) == b64encode(raw)


def test_nonce_is_fresh_per_seal():
    codec = TokenCodec([SECRET])
    raws = [codec.seal_bytes(b"same", "data", "session") for _ in range(500)]
    assert len({raw[5:17] for raw in raws}) == 500
    assert len(set(raws)) == 500


def test_primary_seals_and_every_secret_opens():
    old = TokenCodec([OLD_SECRET])
    rotated = TokenCodec([SECRET, OLD_SECRET])
    token = old.seal(b"pt", "data", "session")
    assert rotated.open(token, "data", "session") == (b"pt", old.primary_kid)
    new_token = rotated.seal(b"pt", "data", "session")
    assert b64decode(new_token)[1:5] == TokenCodec([SECRET]).primary_kid
    exc = _raises_invalid(old.open, new_token, "data", "session")
    assert (exc.event, exc.reason) == ("unknown_key", "unknown_kid")


# -- rejections in open/open_bytes ---------------------------------------------------------


def test_too_long_boundary():
    codec = TokenCodec([SECRET])
    exc = _raises_invalid(codec.open, "A" * (MAX_TOKEN_CHARS + 1), "data", "session")
    assert (exc.event, exc.reason) == ("invalid", "too_long")
    # 4096 characters is still considered (decoded: all-zero bytes → bad version).
    exc = _raises_invalid(codec.open, "A" * MAX_TOKEN_CHARS, "data", "session")
    assert (exc.event, exc.reason) == ("invalid", "version")


def test_short_and_version_and_unknown_kid():
    codec = TokenCodec([SECRET])
    raw = codec.seal_bytes(b"x", "data", "session")
    assert len(raw) == 34  # the shortest real token: 1-byte plaintext
    assert codec.open_bytes(raw, "data", "session")[0] == b"x"
    exc = _raises_invalid(codec.open_bytes, raw[:33], "data", "session")
    assert (exc.event, exc.reason) == ("invalid", "short")
    exc = _raises_invalid(codec.open_bytes, b"", "data", "session")
    assert exc.reason == "short"
    for version in (0x00, 0x02, 0xFF):
        exc = _raises_invalid(codec.open_bytes, bytes([version]) + raw[1:], "data", "session")
        assert (exc.event, exc.reason) == ("invalid", "version")
    unknown = raw[:1] + bytes(b ^ 0xFF for b in raw[1:5]) + raw[5:]
    exc = _raises_invalid(codec.open_bytes, unknown, "data", "session")
    assert (exc.event, exc.reason) == ("unknown_key", "unknown_kid")


# -- purposes, bindings, namespaces -----------------------------------------------------------

PURPOSE_BINDINGS = [
    ("data", "session"),
    ("sid", "session"),
    ("sid", "x-session-token"),
    ("store", "session:" + hashlib.sha256(b"id").hexdigest()),
]


@pytest.mark.parametrize(("purpose", "binding"), PURPOSE_BINDINGS)
def test_round_trip_each_purpose(purpose, binding):
    codec = TokenCodec([SECRET])
    token = codec.seal(b"payload", purpose, binding)
    assert codec.open(token, purpose, binding) == (b"payload", codec.primary_kid)
    raw = codec.seal_bytes(b"payload", purpose, binding)
    assert codec.open_bytes(raw, purpose, binding) == (b"payload", codec.primary_kid)


@pytest.mark.parametrize(("purpose", "binding"), PURPOSE_BINDINGS)
def test_token_fails_for_any_other_purpose(purpose, binding):
    codec = TokenCodec([SECRET])
    token = codec.seal(b"payload", purpose, binding)
    for other in ("data", "sid", "store"):
        if other == purpose:
            continue
        exc = _raises_invalid(codec.open, token, other, binding)
        assert (exc.event, exc.reason) == ("invalid", "tampered")


@pytest.mark.parametrize(("purpose", "binding"), PURPOSE_BINDINGS)
def test_token_fails_for_any_other_binding(purpose, binding):
    codec = TokenCodec([SECRET])
    token = codec.seal(b"payload", purpose, binding)
    for other in (
        binding.upper(),
        binding[:-1],
        binding + "x",
        binding + "\x00",
        "\x00" + binding,
        "",
        "other",
    ):
        exc = _raises_invalid(codec.open, token, purpose, other)
        assert (exc.event, exc.reason) == ("invalid", "tampered")


def test_purpose_and_binding_cannot_be_shifted_across_the_separator():
    """AD = … purpose ‖ 00 ‖ binding: ("sid", "x") and ("si", "d\\x00x")-style shifts fail."""
    codec = TokenCodec([SECRET])
    token = codec.seal(b"p", "data", "session")
    exc = _raises_invalid(codec.open, token, "data", "session\x00")
    assert exc.reason == "tampered"


def test_non_ascii_and_surrogate_bindings_are_bound():
    codec = TokenCodec([SECRET])
    for binding in ("sessi\u00f3n", "s\udc80"):
        token = codec.seal(b"p", "data", binding)
        assert codec.open(token, "data", binding)[0] == b"p"
        assert _raises_invalid(codec.open, token, "data", "session").reason == "tampered"


def test_token_fails_in_another_namespace():
    app1 = TokenCodec([SECRET], "app1")
    app2 = TokenCodec([SECRET], "app2")
    token = app1.seal(b"p", "data", "session")
    # The kid is derived per namespace (DESIGN §3): unknown_key, no decryption.
    exc = _raises_invalid(app2.open, token, "data", "session")
    assert (exc.event, exc.reason) == ("unknown_key", "unknown_kid")
    # Even with app2's kid forged in, the key and the AD differ: tampered.
    raw = b64decode(token)
    forged = raw[:1] + app2.primary_kid + raw[5:]
    exc = _raises_invalid(app2.open_bytes, forged, "data", "session")
    assert (exc.event, exc.reason) == ("invalid", "tampered")


def test_store_values_use_a_separate_key():
    """A store value and a data token differ in key, not only in AD."""
    codec = TokenCodec([SECRET])
    nonce = bytes(12)
    store = codec.seal_bytes(b"v", "store", "k", _nonce=nonce)
    data = codec.seal_bytes(b"v", "data", "k", _nonce=nonce)
    sid = codec.seal_bytes(b"v", "sid", "k", _nonce=nonce)
    assert len({store, data, sid}) == 3
    _, k_aead, k_store = derive_keys(SECRET.encode(), "default")
    ad_tail = b"\x00wsgisession/v1\x00default\x00store\x00k"
    assert AESGCMSIV(k_store).decrypt(nonce, store[17:], store[:5] + ad_tail) == b"v"
    with pytest.raises(InvalidTag):
        AESGCMSIV(k_aead).decrypt(nonce, store[17:], store[:5] + ad_tail)


def test_open_with_a_different_secret_is_unknown_key():
    token = TokenCodec([OTHER_SECRET]).seal(b"p", "data", "session")
    exc = _raises_invalid(TokenCodec([SECRET]).open, token, "data", "session")
    assert (exc.event, exc.reason) == ("unknown_key", "unknown_kid")
