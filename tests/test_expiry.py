"""Expiry, replay, logout, fixation and payload checks (security.md §3 C 29-38, F 65-71)."""

from __future__ import annotations

import decimal
import email.utils
import json
import math
import os
import pickle
import re
import sys

import pytest

from tests.conftest import T0, TOKEN_RE, Harness, call_wsgi, cookie_value, set_cookies
from wsgisession import SerializationError, WSGISessionError, codec

DAY = 86400
ID_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


# -- helpers --------------------------------------------------------------------------


class Probe(Harness):
    """A harness whose handler records what the session looked like, then runs ``act``."""

    def __init__(self, act=None, **options):
        self.seen: list[dict] = []
        self.act = act

        def handler(environ, session):
            self.seen.append({"data": dict(session), "new": session.is_new, "id": session.id})
            if self.act is not None:
                self.act(environ, session)

        super().__init__(handler, **options)

    def send(self, token: str | None, **kw):
        return self.get("/", cookie=f"session={token}" if token else "", **kw)

    def craft(self, plaintext: bytes | dict) -> str:
        """Seal an arbitrary plaintext under the middleware's own primary key."""
        if isinstance(plaintext, dict):
            plaintext = json.dumps(plaintext, separators=(",", ":")).encode()
        return self.mw.codec.seal(plaintext, "data", self.mw.cookie_name)

    def open(self, token: str) -> dict:
        plaintext, _ = self.mw.codec.open(token, "data", self.mw.cookie_name)
        return json.loads(plaintext)

    @property
    def last(self) -> dict:
        return self.seen[-1]


def attributes(header: str) -> tuple[str, str, dict[str, str]]:
    """Split a Set-Cookie value into (name, value, {lower-cased attribute: value})."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attrs = {}
    for part in rest:
        key, _, val = part.partition("=")
        attrs[key.lower()] = val
    return name, value, attrs


def our_header(response) -> str:
    (header,) = [h for h in set_cookies(response) if h.startswith("session=")]
    return header


def max_age_of(response) -> int | None:
    value = attributes(our_header(response))[2].get("max-age")
    return None if value is None else int(value)


def expires_of(response) -> int | None:
    value = attributes(our_header(response))[2].get("expires")
    return None if value is None else int(email.utils.parsedate_to_datetime(value).timestamp())


def meta(**fields) -> dict:
    base = {"c": T0 - 100, "e": T0 + 1000, "s": "sid-" + "x" * 39, "d": {"k": 1}}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


# -- C29: idle expiry boundaries ----------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-1000, False), (-1, False), (0, False), (1, True), (1000, True)]
)
def test_idle_expiry_boundary(offset, accepted):
    probe = Probe()
    token = probe.craft(meta(e=T0 + offset))
    response = probe.send(token)
    if accepted:
        assert probe.last["data"] == {"k": 1}
        assert probe.last["new"] is False
        assert probe.events.names() == []
    else:
        assert probe.last["data"] == {}
        assert probe.last["new"] is True
        assert probe.events.names() == ["expired"]
        assert probe.events.reasons() == ["idle"]
        assert probe.events[0].session_id_hash is not None
    assert set_cookies(response) == []  # an expired cookie alone never causes a Set-Cookie


@pytest.mark.parametrize(("offset", "accepted"), [(-1, False), (0, False), (1, True)])
def test_absolute_expiry_boundary(offset, accepted):
    probe = Probe()
    probe.send(probe.craft(meta(a=T0 + offset, e=T0 + 5000)))
    assert (probe.last["data"] == {"k": 1}) is accepted
    if not accepted:
        assert probe.events.names() == ["expired"]
        assert probe.events.reasons() == ["absolute"]


def test_fractional_clock_boundary():
    probe = Probe()
    token = probe.craft(meta(e=T0))
    probe.clock.now = T0 - 0.001
    probe.send(token)
    assert probe.last["data"] == {"k": 1}
    probe.clock.now = T0
    probe.send(token)
    assert probe.last["data"] == {}


def test_real_cookie_expires_after_max_age():
    probe = Probe(lambda e, s: s.setdefault("n", 1), max_age=600)
    token = cookie_value(probe.send(None))
    assert probe.open(token)["e"] == T0 + 600
    probe.act = None
    probe.events.clear()
    probe.clock.now = T0 + 599
    probe.send(token)
    assert probe.last["data"] == {"n": 1}
    probe.clock.now = T0 + 600
    probe.send(token)
    assert probe.last["data"] == {}
    assert probe.events.names() == ["expired"]


def test_browser_session_cookie_without_e_never_idles_out():
    probe = Probe()
    probe.clock.now = T0 + 10 * 365 * DAY
    probe.send(probe.craft(meta(e=..., m=None)))
    assert probe.last["data"] == {"k": 1}


# -- C30: absolute vs idle ----------------------------------------------------------


def test_absolute_reached_while_idle_not():
    probe = Probe()
    probe.send(probe.craft(meta(c=T0 - 2000, a=T0, e=T0 + 500)))
    assert probe.last["data"] == {}
    assert probe.events.names() == ["expired"]
    assert probe.events.reasons() == ["absolute"]


def test_idle_passed_while_absolute_not():
    probe = Probe()
    probe.send(probe.craft(meta(c=T0 - 2000, a=T0 + 5000, e=T0 - 1)))
    assert probe.events.reasons("expired") == ["idle"]


def test_absolute_max_age_option_applies_to_tokens_without_a():
    # A token written before absolute_max_age was configured still gets the cap from c.
    probe = Probe(absolute_max_age=1000)
    token = probe.craft(meta(c=T0 - 1000, e=T0 + 5000))
    probe.send(token)
    assert probe.events.reasons("expired") == ["absolute"]
    probe.clock.now = T0 - 1
    probe.send(token)
    assert probe.last["data"] == {"k": 1}


def test_absolute_lifetime_is_never_extended_by_saves():
    probe = Probe(
        lambda e, s: s.__setitem__("n", s.get("n", 0) + 1), max_age=600, absolute_max_age=1000
    )
    token = cookie_value(probe.send(None))
    assert probe.open(token)["a"] == T0 + 1000
    probe.clock.now = T0 + 500
    response = probe.send(token)
    token = cookie_value(response)
    fields = probe.open(token)
    assert fields["a"] == T0 + 1000
    assert fields["e"] == T0 + 1000  # e never exceeds a
    assert max_age_of(response) == 500
    assert expires_of(response) == T0 + 1000
    probe.clock.now = T0 + 999
    token = cookie_value(probe.send(token))
    assert probe.last["data"] == {"n": 2}
    assert probe.open(token)["a"] == T0 + 1000
    probe.clock.now = T0 + 1000
    probe.send(token)
    assert probe.last["data"] == {}
    assert probe.events.reasons("expired") == ["absolute"]


# -- C31: twenty refreshes ------------------------------------------------------------


def test_twenty_rolling_refreshes_keep_c_and_a():
    probe = Probe(rolling=True, max_age=3600, absolute_max_age=20000)
    probe.act = lambda e, s: s.setdefault("user", "alice")
    token = cookie_value(probe.send(None))
    probe.act = None
    first = probe.open(token)
    assert first["c"] == T0 and first["a"] == T0 + 20000
    expiries = []
    for _ in range(20):
        probe.clock.advance(900)
        now = int(probe.clock.now)
        response = probe.send(token)
        assert probe.last["data"] == {"user": "alice"}
        token = cookie_value(response)
        assert token and TOKEN_RE.match(token)
        fields = probe.open(token)
        assert fields["c"] == T0
        assert fields["a"] == T0 + 20000
        assert fields["s"] == first["s"]
        assert fields["e"] == min(now + 3600, T0 + 20000)
        assert fields["e"] <= fields["a"]
        age = max_age_of(response)
        assert age == fields["e"] - now
        assert age <= fields["a"] - now
        assert age <= 400 * DAY
        assert expires_of(response) == now + age
        expiries.append(fields["e"])
    assert expiries == sorted(expiries) and len(set(expiries)) > 10  # e moves
    assert expiries[-1] == T0 + 20000  # and stops at a
    assert probe.events.names() == ["created"]


def test_twenty_rolling_refreshes_cap_max_age_at_400_days():
    probe = Probe(lambda e, s: s.setdefault("user", "bob"), rolling=True, max_age=500 * DAY)
    token = cookie_value(probe.send(None))
    created = probe.open(token)
    for _ in range(20):
        probe.clock.advance(10 * DAY)
        now = int(probe.clock.now)
        response = probe.send(token)
        token = cookie_value(response)
        fields = probe.open(token)
        assert fields["c"] == T0 and "a" not in fields
        assert fields["s"] == created["s"]
        assert fields["e"] == now + 500 * DAY  # enforced in the token
        assert max_age_of(response) == 400 * DAY  # the browser hint is capped
        assert expires_of(response) == now + 400 * DAY


def test_max_age_is_capped_by_remaining_absolute_and_400_days():
    probe = Probe(lambda e, s: s.update(n=1), max_age=500 * DAY, absolute_max_age=450 * DAY)
    response = probe.send(None)
    assert max_age_of(response) == 400 * DAY
    token = cookie_value(response)
    probe.clock.advance(100 * DAY)
    response = probe.send(token)
    assert max_age_of(response) == 350 * DAY
    assert probe.open(cookie_value(response))["e"] == T0 + 450 * DAY


# -- C32: clock skew ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ahead", "accepted"), [(600, False), (61, False), (60, True), (30, True), (0, True)]
)
def test_created_in_the_future(ahead, accepted):
    probe = Probe()
    probe.send(probe.craft(meta(c=T0 + ahead, e=T0 + ahead + 1000)))
    if accepted:
        assert probe.last["data"] == {"k": 1}
        assert probe.events.names() == []
    else:
        assert probe.last["data"] == {}
        assert probe.events.names() == ["invalid"]
        assert probe.events.reasons() == ["future"]


# -- C33 / C35: replay and revocation ---------------------------------------------------


def test_replay_of_a_pre_modification_cookie_is_accepted_in_cookie_mode():
    # Documented limitation: without a revocation hook an old cookie stays valid until e.
    probe = Probe(lambda e, s: s.__setitem__("balance", s.get("balance", 100) - 10))
    old = cookie_value(probe.send(None))
    assert probe.open(old)["d"] == {"balance": 90}
    probe.clock.advance(60)
    new = cookie_value(probe.send(old))
    assert probe.open(new)["d"] == {"balance": 80}
    probe.act = None
    probe.clock.advance(60)
    probe.send(old)
    assert probe.last["data"] == {"balance": 90}
    assert probe.events.names() == ["created"]


def test_generation_counter_hook_rejects_older_cookies():
    generations = {"alice": 1}

    def valid(environ, session):
        return session.get("gen") == generations.get(session.get("user"))

    def login(environ, session):
        session["user"] = "alice"
        session["gen"] = generations["alice"]

    probe = Probe(login, valid=valid)
    device1 = cookie_value(probe.send(None))
    device2 = cookie_value(probe.send(None))
    probe.act = None
    probe.send(device1)
    assert probe.last["data"] == {"user": "alice", "gen": 1}
    # Password change: bump the generation and re-issue this device's cookie.
    generations["alice"] = 2
    probe.act = login
    fresh = cookie_value(probe.send(None))
    probe.act = None
    probe.events.clear()
    for old in (device1, device2):
        probe.send(old)
        assert probe.last["data"] == {}
        assert probe.last["new"] is True
    assert probe.events.names() == ["invalid", "invalid"]
    assert probe.events.reasons() == ["valid", "valid"]
    probe.send(fresh)
    assert probe.last["data"] == {"user": "alice", "gen": 2}


def test_replay_of_a_pre_modification_cookie_rejected_by_revocation_hook():
    revoked: set[str] = set()

    def valid(environ, session):
        return session.id not in revoked

    def bump(environ, session):
        session["n"] = session.get("n", 0) + 1
        if not session.is_new:
            revoked.add(session.id)  # a revocation list keyed by id
            session.regenerate()

    probe = Probe(bump, valid=valid)
    old = cookie_value(probe.send(None))
    new = cookie_value(probe.send(old))
    probe.act = None
    probe.events.clear()
    probe.send(old)
    assert probe.last["data"] == {}
    assert probe.events.reasons("invalid") == ["valid"]
    probe.send(new)
    assert probe.last["data"] == {"n": 2}


# -- C34: logout -----------------------------------------------------------------------


LOGOUTS = {
    "invalidate": lambda e, s: s.invalidate(),
    "clear": lambda e, s: s.clear(),
    "assign_none": lambda e, s: e.__setitem__("session", None),
}


@pytest.mark.parametrize("how", list(LOGOUTS))
@pytest.mark.parametrize(
    "options",
    [
        {"path": "/app", "domain": "example.com", "secure": True, "samesite": "Strict"},
        {"samesite": None, "httponly": False},
        {},
    ],
    ids=["scoped", "loose", "defaults"],
)
def test_logout_deletion_cookie_mirrors_the_session_cookie(how, options):
    probe = Probe(lambda e, s: s.update(user="alice"), **options)
    written = probe.get("/app/x", cookie="", extra_environ={"wsgi.url_scheme": "https"})
    token = cookie_value(written)
    w_name, _, w_attrs = attributes(our_header(written))
    probe.act = LOGOUTS[how]
    probe.events.clear()
    response = probe.get(
        "/app/x", cookie=f"session={token}", extra_environ={"wsgi.url_scheme": "https"}
    )
    name, value, attrs = attributes(our_header(response))
    assert name == w_name == "session"
    assert value == ""
    assert attrs["max-age"] == "0"
    assert email.utils.parsedate_to_datetime(attrs["expires"]).timestamp() == 0
    assert "1970" in attrs["expires"]
    for key in ("path", "domain", "secure", "httponly", "samesite"):
        assert attrs.get(key) == w_attrs.get(key), key
    if options.get("path"):
        assert attrs["path"] == "/app" and attrs["domain"] == "example.com"
        assert "secure" in attrs and attrs["samesite"] == "Strict"
    else:
        assert attrs["path"] == "/"
        assert "secure" in attrs  # https request with secure=None
    assert "destroyed" in probe.events.names()
    assert len(set_cookies(response)) == 1


def test_logout_deletion_cookie_is_sent_even_on_a_5xx():
    probe = Probe(lambda e, s: s.update(user="alice"))
    token = cookie_value(probe.send(None))
    probe.act = None

    def app(environ, start_response):
        environ["session"].invalidate()
        start_response("500 Internal Server Error", [])
        return [b""]

    error = Harness(app=app, clock=probe.clock)
    response = error.get("/", cookie=f"session={token}", status=500)
    assert cookie_value(response) == ""
    assert error.events.names() == ["destroyed"]


def test_replaying_the_pre_logout_cookie():
    revoked: set[str] = set()

    def logout(environ, session):
        revoked.add(session.id)
        session.invalidate()

    probe = Probe(lambda e, s: s.update(user="alice"))
    token = cookie_value(probe.send(None))
    probe.act = logout
    assert cookie_value(probe.send(token)) == ""
    probe.act = None
    # Documented limitation without revocation: the old cookie still opens.
    probe.send(token)
    assert probe.last["data"] == {"user": "alice"}
    # With a revocation hook it does not.
    hooked = Probe(valid=lambda e, s: s.id not in revoked, clock=probe.clock)
    hooked.send(token)
    assert hooked.last["data"] == {}
    assert hooked.events.reasons("invalid") == ["valid"]


# -- C36: fixation ------------------------------------------------------------------------


def test_regenerate_on_login_defeats_fixation():
    probe = Probe(lambda e, s: s.setdefault("csrf", "t0k3n"))
    planted = cookie_value(probe.send(None))  # the attacker's anonymous session
    planted_id = probe.open(planted)["s"]

    def login(environ, session):
        session["user"] = "victim"
        session.regenerate()

    probe.act = login
    victim = cookie_value(probe.send(planted))
    fields = probe.open(victim)
    assert fields["s"] != planted_id
    assert fields["d"] == {"csrf": "t0k3n", "user": "victim"}
    assert "regenerated" in probe.events.names()
    # The attacker's copy still has no authenticated data.
    probe.act = None
    probe.send(planted)
    assert "user" not in probe.last["data"]
    assert probe.last["id"] == planted_id
    assert probe.open(planted)["d"] == {"csrf": "t0k3n"}


# -- C38: ids -------------------------------------------------------------------------------


def test_default_ids_are_unique_fixed_length_urlsafe():
    mw = Probe().mw
    ids = [mw.new_id({}) for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert {len(i) for i in ids} == {43}  # 32 random bytes = 256 bits
    assert all(ID_RE.match(i) for i in ids)


def test_default_ids_are_used_for_sessions():
    probe = Probe(lambda e, s: s.update(a=1))
    token = cookie_value(probe.send(None))
    assert ID_RE.match(probe.last["id"])
    assert probe.open(token)["s"] == probe.last["id"]


# -- F69: crafted plaintexts under a valid key ---------------------------------------------


def _j(**fields) -> bytes:
    return json.dumps(meta(**fields), separators=(",", ":")).encode()


HOSTILE = {
    "not-json": b"hello, world",
    "json-array": b"[1,2,3]",
    "json-string": b'"x"',
    "json-null": b"null",
    "empty-object": b"{}",
    "e-str": _j(e="123"),
    "e-true": _j(e=True),
    "e-float": _j(e=float(T0 + 1000)),
    "e-1e309": _j(e=1).replace(b'"e":1,', b'"e":1e309,'),
    "e-nan": _j(e=1).replace(b'"e":1,', b'"e":NaN,'),
    "e-infinity": _j(e=1).replace(b'"e":1,', b'"e":-Infinity,'),
    "bare-nan": b"NaN",
    "deep-brackets-3000": b"[" * 3000,  # RecursionError inside a cookie-sized token
    "deep-mixed": b'{"":[' * 550,
    "deep-in-d": _j(d=1).replace(b'"d":1', b'"d":{"x":' + b"[" * 2500),
    "invalid-utf8": b'{"c":\xff\xfe}',
    "utf8-non-ascii": '{"c":1,"s":"é","d":{}}'.encode(),
    "d-list": _j(d=[]),
    "d-missing": _j(d=...),
    "d-string": _j(d="x"),
    "d-tuple-tag": _j(d={"$t": [1]}),
    "s-empty": _j(s=""),
    "s-int": _j(s=5),
    "s-missing": _j(s=...),
    "s-too-long": _j(s="x" * 257),
    "c-true": _j(c=True),
    "c-missing": _j(c=...),
    "c-float": _j(c=1.5),
    "c-str": _j(c=str(T0)),
    "a-str": _j(a="x"),
    "a-false": _j(a=False),
    "m-zero": _j(m=0),
    "m-negative": _j(m=-5),
    "m-true": _j(m=True),
    "m-str": _j(m="60"),
    "unknown-tag-in-d": _j(d=1).replace(b'"d":1', b'"d":{"x":{"$evil":1}}'),
    "bad-datetime-tag": _j(d=1).replace(b'"d":1', b'"d":{"x":{"$dt":"never"}}'),
    "bad-decimal-tag": _j(d=1).replace(b'"d":1', b'"d":{"x":{"$n":"abc"}}'),
    "empty-plaintext-ish": b" ",
}


@pytest.mark.parametrize("plaintext", list(HOSTILE.values()), ids=list(HOSTILE))
def test_crafted_plaintexts_are_invalid_without_exception(plaintext):
    probe = Probe()
    token = probe.craft(plaintext)
    assert probe.mw.codec.open(token, "data", "session")[0] == plaintext  # the key is valid
    response = probe.send(token)
    assert response.status_int == 200
    assert probe.last["data"] == {}
    assert probe.last["new"] is True
    assert probe.events.names() == ["invalid"]
    assert probe.events[0].reason in {"decode", "schema"}
    assert set_cookies(response) == []


#: Hostile plaintexts too big for a cookie (> 4096 token characters).
OVERSIZED = {
    "e-5000-digits": _j(e=1).replace(b'"e":1,', b'"e":' + b"9" * 5000 + b","),
    "d-5000-digits": _j(d=1).replace(b'"d":1', b'"d":{"n":' + b"1" * 5000 + b"}"),
    "deep-brackets": b"[" * 200_000,
    "deep-objects": b'{"d":' * 100_000,
}


@pytest.mark.parametrize("plaintext", list(OVERSIZED.values()), ids=list(OVERSIZED))
def test_oversized_crafted_plaintexts_are_rejected_before_decryption(plaintext):
    probe = Probe()
    response = probe.send(probe.craft(plaintext))
    assert probe.last["data"] == {}
    assert probe.events.names() == ["invalid"]
    assert probe.events.reasons() == ["too_long"]
    assert set_cookies(response) == []


@pytest.mark.parametrize("plaintext", list(OVERSIZED.values()), ids=list(OVERSIZED))
def test_oversized_crafted_plaintexts_fail_in_the_decoder_without_exception(monkeypatch, plaintext):
    # Lift the token-length ceiling so the sealed payload reaches the JSON decoder:
    # the 4300-digit int limit (ValueError) and RecursionError must both be contained.
    monkeypatch.setattr(codec, "MAX_TOKEN_CHARS", 10**7)
    probe = Probe()
    token = probe.craft(plaintext)
    assert len(token) > 4096
    response = probe.send(token)
    assert response.status_int == 200
    assert probe.last["data"] == {}
    assert probe.events.names() == ["invalid"]
    assert probe.events.reasons() == ["decode"]
    assert set_cookies(response) == []


def test_the_crafting_hook_itself_produces_valid_sessions():
    # Control for the table above: a well-formed plaintext sealed the same way opens.
    probe = Probe()
    probe.send(probe.craft(_j()))
    assert probe.last["data"] == {"k": 1}
    assert probe.events.names() == []


# -- F71: pickle ---------------------------------------------------------------------------


class Boom:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_payload_is_never_unpickled(tmp_path, protocol):
    # Control: the payload really does act when unpickled.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Boom(control), protocol=protocol))
    assert control.exists()
    sentinel = tmp_path / "pwned"
    probe = Probe()
    response = probe.send(probe.craft(pickle.dumps(Boom(sentinel), protocol=protocol)))
    assert response.status_int == 200
    assert probe.events.names() == ["invalid"]
    assert probe.last["data"] == {}
    assert not sentinel.exists()


# -- F70: lone surrogates through a real cookie -------------------------------------------


def test_lone_surrogates_round_trip_through_a_real_cookie():
    value = {"s": "\ud800", "t": "x\udfffy", "\udbff": ["\udc00"]}
    probe = Probe(lambda e, s: s.update(value))
    response = probe.send(None)
    header = our_header(response)
    assert header.isascii()
    token = cookie_value(response)
    assert TOKEN_RE.match(token)
    probe.act = None
    probe.send(token)
    assert probe.last["data"] == value


# -- F65-68: unserializable values raise from start_response ---------------------------


class Gadget:
    pass


def _call(mw, cookie: str | None = None):
    """Call the middleware directly; return (real start_response calls, body)."""
    result = call_wsgi(mw, cookie=f"session={cookie}" if cookie else None)
    return [(status, headers) for status, headers, _ in result.calls], result.body


UNSERIALIZABLE = {
    "set": (lambda s: s.__setitem__("cart", [1, 2, {3}]), "['cart'][2]"),
    "frozenset": (lambda s: s.__setitem__("tags", frozenset({"a"})), "['tags']"),
    "custom-object": (lambda s: s.__setitem__("user", Gadget()), "['user']"),
    "function": (lambda s: s.__setitem__("cb", print), "['cb']"),
    "nested-non-str-key": (lambda s: s.__setitem__("prefs", {"ok": {2: "x"}}), "['prefs']['ok']"),
    "nan": (lambda s: s.__setitem__("price", float("nan")), "['price']"),
    "inf": (lambda s: s.__setitem__("price", [float("inf")]), "['price'][0]"),
    "decimal-nan": (lambda s: s.__setitem__("d", {"x": decimal.Decimal("NaN")}), "['d']['x']"),
}


@pytest.mark.parametrize(
    ("mutate", "path"), list(UNSERIALIZABLE.values()), ids=list(UNSERIALIZABLE)
)
def test_unserializable_values_raise_from_start_response(mutate, path):
    raised = []

    def app(environ, start_response):
        mutate(environ["session"])
        try:
            start_response("200 OK", [("Content-Type", "text/plain")])
        except SerializationError as exc:
            raised.append(exc)
            raise
        return [b"unreachable"]

    h = Harness(app=app)
    with pytest.raises(SerializationError) as info:
        _call(h.mw)
    assert raised and raised[0] is info.value
    assert isinstance(info.value, TypeError) and isinstance(info.value, WSGISessionError)
    message = str(info.value)
    assert path in message
    assert path.split("]")[0] + "]" in message  # the top-level key, e.g. ['cart']
    assert "created" not in h.events.names()


def test_unserializable_value_never_produces_a_set_cookie():
    def app(environ, start_response):
        environ["session"]["cart"] = {1, 2}
        try:
            start_response("200 OK", [])
        except SerializationError:
            # A framework turns it into a 500 (calling start_response with exc_info).
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"error"]

    h = Harness(app=app)
    started, body = _call(h.mw)
    assert body == b"error"
    assert [status for status, _ in started] == ["500 Internal Server Error"]
    assert all(name.lower() != "set-cookie" for name, _ in started[0][1])


def test_non_str_top_level_key_is_rejected_naming_the_key():
    def app(environ, start_response):
        environ["session"][1] = "x"
        start_response("200 OK", [])
        return [b""]

    h = Harness(app=app)
    with pytest.raises(SerializationError) as info:
        _call(h.mw)
    message = str(info.value)
    assert "key 1 " in message
    assert "str" in message


def test_non_str_top_level_key_message_is_readable():
    def app(environ, start_response):
        environ["session"][None] = "x"
        start_response("200 OK", [])
        return [b""]

    with pytest.raises(SerializationError) as info:
        _call(Harness(app=app).mw)
    message = str(info.value)
    assert "None" in message
    assert "top level" in message
    assert "sessiontop" not in message  # the path rewrite must not garble the message


def test_unserializable_mutation_of_a_loaded_value_raises():
    probe = Probe(lambda e, s: s.update(cart=[1]))
    token = cookie_value(probe.send(None))

    def app(environ, start_response):
        environ["session"]["cart"].append({"x"})
        start_response("200 OK", [])
        return [b""]

    with pytest.raises(SerializationError) as info:
        _call(Harness(app=app).mw, token)
    assert "['cart'][1]" in str(info.value)


def test_huge_int_value_raises_serialization_error():
    def app(environ, start_response):
        environ["session"]["n"] = 10**5000
        start_response("200 OK", [])
        return [b""]

    with pytest.raises(SerializationError):
        _call(Harness(app=app).mw)


def test_clock_is_used_for_expires_attribute():
    probe = Probe(lambda e, s: s.update(a=1), max_age=3600)
    probe.clock.now = T0 + 12345.9
    response = probe.send(None)
    now = math.floor(T0 + 12345.9)
    assert max_age_of(response) == 3600
    assert expires_of(response) == now + 3600
    assert probe.open(cookie_value(response))["e"] == now + 3600
