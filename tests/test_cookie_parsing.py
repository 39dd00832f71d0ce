"""security.md §3 D 39-48, end to end: real tokens through the middleware.

Tokens are minted by a first request that writes (read back with ``cookie_value``);
the requests under test call the middleware directly with a plain environ, so odd
bytes in the Cookie header reach it exactly as a WSGI server would pass them.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import OTHER_SECRET, Harness, call_wsgi, cookie_value
from wsgisession.codec import MAX_TOKEN_CHARS, b64decode
from wsgisession.events import session_id_hash

REJECTION_EVENTS = {"invalid", "unknown_key", "duplicate"}


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def recording_handler(seen: list[tuple[bool, dict[str, Any], str]]):
    """``/login?<user>`` writes the session; anything else records what it sees."""

    def handler(environ, session):
        if environ["PATH_INFO"] == "/login":
            session["user"] = environ["QUERY_STRING"]
            return "ok"
        if environ["PATH_INFO"] == "/bump":
            session["n"] = session.get("n", 0) + 1
            return "ok"
        seen.append((session.is_new, dict(session), session.id))
        return "ok"

    return handler


class Site:
    """A harness plus helpers to mint tokens and make raw WSGI calls."""

    def __init__(self, cookie_name: str = "session", **options: Any) -> None:
        self.seen: list[tuple[bool, dict[str, Any], str]] = []
        self.name = cookie_name
        self.h = Harness(recording_handler(self.seen), cookie_name=cookie_name, **options)
        self.scheme = "https" if cookie_name.startswith("__Host-") else "http"

    @property
    def events(self):
        return self.h.events

    def login(self, user: str) -> str:
        self.h.client.reset()  # a fresh browser: no cookie from an earlier login
        response = self.h.get(f"/login?{user}", extra_environ={"wsgi.url_scheme": self.scheme})
        token = cookie_value(response, self.name)
        assert token
        return token

    def bump(self, token: str) -> str:
        """A second token for the same session (same id, different bytes)."""
        self.h.client.reset()
        response = self.h.get(
            "/bump", cookie=f"{self.name}={token}", extra_environ={"wsgi.url_scheme": self.scheme}
        )
        new = cookie_value(response, self.name)
        assert new and new != token
        return new

    def call(self, header: str | None) -> tuple[str, list[tuple[str, str]], bool, dict[str, Any]]:
        """One raw WSGI request; returns (status, headers, is_new, data)."""
        before = len(self.seen)
        result = call_wsgi(self.h.mw, cookie=header, scheme=self.scheme)
        assert len(self.seen) == before + 1
        is_new, data, _ = self.seen[-1]
        status, headers, _ = result.calls[0]
        return status, headers, is_new, data


def set_cookie_headers(headers: list[tuple[str, str]]) -> list[str]:
    return [v for k, v in headers if k.lower() == "set-cookie"]


class DecryptSpy:
    """Counting wrapper around one AESGCMSIV object (records the ciphertexts seen)."""

    def __init__(self, inner: Any, calls: list[bytes]) -> None:
        self._inner = inner
        self._calls = calls

    def decrypt(self, nonce: bytes, data: bytes, ad: bytes | None) -> bytes:
        self._calls.append(bytes(data))
        return self._inner.decrypt(nonce, data, ad)

    def encrypt(self, nonce: bytes, data: bytes, ad: bytes | None) -> bytes:
        return self._inner.encrypt(nonce, data, ad)


def spy_on_decrypt(site: Site) -> list[bytes]:
    calls: list[bytes] = []
    table = site.h.mw.codec._aead
    for kid, aead in list(table.items()):
        table[kid] = DecryptSpy(aead, calls)
    return calls


def ciphertext_of(token: str) -> bytes:
    return b64decode(token)[1 + 4 + 12 :]


def tamper(token: str) -> str:
    """Same length, still strict base64url, same version and kid: decrypt is attempted
    and fails with InvalidTag."""
    i = 30  # inside the ciphertext (header+nonce are the first 17 bytes = 23 chars)
    swapped = "A" if token[i] != "A" else "B"
    return token[:i] + swapped + token[i + 1 :]


@pytest.fixture
def site() -> Site:
    s = Site()
    s.alice = s.login("alice")  # type: ignore[attr-defined]
    s.bob = s.login("bob")  # type: ignore[attr-defined]
    s.events.clear()
    return s


def assert_loaded(result, user: str) -> None:
    status, headers, is_new, data = result
    assert status == "200 OK"
    assert is_new is False
    assert data == {"user": user}
    assert set_cookie_headers(headers) == []


def assert_no_session(result) -> None:
    status, headers, is_new, data = result
    assert status == "200 OK"
    assert is_new is True
    assert data == {}
    # An invalid/absent incoming cookie alone never causes a Set-Cookie.
    assert set_cookie_headers(headers) == []


# --------------------------------------------------------------------------------------
# D39-D43
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "a=1", "session=", 'session=""', "session= \t"])
def test_d39_no_cookie_no_event(site, header):
    assert_no_session(site.call(header))
    assert site.events == []


def test_sanity_the_token_works(site):
    assert_loaded(site.call(f"session={site.alice}"), "alice")
    assert_loaded(site.call(f'session="{site.bob}"'), "bob")
    assert site.seen[-1][2] != site.seen[-2][2]  # two different sessions
    assert site.events == []


@pytest.mark.parametrize("position", [0, 1, 25, 49, 50])
def test_d40_among_fifty_others(site, position):
    parts = [f"c{i}=v{i}" for i in range(50)]
    parts.insert(position, f"session={site.alice}")
    assert_loaded(site.call("; ".join(parts)), "alice")
    assert site.events == []


MALFORMED = [
    'a="unterminated',
    "=nameless",
    "bad cookie",
    "x=[1]",
    "\x01",
    "y=\x01z",
    '"',
    "=",
    "===",
]


@pytest.mark.parametrize("junk", MALFORMED)
def test_d41_malformed_neighbours(site, junk):
    assert_loaded(site.call(f"{junk}; session={site.alice}"), "alice")
    assert_loaded(site.call(f"session={site.alice}; {junk}"), "alice")
    assert_loaded(site.call(f"{junk}; session={site.alice}; {junk}"), "alice")
    assert site.events == []


def test_d41_all_malformed_at_once(site):
    header = "; ".join([*MALFORMED, f"session={site.alice}", *MALFORMED])
    assert_loaded(site.call(header), "alice")
    assert site.events == []


@pytest.mark.parametrize(
    "other", ["n=\xe9\xff", "\xe9\xff=\xe9", "n=" + "".join(map(chr, range(0x80, 0x100)))]
)
def test_d42_latin1_in_another_cookie(site, other):
    assert_loaded(site.call(f"{other}; session={site.alice}"), "alice")
    assert_loaded(site.call(f"session={site.alice}; {other}"), "alice")
    assert site.events == []


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:10] + "\xe9" + t[11:],  # latin-1 letter in place of a char
        lambda t: t + "\xff",
        lambda t: "\xe9" * len(t),
        lambda t: t[:10] + "\u0661" + t[11:],  # ARABIC-INDIC DIGIT ONE (a Unicode digit)
        lambda t: t[:10] + "\uff21" + t[11:],  # FULLWIDTH A
        lambda t: t[:10] + "\udc80" + t[11:],  # a lone surrogate
        lambda t: "ñ",
    ],
)
def test_d43_non_ascii_in_our_value_is_invalid(site, mangle):
    calls = spy_on_decrypt(site)
    assert_no_session(site.call(f"session={mangle(site.alice)}"))
    assert [(e.name, e.reason) for e in site.events] == [("invalid", "malformed")]
    assert calls == []  # rejected before any crypto call


def test_too_long_value_rejected_before_decoding(site):
    calls = spy_on_decrypt(site)
    value = site.alice + "A" * (MAX_TOKEN_CHARS + 1 - len(site.alice))
    assert len(value) == MAX_TOKEN_CHARS + 1
    assert_no_session(site.call(f"session={value}"))
    assert [(e.name, e.reason) for e in site.events] == [("invalid", "too_long")]
    assert calls == []


# --------------------------------------------------------------------------------------
# D44 duplicates
# --------------------------------------------------------------------------------------


def test_d44_two_valid_different_ids_is_ambiguous(site):
    for header in (
        f"session={site.alice}; session={site.bob}",
        f"session={site.bob}; session={site.alice}",
    ):
        site.events.clear()
        result = site.call(header)
        assert_no_session(result)
        assert "alice" not in repr(result) and "bob" not in repr(result)
        assert [(e.name, e.reason) for e in site.events] == [("duplicate", "ambiguous")]
        assert site.events[0].session_id_hash is None


@pytest.mark.parametrize("garbage_kind", ["tampered", "junk", "other_secret"])
@pytest.mark.parametrize("order", ["garbage_first", "valid_first"])
def test_d44_garbage_and_valid(site, garbage_kind, order):
    if garbage_kind == "tampered":
        garbage = tamper(site.alice)
    elif garbage_kind == "junk":
        garbage = "garbage!"
    else:
        garbage = Site(secret_keys=[OTHER_SECRET]).login("mallory")
    pair = [f"session={garbage}", f"session={site.alice}"]
    if order == "valid_first":
        pair.reverse()
    assert_loaded(site.call("; ".join(pair)), "alice")
    assert [(e.name, e.reason) for e in site.events] == [("duplicate", "multiple")]
    # The event names the session that was used (by hash only).
    assert site.events[0].session_id_hash == session_id_hash(site.seen[-1][2])


def test_d44_two_identical_copies(site):
    assert_loaded(site.call(f"session={site.alice}; session={site.alice}"), "alice")
    assert [(e.name, e.reason) for e in site.events] == [("duplicate", "multiple")]


def test_d44_same_id_different_tokens_uses_the_first(site):
    newer = site.bump(site.alice)  # same session id, data {"user": "alice", "n": 1}
    site.events.clear()
    _, _, is_new, data = site.call(f"session={newer}; session={site.alice}")
    assert (is_new, data) == (False, {"user": "alice", "n": 1})
    _, _, is_new, data = site.call(f"session={site.alice}; session={newer}")
    assert (is_new, data) == (False, {"user": "alice"})
    assert site.events.names() == ["duplicate", "duplicate"]


def test_d44_only_garbage_copies(site):
    assert_no_session(site.call(f"session={tamper(site.alice)}; session=junk"))
    assert [(e.name, e.reason) for e in site.events] == [("duplicate", "none_valid")]


def test_d44_thousand_garbage_copies_at_most_four_decryptions(site):
    calls = spy_on_decrypt(site)
    garbage = tamper(site.alice)
    header = "; ".join([f"session={garbage}"] * 1000)
    assert_no_session(site.call(header))
    assert 1 <= len(calls) <= 4
    assert site.events.names() == ["duplicate"]


def test_d44_valid_copy_after_four_garbage_ones_is_not_considered(site):
    calls = spy_on_decrypt(site)
    header = "; ".join([f"session={tamper(site.alice)}"] * 4 + [f"session={site.alice}"])
    assert_no_session(site.call(header))
    assert len(calls) <= 4
    assert [(e.name, e.reason) for e in site.events] == [("duplicate", "none_valid")]


# --------------------------------------------------------------------------------------
# D46 intermediaries and comma smuggling
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", ["; ", ";", " ; ", ";\t"])
def test_d46_semicolon_joined_found(site, sep):
    assert_loaded(site.call(f"a=1{sep}session={site.alice}"), "alice")
    assert site.events == []


@pytest.mark.parametrize("sep", [", ", ",", " , "])
def test_d46_comma_joined_is_absent(site, sep):
    calls = spy_on_decrypt(site)
    assert_no_session(site.call(f"a=1{sep}session={site.alice}"))
    assert site.events == []
    assert calls == []


def test_d46_comma_smuggling_never_decrypted():
    s = Site(cookie_name="__Host-session")
    own = s.login("alice")
    other = s.login("mallory")
    s.events.clear()
    calls = spy_on_decrypt(s)
    header = f"other=x,__Host-session={other}; __Host-session={own}"
    assert_loaded(s.call(header), "alice")
    assert ciphertext_of(other) not in calls
    assert calls == [ciphertext_of(own)]
    assert s.events == []  # in particular, no duplicate event


def test_d46_comma_smuggling_alone_is_absent():
    s = Site(cookie_name="__Host-session")
    other = s.login("mallory")
    s.events.clear()
    calls = spy_on_decrypt(s)
    assert_no_session(s.call(f"other=x,__Host-session={other}"))
    assert calls == []
    assert s.events == []


# --------------------------------------------------------------------------------------
# D47 case, D48 whitespace
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Session", "SESSION", "sessioN", " Session", "session_", "xsession"]
)
def test_d47_case_variants_absent(site, name):
    calls = spy_on_decrypt(site)
    assert_no_session(site.call(f"{name}={site.alice}"))
    assert site.events == []
    assert calls == []


def test_d47_host_prefix_case_variant_absent():
    s = Site(cookie_name="__Host-session")
    token = s.login("alice")
    s.events.clear()
    assert_no_session(s.call(f"__host-session={token}"))
    assert_no_session(s.call(f"__HOST-session={token}"))
    assert s.events == []
    assert_loaded(s.call(f"__Host-session={token}"), "alice")


@pytest.mark.parametrize(
    "template",
    [
        "  session =\t{t}  ",
        "\tsession\t=\t{t}\t",
        "a=1 ;\t session = {t} \t; b=2",
        'session = "{t}" ',
        "session\t \t=\t \t{t}",
    ],
)
def test_d48_whitespace_and_tabs(site, template):
    assert_loaded(site.call(template.format(t=site.alice)), "alice")
    assert site.events == []


# --------------------------------------------------------------------------------------
# Fuzz: whole Cookie headers
# --------------------------------------------------------------------------------------

FUZZ = Site()
TOKENS = {
    "A": FUZZ.login("alice"),
    "B": FUZZ.login("bob"),
}
TOKENS["A2"] = FUZZ.bump(TOKENS["A"])
FOREIGN = Site(secret_keys=[OTHER_SECRET]).login("mallory")
DATA = {
    TOKENS["A"]: ("A", {"user": "alice"}),
    TOKENS["A2"]: ("A", {"user": "alice", "n": 1}),
    TOKENS["B"]: ("B", {"user": "bob"}),
}
FUZZ.events.clear()

ws = st.sampled_from(["", " ", "\t", " \t"])
quote = st.sampled_from(["", '"'])
# Junk has no letters (so it can never spell our name) and no ';' (pieces stay pieces).
junk_chars = st.sampled_from(
    list(" \t,=\"'[]{}()!#$%&*+-./:<>?@\\^`|~0123456789\x01\x7f\xe9\xff\xa0")
)
other_value_chars = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=,\"' \t-_\xe9\xff\x00")
)
other_names = st.sampled_from(
    ["a", "b", "x", "Session", "SESSION", "sess", "session2", "__Host-session", "\xe9"]
)
separators = st.sampled_from(["; ", ";", " ; ", ";\t", ", ", ","])


@st.composite
def our_piece(draw):
    kind = draw(st.sampled_from(["A", "A2", "B", "tampered", "foreign", "junk", "empty"]))
    if kind in TOKENS:
        value = TOKENS[kind]
    elif kind == "tampered":
        value = tamper(TOKENS[draw(st.sampled_from(sorted(TOKENS)))])
    elif kind == "foreign":
        value = FOREIGN
    elif kind == "junk":
        value = draw(st.text(junk_chars, min_size=1, max_size=6))
    else:
        value = ""
    q = draw(quote)
    return f"{draw(ws)}session{draw(ws)}={draw(ws)}{q}{value}{q}{draw(ws)}"


@st.composite
def other_piece(draw):
    name = draw(other_names)
    value = draw(st.text(other_value_chars, max_size=8))
    if draw(st.booleans()):
        value = value + "," + draw(st.sampled_from(["session=", "session=" + TOKENS["B"]]))
    return f"{name}={value}"


@st.composite
def cookie_headers(draw):
    pieces = draw(
        st.lists(
            st.one_of(our_piece(), other_piece(), st.text(junk_chars, max_size=6)),
            max_size=8,
        )
    )
    header = ""
    for i, piece in enumerate(pieces):
        header += (draw(separators) if i else "") + piece
    return header


_OURS = re.compile(r"[ \t]*session[ \t]*=(.*)", re.S)


def oracle(header: str) -> tuple[str | None, str | None]:
    """Expected (data-key of the loaded token or None, event name or None).

    Written independently of ``find_cookie``: a regex per ';'-part. Pieces other than
    ours can never produce such a part (junk has no letters; other names are never
    exactly ``session``), so every candidate is one we put there on purpose.
    """
    candidates = []
    for part in header.split(";"):
        m = _OURS.fullmatch(part)
        if m is None:
            continue
        value = m.group(1).strip(" \t")
        if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        if value:
            candidates.append(value)
    if not candidates:
        return None, None
    if len(candidates) == 1:
        return (candidates[0], None) if candidates[0] in DATA else (None, "rejected")
    considered = [v for v in candidates[:4] if v in DATA]
    ids = {DATA[v][0] for v in considered}
    return (considered[0] if len(ids) == 1 else None), "duplicate"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cookie_headers())
def test_fuzz_whole_cookie_headers(header):
    FUZZ.events.clear()
    status, headers, is_new, data = FUZZ.call(header)
    expected_token, expected_event = oracle(header)
    assert status == "200 OK"
    assert set_cookie_headers(headers) == []
    if expected_token is None:
        assert (is_new, data) == (True, {})
    else:
        assert (is_new, data) == (False, DATA[expected_token][1])
    names = FUZZ.events.names()
    assert set(names) <= REJECTION_EVENTS
    assert len(names) <= 1
    if expected_event is None:
        assert names == []
    elif expected_event == "duplicate":
        assert names == ["duplicate"]
    else:
        assert names in (["invalid"], ["unknown_key"])


def test_fuzz_generator_reaches_every_outcome():
    """The oracle's outcomes are all reachable with the pieces above (guards against a
    generator that only ever produces empty headers)."""
    samples = [
        f"session={TOKENS['A']}",
        f"a=1, session={TOKENS['A']}",
        f"session={TOKENS['A']}; session={TOKENS['B']}",
        f"session={TOKENS['A']}; session={TOKENS['A2']}",
        f"session={FOREIGN}",
        f"x=,session={TOKENS['B']}; session={TOKENS['A']}",
    ]
    outcomes = Counter()
    for header in samples:
        token, event = oracle(header)
        FUZZ.events.clear()
        _, _, is_new, data = FUZZ.call(header)
        assert is_new is (token is None)
        assert data == ({} if token is None else DATA[token][1])
        outcomes[(token is not None, event)] += 1
        if event == "rejected":
            assert FUZZ.events.names() == ["unknown_key"]
    assert outcomes == {
        (True, None): 2,
        (False, None): 1,
        (False, "duplicate"): 1,
        (True, "duplicate"): 1,
        (False, "rejected"): 1,
    }
