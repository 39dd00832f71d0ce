"""Store mode against a real, misbehaving redis-server: the fault policy.

DESIGN §4 (store mode), §5, §8 "Stores"; research/security.md §2.2 (S7, S8, S10) and the
§3 G checklist, items 73-84. Every fault is real: a stopped, paused, full, read-only or
password-protected redis-server of the test's own (``private_redis``), a TCP listener that
accepts and never answers, a port with nothing listening, or records overwritten with a
raw client. Nothing here mocks Redis.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff

from tests.conftest import OTHER_SECRET, SECRET, T0, cookie_value, set_cookies
from tests.stores.faults import (
    assert_read_failure,
    fresh,
    listener,
    login,
    refused_port,
    timed,
    wait_until,
)
from wsgisession import StoreError
from wsgisession.codec import TokenCodec
from wsgisession.stores.redis import RedisStore

MARKER = "PLAINTEXT-MARKER-5e1c"
PREFIX = "session:"
KEY_RE = re.compile(r"^session:[0-9a-f]{64}$")
#: The configured worst case is (connect 0.25 s + read 0.5 s) x (1 + 1 retry) = 1.5 s.
UPPER_BOUND = 1.6
#: A hung server must cost at least one read timeout (0.5 s): the timeout is really used.
LOWER_BOUND = 0.4


# -- helpers ---------------------------------------------------------------------------


class App:
    """The test application; remembers every session id it saw written.

    ``/login``   loads the session, runs ``environ["test.hook"]`` if given, then writes
                 ``user = MARKER + query string``; the body is the session id.
    ``/read``    the session data as sorted JSON (``{}`` for an empty session).
    ``/logout``  ``environ["session"] = None`` without loading the session.
    ``/read-logout`` reads the session first, then destroys it.
    """

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, environ: dict[str, Any], session: Any) -> Any:
        path = environ["PATH_INFO"]
        if path == "/login":
            self.ids.append(session.id)
            hook = environ.get("test.hook")
            if hook is not None:
                hook()
            session["user"] = MARKER + environ.get("QUERY_STRING", "")
            self.ids.append(session.id)
            return session.id
        if path == "/read":
            return json.dumps(dict(session), sort_keys=True)
        if path == "/logout":
            environ["session"] = None
            return "bye"
        if path == "/read-logout":
            dict(session)
            environ["session"] = None
            return "bye"
        return ("404 Not Found", "no such path")


def key_for(session_id: str) -> str:
    return PREFIX + hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def assert_no_cookie(resp) -> None:
    assert set_cookies(resp) == []


@pytest.fixture
def open_store() -> Iterator[Callable[..., RedisStore]]:
    """Factory: ``open_store(url, **kw)`` -> RedisStore; every client closed afterwards."""
    made: list[RedisStore] = []

    def factory(url: str, **kw: Any) -> RedisStore:
        store = RedisStore(url=url, **kw)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.client.close()


@pytest.fixture
def raw_client() -> Iterator[Callable[[str], redis.Redis]]:
    """Factory: a plain redis-py client (5 s timeouts) for poking at the server."""
    made: list[redis.Redis] = []

    def factory(url: str) -> redis.Redis:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


# -- S8 / item 76: the client configuration ----------------------------------------------


def test_url_client_has_short_timeouts_and_one_retry(redis_url, open_store):
    store = open_store(redis_url)
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.5
    assert kwargs["socket_connect_timeout"] == 0.25
    retry = store.client.get_retry()
    assert isinstance(retry, redis.retry.Retry)
    assert retry.get_retries() == 1
    assert isinstance(retry._backoff, NoBackoff)
    assert kwargs["retry"] is retry
    assert store.client.connection_pool.max_connections == 50
    # ... and it is a working client.
    store.set("session:probe", b"\x01value", 5)
    assert store.get("session:probe") == b"\x01value"


def test_redis_py_defaults_would_wait_far_longer():
    """The contrast S8 measured: redis-py's own defaults (5 s timeouts, 10 retries with
    backoff) hold a request for about a minute on a hung server. Checked without waiting."""
    client = redis.Redis(host="127.0.0.1", port=1)
    try:
        kwargs = client.connection_pool.connection_kwargs
        for name, ours in (("socket_timeout", 0.5), ("socket_connect_timeout", 0.25)):
            assert kwargs[name] is None or kwargs[name] > ours, (name, kwargs[name])
        assert client.get_retry().get_retries() > 1
    finally:
        client.close()


def test_hung_listener_read_fails_within_bound(harness, redis_url, open_store):
    _, cookie = login(harness(App(), store=open_store(redis_url)))
    with listener() as (port, accepted):
        h = harness(App(), store=open_store(f"redis://127.0.0.1:{port}/0"))
        resp, elapsed = timed(lambda: fresh(h, "/read", cookie))
        assert LOWER_BOUND < elapsed < UPPER_BOUND, elapsed
        assert_read_failure(h, resp)
        # One try plus exactly one retry, each on a new connection.
        assert wait_until(lambda: len(accepted) >= 2)
        assert len(accepted) == 2


def test_hung_listener_write_fails_within_bound(harness, open_store):
    with listener() as (port, _):
        h = harness(App(), store=open_store(f"redis://127.0.0.1:{port}/0"))
        start = time.perf_counter()
        with pytest.raises(StoreError) as info:
            fresh(h, "/login")
        elapsed = time.perf_counter() - start
        assert LOWER_BOUND < elapsed < UPPER_BOUND, elapsed
        assert isinstance(info.value.original_error, redis.exceptions.TimeoutError)
        assert h.events.reasons("store_error") == ["write"]
        assert "created" not in h.events.names()


def test_refused_port_fails_fast(harness, redis_url, open_store):
    _, cookie = login(harness(App(), store=open_store(redis_url)))
    with refused_port() as port:
        store = open_store(f"redis://127.0.0.1:{port}/0")
        h = harness(App(), store=store)
        resp, elapsed = timed(lambda: fresh(h, "/read", cookie))
        # Refused: not even the connect timeout is waited for.
        assert elapsed < 0.25, elapsed
        assert_read_failure(h, resp)

        h.events.clear()
        start = time.perf_counter()
        with pytest.raises(StoreError) as info:
            fresh(h, "/login")
        assert time.perf_counter() - start < 0.25
        assert isinstance(info.value.original_error, redis.exceptions.ConnectionError)
        assert h.events.reasons("store_error") == ["write"]


# -- 73: down at read ---------------------------------------------------------------------


def test_73_down_at_read_keeps_the_user_logged_in(harness, private_redis, open_store):
    store = open_store(private_redis.url)
    h = harness(App(), store=store)
    sid, cookie = login(h)
    private_redis.stop()

    h.events.clear()
    assert_read_failure(h, fresh(h, "/read", cookie))

    # Writing to the unreadable session: refused, never clobbering the stored record.
    h.events.clear()
    with pytest.raises(StoreError):
        fresh(h, "/login", cookie)
    assert h.events.reasons("store_error") == ["read", "write"]

    ignoring = harness(App(), store=store, on_store_error="ignore")
    resp = fresh(ignoring, "/login", cookie)
    assert resp.status_int == 200
    assert_no_cookie(resp)
    assert ignoring.events.reasons("store_error") == ["read", "write"]

    # 84: back up with its data gone (no persistence) -> a plain miss, not an error.
    private_redis.start()
    h.events.clear()
    resp = fresh(h, "/read", cookie)
    assert resp.text == "{}"
    assert_no_cookie(resp)
    assert h.events.names() == ["missed"]
    new_sid, _ = login(h, cookie=cookie)
    assert new_sid != sid


def test_73_read_failure_with_unwritable_server_while_app_only_reads(
    harness, private_redis, open_store
):
    """Up at first, the server dies between two reads: the second read fails alone, and
    a request that neither writes nor destroys produces no exception even by default."""
    h = harness(App(), store=open_store(private_redis.url))
    _, cookie = login(h)
    h.events.clear()
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}
    assert h.events.names() == []
    private_redis.stop()
    assert_read_failure(h, fresh(h, "/read", cookie))


@pytest.mark.parametrize("on_store_error", ["raise", "ignore"])
def test_73_store_back_before_commit_still_refuses_the_write(
    harness, redis_url, open_store, raw_client, on_store_error
):
    """The read fails (the pool's only connection is busy elsewhere), the store is usable
    again by the time the app writes: the session stays read-only for this request, so
    the user's session is neither clobbered nor replaced by a new one."""
    client = raw_client(redis_url)
    sid, cookie = login(harness(App(), store=open_store(redis_url)))
    record = client.get(key_for(sid))
    store = open_store(redis_url, max_connections=1)
    pool = store.client.connection_pool
    held = [pool.get_connection()]

    def give_back() -> None:
        pool.release(held.pop())

    h = harness(App(), store=store, on_store_error=on_store_error)
    try:
        if on_store_error == "raise":
            with pytest.raises(StoreError):
                fresh(h, "/login?intruder", cookie, extra_environ={"test.hook": give_back})
        else:
            resp = fresh(h, "/login?intruder", cookie, extra_environ={"test.hook": give_back})
            assert resp.status_int == 200
            assert_no_cookie(resp)
    finally:
        while held:
            pool.release(held.pop())
    assert h.events.reasons("store_error") == ["read", "write"]
    assert "created" not in h.events.names()
    assert client.get(key_for(sid)) == record
    assert client.dbsize() == 1


# -- 74: down at write --------------------------------------------------------------------


@pytest.mark.parametrize("on_store_error", ["raise", "ignore"])
def test_74_down_at_write_of_a_new_session(
    harness, private_redis, open_store, raw_client, on_store_error
):
    app = App()
    h = harness(app, store=open_store(private_redis.url), on_store_error=on_store_error)
    private_redis.stop()
    if on_store_error == "raise":
        with pytest.raises(StoreError) as info:
            fresh(h, "/login")
        assert isinstance(info.value.original_error, redis.exceptions.ConnectionError)
    else:
        resp = fresh(h, "/login")
        assert resp.status_int == 200
        assert_no_cookie(resp)
    assert h.events.reasons("store_error") == ["write"]
    assert "created" not in h.events.names()

    private_redis.start()
    client = raw_client(private_redis.url)
    assert app.ids
    assert client.exists(*[key_for(sid) for sid in app.ids]) == 0
    assert client.dbsize() == 0


def test_74_server_dies_between_read_and_write(harness, private_redis, open_store):
    """The record is read fine, then the server goes away before the update."""
    h = harness(App(), store=open_store(private_redis.url))
    _, cookie = login(h)
    h.events.clear()
    with pytest.raises(StoreError) as info:
        fresh(h, "/login", cookie, extra_environ={"test.hook": private_redis.stop})
    assert isinstance(info.value.original_error, redis.exceptions.ConnectionError)
    assert h.events.reasons("store_error") == ["write"]


# -- 75: down at logout -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/logout", "/read-logout"])
def test_75_down_at_logout_still_clears_the_cookie(harness, private_redis, open_store, path):
    h = harness(App(), store=open_store(private_redis.url))
    _, cookie = login(h)
    private_redis.stop()
    h.events.clear()
    resp = fresh(h, path, cookie)  # no exception, with the default on_store_error="raise"
    assert resp.status_int == 200
    assert cookie_value(resp) == ""
    (header,) = set_cookies(resp)
    assert "Max-Age=0" in header
    assert "destroyed" in h.events.names()
    assert "delete" in h.events.reasons("store_error")
    expected = ["delete"] if path == "/logout" else ["read", "delete"]
    assert h.events.reasons("store_error") == expected


def test_75_logout_with_server_up_deletes_the_record(harness, redis_url, open_store, raw_client):
    h = harness(App(), store=open_store(redis_url))
    sid, cookie = login(h)
    client = raw_client(redis_url)
    assert client.exists(key_for(sid)) == 1
    resp = fresh(h, "/logout", cookie)
    assert cookie_value(resp) == ""
    assert client.exists(key_for(sid)) == 0
    assert "store_error" not in h.events.names()


# -- 76/77: a paused server -----------------------------------------------------------------


def test_76_client_pause_fails_within_bound(harness, private_redis, open_store, raw_client):
    h = harness(App(), store=open_store(private_redis.url))
    _, cookie = login(h)
    pauser = raw_client(private_redis.url)
    h.events.clear()
    try:
        pauser.client_pause(2000, all=True)
        resp, elapsed = timed(lambda: fresh(h, "/read", cookie))
    finally:
        pauser.client_unpause()  # (itself held until the pause ends: at most ~1 s more)
    assert LOWER_BOUND < elapsed < UPPER_BOUND, elapsed
    assert_read_failure(h, resp)
    # Once the pause is over the record is still there.
    h.events.clear()
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}
    assert h.events.names() == []


def test_77_short_pause_within_the_timeout_is_normal(
    harness, private_redis, open_store, raw_client
):
    h = harness(App(), store=open_store(private_redis.url))
    sid, cookie = login(h)
    pauser = raw_client(private_redis.url)
    h.events.clear()
    try:
        pauser.client_pause(100, all=True)
        resp, elapsed = timed(lambda: fresh(h, "/login?again", cookie))
    finally:
        pauser.client_unpause()
    assert 0.03 < elapsed < 0.5, elapsed  # it did wait for the pause, and no more
    assert resp.status_int == 200
    assert resp.text == sid
    assert cookie_value(resp)
    assert "store_error" not in h.events.names()
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER + "again"}


# -- 82: errors that are not connection errors ----------------------------------------------


@pytest.mark.parametrize("on_store_error", ["raise", "ignore"])
def test_82_out_of_memory_is_a_write_failure(
    harness, private_redis, open_store, raw_client, on_store_error
):
    h = harness(App(), store=open_store(private_redis.url), on_store_error=on_store_error)
    _, cookie = login(h)
    client = raw_client(private_redis.url)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")
    h.events.clear()
    # Reads still work on a full server.
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}
    assert h.events.names() == []
    for request_cookie in (None, cookie):  # a new session, then an update
        h.events.clear()
        if on_store_error == "raise":
            with pytest.raises(StoreError) as info:
                fresh(h, "/login", request_cookie)
            assert isinstance(info.value.original_error, redis.exceptions.OutOfMemoryError)
        else:
            resp = fresh(h, "/login", request_cookie)
            assert resp.status_int == 200
            assert_no_cookie(resp)
        assert h.events.reasons("store_error") == ["write"]
        assert "created" not in h.events.names()


def test_82_read_only_replica_is_a_write_failure(harness, private_redis, open_store, raw_client):
    """A replica (here: of a master that refuses connections, so no sync ever wipes the
    data) serves stale reads but refuses writes with READONLY."""
    h = harness(App(), store=open_store(private_redis.url))
    _, cookie = login(h)
    client = raw_client(private_redis.url)
    with refused_port() as master_port:
        client.replicaof("127.0.0.1", master_port)
        try:
            h.events.clear()
            assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}
            with pytest.raises(StoreError) as info:
                fresh(h, "/login", cookie)
            assert isinstance(info.value.original_error, redis.exceptions.ReadOnlyError)
            assert h.events.reasons("store_error") == ["write"]
        finally:
            client.replicaof("NO", "ONE")


def test_82_authentication_error_is_handled_like_an_outage(
    harness, private_redis, open_store, raw_client
):
    sid, cookie = login(harness(App(), store=open_store(private_redis.url)))
    client = raw_client(private_redis.url)
    client.config_set("requirepass", "a-password-the-store-does-not-know")

    for url in (private_redis.url, private_redis.url.replace("//", "//:wrong-password@")):
        store = open_store(url)
        h = harness(App(), store=store)
        assert_read_failure(h, fresh(h, "/read", cookie))
        # Writing to the unreadable session is refused (no clobbering) ...
        h.events.clear()
        with pytest.raises(StoreError):
            fresh(h, "/login", cookie)
        assert h.events.reasons("store_error") == ["read", "write"]
        # ... and a new session's write fails with the server's own error.
        h.events.clear()
        with pytest.raises(StoreError) as info:
            fresh(h, "/login")
        assert isinstance(info.value.original_error, redis.exceptions.AuthenticationError)
        assert h.events.reasons("store_error") == ["write"]
        with pytest.raises(StoreError) as info:
            store.get(key_for(sid))
        assert isinstance(info.value.original_error, redis.exceptions.AuthenticationError)


def test_82_max_clients_on_the_server_is_a_read_failure(
    harness, private_redis, open_store, raw_client
):
    _, cookie = login(harness(App(), store=open_store(private_redis.url)))
    client = raw_client(private_redis.url)
    client.config_set("maxclients", "1")  # this client holds the only slot
    try:
        store = open_store(private_redis.url)
        h = harness(App(), store=store)
        assert_read_failure(h, fresh(h, "/read", cookie))
        with pytest.raises(StoreError) as info:
            store.get("session:anything")
        assert isinstance(info.value.original_error, redis.exceptions.ConnectionError)
    finally:
        client.config_set("maxclients", "10000")


def test_82_exhausted_connection_pool_is_a_read_failure(harness, redis_url, open_store):
    _, cookie = login(harness(App(), store=open_store(redis_url)))
    store = open_store(redis_url, max_connections=1)
    pool = store.client.connection_pool
    held = pool.get_connection()  # the pool's only connection, taken elsewhere
    try:
        h = harness(App(), store=store)
        assert_read_failure(h, fresh(h, "/read", cookie))
        with pytest.raises(StoreError) as info:
            store.get("session:anything")
        assert isinstance(info.value.original_error, redis.exceptions.MaxConnectionsError)
    finally:
        pool.release(held)
    # With the connection back, the same store reads normally.
    h = harness(App(), store=store)
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}


# -- 78: a record is always written with its TTL, in one command ------------------------------


def test_78_records_are_written_with_a_ttl_in_one_command(
    harness, private_redis, open_store, raw_client
):
    client = raw_client(private_redis.url)
    store = open_store(private_redis.url)
    h = harness(App(), store=store, max_age=600)
    roller = harness(App(), store=store, max_age=600, rolling=True, clock=h.clock)
    login(h, "warm-up")  # connections opened before the statistics are reset
    client.config_resetstat()

    cookies = [login(h, str(i))[1] for i in range(20)]
    stats = client.info("commandstats")
    assert stats["cmdstat_set"]["calls"] == 20
    # Nothing but SET wrote: no separate EXPIRE, no MULTI, no SETEX + EXPIRE pairs.
    writers = {name for name in stats if name not in ("cmdstat_set", "cmdstat_info")}
    assert writers <= {"cmdstat_config|resetstat", "cmdstat_hello"}, writers

    def ttls() -> list[int]:
        return [client.ttl(key) for key in client.scan_iter(match=PREFIX + "*", count=1000)]

    values = ttls()
    assert len(values) == 21
    assert all(598 <= ttl <= 600 for ttl in values), values

    # Updates and rolling touches keep a TTL too (and move it).
    h.clock.advance(100)
    for i, cookie in enumerate(cookies):
        if i % 2:
            resp = fresh(h, f"/login?update-{i}", cookie)
            assert cookie_value(resp)
        else:
            for _ in range(3):
                resp = fresh(roller, "/read", cookie)
                assert cookie_value(resp), "rolling re-sends the cookie"
    assert "store_error" not in h.events.names() + roller.events.names()
    values = ttls()
    assert len(values) == 21
    assert all(ttl != -1 for ttl in values)
    assert all(0 < ttl <= 600 for ttl in values), values


def test_78_rolling_touch_moves_a_shortened_ttl_back(harness, redis_url, open_store, raw_client):
    client = raw_client(redis_url)
    h = harness(App(), store=open_store(redis_url), max_age=600, rolling=True)
    sid, cookie = login(h)
    client.pexpire(key_for(sid), 5000)
    h.clock.advance(100)
    resp = fresh(h, "/read", cookie)
    assert json.loads(resp.text) == {"user": MARKER}
    assert cookie_value(resp)
    assert 598 <= client.ttl(key_for(sid)) <= 600


def test_78_browser_session_records_get_the_default_lifetime(
    harness, redis_url, open_store, raw_client
):
    client = raw_client(redis_url)
    h = harness(App(), store=open_store(redis_url), max_age=None)
    sid, _ = login(h)
    assert 24 * 3600 - 2 <= client.ttl(key_for(sid)) <= 24 * 3600


# -- 79: corrupted records -------------------------------------------------------------------


def _corrupt(kind: str, original: bytes, key: str, other_value: bytes, sid: str) -> bytes:
    plaintext, _ = TokenCodec([SECRET]).open_bytes(original, "store", key)
    if kind == "random_bytes":
        return random.Random(79).randbytes(80)
    if kind == "empty":
        return b""
    if kind == "truncated_tag":
        return original[:-1]
    if kind == "truncated_short":
        return original[:20]
    if kind == "flipped_bit":
        return original[:-3] + bytes([original[-3] ^ 0x01]) + original[-2:]
    if kind == "copied_from_another_session":
        return other_value
    if kind == "unknown_version":
        return b"\x02" + original[1:]
    if kind == "other_secret":
        return TokenCodec([OTHER_SECRET]).seal_bytes(plaintext, "store", key)
    if kind == "other_namespace":
        return TokenCodec([SECRET], "another-app").seal_bytes(plaintext, "store", key)
    if kind == "cookie_purpose":
        return TokenCodec([SECRET]).seal_bytes(plaintext, "sid", key)
    if kind == "not_json":
        return TokenCodec([SECRET]).seal_bytes(b"\x80not json at all", "store", key)
    if kind == "record_of_another_id":
        record = json.loads(plaintext)
        record["s"] = sid + "x"
        return TokenCodec([SECRET]).seal_bytes(json.dumps(record).encode(), "store", key)
    if kind == "record_without_data":
        record = json.loads(plaintext)
        del record["d"]
        return TokenCodec([SECRET]).seal_bytes(json.dumps(record).encode(), "store", key)
    raise AssertionError(kind)


CORRUPTIONS = {
    "random_bytes": {"version", "unknown_kid"},
    "empty": {"short"},
    "truncated_tag": {"tampered"},
    "truncated_short": {"short"},
    "flipped_bit": {"tampered"},
    "copied_from_another_session": {"tampered"},
    "unknown_version": {"version"},
    "other_secret": {"unknown_kid"},
    "other_namespace": {"unknown_kid"},
    "cookie_purpose": {"tampered"},
    "not_json": {"decode"},
    "record_of_another_id": {"schema"},
    "record_without_data": {"schema"},
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_79_corrupted_record_is_invalid(harness, redis_url, open_store, raw_client, kind):
    client = raw_client(redis_url)
    h = harness(App(), store=open_store(redis_url))
    sid, cookie = login(h)
    other_sid, _ = login(h, "other-user")
    key = key_for(sid)
    corrupted = _corrupt(kind, client.get(key), key, client.get(key_for(other_sid)), sid)
    client.set(key, corrupted, ex=600)

    h.events.clear()
    resp = fresh(h, "/read", cookie)
    assert resp.status_int == 200
    assert resp.text == "{}"  # in particular, never the other session's data
    assert_no_cookie(resp)
    assert h.events.names() == ["invalid"]
    assert h.events.reasons("invalid")[0] in CORRUPTIONS[kind]

    # A write starts a new session under a new id and a new key; the bad key is left
    # alone (not read as data, not overwritten, not reused).
    h.events.clear()
    new_sid, new_cookie = login(h, "fresh", cookie=cookie)
    assert new_sid not in (sid, other_sid)
    assert h.events.names() == ["invalid", "created"]
    assert client.get(key) == corrupted
    assert 0 < client.ttl(key_for(new_sid)) <= 86400
    assert json.loads(fresh(h, "/read", new_cookie).text) == {"user": MARKER + "fresh"}


# -- 80/84: a missing record is a miss, never an error -----------------------------------------


@pytest.mark.parametrize("how", ["del", "pexpire"])
def test_80_expired_or_evicted_record_is_a_miss(harness, redis_url, open_store, raw_client, how):
    client = raw_client(redis_url)
    h = harness(App(), store=open_store(redis_url))
    sid, cookie = login(h)
    key = key_for(sid)
    if how == "del":
        assert client.delete(key) == 1
    else:
        assert client.pexpire(key, 1)
        assert wait_until(lambda: client.exists(key) == 0)

    h.events.clear()
    resp = fresh(h, "/read", cookie)
    assert resp.text == "{}"
    assert_no_cookie(resp)
    assert h.events.names() == ["missed"]
    assert h.events.reasons("missed") == ["no_record"]

    h.events.clear()
    new_sid, _ = login(h, cookie=cookie)
    assert new_sid != sid
    assert h.events.names() == ["missed", "created"]
    assert client.exists(key) == 0  # the old id is never recreated
    assert client.exists(key_for(new_sid)) == 1


def test_84_restart_without_persistence_is_a_miss(harness, private_redis, open_store, raw_client):
    h = harness(App(), store=open_store(private_redis.url))
    sid, cookie = login(h)
    # Restart with the store's pooled connection left stale: the one retry reconnects.
    private_redis.stop()
    private_redis.start()

    h.events.clear()
    resp = fresh(h, "/read", cookie)
    assert resp.text == "{}"
    assert_no_cookie(resp)
    assert h.events.names() == ["missed"]

    h.events.clear()
    new_sid, new_cookie = login(h, cookie=cookie)
    assert new_sid != sid
    assert "store_error" not in h.events.names()
    client = raw_client(private_redis.url)
    assert client.exists(key_for(sid)) == 0
    assert client.exists(key_for(new_sid)) == 1
    assert json.loads(fresh(h, "/read", new_cookie).text) == {"user": MARKER}


# -- 81: a record without a TTL ----------------------------------------------------------------


def test_81_persisted_record_gets_its_ttl_back_on_the_next_write(
    harness, redis_url, open_store, raw_client
):
    client = raw_client(redis_url)
    store = open_store(redis_url)
    h = harness(App(), store=store, max_age=600, absolute_max_age=3600)
    roller = harness(
        App(), store=store, max_age=600, absolute_max_age=3600, rolling=True, clock=h.clock
    )
    sid, cookie = login(h)
    key = key_for(sid)

    assert client.persist(key)
    assert client.ttl(key) == -1
    h.clock.advance(100)
    _, cookie = login(h, "rewrite", cookie=cookie)  # same id: an update
    assert 598 <= client.ttl(key) <= 600

    assert client.persist(key)
    h.clock.advance(100)
    resp = fresh(roller, "/read", cookie)  # a rolling touch
    assert json.loads(resp.text) == {"user": MARKER + "rewrite"}
    assert 598 <= client.ttl(key) <= 600
    cookie = f"session={cookie_value(resp)}"

    # Near the absolute end, the restored TTL is capped by it.
    for _ in range(6):  # keep the idle expiry alive up to T0 + 3550
        assert client.persist(key)
        h.clock.advance(550)
        resp = fresh(roller, "/read", cookie)
        assert json.loads(resp.text) == {"user": MARKER + "rewrite"}
        cookie = f"session={cookie_value(resp)}"
    assert h.clock.now == T0 + 3500
    assert client.persist(key)
    h.clock.advance(50)
    resp = fresh(roller, "/read", cookie)
    assert json.loads(resp.text) == {"user": MARKER + "rewrite"}
    assert 0 < client.ttl(key) <= 50

    # Past the absolute end, a record without TTL still does not serve the session.
    assert client.persist(key)
    h.clock.advance(100)
    h.events.clear()
    resp = fresh(h, "/read", cookie)
    assert resp.text == "{}"
    assert_no_cookie(resp)
    assert h.events.names() == ["expired"]


def test_81_absolute_expiry_inside_the_record_is_enforced(
    harness, redis_url, open_store, raw_client
):
    """The cookie is still valid but the record (legacy, no TTL) says the session ended:
    the record's own ``a`` wins."""
    client = raw_client(redis_url)
    h = harness(App(), store=open_store(redis_url), max_age=600)
    sid, cookie = login(h)
    key = key_for(sid)
    record = {"c": T0, "a": T0 + 50, "s": sid, "d": {"user": MARKER + "legacy"}}
    sealed = TokenCodec([SECRET]).seal_bytes(json.dumps(record).encode(), "store", key)
    client.set(key, sealed)  # no TTL at all
    assert client.ttl(key) == -1

    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER + "legacy"}
    h.clock.advance(60)
    h.events.clear()
    resp = fresh(h, "/read", cookie)
    assert resp.text == "{}"
    assert_no_cookie(resp)
    assert h.events.names() == ["expired"]
    assert h.events.reasons("expired") == ["absolute"]

    h.events.clear()
    new_sid, _ = login(h, cookie=cookie)
    assert new_sid != sid
    assert 598 <= client.ttl(key_for(new_sid)) <= 600


# -- 83: nothing readable in Redis ----------------------------------------------------------


def test_83_keys_are_hashed_and_values_sealed(harness, redis_url, open_store, raw_client):
    client = raw_client(redis_url)
    h = harness(App(), store=open_store(redis_url))
    ids = [login(h, f"n{i}")[0] for i in range(100)]
    assert len(set(ids)) == 100

    keys = [key.decode() for key in client.scan_iter(count=1000)]
    assert len(keys) == 100
    assert all(KEY_RE.fullmatch(key) for key in keys), keys[:3]
    assert set(keys) == {key_for(sid) for sid in ids}

    kid = bytes.fromhex(TokenCodec([SECRET]).key_ids[0])
    for key in keys:
        value = client.get(key)
        dumped = client.dump(key)
        assert value.startswith(b"\x01" + kid)
        for blob in (value, dumped):
            assert MARKER.encode() not in blob
            assert b"user" not in blob
            assert not any(sid.encode() in blob for sid in ids)
        assert not any(sid in key for sid in ids)
