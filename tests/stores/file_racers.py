"""The racing side of tests/stores/test_files.py: what its child processes run
(``python -m tests.stores.file_racers MODE ...``) and its threads share. Kept apart
from the test module so that a child imports only wsgisession and WebOb.

Modes: ``hold LOCKFILE`` (flock it until stdin closes), ``create DIR N KEY...`` (race
to create the keys), ``write DIR KEY SECONDS`` (rewrite one record, two sizes, as fast
as possible), ``race DIR ROLE WHO COOKIES`` (:func:`race_worker`). The ``create`` and
``race`` children print ``ready`` and wait for one line on stdin before starting.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import webob

from wsgisession import SessionMiddleware
from wsgisession.stores import FileStore

#: The racers' secret (the parent and its children must share it).
SECRET = "file-racers-secret-0123456789abcdefghijklmnopqrstuvwxyz"
HEAD = struct.Struct(">4sdII")


def call(mw: Any, path: str, cookie: str, **extra: Any) -> tuple[bytes, list[str]]:
    """One GET straight through the WSGI app: (body, its Set-Cookie values)."""
    environ = webob.Request.blank(path).environ
    environ["HTTP_COOKIE"] = cookie
    environ.update(extra)
    headers: list[tuple[str, str]] = []

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> Any:
        headers[:] = response_headers
        return lambda data: None

    iterable = mw(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        getattr(iterable, "close", lambda: None)()
    return body, [v for k, v in headers if k.lower() == "set-cookie"]


def session_token(set_cookies: list[str]) -> str | None:
    """The value of our Set-Cookie (``""`` for a deletion), or None."""
    for header in set_cookies:
        name, _, rest = header.partition("=")
        if name.strip() == "session":
            return rest.split(";", 1)[0]
    return None


def parse(data: bytes) -> tuple[bytes, float, bytes, bytes]:
    """(magic, expiry, key, body) of a complete file; AssertionError if it is torn."""
    magic, deadline, key_len, body_len = HEAD.unpack_from(data)
    end = HEAD.size + key_len + body_len
    assert len(data) == end + 4, "torn or padded file"
    assert zlib.crc32(data[:end]) == struct.unpack_from(">I", data, end)[0], "bad CRC"
    return magic, deadline, data[HEAD.size : HEAD.size + key_len], data[HEAD.size + key_len : end]


def race_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """``/seed`` makes a session; ``/update`` adds to it, ``/regen`` regenerates it,
    ``/logout`` ends it; a request that finds no session answers ``gone``."""
    session = environ["session"]
    path = environ["PATH_INFO"]
    if path == "/seed":
        session.update(user="alice", n=0)
        body = "seeded"
    elif path == "/logout":
        environ["session"] = None
        body = "bye"
    elif session.is_new:
        body = "gone"
    elif path == "/update":
        session["n"] += 1
        body = "ok"
    else:
        session.regenerate()
        session["regen"] = environ.get("race.worker", "?")
        body = "regen"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


def race_middleware(directory: str) -> SessionMiddleware:
    def on_event(event: Any) -> None:
        event.environ.get("race.events", []).append([event.name, event.reason])

    return SessionMiddleware(
        race_app, secret_keys=[SECRET], store=FileStore(directory), on_event=on_event
    )


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _request(mw: SessionMiddleware, path: str, cookie: str, rnd: int, who: str) -> dict[str, Any]:
    events: list[list[str]] = []
    started = time.monotonic()
    body = value = error = None
    try:
        raw, cookies = call(
            mw, path, f"session={cookie}", **{"race.events": events, "race.worker": who}
        )
        body, value = raw.decode(), session_token(cookies)
    except Exception as exc:  # reported: only StoreError is documented
        error = type(exc).__name__
    return {
        "round": rnd,
        "path": path,
        "t0": started,
        "t1": time.monotonic(),
        "body": body,
        "token": value,
        "events": events,
        "error": error,
        "who": who,
    }


def race_worker(
    mw: SessionMiddleware, role: str, who: str, cookies: list[str], start: float, slot: float
) -> dict[str, Any]:
    """One racer (``role`` ``update``, ``regen``, ``logout`` or ``read``): every round
    (``slot`` seconds from ``start``) works on that round's session — updates all
    through the round; a logout, or two tries at a regenerate, at a random moment of
    it. A ``read`` racer checks every record file it can see, the whole time. Returns
    the log of every request (times from the system-wide monotonic clock)."""
    rng = random.Random(who)
    log: list[dict[str, Any]] = []
    reads = 0
    if role == "read":
        directory = mw.store.directory
        while time.monotonic() < start + slot * len(cookies):
            for name in os.listdir(directory):
                if name.startswith("r-") and not name.endswith(".lock"):
                    try:
                        data = Path(directory, name).read_bytes()
                    except FileNotFoundError:
                        continue
                    magic, _, key, body = parse(data)  # AssertionError if torn
                    assert magic == b"WSR1"
                    mw.codec.open_bytes(body, "store", key.decode())  # InvalidToken if mixed
                    reads += 1
        return {"log": log, "reads": reads}
    for rnd, cookie in enumerate(cookies):
        begin = start + rnd * slot
        if role == "update":
            _sleep_until(begin)
            while time.monotonic() < begin + slot * 0.8:
                log.append(_request(mw, "/update", cookie, rnd, who))
        else:  # a logout, or two tries at a regenerate, at a random moment of the round
            _sleep_until(begin + rng.uniform(0, slot * 0.6))
            log.append(_request(mw, f"/{role}", cookie, rnd, who))
            if role == "regen":
                time.sleep(rng.uniform(0, 0.003))
                log.append(_request(mw, "/regen", cookie, rnd, who))
    return {"log": log, "reads": reads}


# -- the children ------------------------------------------------------------------


def _main(mode: str, *args: str) -> None:  # pragma: no cover - runs in the children
    logging.getLogger("wsgisession").addHandler(logging.NullHandler())  # no stderr flood
    if mode == "hold":
        with open(args[0], "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            print("locked", flush=True)
            sys.stdin.read()
    elif mode == "create":
        directory, number, *keys = args
        store = FileStore(directory)
        print("ready", flush=True)
        sys.stdin.readline()
        won = [key for key in keys if store.create(key, f"by-{number}".encode(), 100)]
        print(json.dumps(won))
    elif mode == "write":
        directory, key, seconds = args
        store = FileStore(directory)
        values = [b"b" * 300 * 1024, b"a" * 512 * 1024]
        deadline = time.monotonic() + float(seconds)
        count = 0
        while time.monotonic() < deadline:
            store.set(key, values[count % 2], 100)
            count += 1
    elif mode == "race":
        directory, role, who, cookies = args
        mw = race_middleware(directory)
        print("ready", flush=True)
        start = float(sys.stdin.readline())
        print(json.dumps(race_worker(mw, role, who, json.loads(cookies), start, 0.08)))


if __name__ == "__main__":  # pragma: no cover
    _main(*sys.argv[1:])
