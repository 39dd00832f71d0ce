"""Observability and hygiene: security.md §3 I 93-95 and DESIGN §9 "Hooks and events".

93: no log record, event, exception message or repr carries a secret, a derived key,
    a cookie value (sent or received), session data or a raw session id — only
    ``session_id_hash``.
94: every rejection emits exactly one event with a snake_case reason; a fuzz run's
    event histogram matches the rejected requests one for one.
95: every exception the library raises is a documented ``WSGISessionError`` subclass
    whose message is free of secrets.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsgisession
from tests.conftest import OLD_SECRET, OTHER_SECRET, SECRET, T0, Clock, call_wsgi
from wsgisession import (
    ConfigurationError,
    SerializationError,
    SessionMiddleware,
    SessionTooLarge,
    StoreError,
    WSGISessionError,
)
from wsgisession.codec import MAX_TOKEN_CHARS, b64decode, b64encode, derive_keys
from wsgisession.events import EVENT_NAMES, SessionEvent, session_id_hash

MARK_USER = "zqxUserMarker4417"
MARK_NESTED = "zqxNestedMarker9120"
MARK_BIG = "zqxBigMarker3301"
MARK_BAD = "zqxUnserializableNeighbour5523"
MARK_LATE = "zqxLateMarker6060"
MARK_PUBLIC = "zqxPublicMarker7171"
DATA_MARKERS = [MARK_USER, MARK_NESTED, MARK_BIG, MARK_BAD, MARK_LATE, MARK_PUBLIC]
SECRETS = [SECRET, OLD_SECRET, OTHER_SECRET]

SNAKE = re.compile(r"[a-z]+(?:_[a-z]+)*")
HASH16 = re.compile(r"[0-9a-f]{16}")
REJECTIONS = {"invalid", "expired", "unknown_key", "duplicate"}


def derived_key_strings() -> list[str]:
    """Every derived AEAD/store key of every test secret, as hex and base64."""
    out = []
    for secret in SECRETS:
        for namespace in ("default", "other"):
            for key in derive_keys(secret.encode(), namespace)[1:]:
                out += [
                    key.hex(),
                    base64.b64encode(key).decode(),
                    base64.urlsafe_b64encode(key).decode().rstrip("="),
                    repr(key),
                ]
    return out


# --------------------------------------------------------------------------------------
# A direct WSGI client
# --------------------------------------------------------------------------------------


class Response:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def cookies(self, name: str = "session") -> list[str]:
        out = []
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                cname, _, rest = value.partition("=")
                if cname == name:
                    out.append(rest.split(";", 1)[0])
        return out

    @property
    def token(self) -> str:
        (value,) = self.cookies()
        assert value
        return value


def call(mw: Any, path: str = "/", cookie: str | None = None, scheme: str = "http") -> Response:
    result = call_wsgi(mw, path, cookie=cookie, scheme=scheme)
    return Response(result.status, result.headers, result.body)


class Ctx:
    """What the battery app saw: raw ids, session reprs, exceptions it caught."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.reprs: list[str] = []
        self.caught: list[BaseException] = []
        self.new: list[bool] = []


def battery_app(ctx: Ctx):
    def app(environ, start_response):
        path = environ["PATH_INFO"]
        session = environ["session"]
        ctx.reprs.append(repr(session))
        headers = [("Content-Type", "text/plain")]
        if path == "/login":
            session["user"] = MARK_USER
            session["note"] = {"deep": [MARK_NESTED]}
            ctx.ids.append(session.id)
        elif path == "/read":
            ctx.new.append(session.is_new)
            ctx.ids.append(session.id)
            dict(session)
        elif path == "/regenerate":
            ctx.ids.append(session.id)
            session.regenerate()
            ctx.ids.append(session.id)
        elif path == "/destroy":
            ctx.ids.append(session.id)
            environ["session"] = None
        elif path == "/invalidate":
            ctx.ids.append(session.id)
            session.invalidate()
            ctx.ids.append(session.id)
        elif path == "/clear":
            ctx.ids.append(session.id)
            session.clear()
        elif path == "/big":
            session["blob"] = MARK_BIG * 400
        elif path == "/unserializable":
            session["bad"] = {"ok": MARK_BAD, "obj": object()}
        elif path == "/public":
            session["public"] = MARK_PUBLIC
            headers.append(("Cache-Control", "public, s-maxage=60"))
        elif path == "/late":
            ctx.ids.append(session.id)
            start_response("200 OK", headers)
            session["late"] = MARK_LATE
            try:
                session.save()
            except WSGISessionError as exc:
                ctx.caught.append(exc)
            ctx.reprs.append(repr(session))
            return [b"late"]
        elif path == "/bad-assign":
            session["x"] = 1
            environ["session"] = MARK_BAD  # not None or a dict -> TypeError at commit
        ctx.reprs.append(repr(session))
        start_response("200 OK", headers)
        return [b"ok"]

    return app


def tamper(token: str) -> str:
    i = 30  # inside the ciphertext
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


# --------------------------------------------------------------------------------------
# 93: the battery
# --------------------------------------------------------------------------------------


class Battery:
    """Runs every path that emits events, logs or raises; collects what must be clean."""

    def __init__(self) -> None:
        self.ctx = Ctx()
        self.events: list[SessionEvent] = []
        self.clock = Clock()
        self.sent: list[str] = []  # cookie values sent
        self.received: list[str] = []  # cookie values received
        self.exceptions: list[BaseException] = []
        self.objects: list[Any] = []  # things whose repr must be clean
        self.records: list[logging.LogRecord] = []
        self.log_text = ""

    def mw(self, **options: Any) -> SessionMiddleware:
        options.setdefault("secret_keys", [SECRET, OLD_SECRET])
        options.setdefault("clock", self.clock)
        options.setdefault("on_event", self.events.append)
        mw = SessionMiddleware(battery_app(self.ctx), **options)
        self.objects += [mw, mw.codec]
        return mw

    def get(self, mw: Any, path: str = "/read", cookie_value: str | None = None, **kw: Any):
        cookie = None
        if cookie_value is not None:
            self.sent.append(cookie_value)
            cookie = cookie_value if "=" in cookie_value else f"session={cookie_value}"
        try:
            response = call(mw, path, cookie, **kw)
        except Exception as exc:
            self.exceptions.append(exc)
            return None
        for key, value in response.headers:
            if key.lower() == "set-cookie":
                self.received.append(value.partition("=")[2].split(";", 1)[0])
        return response

    def run(self) -> None:
        main = self.mw()
        old = self.mw(secret_keys=[OLD_SECRET])
        foreign = self.mw(secret_keys=[OTHER_SECRET])
        other_ns = self.mw(namespace="other")

        login = self.get(main, "/login")
        token = login.token
        assert self.get(main, "/read", token).cookies() == []
        bob = self.get(main, "/login").token
        # rejections
        self.get(main, "/read", tamper(token))
        self.get(main, "/read", token + "\xe9")
        self.get(main, "/read", token + "A" * MAX_TOKEN_CHARS)
        self.get(main, "/read", self.get(foreign, "/login").token)
        self.get(main, "/read", self.get(other_ns, "/login").token)
        self.get(main, "/read", f"session={token}; session={bob}")  # ambiguous
        self.get(main, "/read", f"session={tamper(token)}; session={token}")  # multiple
        self.get(main, "/read", f"session={tamper(token)}; session={tamper(bob)}")  # none_valid
        self.get(main, "/read", f"a=1, session={token}")  # hidden: no event
        # rotation
        self.get(main, "/read", self.get(old, "/login").token)
        # lifecycle
        self.get(main, "/regenerate", token)
        self.get(main, "/destroy", token)
        self.get(main, "/invalidate", token)
        self.get(main, "/clear", token)
        self.get(main, "/public", token)
        self.get(main, "/late", token)
        self.get(main, "/big", token)  # SessionTooLarge
        self.get(main, "/unserializable", token)  # SerializationError
        self.get(main, "/bad-assign", token)  # TypeError (documented)
        # hooks
        self.get(self.mw(valid=lambda environ, session: False), "/read", token)
        self.get(self.mw(valid=raising_hook), "/read", token)

        def boom(event: SessionEvent) -> None:
            self.events.append(event)
            raise RuntimeError("hook failed")

        self.get(self.mw(on_event=boom), "/login")
        # transport
        self.get(self.mw(secure=True), "/login")
        # expiry (idle, then absolute)
        self.clock.advance(86400 + 1)
        self.get(main, "/read", token)
        short = self.mw(absolute_max_age=100)
        abs_token = self.get(short, "/login").token
        self.clock.advance(101)
        self.get(short, "/read", abs_token)


def raising_hook(*args: Any) -> bool:
    raise RuntimeError("hook failed")


@pytest.fixture
def battery(caplog) -> Battery:
    caplog.set_level(logging.DEBUG, logger="wsgisession")
    b = Battery()
    b.run()
    # Keep the records: the fixture runs in the setup phase, whose records the test
    # phase's ``caplog.records`` does not show.
    b.records = list(caplog.records)
    b.log_text = caplog.text
    return b


def forbidden_strings(b: Battery) -> list[str]:
    values = [*b.sent, *b.received, *b.ctx.ids]
    # Whole values and long prefixes (a truncated echo, e.g. ``{value!r:.40}``, is a
    # leak too). Very short values (``AQ``) could match by accident; every real token
    # and id is far longer than 16 characters.
    out = []
    for value in values:
        if len(value) >= 16:
            out += [value, value[:16]]
    return out + SECRETS + DATA_MARKERS + derived_key_strings()


def assert_clean(label: str, text: str, forbidden: list[str]) -> None:
    leaked = [f for f in forbidden if f in text]
    assert not leaked, f"{label} leaks {leaked[:3]!r}: {text[:300]!r}"


def test_battery_exercised_every_event_and_exception(battery):
    names = {e.name for e in battery.events}
    expected = {
        "invalid",
        "expired",
        "unknown_key",
        "rotated",
        "duplicate",
        "too_large",
        "late_write",
        "insecure_transport",
        "cache_control_overridden",
        "created",
        "regenerated",
        "destroyed",
    }
    assert expected <= names
    assert names <= EVENT_NAMES
    raised = [*battery.exceptions, *battery.ctx.caught]
    kinds = {kind for e in raised for kind in type(e).__mro__}
    assert all(isinstance(e, WSGISessionError) for e in raised)  # DESIGN §9
    assert {SessionTooLarge, SerializationError, TypeError, WSGISessionError} <= kinds
    assert len(battery.ctx.ids) >= 8


def test_logs_carry_no_secret_value_data_or_id(battery):
    forbidden = forbidden_strings(battery)
    records = [r for r in battery.records if r.name.startswith("wsgisession")]
    assert records
    for record in records:
        assert_clean("log message", record.getMessage(), forbidden)
        assert_clean("log args", repr(record.args), forbidden)
        assert_clean("log msg", str(record.msg), forbidden)
    # The whole captured text, tracebacks of logged exceptions included.
    assert_clean("log text", battery.log_text, forbidden)


def test_every_event_is_logged_once_at_its_level(battery):
    emitted = [
        r
        for r in battery.records
        if r.name == "wsgisession" and r.msg == "session %s: %s (session %s)"
    ]
    assert [r.args[0] for r in emitted] == [e.name for e in battery.events]
    warn = {"invalid", "unknown_key", "duplicate", "too_large", "late_write", "insecure_transport"}
    debug = {"created", "regenerated", "destroyed"}
    for record in emitted:
        name = record.args[0]
        if name in warn:
            assert record.levelno == logging.WARNING, name
        elif name in debug:
            assert record.levelno == logging.DEBUG, name
        else:
            assert record.levelno == logging.INFO, name


def test_events_carry_no_secret_value_data_or_id(battery):
    forbidden = forbidden_strings(battery)
    for event in battery.events:
        assert event.name in EVENT_NAMES
        assert SNAKE.fullmatch(event.reason), event
        assert event.session_id_hash is None or HASH16.fullmatch(event.session_id_hash), event
        text = repr(event)
        assert_clean("repr(event)", text, forbidden)
        assert_clean(
            "event fields", f"{event.name} {event.reason} {event.session_id_hash}", forbidden
        )
        assert "environ" not in text


def test_event_hashes_match_the_ids_seen_by_the_app(battery):
    known = {session_id_hash(i): i for i in battery.ctx.ids}
    by_name: dict[str, list[str | None]] = {}
    for event in battery.events:
        by_name.setdefault(event.name, []).append(event.session_id_hash)
    for name in ("created", "regenerated", "destroyed", "expired", "late_write"):
        hashes = by_name[name]
        assert hashes
        for h in hashes:
            assert h in known, (name, h)
    # The login's id: created, then expired with the same hash.
    login_hash = session_id_hash(battery.ctx.ids[0])
    assert login_hash == by_name["created"][0]
    assert login_hash in by_name["expired"]
    # regenerate(): the event names the *new* id
    assert any(h in known and known[h] != battery.ctx.ids[0] for h in by_name["regenerated"])
    # a hash is never a slice of the raw id
    for raw in battery.ctx.ids:
        assert session_id_hash(raw) not in raw


def test_exceptions_and_reprs_are_clean(battery):
    forbidden = forbidden_strings(battery)
    for exc in [*battery.exceptions, *battery.ctx.caught]:
        for text in (str(exc), repr(exc), repr(exc.args)):
            assert_clean(f"{type(exc).__name__}", text, forbidden)
        context = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if context is not None:
            assert_clean("exception cause", str(context), forbidden)
    for text in battery.ctx.reprs:
        assert_clean("repr(session)", text, forbidden)
        assert text == "<Session (not loaded)>" or re.fullmatch(
            r"<Session id_hash=[0-9a-f]{16} new=(True|False) keys=\d+ changed=(True|False)>", text
        ), text
    for obj in battery.objects:
        assert_clean("repr(middleware)", repr(obj), forbidden)


def test_session_repr_shows_the_hash_of_its_id():
    ctx = Ctx()
    mw = SessionMiddleware(battery_app(ctx), [SECRET], clock=Clock())
    call(mw, "/login")
    assert ctx.reprs[0] == "<Session (not loaded)>"
    assert ctx.reprs[-1] == (
        f"<Session id_hash={session_id_hash(ctx.ids[0])} new=True keys=2 changed=True>"
    )


def test_session_id_hash_definition():
    import hashlib

    raw = "some-session-id"
    expected = hashlib.sha256(b"wsgisession-log:" + raw.encode()).hexdigest()[:16]
    assert session_id_hash(raw) == expected
    assert HASH16.fullmatch(session_id_hash("\udc80"))  # lone surrogates don't crash


# --------------------------------------------------------------------------------------
# 94: one event per rejection, snake_case reasons, histogram
# --------------------------------------------------------------------------------------


def seal(mw: SessionMiddleware, meta: Any) -> str:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return mw.codec.seal(raw, "data", mw.cookie_name)


class Lab:
    """One middleware plus pre-minted cookies of every kind."""

    def __init__(self, **options: Any) -> None:
        self.ctx = Ctx()
        self.events: list[SessionEvent] = []
        self.clock = Clock(T0 - 100_000)
        self.mw = SessionMiddleware(
            battery_app(self.ctx),
            [SECRET],
            clock=self.clock,
            on_event=self.events.append,
            valid=lambda environ, session: session.get("user") != "evil",
            **options,
        )
        self.expired = call(self.mw, "/login").token  # minted long ago: expired at T0
        self.clock.now = T0
        self.token = call(self.mw, "/login").token
        self.bob = call(self.mw, "/login").token
        sid = "x" * 43
        version2 = b64encode(b"\x02" + b64decode(self.token)[1:])
        self.evil = seal(self.mw, {"c": T0, "e": T0 + 100, "s": sid, "d": {"user": "evil"}})
        self.cookies = {
            # kind: (Cookie header, expected event or None, expected reasons)
            "none": (None, None, ()),
            "valid": (f"session={self.token}", None, ()),
            "empty": ("session=", None, ()),
            "comma_hidden": (f"a=1, session={self.token}", None, ()),
            "case_variant": (f"Session={self.token}", None, ()),
            "tampered": (f"session={tamper(self.token)}", "invalid", ("tampered",)),
            "malformed": ("session=not*base64", "invalid", ("malformed",)),
            "non_ascii": (f"session={self.token}\xe9", "invalid", ("malformed",)),
            "short": ("session=AQ", "invalid", ("short",)),
            "version": (f"session={version2}", "invalid", ("version",)),
            "too_long": (f"session={'A' * (MAX_TOKEN_CHARS + 4)}", "invalid", ("too_long",)),
            "unknown_key": (
                f"session={mint(OTHER_SECRET)}",
                "unknown_key",
                ("unknown_kid",),
            ),
            "other_namespace": (
                f"session={mint(SECRET, namespace='other')}",
                "unknown_key",
                ("unknown_kid",),
            ),
            "other_cookie_name": (
                f"session={mint(SECRET, cookie_name='other')}",
                "invalid",
                ("tampered",),
            ),
            "expired": (f"session={self.expired}", "expired", ("idle",)),
            "future": (
                f"session={seal(self.mw, {'c': T0 + 3600, 's': sid, 'd': {}})}",
                "invalid",
                ("future",),
            ),
            "schema": (
                f"session={seal(self.mw, {'c': 'yesterday', 's': sid, 'd': {}})}",
                "invalid",
                ("schema",),
            ),
            "not_a_dict": (f"session={seal(self.mw, [1, 2])}", "invalid", ("schema",)),
            "decode": (f"session={seal(self.mw, b'not json')}", "invalid", ("decode",)),
            "valid_hook": (f"session={self.evil}", "invalid", ("valid",)),
            "ambiguous": (f"session={self.token}; session={self.bob}", "duplicate", ("ambiguous",)),
            "none_valid": (
                f"session={tamper(self.token)}; session=junk",
                "duplicate",
                ("none_valid",),
            ),
            # A loaded session, but a rejected copy came along: one event.
            "multiple": (f"session=junk; session={self.token}", "duplicate", ("multiple",)),
        }
        self.events.clear()


def mint(secret: str, **options: Any) -> str:
    mw = SessionMiddleware(battery_app(Ctx()), [secret], clock=Clock(), **options)
    response = call(mw, "/login")
    (value,) = response.cookies(options.get("cookie_name", "session"))
    return value


LAB = Lab()
KINDS = sorted(LAB.cookies)
REJECTED_KINDS = [k for k in KINDS if LAB.cookies[k][1] is not None]


@pytest.mark.parametrize("kind", REJECTED_KINDS)
def test_every_rejection_emits_exactly_one_event(kind):
    header, name, reasons = LAB.cookies[kind]
    LAB.events.clear()
    LAB.ctx.new.clear()
    response = call(LAB.mw, "/read", header)
    assert response.status == "200 OK"
    assert response.cookies() == []  # a rejected cookie alone never causes a Set-Cookie
    assert len(LAB.events) == 1, LAB.events
    (event,) = LAB.events
    assert event.name == name
    assert event.reason in reasons
    assert SNAKE.fullmatch(event.reason)
    assert LAB.ctx.new == [kind != "multiple"]


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in REJECTED_KINDS])
def test_non_rejections_emit_nothing(kind):
    header, _, _ = LAB.cookies[kind]
    LAB.events.clear()
    LAB.ctx.new.clear()
    call(LAB.mw, "/read", header)
    assert LAB.events == []
    assert LAB.ctx.new == [kind != "valid"]


def test_valid_hook_that_raises_fails_closed_and_is_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="wsgisession")
    ctx = Ctx()
    events: list[SessionEvent] = []
    mw = SessionMiddleware(
        battery_app(ctx), [SECRET], clock=Clock(), on_event=events.append, valid=raising_hook
    )
    events_before = len(events)
    token = mint(SECRET)
    call(mw, "/read", f"session={token}")
    assert ctx.new == [True]
    assert [(e.name, e.reason) for e in events[events_before:]] == [("invalid", "valid")]
    failures = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert len(failures) == 1
    assert "valid() hook" in failures[0].getMessage()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(KINDS), min_size=1, max_size=25))
def test_fuzz_event_histogram_matches_rejections(kinds):
    LAB.events.clear()
    for kind in kinds:
        before = len(LAB.events)
        call(LAB.mw, "/read", LAB.cookies[kind][0])
        assert len(LAB.events) - before <= 1
    histogram = Counter(e.name for e in LAB.events)
    assert set(histogram) <= REJECTIONS
    expected = Counter(LAB.cookies[k][1] for k in kinds if LAB.cookies[k][1] is not None)
    assert histogram == expected
    assert sum(histogram.values()) == sum(1 for k in kinds if k in REJECTED_KINDS)


# --------------------------------------------------------------------------------------
# on_event that raises
# --------------------------------------------------------------------------------------


def test_raising_on_event_does_not_break_the_request(caplog):
    caplog.set_level(logging.DEBUG, logger="wsgisession")
    ctx = Ctx()
    mw = SessionMiddleware(battery_app(ctx), [SECRET], clock=Clock(), on_event=raising_hook)
    response = call(mw, "/login")
    assert response.status == "200 OK"
    token = response.token  # the session was still written
    # A rejection with a raising callback: still a fresh session, no exception.
    response = call(mw, "/read", f"session={tamper(token)}")
    assert response.status == "200 OK"
    assert ctx.new == [True]
    failures = [r for r in caplog.records if r.name == "wsgisession" and r.exc_info]
    assert [r.getMessage() for r in failures] == [
        "on_event callback failed for a created event",
        "on_event callback failed for a invalid event",
    ]
    assert all(r.levelno == logging.ERROR for r in failures)
    for record in failures:
        assert_clean(
            "on_event failure log", record.getMessage(), [token, SECRET, MARK_USER, ctx.ids[0]]
        )


# --------------------------------------------------------------------------------------
# 95: exception types and messages
# --------------------------------------------------------------------------------------


def test_exception_hierarchy_is_documented():
    assert issubclass(ConfigurationError, WSGISessionError) and issubclass(
        ConfigurationError, ValueError
    )
    assert issubclass(SessionTooLarge, WSGISessionError) and issubclass(SessionTooLarge, ValueError)
    assert issubclass(SerializationError, WSGISessionError) and issubclass(
        SerializationError, TypeError
    )
    assert issubclass(StoreError, WSGISessionError)
    for exc in (
        WSGISessionError,
        ConfigurationError,
        SessionTooLarge,
        SerializationError,
        StoreError,
    ):
        assert exc.__name__ in wsgisession.__all__
        assert getattr(wsgisession, exc.__name__) is exc
        assert exc.__module__ == "wsgisession.errors"
        assert exc.__doc__ and exc.__doc__.strip()
    assert issubclass(WSGISessionError, Exception)


SHORT_SECRET = "zqxShortSecret99"
CONFIG_CASES = {
    "repeated_secret": {"secret_keys": [SECRET, SECRET]},
    "short_secret": {"secret_keys": [SHORT_SECRET]},
    "short_second_secret": {"secret_keys": [SECRET, SHORT_SECRET]},
    "bare_str_secret": {"secret_keys": SECRET},
    "bare_bytes_secret": {"secret_keys": SECRET.encode()},
    "non_str_secret": {"secret_keys": [SECRET, 12345]},
    "no_secret": {"secret_keys": []},
    "missing_secret": {"secret_keys": None},
    "bad_namespace": {"namespace": "a b"},
    "bad_cookie_name": {"cookie_name": "a b"},
    "bad_bool": {"httponly": "yes"},
    "bad_samesite": {"samesite": "sometimes"},
    "bad_max_age": {"max_age": -1},
    "bad_path": {"path": "nope"},
    "bad_domain": {"domain": "a;b"},
    "host_with_domain": {"cookie_name": "__Host-s", "domain": "example.com"},
    "host_insecure": {"cookie_name": "__Host-s", "secure": False},
    "unknown_option": {"colour": "blue"},
    "bad_size": {"max_cookie_size": 100},
    "store": {"store": object()},
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_configuration_errors_are_documented_and_clean(case):
    options = {"secret_keys": [SECRET], **CONFIG_CASES[case]}
    secret_keys = options.pop("secret_keys")
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(battery_app(Ctx()), secret_keys, **options)
    exc = info.value
    assert isinstance(exc, WSGISessionError)
    assert exc.option
    for text in (str(exc), repr(exc)):
        for secret in [*SECRETS, SHORT_SECRET, SECRET.encode().hex()]:
            assert secret not in text
            assert secret[:12] not in text
    assert exc.__cause__ is None or not any(s in str(exc.__cause__) for s in SECRETS)


@pytest.mark.parametrize("cookie_name", ["path", "Expires", "$session"])
def test_constructor_raises_only_configuration_error_for_any_token_name(cookie_name):
    """DESIGN §2: options are validated at construction and a bad one is a
    ConfigurationError naming the option; errors.py: every exception the library
    raises derives from WSGISessionError. These names are RFC 6265 tokens (accepted by
    ``valid_cookie_name``) that WebOb's Morsel refuses. Either the middleware works
    with them, or it refuses them with a ConfigurationError — never an AssertionError."""
    try:
        mw = SessionMiddleware(battery_app(Ctx()), [SECRET], cookie_name=cookie_name)
    except ConfigurationError as exc:
        assert exc.option == "cookie_name"
        return
    response = call(mw, "/login")
    (value,) = response.cookies(cookie_name)
    assert call(mw, "/read", f"{cookie_name}={value}").status == "200 OK"


def test_session_too_large_is_documented_and_clean():
    ctx = Ctx()
    events: list[SessionEvent] = []
    mw = SessionMiddleware(battery_app(ctx), [SECRET], clock=Clock(), on_event=events.append)
    with pytest.raises(SessionTooLarge) as info:
        call(mw, "/big")
    exc = info.value
    assert isinstance(exc, WSGISessionError) and isinstance(exc, ValueError)
    assert exc.size > exc.limit == 4096
    assert str(exc.size) in str(exc)
    for text in (str(exc), repr(exc)):
        assert MARK_BIG not in text and SECRET not in text
    assert [(e.name, e.reason) for e in events] == [("too_large", "cookie_size")]


def test_serialization_error_is_documented_and_clean():
    ctx = Ctx()
    mw = SessionMiddleware(battery_app(ctx), [SECRET], clock=Clock())
    with pytest.raises(SerializationError) as info:
        call(mw, "/unserializable")
    exc = info.value
    assert isinstance(exc, WSGISessionError) and isinstance(exc, TypeError)
    assert "['bad']['obj']" in str(exc)  # names where the value sits
    for text in (str(exc), repr(exc), exc.path):
        assert MARK_BAD not in text and SECRET not in text


def test_serialization_error_from_a_custom_serializer_is_clean():
    class Leaky:
        def dumps(self, obj):
            raise ValueError(f"cannot encode {obj!r}")

        def loads(self, data):
            return json.loads(data)

    ctx = Ctx()
    mw = SessionMiddleware(battery_app(ctx), [SECRET], clock=Clock(), serializer=Leaky())
    with pytest.raises(SerializationError) as info:
        call(mw, "/login")
    assert MARK_USER not in str(info.value) and MARK_USER not in repr(info.value)
