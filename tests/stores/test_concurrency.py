"""Concurrency: one shared middleware driven from real threads (and forked processes).

Checklist items H 85-92 of ``research/security.md`` §3, threat S6 (§2.2) and DESIGN §5 and
§8 "Stores": creating a record is ``SET``-if-absent and updating it ``SET``-if-present, so a
slow request that overlaps a logout or a ``regenerate()`` never brings the old session back
(event ``interrupted``, no ``Set-Cookie``, no exception).

Store mode keeps the whole session in one record (no per-key merge, DESIGN §8): concurrent
writers of one session are **whole-session last-writer-wins**, and their other updates are
lost. The tests pin that down explicitly (H 86 and 87) rather than hide it.

Every scenario runs on ``MemoryStore`` and on ``RedisStore`` against a real redis-server
(fixture ``redis_url``); interleavings are forced with ``threading.Barrier``/``Event`` inside
the application, and every wait and join is bounded by ``WAIT`` seconds.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import webob

from tests.conftest import Harness, WSGIResult, call_wsgi
from wsgisession import MemoryStore, SessionMiddleware
from wsgisession.codec import b64decode

#: Upper bound, in seconds, of every wait, barrier and join in this file.
WAIT = 10.0


# -- fixtures and helpers -----------------------------------------------------------------


def _make_store(kind: str, request: pytest.FixtureRequest) -> Any:
    if kind == "memory":
        return MemoryStore()
    from wsgisession import RedisStore

    return RedisStore(url=request.getfixturevalue("redis_url"))


def _close_store(store: Any) -> None:
    client = getattr(store, "client", None)
    if client is not None:
        client.close()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh, empty store: MemoryStore, or RedisStore on a flushed real redis-server."""
    store = _make_store(request.param, request)
    try:
        yield store
    finally:
        _close_store(store)


@pytest.fixture(params=["cookie", "memory", "redis"])
def maybe_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``None`` (cookie mode) or a fresh store."""
    if request.param == "cookie":
        yield None
        return
    store = _make_store(request.param, request)
    try:
        yield store
    finally:
        _close_store(store)


def set_cookie(result: WSGIResult, name: str = "session") -> str | None:
    """The whole ``Set-Cookie`` header value for our cookie, or None."""
    found = [
        value
        for key, value in result.headers
        if key.lower() == "set-cookie" and value.partition("=")[0].strip() == name
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def token(result: WSGIResult) -> str | None:
    """The cookie value our ``Set-Cookie`` carries (``""`` for a deletion), or None."""
    header = set_cookie(result)
    if header is None:
        return None
    return header.partition("=")[2].split(";", 1)[0]


def is_deletion(result: WSGIResult) -> bool:
    header = set_cookie(result)
    return header is not None and token(result) == "" and "Max-Age=0" in header


def count_records(store: Any) -> int:
    if isinstance(store, MemoryStore):
        return len(store)
    return int(store.client.dbsize())


def sid_of(mw: SessionMiddleware, value: str) -> str:
    """The session id inside a store-mode cookie."""
    plaintext, _ = mw.codec.open(value, "sid", mw.cookie_name)
    sid: str = json.loads(plaintext)["s"]
    return sid


def record(mw: SessionMiddleware, store: Any, sid: str) -> dict[str, Any] | None:
    """The decrypted, decoded record for ``sid`` straight from the store, or None."""
    key = mw.store_key(sid)
    blob = store.get(key)
    if blob is None:
        return None
    plaintext, _ = mw.codec.open_bytes(blob, "store", key)
    meta: dict[str, Any] = mw.options.serializer.loads(plaintext)
    assert meta["s"] == sid
    return meta


def events_of(harness: Harness, path: str) -> list[tuple[str, str]]:
    """``(name, reason)`` of the events emitted while serving ``path``."""
    return [(e.name, e.reason) for e in harness.events if e.environ.get("PATH_INFO") == path]


def run_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(i)`` on ``count`` real threads; return the results in order.

    Fails if any thread raised, or is still running after ``WAIT`` seconds.
    """
    results: list[Any] = [None] * count
    errors: list[str] = []

    def wrap(index: int) -> None:
        try:
            results[index] = target(index)
        except BaseException as exc:  # reported below
            errors.append(f"thread {index}: " + "".join(traceback.format_exception(exc)))

    threads = [
        threading.Thread(target=wrap, args=(i,), name=f"request-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAIT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, f"still running after {WAIT}s: {alive}"
    assert not errors, "\n".join(errors)
    return results


class Background:
    """One request served on its own thread (``result()`` joins it, bounded)."""

    def __init__(self, func: Callable[[], WSGIResult]) -> None:
        self._result: WSGIResult | None = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._result = func()
            except BaseException as exc:  # re-raised in result()
                self._error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self) -> WSGIResult:
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), f"request still running after {WAIT}s"
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def wait(event: threading.Event) -> None:
    assert event.wait(WAIT), f"event not set within {WAIT}s"


# -- H 85: many users, one middleware ----------------------------------------------------


def test_h85_many_users_share_one_middleware(store: Any) -> None:
    """16 users x 100 requests on one middleware, interleaved by barriers: each response
    carries only its own user's data, nothing raises, one ``created`` per user."""
    users, requests = 16, 100

    def handler(environ: dict[str, Any], session: Any) -> str:
        if environ["PATH_INFO"] == "/login":
            assert session.is_new and len(session) == 0
            name = environ["HTTP_X_USER"]
            session.update(user=name, n=0, secret=f"secret-of-{name}")
        else:
            session["n"] += 1
        return json.dumps({**session.copy(), "id_hash": session.id_hash})

    # secure=True over http: also checks that insecure_transport fires once per instance.
    h = Harness(handler, store=store, secure=True)
    start = threading.Barrier(users, timeout=WAIT)
    step = threading.Barrier(users, timeout=WAIT)

    def user(i: int) -> tuple[str, str]:
        name = f"user-{i}"
        start.wait()
        res = call_wsgi(h.mw, "/login", HTTP_X_USER=name)
        assert res.status == "200 OK"
        cookie = token(res)
        assert cookie
        first = json.loads(res.body)
        assert first["user"] == name
        for n in range(1, requests):
            if n % 25 == 0:
                step.wait()  # keep the users in lockstep so their requests interleave
            res = call_wsgi(h.mw, "/", cookie=f"session={cookie}")
            assert res.status == "200 OK"
            body = json.loads(res.body)
            assert body == {
                "user": name,
                "n": n,
                "secret": f"secret-of-{name}",
                "id_hash": first["id_hash"],
            }
            cookie = token(res) or cookie  # the store-mode cookie is re-sent on every save
        return first["id_hash"], sid_of(h.mw, cookie)

    results = run_threads(users, user)

    assert len({id_hash for id_hash, _ in results}) == users
    names = h.events.names()
    assert names.count("created") == users
    assert names.count("insecure_transport") == 1
    assert set(names) == {"created", "insecure_transport"}, names
    assert count_records(store) == users
    for i, (_, sid) in enumerate(results):
        meta = record(h.mw, store, sid)
        assert meta is not None
        assert meta["d"] == {
            "user": f"user-{i}",
            "n": requests - 1,
            "secret": f"secret-of-user-{i}",
        }


# -- H 86 and 87: many writers, one session ------------------------------------------------


ORIGINAL = {"user": "alice", "cart": [1, 2, 3], "prefs": {"theme": "dark"}}


def _seed(h: Harness) -> str:
    res = call_wsgi(h.mw, "/seed")
    value = token(res)
    assert value
    return value


def test_h86_same_session_writers_whole_session_last_writer_wins(store: Any) -> None:
    """32 requests on the SAME session, each setting its own key ``k_i``.

    Every writer loads the original state before any of them saves (a barrier inside the
    application), then saves its whole session. Store mode keeps the session as one
    record, so this is whole-session last-writer-wins: the final record is exactly one
    writer's complete state — the original keys plus that writer's ``k_i`` — and the 31
    other ``k_i`` are **lost updates** (documented behaviour, DESIGN §8; per-key merge is
    a stretch goal). Never a torn mix, never an undecodable record, never an exception.
    """
    writers = 32
    loaded = threading.Barrier(writers, timeout=WAIT)

    def handler(environ: dict[str, Any], session: Any) -> str | None:
        path = environ["PATH_INFO"]
        if path == "/seed":
            session.update(ORIGINAL)
            return None
        if path == "/show":
            return json.dumps(session.copy())
        i = int(path.rsplit("/", 1)[1])
        assert session["user"] == "alice"  # loads the original state
        loaded.wait()  # every writer now holds the same original state
        session[f"k_{i}"] = i
        return "ok"

    h = Harness(handler, store=store)
    cookie = _seed(h)
    sid = sid_of(h.mw, cookie)

    results = run_threads(writers, lambda i: call_wsgi(h.mw, f"/w/{i}", cookie=f"session={cookie}"))

    for res in results:
        assert res.status == "200 OK"
        value = token(res)
        assert value, "every writer's update found its record and sent the cookie"
        assert sid_of(h.mw, value) == sid
    assert "interrupted" not in h.events.names()
    assert "store_error" not in h.events.names()

    meta = record(h.mw, store, sid)
    assert meta is not None, "the record must survive its concurrent writers"
    data = meta["d"]
    extra = {k: v for k, v in data.items() if k not in ORIGINAL}
    assert {k: data[k] for k in ORIGINAL} == ORIGINAL
    assert len(extra) == 1, f"expected exactly one writer's state, got {sorted(extra)}"
    ((key, value),) = extra.items()
    assert key == f"k_{value}" and 0 <= value < writers
    assert count_records(store) == 1
    # What the next request sees is that same complete state.
    assert json.loads(call_wsgi(h.mw, "/show", cookie=f"session={cookie}").body) == data


def test_h87_concurrent_increments_lose_updates_but_never_fail(store: Any) -> None:
    """32 requests each incrementing ``session["n"]``: no exception; read-modify-write
    races lose increments (no atomic increment helper), so the final n is between 1 and
    32, and it is one of the values some request actually wrote (never torn)."""
    writers = 32

    def handler(environ: dict[str, Any], session: Any) -> str | None:
        path = environ["PATH_INFO"]
        if path == "/seed":
            session["n"] = 0
            return None
        if path == "/show":
            return json.dumps(session.copy())
        session["n"] += 1
        return str(session["n"])

    h = Harness(handler, store=store)
    cookie = _seed(h)
    sid = sid_of(h.mw, cookie)
    start = threading.Barrier(writers, timeout=WAIT)

    def increment(i: int) -> WSGIResult:
        start.wait()
        return call_wsgi(h.mw, "/inc", cookie=f"session={cookie}")

    results = run_threads(writers, increment)

    written = set()
    for res in results:
        assert res.status == "200 OK"
        assert token(res), "every increment was saved (the record exists)"
        written.add(int(res.body))
    meta = record(h.mw, store, sid)
    assert meta is not None
    final = meta["d"]["n"]
    assert 1 <= final <= writers
    assert final in written
    assert meta["d"] == {"n": final}
    assert json.loads(call_wsgi(h.mw, "/show", cookie=f"session={cookie}").body) == {"n": final}
    assert set(h.events.names()) == {"created"}


# -- H 88: logout race -----------------------------------------------------------------


@pytest.mark.parametrize("logout", ["assign_none", "invalidate"])
@pytest.mark.parametrize("slow_action", ["setitem", "nested", "save", "rolling_read"])
def test_h88_logout_race_does_not_resurrect(store: Any, slow_action: str, logout: str) -> None:
    """A loads the session and blocks in the app; B logs out; A then changes the session
    (or forces a save, or a rolling refresh) and returns: the record stays deleted, A's
    response has no session Set-Cookie, A emits ``interrupted`` (``record_gone``)."""
    a_loaded, b_done = threading.Event(), threading.Event()

    def handler(environ: dict[str, Any], session: Any) -> str | None:
        path = environ["PATH_INFO"]
        if path == "/seed":
            session.update(ORIGINAL)
        elif path == "/logout":
            if logout == "invalidate":
                session.invalidate()
            else:
                environ["session"] = None
        elif path == "/slow":
            assert session["user"] == "alice"
            a_loaded.set()
            wait(b_done)
            if slow_action == "setitem":
                session["seen"] = True
            elif slow_action == "nested":
                session["cart"].append(4)
            elif slow_action == "save":
                session.save()
            # rolling_read: reading is enough; rolling refreshes the record's TTL.
        elif path == "/show":
            return json.dumps({"data": session.copy(), "new": session.is_new})
        return None

    h = Harness(handler, store=store, rolling=slow_action == "rolling_read")
    cookie = _seed(h)
    sid = sid_of(h.mw, cookie)
    assert record(h.mw, store, sid) is not None

    slow = Background(lambda: call_wsgi(h.mw, "/slow", cookie=f"session={cookie}"))
    wait(a_loaded)
    bye = call_wsgi(h.mw, "/logout", cookie=f"session={cookie}")
    assert is_deletion(bye)
    assert record(h.mw, store, sid) is None
    b_done.set()
    res = slow.result()

    assert res.status == "200 OK"
    assert set_cookie(res) is None, "a request that lost its record must not set a cookie"
    assert record(h.mw, store, sid) is None, "the logged-out session was resurrected"
    assert count_records(store) == 0
    assert events_of(h, "/slow") == [("interrupted", "record_gone")]
    assert ("destroyed", "invalidate" if logout == "invalidate" else "assigned_none") in (
        events_of(h, "/logout")
    )

    # The old cookie now leads nowhere: a fresh, empty session.
    after = call_wsgi(h.mw, "/show", cookie=f"session={cookie}")
    assert json.loads(after.body) == {"data": {}, "new": True}
    assert events_of(h, "/show") == [("missed", "no_record")]
    assert count_records(store) == 0


def test_h88_slow_regenerate_after_logout_does_not_resurrect(store: Any) -> None:
    """A loaded the session before B logged out, then calls ``regenerate()`` (a privilege
    change) and writes. The logged-out session must not come back, not even under a new
    id: no record, no live Set-Cookie, event ``interrupted`` (S6; DESIGN §8 "no record is
    recreated")."""
    a_loaded, b_done = threading.Event(), threading.Event()

    def handler(environ: dict[str, Any], session: Any) -> str | None:
        path = environ["PATH_INFO"]
        if path == "/seed":
            session.update(ORIGINAL)
        elif path == "/logout":
            environ["session"] = None
        elif path == "/slow":
            assert session["user"] == "alice"
            a_loaded.set()
            wait(b_done)
            session.regenerate()
            session["role"] = "admin"
        return None

    h = Harness(handler, store=store)
    cookie = _seed(h)
    sid = sid_of(h.mw, cookie)

    slow = Background(lambda: call_wsgi(h.mw, "/slow", cookie=f"session={cookie}"))
    wait(a_loaded)
    assert is_deletion(call_wsgi(h.mw, "/logout", cookie=f"session={cookie}"))
    b_done.set()
    res = slow.result()

    assert res.status == "200 OK"
    assert record(h.mw, store, sid) is None
    assert count_records(store) == 0, (
        "the logged-out session (user=alice) was recreated under a new id by a slow "
        "request's regenerate()"
    )
    value = token(res)
    assert not value, "no live session cookie after a concurrent logout"
    assert ("interrupted", "record_gone") in events_of(h, "/slow")


# -- H 89: regenerate race -------------------------------------------------------------


@pytest.mark.parametrize("late_action", ["setitem", "save"])
def test_h89_regenerate_race_drops_old_id_write(store: Any, late_action: str) -> None:
    """B loads the session; A logs in with ``regenerate()``; then B writes under the old
    id: the old record is not recreated, B's write is dropped with ``interrupted`` and no
    Set-Cookie, and A's new session is intact."""
    b_loaded, a_done = threading.Event(), threading.Event()

    def handler(environ: dict[str, Any], session: Any) -> str | None:
        path = environ["PATH_INFO"]
        if path == "/seed":
            session.update(ORIGINAL)
        elif path == "/login":
            session.regenerate()
            session["user"] = "bob"
            session["auth"] = True
        elif path == "/slow":
            assert session["user"] == "alice"
            b_loaded.set()
            wait(a_done)
            if late_action == "setitem":
                session["cart"] = ["stale"]
            else:
                session.save()
        elif path == "/show":
            return json.dumps({"data": session.copy(), "new": session.is_new})
        return None

    h = Harness(handler, store=store)
    cookie = _seed(h)
    old_sid = sid_of(h.mw, cookie)

    slow = Background(lambda: call_wsgi(h.mw, "/slow", cookie=f"session={cookie}"))
    wait(b_loaded)
    login = call_wsgi(h.mw, "/login", cookie=f"session={cookie}")
    new_cookie = token(login)
    assert new_cookie
    new_sid = sid_of(h.mw, new_cookie)
    assert new_sid != old_sid
    assert record(h.mw, store, old_sid) is None
    a_done.set()
    res = slow.result()

    assert res.status == "200 OK"
    assert set_cookie(res) is None
    assert events_of(h, "/slow") == [("interrupted", "record_gone")]
    assert [name for name, _ in events_of(h, "/login")] == ["regenerated"]
    assert record(h.mw, store, old_sid) is None, "the old id was recreated"
    expected = {**ORIGINAL, "user": "bob", "auth": True}
    meta = record(h.mw, store, new_sid)
    assert meta is not None and meta["d"] == expected
    assert count_records(store) == 1

    shown = call_wsgi(h.mw, "/show", cookie=f"session={new_cookie}")
    assert json.loads(shown.body) == {"data": expected, "new": False}
    old = call_wsgi(h.mw, "/show", cookie=f"session={cookie}")
    assert json.loads(old.body) == {"data": {}, "new": True}


# -- H 90: cookie mode, overlapping responses ------------------------------------------


def test_h90_cookie_mode_overlapping_responses_both_decode() -> None:
    """Cookie mode: two overlapping requests on one session each get their own new
    cookie; both decode to their own writer's state (the browser keeps the last one:
    last-writer-wins, documented). Two overlapping new sessions get distinct ids."""
    both = threading.Barrier(2, timeout=WAIT)

    def handler(environ: dict[str, Any], session: Any) -> str | None:
        path = environ["PATH_INFO"]
        if path == "/seed":
            session.update(ORIGINAL)
        elif path.startswith("/w/"):
            _ = session.get("user")
            both.wait()  # both requests are in flight with the same loaded state
            session[path[3:]] = path[3:]
        elif path == "/new":
            both.wait()
            session["fresh"] = environ["HTTP_X_N"]
        elif path == "/show":
            return json.dumps({"data": session.copy(), "id": session.id_hash})
        return None

    h = Harness(handler)
    cookie = _seed(h)
    seed_id = json.loads(call_wsgi(h.mw, "/show", cookie=f"session={cookie}").body)["id"]

    a, b = run_threads(2, lambda i: call_wsgi(h.mw, f"/w/{'ab'[i]}", cookie=f"session={cookie}"))
    ca, cb = token(a), token(b)
    assert ca and cb and ca != cb
    for value, key in ((ca, "a"), (cb, "b")):
        shown = json.loads(call_wsgi(h.mw, "/show", cookie=f"session={value}").body)
        assert shown == {"data": {**ORIGINAL, key: key}, "id": seed_id}

    n1, n2 = run_threads(2, lambda i: call_wsgi(h.mw, "/new", HTTP_X_N=str(i)))
    shown = [
        json.loads(call_wsgi(h.mw, "/show", cookie=f"session={token(r)}").body) for r in (n1, n2)
    ]
    assert [s["data"] for s in shown] == [{"fresh": "0"}, {"fresh": "1"}]
    assert shown[0]["id"] != shown[1]["id"]
    assert set(h.events.names()) == {"created"}
    assert h.events.names().count("created") == 3


# -- H 91: thread reuse ----------------------------------------------------------------


def test_h91_worker_thread_reuse_does_not_leak(maybe_store: Any) -> None:
    """One worker thread serves user X, then a request without a cookie (an empty, new
    session, no Set-Cookie), then user Y: nothing of X leaks into the later requests."""

    def handler(environ: dict[str, Any], session: Any) -> str:
        path = environ["PATH_INFO"]
        if path == "/login":
            session["user"] = environ["HTTP_X_USER"]
            session["secret"] = f"secret-of-{environ['HTTP_X_USER']}"
        return json.dumps(
            {
                "thread": threading.get_ident(),
                "data": session.copy(),
                "new": session.is_new,
                "id": session.id_hash,
            }
        )

    h = Harness(handler, store=maybe_store)
    with ThreadPoolExecutor(max_workers=1) as worker:

        def serve(path: str, **kw: Any) -> tuple[WSGIResult, dict[str, Any]]:
            res = worker.submit(call_wsgi, h.mw, path, **kw).result(timeout=WAIT)
            return res, json.loads(res.body)

        x_res, x = serve("/login", HTTP_X_USER="X")
        anon_res, anon = serve("/")
        y_login, _ = serve("/login", HTTP_X_USER="Y")
        y_res, y = serve("/", cookie=f"session={token(y_login)}")
        x_again_res, x_again = serve("/", cookie=f"session={token(x_res)}")

    assert x["data"] == {"user": "X", "secret": "secret-of-X"}
    assert x["thread"] == anon["thread"] == y["thread"] == x_again["thread"]
    assert anon == {"thread": x["thread"], "data": {}, "new": True, "id": anon["id"]}
    assert anon["id"] != x["id"]
    assert set_cookie(anon_res) is None
    assert y["data"] == {"user": "Y", "secret": "secret-of-Y"} and not y["new"]
    assert y["id"] not in (x["id"], anon["id"])
    assert x_again["data"] == x["data"] and x_again["id"] == x["id"]
    assert set_cookie(y_res) is None and set_cookie(x_again_res) is None
    assert set(h.events.names()) == {"created"}
    if maybe_store is not None:
        assert count_records(maybe_store) == 2


# -- H 92: fork safety -----------------------------------------------------------------

PER_CHILD = 2000


def _fork_handler(environ: dict[str, Any], session: Any) -> str:
    if environ["PATH_INFO"] == "/login":
        session["user"] = environ["HTTP_X_USER"]
    elif environ["PATH_INFO"] == "/inc":
        session["n"] = session.get("n", 0) + 1
    return json.dumps({"data": session.copy(), "pid": os.getpid()})


def _child_main(mw: SessionMiddleware, index: int, out_path: str) -> None:
    """Runs in a forked child; never returns."""
    status = 1
    try:
        name = f"child-{index}"
        login = call_wsgi(mw, "/login", HTTP_X_USER=name)
        value = token(login)
        assert value
        bodies = []
        for _ in range(5):
            res = call_wsgi(mw, "/inc", cookie=f"session={value}")
            value = token(res) or value
            bodies.append(json.loads(res.body))
        environ = webob.Request.blank("/").environ
        ids = [mw.new_id(environ) for _ in range(PER_CHILD)]
        nonces = [
            b64decode(mw.codec.seal(b'{"c":1,"s":"x"}', "sid", mw.cookie_name))[5:17].hex()
            for _ in range(PER_CHILD)
        ]
        result = {
            "pid": os.getpid(),
            "token": value,
            "bodies": bodies,
            "ids": ids,
            "nonces": nonces,
            "client_id": mw.store.client.client_id(),
            "pool_pid": mw.store.client.connection_pool.pid,
        }
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump(result, fh)
        status = 0
    except BaseException:  # reported to the parent through the file
        try:
            with open(out_path + ".err", "w", encoding="utf-8") as fh:
                fh.write(traceback.format_exc())
        except BaseException:  # nothing else can be done here
            pass
    finally:
        os._exit(status)


def _reap(pid: int, deadline: float) -> int | None:
    """Exit code of child ``pid``; None if it had to be killed at ``deadline``."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


def test_h92_fork_safety(redis_url: str, tmp_path: Any) -> None:
    """gunicorn --preload style: the middleware (and its RedisStore, with a connection
    already open) is built in the parent; two forked children serve requests and make
    2,000 session ids and 2,000 token nonces each. No id or nonce repeats across the
    processes, and each child talks to Redis over its own connection."""
    from wsgisession import RedisStore

    store = RedisStore(url=redis_url)
    try:
        h = Harness(_fork_handler, store=store)
        mw = h.mw
        parent_login = call_wsgi(mw, "/login", HTTP_X_USER="parent")  # opens a connection
        parent_cookie = token(parent_login)
        assert parent_cookie
        parent_client = store.client.client_id()
        environ = webob.Request.blank("/").environ
        parent_ids = {mw.new_id(environ) for _ in range(PER_CHILD)}

        paths = [str(tmp_path / f"child-{i}.json") for i in range(2)]
        pids = []
        for index, path in enumerate(paths):
            with warnings.catch_warnings():
                # Python 3.12+ warns about fork() in a process that has threads.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                _child_main(mw, index, path)
            pids.append(pid)
        deadline = time.monotonic() + WAIT
        codes = [_reap(pid, deadline) for pid in pids]

        errors = []
        for path in paths:
            if os.path.exists(path + ".err"):
                with open(path + ".err", encoding="utf-8") as fh:
                    errors.append(fh.read())
        assert codes == [0, 0], f"child exit codes {codes}\n" + "\n".join(errors)
        results = []
        for path in paths:
            with open(path, encoding="utf-8") as fh:
                results.append(json.load(fh))

        for index, (pid, result) in enumerate(zip(pids, results, strict=True)):
            assert result["pid"] == pid
            assert result["pool_pid"] == pid, "the child kept using the parent's pool"
            name = f"child-{index}"
            assert [b["data"] for b in result["bodies"]] == [
                {"user": name, "n": n} for n in range(1, 6)
            ]
            assert all(b["pid"] == pid for b in result["bodies"])
            assert len(set(result["ids"])) == PER_CHILD
            assert len(set(result["nonces"])) == PER_CHILD
            # What the child wrote is in Redis: the parent reads it back.
            shown = json.loads(call_wsgi(mw, "/", cookie=f"session={result['token']}").body)
            assert shown["data"] == {"user": name, "n": 5}

        ids0, ids1 = (set(r["ids"]) for r in results)
        assert not ids0 & ids1 and not (ids0 | ids1) & parent_ids
        nonces0, nonces1 = (set(r["nonces"]) for r in results)
        assert not nonces0 & nonces1
        clients = {parent_client, results[0]["client_id"], results[1]["client_id"]}
        assert len(clients) == 3, "the children shared a Redis connection"

        # The parent's own connection still works after the forks.
        shown = json.loads(call_wsgi(mw, "/", cookie=f"session={parent_cookie}").body)
        assert shown["data"] == {"user": "parent"}
        assert count_records(store) == 3
    finally:
        store.client.close()


# -- late saves in store mode ----------------------------------------------------------


def _late_app(
    touch_first: bool,
    between: Callable[[], None] | None = None,
) -> Callable[..., Iterator[bytes]]:
    """A generator app: ``/seed`` creates a session; ``/late`` changes the session only
    after the headers went out (during body iteration); ``/show`` prints it."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        session = environ["session"]
        path = environ["PATH_INFO"]
        if path == "/seed":
            session.update(ORIGINAL)
        elif path == "/show":
            body = json.dumps({"data": session.copy(), "new": session.is_new}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            yield body
            return
        elif path == "/logout":
            environ["session"] = None
        elif path == "/late" and touch_first:
            _ = session.get("user")
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"head;"
        if path == "/late":
            if between is not None:
                between()
            session["late"] = "yes"
            if "cart" in session:
                session["cart"].append(9)  # a nested change, after the headers
        yield b"tail"

    return app


@pytest.mark.parametrize("touch_first", [True, False], ids=["touched", "untouched"])
def test_late_change_to_existing_session_saved_at_close(store: Any, touch_first: bool) -> None:
    """Store mode: a change made during body iteration to an existing session is saved
    when the response closes; the next request sees it."""
    h = Harness(app=_late_app(touch_first), store=store)
    cookie = token(call_wsgi(h.mw, "/seed"))
    assert cookie
    sid = sid_of(h.mw, cookie)

    res = call_wsgi(h.mw, "/late", cookie=f"session={cookie}")
    assert res.body == b"head;tail"
    assert set_cookie(res) is None  # the headers had gone out before the change

    expected = {**ORIGINAL, "cart": [1, 2, 3, 9], "late": "yes"}
    meta = record(h.mw, store, sid)
    assert meta is not None and meta["d"] == expected
    shown = json.loads(call_wsgi(h.mw, "/show", cookie=f"session={cookie}").body)
    assert shown == {"data": expected, "new": False}
    assert events_of(h, "/late") == []
    assert count_records(store) == 1


@pytest.mark.parametrize("touch_first", [True, False], ids=["touched", "untouched"])
def test_late_change_to_new_session_is_not_saved(store: Any, touch_first: bool) -> None:
    """Store mode: a NEW session changed during body iteration cannot be saved (its
    cookie can no longer be sent): event ``late_write``, and no orphan record."""
    h = Harness(app=_late_app(touch_first), store=store)
    res = call_wsgi(h.mw, "/late")
    assert res.body == b"head;tail"
    assert set_cookie(res) is None
    assert events_of(h, "/late") == [("late_write", "after_headers")]
    assert "created" not in h.events.names()
    assert count_records(store) == 0


def test_late_save_racing_logout_is_interrupted(store: Any) -> None:
    """A late save (at close) of a session that a concurrent request logged out while the
    body was streaming: not performed, event ``interrupted``, the record stays gone."""
    in_body, b_done = threading.Event(), threading.Event()

    def between() -> None:
        in_body.set()
        wait(b_done)

    h = Harness(app=_late_app(True, between), store=store)
    cookie = token(call_wsgi(h.mw, "/seed"))
    assert cookie
    sid = sid_of(h.mw, cookie)

    slow = Background(lambda: call_wsgi(h.mw, "/late", cookie=f"session={cookie}"))
    wait(in_body)
    assert is_deletion(call_wsgi(h.mw, "/logout", cookie=f"session={cookie}"))
    b_done.set()
    res = slow.result()

    assert res.body == b"head;tail"
    assert set_cookie(res) is None
    assert record(h.mw, store, sid) is None, "the late save resurrected the session"
    assert count_records(store) == 0
    assert events_of(h, "/late") == [("interrupted", "record_gone")]
