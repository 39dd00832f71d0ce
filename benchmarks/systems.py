# ruff: noqa: S311
# (a seeded generator makes the same cart in every run)
"""The systems measured by ``benchmarks/run.py``: wsgisession, its peers and their floors.

Every system is one WSGI callable that serves the same paths with the same handler
logic (``OPS``), so the only thing that differs between a system and its floor is
the session machinery:

``/S0``  untouched: the handler never touches the session (no cookie is sent)
``/S1``  read: returns ``session["user_id"]`` (the cookie holds ``SMALL``)
``/S2``  write: ``session["counter"] += 1`` (the cookie holds ``SMALL`` + counter 0)
``/S3``  large: returns ``session["user_id"]`` (the cookie holds ``LARGE``, ~2 KB JSON)
``/S4``  new: ``session["user_id"] = 42`` on a request without a cookie
``/seed/<S>``  stores the data of scenario ``S``; its Set-Cookie seeds the benchmark

Peers are configured as ``shared/research/perf-anchors.md`` describes: Beaker cookie
sessions (encrypted and signed-only), Flask's built-in session, Django
``signed_cookies`` and Pyramid ``SignedCookieSessionFactory`` (defaults, and with
``reissue_time=None``), each against its own framework without a session.

An adapter that cannot import its library is skipped with the reason; nothing else is
caught here.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import sys
import time
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pybase64

SCENARIOS = ("S0", "S1", "S2", "S3", "S4")
SCENARIO_NAMES = {
    "S0": "untouched",
    "S1": "read",
    "S2": "write",
    "S3": "large",
    "S4": "new",
}
#: Store-mode systems are measured on read and write only (as the issue asks).
STORE_SCENARIOS = ("S1", "S2")

SMALL: dict[str, Any] = {"user_id": 42, "name": "Alice", "roles": ["admin", "dev"]}


def _cart() -> list[str]:
    """29 pseudo-random alphanumeric tokens: 2012 B of JSON with SMALL.

    The tokens use 7 symbols so that zlib shrinks the JSON to about 48 %, as the cart of
    perf-anchors.md did (Flask's cookie for it was 1299 B there): the compressing peers
    (Flask, Django, Beaker) get the same advantage they had in the anchors.
    """
    rng = random.Random(20261125)
    alphabet = "abc0123"
    return ["".join(rng.choice(alphabet) for _ in range(65 if i < 7 else 64)) for i in range(29)]


LARGE: dict[str, Any] = {**SMALL, "cart": _cart()}

#: What the seed request stores, per scenario (None: the request has no cookie).
SEED_DATA: dict[str, dict[str, Any] | None] = {
    "S0": None,
    "S1": SMALL,
    "S2": {**SMALL, "counter": 0},
    "S3": LARGE,
    "S4": None,
}

#: The body each scenario must answer (S2 of the floors and of store mode keeps
#: counting: checked apart).
EXPECTED_BODY = {"S0": b"ok", "S1": b"42", "S2": b"1", "S3": b"42", "S4": b"42"}


def _op_untouched(session: Any) -> str:
    return "ok"


def _op_read(session: Any) -> str:
    return str(session["user_id"])


def _op_write(session: Any) -> str:
    session["counter"] += 1
    return str(session["counter"])


def _op_new(session: Any) -> str:
    session["user_id"] = 42
    return "42"


#: The handler logic, identical for every session system.
OPS: dict[str, Callable[[Any], str]] = {
    "S0": _op_untouched,
    "S1": _op_read,
    "S2": _op_write,
    "S3": _op_read,
    "S4": _op_new,
}
#: Floors run the same handler logic (``OPS``) on a plain dict instead of a session, so
#: that an overhead is the session machinery alone, not the handler's own work. (The
#: floors' S2 counter keeps counting: one shared dict per scenario.)
FLOOR_SESSIONS: dict[str, dict[str, Any]] = {
    scn: json.loads(json.dumps(data or {})) for scn, data in SEED_DATA.items()
}


def seed(session: Any, scenario: str) -> None:
    data = SEED_DATA[scenario]
    assert data is not None
    for key, value in data.items():
        session[key] = json.loads(json.dumps(value))  # a private copy


# -- the systems ------------------------------------------------------------------------


@dataclass
class System:
    name: str
    app: Callable[..., Iterable[bytes]]
    #: the system whose time is subtracted (None: a floor, or the codec floor)
    floor: str | None
    #: "ours", "ours-store", "peer" or "floor"
    kind: str
    scenarios: tuple[str, ...] = SCENARIOS
    #: floors borrow a partner's Cookie header so the request bytes are the same
    cookie_from: str | None = None
    label: str = ""
    version: str = ""
    #: per-system notes printed in the report (configuration)
    notes: str = ""
    cookies: dict[str, str | None] = field(default_factory=dict)


SECRET = secrets.token_urlsafe(32)  # 43 characters, 32 random bytes
SECRET2 = secrets.token_urlsafe(32)


def _text_response(start_response: Callable[..., Any], body: bytes) -> list[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The plain WSGI floor: ``session_app`` with a plain dict for the session."""
    path = environ["PATH_INFO"]
    if path.startswith("/seed/"):
        return _text_response(start_response, b"seeded")
    scn = path[1:]
    return _text_response(start_response, OPS[scn](FLOOR_SESSIONS[scn]).encode())


def session_app(environ_key: str, *, explicit_save: bool = False) -> Callable[..., list[bytes]]:
    """A plain WSGI app using the session a middleware puts at ``environ[environ_key]``.

    ``explicit_save``: call ``session.save()`` after a write (Beaker, whose default
    ``auto=False`` otherwise drops the change and re-sends the old data).
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ["PATH_INFO"]
        session = environ[environ_key]
        if path.startswith("/seed/"):
            seed(session, path[6:])
            if explicit_save:
                session.save()
            return _text_response(start_response, b"seeded")
        scn = path[1:]
        body = OPS[scn](session).encode()
        if explicit_save and scn in _WRITES:
            session.save()
        return _text_response(start_response, body)

    return app


_WRITES = frozenset({"S2", "S4"})


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def make_bare() -> list[System]:
    return [
        System(
            "bare",
            bare_app,
            None,
            "floor",
            cookie_from="wsgisession",
            label="plain WSGI callable",
        )
    ]


def make_wsgisession(store_systems: dict[str, Any]) -> list[System]:
    import wsgisession
    from wsgisession import SessionMiddleware

    version = wsgisession.__version__
    out = [
        System(
            "wsgisession",
            SessionMiddleware(session_app("session"), secret_keys=[SECRET]),
            "bare",
            "ours",
            label="SessionMiddleware, cookie mode, defaults",
            version=version,
            notes="SessionMiddleware(app, secret_keys=[<32-byte secret>]), every other "
            "option default (cookie mode, AES-256-GCM-SIV, JSON)",
        )
    ]
    for name, (store, note) in store_systems.items():
        out.append(
            System(
                name,
                SessionMiddleware(session_app("session"), secret_keys=[SECRET], store=store),
                "bare",
                "ours-store",
                scenarios=STORE_SCENARIOS,
                label=note,
                version=version,
                notes=f"SessionMiddleware(app, secret_keys=[...], store={note})",
            )
        )
    return out


def make_beaker() -> list[System]:
    from beaker.middleware import SessionMiddleware as BeakerMiddleware

    version = _version("Beaker")
    enc = BeakerMiddleware(
        session_app("beaker.session", explicit_save=True),
        {
            "session.type": "cookie",
            "session.validate_key": SECRET,
            "session.encrypt_key": SECRET2,
            "session.data_serializer": "json",
        },
    )
    signed = BeakerMiddleware(
        session_app("beaker.session", explicit_save=True),
        {
            "session.type": "cookie",
            "session.validate_key": SECRET,
            "session.data_serializer": "json",
        },
    )
    return [
        System(
            "beaker-enc",
            enc,
            "bare",
            "peer",
            label="Beaker cookie session, encrypted",
            version=version,
            notes="session.type=cookie, validate_key + encrypt_key, data_serializer=json, "
            "other options default (crypto_type=default → cryptography); the handler calls "
            "save() after a write (auto=False)",
        ),
        System(
            "beaker-signed",
            signed,
            "bare",
            "peer",
            label="Beaker cookie session, signed only",
            version=version,
            notes="session.type=cookie, validate_key only, data_serializer=json, other options "
            "default; save() after a write",
        ),
    ]


def flask_app(name: str, setup: Callable[[Any], None] | None) -> Any:
    """A Flask app serving the scenarios; ``setup(app)`` gives it sessions (None: the
    floor, no secret key, a NullSession never touched)."""
    import flask

    app = flask.Flask(name)
    if setup is not None:
        setup(app)

    def view_for(scn: str) -> Callable[[], str]:
        op = OPS[scn]
        if setup is None:
            plain = FLOOR_SESSIONS[scn]

            def floor_view() -> str:
                return op(plain)

            return floor_view

        def view() -> str:
            return op(flask.session)

        return view

    for scn in SCENARIOS:
        app.add_url_rule(f"/{scn}", scn, view_for(scn))

    def seed_view(scn: str) -> str:
        if setup is not None:
            seed(flask.session, scn)
        return "seeded"

    app.add_url_rule("/seed/<scn>", "seed", seed_view)
    return app.wsgi_app


def make_flask() -> list[System]:
    version = _version("Flask")

    def with_secret(app: Any) -> None:
        app.secret_key = SECRET

    return [
        System(
            "flask-bare",
            flask_app("bench_flask_bare", None),
            None,
            "floor",
            cookie_from="flask",
            label="Flask app without secret key (NullSession)",
            version=version,
        ),
        System(
            "flask",
            flask_app("bench_flask", with_secret),
            "flask-bare",
            "peer",
            label="Flask built-in session (itsdangerous)",
            version=version,
            notes="app.secret_key set, SecureCookieSessionInterface defaults",
        ),
    ]


def make_django_settings() -> None:
    """Configure Django once for every Django system (floor, peers, adapters)."""
    import django
    from django.conf import settings

    if not settings.configured:
        urls = types.ModuleType("bench_django_urls")
        sys.modules[urls.__name__] = urls
        settings.configure(
            DEBUG=False,
            SECRET_KEY=SECRET,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=urls.__name__,
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            DATABASES={},
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            USE_TZ=True,
        )
        django.setup()
        from django.http import HttpResponse
        from django.urls import path

        def view_for(scn: str) -> Callable[[Any], Any]:
            op = OPS[scn]
            plain = FLOOR_SESSIONS[scn]

            def view(request: Any) -> Any:
                # django-bare has no session middleware, so no request.session.
                session = getattr(request, "session", None)
                return HttpResponse(op(plain if session is None else session))

            return view

        def seed_view(request: Any, scn: str) -> Any:
            session = getattr(request, "session", None)
            if session is not None:
                seed(session, scn)
            return HttpResponse("seeded")

        urls.urlpatterns = [path(scn, view_for(scn)) for scn in SCENARIOS] + [  # type: ignore[attr-defined]
            path("seed/<str:scn>", seed_view)
        ]


def make_django() -> list[System]:
    version = _version("Django")
    bare = django_handler(None, None)
    with_session = django_handler("django.contrib.sessions.backends.signed_cookies", None)
    return [
        System(
            "django-bare",
            bare,
            None,
            "floor",
            cookie_from="django",
            label="Django WSGIHandler, MIDDLEWARE=[]",
            version=version,
        ),
        System(
            "django",
            with_session,
            "django-bare",
            "peer",
            label="Django signed_cookies session",
            version=version,
            notes="MIDDLEWARE=[SessionMiddleware], SESSION_ENGINE=signed_cookies, defaults",
        ),
    ]


def django_handler(
    engine: str | None,
    wsgisession_options: dict[str, Any] | None,
    caches: dict[str, Any] | None = None,
) -> Any:
    """A Django WSGIHandler with Django's SessionMiddleware and ``engine`` (None: no
    middleware, the floor); the middleware reads SESSION_ENGINE when it is built."""
    make_django_settings()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    settings.MIDDLEWARE = (
        [] if engine is None else ["django.contrib.sessions.middleware.SessionMiddleware"]
    )
    if engine is not None:
        settings.SESSION_ENGINE = engine
    if wsgisession_options is not None:
        settings.WSGISESSION = wsgisession_options  # read by wsgisession's engine only
    if caches is not None:
        from django.core.cache import caches as django_caches

        settings.CACHES = caches
        django_caches.__dict__.pop("settings", None)  # a cached property: read it anew
    return WSGIHandler()


def pyramid_app(factory: Any) -> Any:
    """A Pyramid app serving the scenarios with ``factory`` (None: the floor)."""
    from pyramid.config import Configurator
    from pyramid.response import Response

    config = Configurator(session_factory=factory)

    def view_for(scn: str) -> Callable[[Any], Any]:
        op = OPS[scn]
        if factory is None:
            plain = FLOOR_SESSIONS[scn]

            def floor_view(request: Any) -> Any:
                return Response(body=op(plain).encode(), content_type="text/plain")

            return floor_view

        def view(request: Any) -> Any:
            return Response(body=op(request.session).encode(), content_type="text/plain")

        return view

    for scn in SCENARIOS:
        config.add_route(scn, f"/{scn}")
        config.add_view(view_for(scn), route_name=scn)

    def seed_view(request: Any) -> Any:
        if factory is not None:
            seed(request.session, request.matchdict["scn"])
        return Response(body=b"seeded", content_type="text/plain")

    config.add_route("seed", "/seed/{scn}")
    config.add_view(seed_view, route_name="seed")
    return config.make_wsgi_app()


def make_pyramid() -> list[System]:
    from pyramid.session import SignedCookieSessionFactory

    version = _version("pyramid")
    build = pyramid_app
    return [
        System(
            "pyramid-bare",
            build(None),
            None,
            "floor",
            cookie_from="pyramid",
            label="Pyramid router without session factory",
            version=version,
        ),
        System(
            "pyramid",
            build(SignedCookieSessionFactory(SECRET)),
            "pyramid-bare",
            "peer",
            label="Pyramid SignedCookieSessionFactory, defaults",
            version=version,
            notes="SignedCookieSessionFactory(secret), defaults (reissue_time=0, JSON, sha512)",
        ),
        System(
            "pyramid-noreissue",
            build(SignedCookieSessionFactory(SECRET, reissue_time=None)),
            "pyramid-bare",
            "peer",
            label="Pyramid SignedCookieSessionFactory, reissue_time=None",
            version=version,
            notes="SignedCookieSessionFactory(secret, reissue_time=None)",
        ),
    ]


#: (adapter, systems it provides) in report order.
ADAPTERS: list[tuple[Callable[..., list[System]], tuple[str, ...]]] = [
    (make_bare, ("bare",)),
    (make_wsgisession, ("wsgisession", "wsgisession-memory", "wsgisession-redis")),
    (make_beaker, ("beaker-enc", "beaker-signed")),
    (make_flask, ("flask-bare", "flask")),
    (make_django, ("django-bare", "django")),
    (make_pyramid, ("pyramid-bare", "pyramid", "pyramid-noreissue")),
]
PEERS = ("beaker-enc", "beaker-signed", "flask", "django", "pyramid", "pyramid-noreissue")


# -- the codec floor -------------------------------------------------------------------

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")


class CodecFloor:
    """The least work an encrypted cookie session can do, with no HTTP at all.

    strict base64url (pybase64, as in wsgisession: the base64 the standard library
    offers is several times slower on a 2 KB cookie, and a floor must be the least
    work) + AES-256-GCM-SIV (cached ``AESGCMSIV`` object, random 12-byte
    nonce, the same associated data as a wsgisession token) + compact JSON of the same
    plaintext as wsgisession's token (``{"c":…,"e":…,"s":<43-char id>,"d":{…}}``).
    ``open`` for reads, ``open`` + ``seal`` for writes, ``seal`` for new sessions. The
    session id of a new session is made once, outside the timed loop.
    """

    def __init__(self, cookie_name: str = "session", namespace: str = "default") -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

        self._aead = AESGCMSIV(os.urandom(32))
        self._header = b"\x01" + os.urandom(4)
        self._ad = (
            self._header
            + b"\x00wsgisession/v1\x00"
            + namespace.encode()
            + b"\x00data\x00"
            + cookie_name.encode()
        )
        self._encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
        self._decode = json.JSONDecoder().decode
        self.sid = secrets.token_urlsafe(32)

    def seal(self, obj: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        raw = self._header + nonce + self._aead.encrypt(nonce, self._encode(obj).encode(), self._ad)
        return pybase64.b64encode(raw, b"-_").rstrip(b"=").decode("ascii")  # altchars

    def open(self, token: str) -> dict[str, Any]:
        if _B64URL_RE.fullmatch(token) is None or len(token) % 4 == 1:
            raise ValueError("not strict base64url")
        # altchars, validate (by position: faster than pybase64's keyword parsing)
        raw = pybase64.b64decode(token + "=" * (-len(token) % 4), b"-_", True)
        if raw[:5] != self._header:
            raise ValueError("header")
        plaintext = self._aead.decrypt(raw[5:17], raw[17:], self._ad)
        obj: dict[str, Any] = self._decode(plaintext.decode())
        return obj

    def payload(self, data: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        return {"c": now, "e": now + 86400, "s": self.sid, "d": json.loads(json.dumps(data))}

    def runner(self, scenario: str) -> tuple[Callable[[int], int], Callable[[], Any]]:
        """``(run(n) -> elapsed ns, once() -> result)`` for one scenario."""
        from time import perf_counter_ns
        from time import time as now

        seal, open_ = self.seal, self.open
        if scenario in ("S1", "S3"):
            token = self.seal(self.payload(SEED_DATA[scenario] or {}))

            def once() -> Any:
                return open_(token)["d"]["user_id"]

        elif scenario == "S2":
            token = self.seal(self.payload(SEED_DATA["S2"] or {}))

            def once() -> Any:
                obj = open_(token)
                obj["d"]["counter"] += 1
                obj["e"] = int(now()) + 86400
                return seal(obj)

        elif scenario == "S4":
            sid = self.sid

            def once() -> Any:
                t = int(now())
                return seal({"c": t, "e": t + 86400, "s": sid, "d": {"user_id": 42}})

        else:
            raise ValueError(scenario)

        def run(n: int) -> int:
            t0 = perf_counter_ns()
            for _ in range(n):
                once()
            return perf_counter_ns() - t0

        return run, once
