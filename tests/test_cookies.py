"""Unit and property tests of ``wsgisession.cookies``.

Reading: ``find_cookie`` is the strict reader (split on ``;`` only, never ``,``). It is
differential-tested against WebOb's ``parse_cookie`` on well-formed, comma-free
headers, where the two must agree, and shown to *disagree* on comma-joined headers,
which is exactly why the middleware does not read with WebOb (security.md §1.11, H9).

Writing: ``CookieWriter`` must render byte for byte what WebOb's ``Morsel`` renders
(``webob_set_cookie``), for every valid option combination.
"""

from __future__ import annotations

import re
import string
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webob.cookies import _c_keys, parse_cookie

from wsgisession.cookies import (
    MAX_CANDIDATES,
    CookieWriter,
    find_cookie,
    valid_cookie_name,
    valid_domain,
    valid_path,
    webob_set_cookie,
)

# --------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------

#: RFC 6265 / RFC 9110 token characters.
TOKEN_CHARS = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
#: RFC 6265 cookie-octets: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E, i.e. visible
#: ASCII without '"', ',', ';' and '\\'.
COOKIE_OCTETS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')
#: WebOb's value regex (webob/cookies.py ``_rx_cookie``) has no '[' or ']' in its
#: character class, so ``x=[1]`` reads as ``x=""`` in WebOb but ``x=[1]`` in ours.
#: '[' and ']' are legal cookie-octets; this is a WebOb quirk, not a disagreement on
#: the grammar, and the differential test leaves them out (``test_brackets_differ``
#: pins the difference).
DIFF_VALUE_CHARS = "".join(c for c in COOKIE_OCTETS if c not in "[]")
B64URL_CHARS = string.ascii_letters + string.digits + "-_"


def webob_ok_name(name: str) -> bool:
    """WebOb's ``parse_cookie`` drops names starting with '$' and reserved attribute
    names (``path``, ``expires``, ``max-age``…, case-insensitively); ``find_cookie``
    reads any token. Queried names in the differential test avoid those."""
    return not name.startswith("$") and name.lower().encode() not in _c_keys


token_names = st.text(TOKEN_CHARS, min_size=1, max_size=8)
query_names = token_names.filter(webob_ok_name)
cookie_values = st.text(DIFF_VALUE_CHARS, min_size=0, max_size=12)
ows = st.sampled_from(["", " ", "\t", "  ", " \t "])


def webob_values(header: str, name: str) -> list[str]:
    """Non-empty values of ``name`` according to WebOb, in header order.

    WebOb 1.8 on Python 3: ``parse_cookie`` takes a *str* (it encodes it as latin-1
    itself; passing bytes raises ``AttributeError``) and yields ``(bytes, bytes)``
    pairs. ``find_cookie`` treats an empty value as absent, so empty ones are dropped.
    """
    key = name.encode("latin-1")
    return [v.decode("latin-1") for k, v in parse_cookie(header) if k == key and v]


def test_webob_parse_cookie_types():
    """Pin the WebOb API the differential test relies on."""
    pairs = list(parse_cookie("a=1; b=x"))
    assert pairs == [(b"a", b"1"), (b"b", b"x")]
    assert all(type(k) is bytes and type(v) is bytes for k, v in pairs)
    with pytest.raises(AttributeError):
        list(parse_cookie(b"a=1"))


@st.composite
def well_formed_headers(draw, *, whitespace: bool):
    """A comma-free, well-formed Cookie header and a name to look up in it."""
    query = draw(query_names)
    # Draw names mostly from a small pool containing the query, so it occurs often,
    # sometimes several times.
    pool = [query, *draw(st.lists(token_names, min_size=1, max_size=3))]
    n = draw(st.integers(0, 8))
    pairs = []
    for _ in range(n):
        name = draw(st.sampled_from(pool) | token_names)
        value = draw(cookie_values)
        if value and draw(st.booleans()) and draw(st.booleans()):
            value = f'"{value}"'
        pairs.append((name, value))
    if whitespace:
        parts = [f"{draw(ows)}{k}{draw(ows)}={draw(ows)}{v}{draw(ows)}" for k, v in pairs]
        header = ";".join(f"{p}{draw(ows)}" for p in parts)
    else:
        header = "; ".join(f"{k}={v}" for k, v in pairs)
    return header, query


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(well_formed_headers(whitespace=False))
def test_differential_against_webob(case):
    header, name = case
    expected = webob_values(header, name)
    values, count = find_cookie(header, name)
    assert values == expected[:MAX_CANDIDATES]
    assert count == len(expected)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(well_formed_headers(whitespace=True))
def test_differential_against_webob_with_optional_whitespace(case):
    # WebOb's regex allows ``\s*`` around '=' and skips anything between pairs, and its
    # value class stops at whitespace; our reader trims SP/HTAB around names, '=' and
    # values. On SP/HTAB the two agree (internal whitespace inside a value is not
    # generated: WebOb would cut the value there, we would keep it; see
    # ``test_internal_space_differs``).
    header, name = case
    expected = webob_values(header, name)
    values, count = find_cookie(header, name)
    assert values == expected[:MAX_CANDIDATES]
    assert count == len(expected)


def test_brackets_differ_from_webob():
    """Documented difference: WebOb's value class lacks '[' and ']'."""
    assert find_cookie("a=[1]; a=2", "a") == (["[1]", "2"], 2)
    assert webob_values("a=[1]; a=2", "a") == ["2"]


def test_internal_space_differs_from_webob():
    """Documented difference: WebOb cuts a value at a space; we keep the whole part."""
    assert find_cookie("a=1 2; a=3", "a") == (["1 2", "3"], 2)
    assert webob_values("a=1 2; a=3", "a") == ["1", "3"]


# --------------------------------------------------------------------------------------
# Commas: never a separator
# --------------------------------------------------------------------------------------


def test_comma_joined_header_hides_our_cookie():
    assert find_cookie("a=1, session=X", "session") == ([], 0)
    assert find_cookie("a=1,session=X", "session") == ([], 0)


def test_comma_smuggling_only_the_real_pair_is_a_candidate():
    header = "other=x,__Host-session=EVIL; __Host-session=GOOD"
    assert find_cookie(header, "__Host-session") == (["GOOD"], 1)


def test_webob_would_have_read_the_smuggled_value():
    """Why we do not read with WebOb: it splits on ',' too, so a sibling domain's
    ``other`` cookie can smuggle a ``__Host-`` pair in its value (security.md §1.11)."""
    header = "other=x,__Host-session=EVIL; __Host-session=GOOD"
    assert webob_values(header, "__Host-session") == ["EVIL", "GOOD"]
    assert webob_values("a=1, session=X", "session") == ["X"]


def test_comma_in_our_own_value_is_kept_verbatim():
    # Our tokens never contain ',', so such a value later fails as malformed.
    assert find_cookie("session=V, a=1", "session") == (["V, a=1"], 1)


# --------------------------------------------------------------------------------------
# Quotes, empties, case, candidates, whitespace
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('s="abc"', ["abc"]),
        ('s=""abc""', ['"abc"']),  # one pair only
        ('s="abc', ['"abc']),  # unbalanced: kept
        ('s=abc"', ['abc"']),
        ('s="', ['"']),
        ('s=" x "', [" x "]),  # whitespace inside the quotes is kept
        ('s= "abc" ', ["abc"]),  # trimmed first, then unquoted
        ('s=a"b"c', ['a"b"c']),
    ],
)
def test_quotes(header, expected):
    assert find_cookie(header, "s") == (expected, len(expected))


@pytest.mark.parametrize(
    "header",
    ["s=", "s=  ", 's=""', 's= "" ', "s=\t", "s", "s ; t=1", "; ;", ""],
)
def test_empty_or_valueless_is_absent(header):
    assert find_cookie(header, "s") == ([], 0)


def test_empty_copies_do_not_count():
    assert find_cookie('s=; s=""; s=1; s=', "s") == (["1"], 1)


@pytest.mark.parametrize(
    "header", ["Session=V", "SESSION=V", "sessioN=V", "session2=V", "xsession=V"]
)
def test_names_are_case_sensitive_and_exact(header):
    assert find_cookie(header, "session") == ([], 0)
    assert find_cookie("__host-session=V", "__Host-session") == ([], 0)
    assert find_cookie("__Host-session=V", "__host-session") == ([], 0)


def test_at_most_four_candidates_but_the_true_count():
    header = "; ".join(f"s=v{i}" for i in range(10))
    values, count = find_cookie(header, "s")
    assert values == ["v0", "v1", "v2", "v3"]
    assert count == 10
    assert MAX_CANDIDATES == 4


def test_exactly_four_and_five():
    assert find_cookie("s=1; s=2; s=3; s=4", "s") == (["1", "2", "3", "4"], 4)
    assert find_cookie("s=1; s=2; s=3; s=4; s=5", "s") == (["1", "2", "3", "4"], 5)


@pytest.mark.parametrize(
    "header",
    [
        "  s =\tV  ",
        "\ts\t=\tV\t",
        "a=1 ;\t s = V \t; b=2",
        "a=1;s=V;b=2",
        "s\t \t=\t \tV",
    ],
)
def test_whitespace_and_tabs_trimmed(header):
    assert find_cookie(header, "s") == (["V"], 1)


# --------------------------------------------------------------------------------------
# D40-D42, D45: position, malformed neighbours, latin-1, big headers
# --------------------------------------------------------------------------------------

OTHERS = [f"c{i}=value{i}" for i in range(50)]


@pytest.mark.parametrize("position", [0, 25, 50])
def test_our_cookie_among_fifty_others(position):
    parts = list(OTHERS)
    parts.insert(position, "session=TOKEN")
    assert find_cookie("; ".join(parts), "session") == (["TOKEN"], 1)


MALFORMED = [
    'a="unterminated',
    "=nameless",
    "bad cookie",
    "x=[1]",
    "\x01",
    "c=\x01",
    "==",
    '"',
    "=",
    ",,,",
]


@pytest.mark.parametrize("junk", MALFORMED)
@pytest.mark.parametrize("where", ["before", "after", "both"])
def test_malformed_neighbours(junk, where):
    parts = ["session=TOKEN"]
    if where in ("before", "both"):
        parts.insert(0, junk)
    if where in ("after", "both"):
        parts.append(junk)
    assert find_cookie("; ".join(parts), "session") == (["TOKEN"], 1)


def test_all_malformed_together():
    header = "; ".join([*MALFORMED, "session=TOKEN", *MALFORMED])
    assert find_cookie(header, "session") == (["TOKEN"], 1)


@pytest.mark.parametrize(
    "other", ["n=\xe9\xff", "\xe9=\xff", "n=" + "".join(map(chr, range(0x80, 0x100))), "n=\u2603"]
)
def test_latin1_bytes_in_another_cookie(other):
    assert find_cookie(f"{other}; session=TOKEN", "session") == (["TOKEN"], 1)
    assert find_cookie(f"session=TOKEN; {other}", "session") == (["TOKEN"], 1)


def test_non_ascii_in_our_value_is_returned_verbatim():
    # The reader does not judge the value; the codec rejects it (tested end to end).
    assert find_cookie("session=ab\xe9c", "session") == (["ab\xe9c"], 1)


def _big_header(n: int) -> str:
    # 13 bytes a pair: "k0000=v0000; " -> 5000 pairs ≈ 64 KB; ours is last, so the
    # whole header is scanned (the ``name not in header`` shortcut cannot apply).
    return "; ".join(f"k{i:04d}=v{i:04d}" for i in range(n)) + "; session=TOKEN"


def _timed(header: str) -> float:
    start = time.perf_counter()
    result = find_cookie(header, "session")
    elapsed = time.perf_counter() - start
    assert result == (["TOKEN"], 1)
    return elapsed


def test_64kb_header_with_5000_cookies_is_linear():
    small = _big_header(5000)
    assert 60_000 <= len(small) <= 70_000
    big = _big_header(50_000)
    # Interleaved rounds, best of each: noise on a busy 2-core machine only ever adds
    # time, and interleaving exposes both sizes to the same CPU conditions.
    t_small = t_big = float("inf")
    for _ in range(7):
        t_small = min(t_small, _timed(small))
        t_big = min(t_big, _timed(big))
    assert t_small < 0.050, f"5000 cookies took {t_small * 1000:.1f} ms"
    # 10x the input may take at most 20x the time (linear, with slack for noise);
    # a floor on t_small keeps a timer-resolution fluke from making the ratio huge.
    assert t_big < 20 * max(t_small, 0.0005), (t_small, t_big)


def test_many_copies_of_our_cookie_are_counted_not_kept():
    header = "; ".join(["session=G"] * 5000)
    values, count = find_cookie(header, "session")
    assert values == ["G"] * MAX_CANDIDATES
    assert count == 5000


# --------------------------------------------------------------------------------------
# Validators used by the middleware
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["session", "__Host-session", "a", "x!#$%&'*+-.^_`|~9"])
def test_valid_cookie_names(name):
    assert valid_cookie_name(name)


@pytest.mark.parametrize(
    "name", ["", "a b", "a;b", "a,b", "a=b", 'a"b', "a\x01", "sessi\xf6n", "a\tb", "a\r\nb"]
)
def test_invalid_cookie_names(name):
    assert not valid_cookie_name(name)


@pytest.mark.parametrize("domain", ["example.com", ".example.com", "a-b.c", "localhost", "x" * 63])
def test_valid_domains(domain):
    assert valid_domain(domain)


@pytest.mark.parametrize(
    "domain",
    ["", "-a.com", "a-.com", "a..b", "a.com;x", "a.com\r\nX: 1", "a b", "x" * 64, "a.com."],
)
def test_invalid_domains(domain):
    assert not valid_domain(domain)


@pytest.mark.parametrize("path", ["/", "/a/b", "/a%20b", "/~x"])
def test_valid_paths(path):
    assert valid_path(path)


@pytest.mark.parametrize("path", ["", "a", "/a;b", "/a b", "/a\r\nX: 1", "/\x7f", "/\xe9"])
def test_invalid_paths(path):
    assert not valid_path(path)


# --------------------------------------------------------------------------------------
# CookieWriter == WebOb Morsel
# --------------------------------------------------------------------------------------

PATH_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != ";")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,10}[A-Za-z0-9])?"
domains = st.from_regex(re.compile(rf"\.?{_LABEL}(?:\.{_LABEL}){{0,3}}"), fullmatch=True).filter(
    valid_domain
)


@st.composite
def writer_options(draw):
    name = draw(token_names.filter(webob_ok_name))
    samesite = draw(st.sampled_from([None, "Lax", "Strict", "None"]))
    partitioned = draw(st.booleans())
    # WebOb refuses SameSite=None without Secure; the middleware enforces Secure for it
    # and for Partitioned (ConfigurationError), so only valid combinations are drawn.
    secure = True if samesite == "None" or partitioned else draw(st.booleans())
    return {
        "name": name,
        "path": "/" + draw(st.text(PATH_CHARS, max_size=12)),
        "domain": draw(st.none() | domains),
        "secure": secure,
        "httponly": draw(st.booleans()),
        "samesite": samesite,
        "partitioned": partitioned,
    }


renders = st.tuples(
    st.text(B64URL_CHARS, min_size=1, max_size=40),
    st.none() | st.integers(0, 400 * 24 * 3600),
    st.integers(0, 4_000_000_000),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writer_options(), st.lists(renders, min_size=1, max_size=5))
def test_writer_matches_webob(options, calls):
    name = options.pop("name")
    assert valid_path(options["path"])
    writer = CookieWriter(name, **options)
    # Several renders with one writer exercise its cached Expires date.
    for value, max_age, now in calls:
        expected = webob_set_cookie(
            name,
            value,
            max_age=max_age,
            expires=None if max_age is None else now + max_age,
            **options,
        )
        assert writer.render(value, max_age, now) == expected
    deletion = webob_set_cookie(name, "", max_age=0, expires=0, **options)
    assert writer.render_deletion() == deletion


def test_writer_golden_strings():
    writer = CookieWriter("session")
    assert writer.render("abc", 3600, 0) == (
        "session=abc; Max-Age=3600; Path=/; expires=Thu, 01-Jan-1970 01:00:00 GMT; "
        "HttpOnly; SameSite=Lax"
    )
    assert writer.render("abc", None, 0) == "session=abc; Path=/; HttpOnly; SameSite=Lax"
    assert writer.render_deletion() == (
        "session=; Max-Age=0; Path=/; expires=Thu, 01-Jan-1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
    )
    full = CookieWriter(
        "__Secure-s",
        path="/app",
        domain="example.com",
        secure=True,
        httponly=False,
        samesite="None",
        partitioned=True,
    )
    assert full.render("t", 60, 1_800_000_000) == (
        "__Secure-s=t; Domain=example.com; Max-Age=60; Path=/app; "
        "expires=Fri, 15-Jan-2027 08:01:00 GMT; secure; SameSite=None; Partitioned"
    )
    assert full.render_deletion() == (
        "__Secure-s=; Domain=example.com; Max-Age=0; Path=/app; "
        "expires=Thu, 01-Jan-1970 00:00:00 GMT; secure; SameSite=None; Partitioned"
    )


def test_webob_set_cookie_matches_webob_response():
    """The reference rendering is WebOb's own: compare with ``Response.set_cookie``."""
    from webob import Response

    response = Response()
    response.set_cookie(
        "session",
        "abc",
        path="/p",
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="Strict",
    )
    ours = webob_set_cookie(
        "session",
        "abc",
        max_age=None,
        expires=None,
        path="/p",
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="Strict",
        partitioned=False,
    )
    assert response.headers["Set-Cookie"] == ours
