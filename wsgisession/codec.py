"""The token format (v1): HKDF-derived keys, AES-256-GCM-SIV sealing, strict base64url.

This module knows nothing about WSGI. A *token* is::

    base64url_nopad( 0x01 ‖ kid(4) ‖ nonce(12) ‖ AES-256-GCM-SIV(plaintext, AD) )

where the ciphertext carries its 16-byte tag, ``kid`` names the secret that sealed it
and the associated data (AD) binds the header, the namespace, a *purpose* (``data``:
a cookie holding the session; ``sid``: a cookie holding a store session's id;
``header``: that id carried in a request header instead; ``store``: a store record)
and a *binding* (the cookie name, the lower-cased header name or the store key)::

    AD = 0x01 ‖ kid ‖ 00 "wsgisession/v1" 00 ‖ namespace ‖ 00 ‖ purpose ‖ 00 ‖ binding

Keys are derived once, at construction, per secret (RFC 5869 HKDF-SHA256, salt
``b"wsgisession/v1"``)::

    k_aead  = HKDF(secret, info=b"wsgisession/v1 aead "  + namespace, 32)   # data, sid, header
    k_store = HKDF(secret, info=b"wsgisession/v1 store " + namespace, 32)   # store values
    kid     = HKDF(secret, info=b"wsgisession/v1 kid "   + namespace, 4)

The first secret seals; every secret opens. Opening never raises anything but
:class:`~wsgisession.errors.InvalidToken`, whose ``event``/``reason`` say why.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

import pybase64
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigurationError, InvalidToken

try:  # pragma: no cover - exercised only on old cryptography releases
    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
except ImportError:  # pragma: no cover
    AESGCMSIV = None  # type: ignore[assignment,misc]

__all__ = [
    "TokenCodec",
    "check_secrets",
    "check_namespace",
    "derive_keys",
    "b64encode",
    "b64decode",
    "MAX_TOKEN_CHARS",
    "PURPOSES",
]

VERSION = 0x01
_VERSION_BYTE = bytes([VERSION])
KID_SIZE = 4
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = 1 + KID_SIZE
_NONCE_END = HEADER_SIZE + NONCE_SIZE
#: Shortest raw token that could hold a one-byte plaintext; shorter is rejected unopened.
MIN_TOKEN_BYTES = HEADER_SIZE + NONCE_SIZE + TAG_SIZE + 1
#: Longest token (in characters) considered at all; longer ones are rejected undecoded.
MAX_TOKEN_CHARS = 4096
MIN_SECRET_BYTES = 32
_SALT = b"wsgisession/v1"
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_URLSAFE = b"-_"
#: base64 padding for an unpadded text of length n, by n % 4 (1 is never valid).
_PADDING = (b"", b"", b"==", b"=")
PURPOSES = ("data", "sid", "header", "store")

# RFC 8452, Appendix C.2, first AEAD_AES_256_GCM_SIV vector with a non-empty plaintext.
_KAT_KEY = bytes.fromhex("01" + "00" * 31)
_KAT_NONCE = bytes.fromhex("03" + "00" * 11)
_KAT_PLAINTEXT = bytes.fromhex("0100000000000000")
_KAT_EXPECTED = bytes.fromhex("c2ef328e5c71c83b843122130f7364b761e0b97427e3df28")


# base64 itself is pybase64's (SIMD where the CPU has it): binascii decodes a 2.8 KB
# cookie in ~8 µs, a third of the cost of opening it; pybase64 in under 1 µs. Same
# results as the standard library's (tests/test_codec.py checks them against it).
# Arguments go by position: pybase64 parses keywords slowly (~0.2-0.4 µs a call).
_pb_encode = pybase64.b64encode
_pb_decode = pybase64.b64decode


def b64encode(raw: bytes) -> str:
    """base64url without padding."""
    return _pb_encode(raw, _URLSAFE).rstrip(b"=").decode()


def b64decode(text: str) -> bytes:
    """Strict base64url without padding; raises ``ValueError`` on any stray character.

    :func:`base64.urlsafe_b64decode` silently skips characters outside the alphabet
    (``"QU!JD"`` decodes like ``"QUJD"``); this function does not.
    """
    raw = text.encode("ascii")  # UnicodeEncodeError is a ValueError
    # Deleting every alphabet byte must leave nothing: no '+', '/', '=', space, ...
    # (pybase64 with altchars still accepts '+' and '/'; this check does not.)
    if not raw or raw.translate(None, _B64URL_ALPHABET) or len(raw) % 4 == 1:
        raise ValueError("not strict base64url")
    # pybase64 raises binascii.Error, a ValueError, for anything it refuses.
    return _pb_decode(raw + _PADDING[len(raw) % 4], _URLSAFE, True)  # altchars, validate


def _hkdf(secret: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(secret)


def derive_keys(secret: bytes, namespace: str) -> tuple[bytes, bytes, bytes]:
    """Return ``(kid, k_aead, k_store)`` for one secret in one namespace."""
    ns = namespace.encode("ascii")
    return (
        _hkdf(secret, b"wsgisession/v1 kid " + ns, KID_SIZE),
        _hkdf(secret, b"wsgisession/v1 aead " + ns, 32),
        _hkdf(secret, b"wsgisession/v1 store " + ns, 32),
    )


def _self_test() -> None:
    if AESGCMSIV is None:  # pragma: no cover - depends on the installed cryptography
        raise ConfigurationError(
            "AES-256-GCM-SIV is unavailable: install cryptography>=42 from PyPI wheels",
            "secret_keys",
        )
    try:
        got = AESGCMSIV(_KAT_KEY).encrypt(_KAT_NONCE, _KAT_PLAINTEXT, None)
    except UnsupportedAlgorithm as exc:
        raise ConfigurationError(
            "AES-256-GCM-SIV is not supported by this cryptography/OpenSSL build "
            "(FIPS mode or OpenSSL < 3.2); install the cryptography wheel from PyPI",
            "secret_keys",
        ) from exc
    if got != _KAT_EXPECTED:
        raise ConfigurationError(
            "AES-256-GCM-SIV known-answer self-test failed; refusing to run", "secret_keys"
        )


def _secret_bytes(secret: object, index: int) -> bytes:
    if isinstance(secret, str):
        try:
            raw = secret.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigurationError(
                f"secret_keys[{index}] is a str that is not valid Unicode (lone "
                "surrogates); pass the secret as bytes",
                "secret_keys",
            ) from None
    elif isinstance(secret, (bytes, bytearray)):
        raw = bytes(secret)
    else:
        raise ConfigurationError(
            f"secret_keys[{index}] must be str or bytes, not {type(secret).__name__}",
            "secret_keys",
        )
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"secret_keys[{index}] is {len(raw)} bytes; each secret must be at least "
            f"{MIN_SECRET_BYTES} random bytes (python -m wsgisession genkey makes one)",
            "secret_keys",
        )
    return raw


def check_secrets(secret_keys: object) -> list[bytes]:
    """The secrets as bytes, first = current.

    :raises ConfigurationError: (option ``secret_keys``) for anything but a non-empty
        sequence of ``str``/``bytes`` secrets of at least 32 bytes each.
    """
    if isinstance(secret_keys, (str, bytes, bytearray)) or not isinstance(secret_keys, Sequence):
        raise ConfigurationError(
            "secret_keys must be a list of secrets (first = current), not "
            f"{type(secret_keys).__name__}",
            "secret_keys",
        )
    if not secret_keys:
        raise ConfigurationError("secret_keys must contain at least one secret", "secret_keys")
    return [_secret_bytes(secret, index) for index, secret in enumerate(secret_keys)]


def check_namespace(namespace: object) -> str:
    """:raises ConfigurationError: unless ``namespace`` matches ``[A-Za-z0-9._-]{1,64}``."""
    if not isinstance(namespace, str) or _NAMESPACE_RE.fullmatch(namespace) is None:
        raise ConfigurationError("namespace must match [A-Za-z0-9._-]{1,64}", "namespace")
    return namespace


class TokenCodec:
    """Seal and open v1 tokens with a list of secrets (first = current).

    :param secret_keys: a non-empty sequence of ``str``/``bytes`` secrets, each at
        least 32 bytes. The first one seals; all of them open.
    :param namespace: an application label (``[A-Za-z0-9._-]{1,64}``) bound into key
        derivation and associated data, so apps sharing a secret cannot swap tokens.
    :raises ConfigurationError: for a bad secret list or namespace, or when the AEAD
        fails its known-answer self-test.
    """

    __slots__ = ("namespace", "primary_kid", "_aead", "_store", "_ad_tail", "_tails")

    def __init__(self, secret_keys: Sequence[str | bytes], namespace: str = "default") -> None:
        secrets = check_secrets(secret_keys)
        check_namespace(namespace)
        _self_test()
        self.namespace = namespace
        self._aead: dict[bytes, AESGCMSIV] = {}
        self._store: dict[bytes, AESGCMSIV] = {}
        for index, secret in enumerate(secrets):
            kid, k_aead, k_store = derive_keys(secret, namespace)
            if kid in self._aead:
                raise ConfigurationError(
                    f"secret_keys[{index}] repeats an earlier secret (or its key id "
                    "collides with one); list each secret once",
                    "secret_keys",
                )
            self._aead[kid] = AESGCMSIV(k_aead)
            self._store[kid] = AESGCMSIV(k_store)
        self.primary_kid = next(iter(self._aead))
        ns = namespace.encode("ascii")
        self._ad_tail = {
            p: b"\x00wsgisession/v1\x00" + ns + b"\x00" + p.encode("ascii") + b"\x00"
            for p in PURPOSES
        }
        self._tails: dict[tuple[str, str], bytes] = {}

    def _tail(self, purpose: str, binding: str) -> bytes:
        """The associated data after the header, cached for cookie and header names."""
        key = (purpose, binding)
        tail = self._tails.get(key)
        if tail is None:
            tail = self._ad_tail[purpose] + binding.encode("utf-8", "surrogatepass")
            if purpose != "store" and len(self._tails) < 64:  # store keys vary per session
                self._tails[key] = tail
        return tail

    @property
    def key_ids(self) -> list[str]:
        """The key ids (hex), primary first. Key ids are public: they travel in tokens."""
        return [kid.hex() for kid in self._aead]

    def __repr__(self) -> str:
        return f"<TokenCodec namespace={self.namespace!r} key_ids={self.key_ids!r}>"

    # -- sealing: one implementation ---------------------------------------------------

    def raw_sealer(
        self, purpose: str, binding: str, *, _nonce: bytes | None = None
    ) -> Callable[[bytes], bytes]:
        """``seal(plaintext) -> raw token bytes`` for one purpose and binding, under the
        primary key, with the header and associated data bound once. Every token and
        record is sealed here (:meth:`sealer`, :meth:`seal`, :meth:`seal_bytes`).

        ``_nonce`` exists only for golden-vector tests; production code never passes it.
        """
        kid = self.primary_kid
        header = _VERSION_BYTE + kid
        keys = self._store if purpose == "store" else self._aead
        ad = header + self._tail(purpose, binding)
        nonce_of: Callable[[int], bytes] = os.urandom
        if _nonce is not None:
            fixed = _nonce

            def nonce_of(size: int) -> bytes:
                return fixed

        def seal_raw(plaintext: bytes) -> bytes:
            nonce = nonce_of(NONCE_SIZE)
            return header + nonce + keys[kid].encrypt(nonce, plaintext, ad)

        return seal_raw

    def sealer(
        self, purpose: str, binding: str, *, _nonce: bytes | None = None
    ) -> Callable[[bytes], str]:
        """``seal(plaintext) -> token text`` (base64url, no padding) over
        :meth:`raw_sealer`: the middleware binds one per purpose and cookie/header."""
        seal_raw = self.raw_sealer(purpose, binding, _nonce=_nonce)
        encode, alphabet = _pb_encode, _URLSAFE

        def seal(plaintext: bytes) -> str:
            return encode(seal_raw(plaintext), alphabet).rstrip(b"=").decode()

        return seal

    def seal_bytes(
        self, plaintext: bytes, purpose: str, binding: str, *, _nonce: bytes | None = None
    ) -> bytes:
        """Seal ``plaintext`` under the primary key; return the raw token bytes (store
        records; their binding, the store key, differs per session)."""
        return self.raw_sealer(purpose, binding, _nonce=_nonce)(plaintext)

    def seal(
        self, plaintext: bytes, purpose: str, binding: str, *, _nonce: bytes | None = None
    ) -> str:
        """Seal ``plaintext`` and return the base64url token text."""
        return self.sealer(purpose, binding, _nonce=_nonce)(plaintext)

    # -- opening ---------------------------------------------------------------------

    def open_bytes(self, raw: bytes, purpose: str, binding: str) -> tuple[bytes, bytes]:
        """Open raw token bytes; return ``(plaintext, kid)``.

        :raises InvalidToken: ``invalid`` (short, version, tampered) or ``unknown_key``.
        """
        table = self._store if purpose == "store" else self._aead
        return _open_raw(raw, table, self._tail(purpose, binding))

    def open(self, token: str, purpose: str, binding: str) -> tuple[bytes, bytes]:
        """Open a base64url token; return ``(plaintext, kid)``.

        :raises InvalidToken: with reason ``too_long``, ``malformed``, ``short``,
            ``version``, ``tampered`` or (event ``unknown_key``) ``unknown_kid``.
        """
        return self.opener(purpose, binding)(token)

    def opener(self, purpose: str, binding: str) -> Callable[[str], tuple[bytes, bytes]]:
        """``open(token) -> (plaintext, kid)`` for one purpose and binding: what
        :meth:`open` does, with the key table and associated data looked up once."""
        table = self._store if purpose == "store" else self._aead
        tail = self._tail(purpose, binding)

        def open_token(token: str) -> tuple[bytes, bytes]:
            if len(token) > MAX_TOKEN_CHARS:
                raise InvalidToken("too_long")
            try:
                raw = b64decode(token)
            except ValueError:
                raise InvalidToken("malformed") from None
            return _open_raw(raw, table, tail)

        return open_token


def _open_raw(raw: bytes, table: dict[bytes, AESGCMSIV], tail: bytes) -> tuple[bytes, bytes]:
    """Check the header, pick the key by kid and decrypt; raise InvalidToken."""
    if len(raw) < MIN_TOKEN_BYTES:
        raise InvalidToken("short")
    if raw[0] != VERSION:
        raise InvalidToken("version")
    kid = raw[1:HEADER_SIZE]
    aead = table.get(kid)
    if aead is None:
        raise InvalidToken("unknown_kid", "unknown_key")
    try:
        plaintext = aead.decrypt(
            raw[HEADER_SIZE:_NONCE_END], raw[_NONCE_END:], raw[:HEADER_SIZE] + tail
        )
    except InvalidTag:
        raise InvalidToken("tampered") from None
    return plaintext, kid
