"""``MemcachedStore`` against real memcached servers (issue 15, items 2 and 5).

* ``TestMemcachedStore``: the one store contract (``StoreContract``) over
  ``MemcachedStore(servers=...)`` on a real ``memcached -l 127.0.0.1 -p <free> -U 0``.
* The store itself: configuration, keys memcached cannot take, expiries over 30 days,
  the item size limit (ours, before sending, and the server's), ``move()`` and its
  interleavings, ``ping()``, several servers without failover, fork safety.
* Faults through the middleware: a stopped server (read, write, logout), a restart, a
  hung listener and a paused (SIGSTOP) memcached with measured waits, a refused port,
  a full server (``-m 2 -M``), eviction (``-m 2``), a smaller item limit (``-I 64k``),
  an exhausted connection pool, the wrong service on the port, corrupted records.
* Concurrency: 32 threads through one middleware; no resurrection after a logout or a
  ``regenerate()``.

Every server is real (``servers.py``: started on free loopback ports, stopped by PID).
The only stand-ins are TCP listeners that never answer or answer garbage, and one
subclass that runs a "concurrent" logout at an exact point inside ``move()``.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import SECRET, Harness, call_wsgi, cookie_value, set_cookies
from tests.stores import test_concurrency as concurrency
from tests.stores.test_concurrency import (
    ORIGINAL,
    WAIT,
    Background,
    _seed,
    is_deletion,
    record,
    run_threads,
    sid_of,
    token,
    wait,
)
from tests.stores.test_contract import StoreContract, store_key
from wsgisession import StoreError
from wsgisession.codec import TokenCodec

if os.environ.get("WSGISESSION_REQUIRE_REDIS") != "1":  # CI: a missing pymemcache fails
    pytest.importorskip("pymemcache", reason="pip install 'wsgisession[memcached]'")
from pymemcache.client.base import Client, PooledClient, check_key_helper
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheServerError

from tests.stores.faults import (
    assert_read_failure,
    fresh,
    listener,
    login,
    refused_port,
    timed,
    wait_until,
)
from wsgisession.stores.memcached import (
    DEFAULT_MAX_VALUE_SIZE,
    MemcachedStore,
)

DAY = 24 * 3600
MARKER = "PLAINTEXT-MARKER-7d2a"
KEY_RE = re.compile(r"^session:[0-9a-f]{64}$")
#: A hung server costs one read timeout (0.5 s) and no retry: a timeout is not retried.
#: (The upper bound leaves room for a loaded CI machine; measured: 0.50-0.52 s.)
LOWER_BOUND = 0.4
UPPER_BOUND = 1.0


# -- helpers -----------------------------------------------------------------------------


def mg_ttl(raw: Any, wire: str) -> int | None:
    """Seconds left on item ``wire`` by memcached's meta get (``-1``: none); KeyError
    if it is absent."""
    line = raw.raw_command(f"mg {wire} t")
    if line == b"EN":
        raise KeyError(wire)
    flags = {token[:1]: token[1:] for token in line.split()[1:]}
    seconds = int(flags[b"t"])
    return None if seconds == -1 else seconds


def after_a_tick(raw: Any) -> None:
    """Return just after memcached's clock ticks (it counts whole seconds), so that a
    test has most of a second before a 1 s record can expire."""
    start = raw.stats()[b"time"]
    deadline = time.monotonic() + 2
    while raw.stats()[b"time"] == start:
        assert time.monotonic() < deadline, "memcached's clock did not tick"
        time.sleep(0.002)


@pytest.fixture
def open_store() -> Iterator[Callable[..., MemcachedStore]]:
    """Factory: ``open_store(*servers, **kw)`` -> MemcachedStore; closed afterwards."""
    made: list[MemcachedStore] = []

    def factory(*servers: Any, **kw: Any) -> MemcachedStore:
        store = MemcachedStore(servers=list(servers), **kw)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


@pytest.fixture
def raw(memcached) -> Iterator[Any]:
    client = memcached.client()
    yield client
    client.close()


class App:
    """``/login`` writes ``user`` (after ``environ["test.hook"]``, if any) and answers
    the session id; ``/read`` the data as JSON; ``/logout`` destroys without loading;
    ``/read-logout`` loads, then destroys; ``/big`` writes ``size`` characters."""

    def __call__(self, environ: dict[str, Any], session: Any) -> Any:
        path = environ["PATH_INFO"]
        if path == "/login":
            session.get("user")  # load first: the hook may take the store down
            hook = environ.get("test.hook")
            if hook is not None:
                hook()
            session["user"] = MARKER + environ.get("QUERY_STRING", "")
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
        if path == "/big":
            session["blob"] = "x" * int(environ["QUERY_STRING"])
            return session.id
        return ("404 Not Found", "no such path")


# ======================================================================================
# The store contract
# ======================================================================================


class MemcachedHooks:
    """The contract's inspection hooks over a raw pymemcache ``Client`` ``self.raw``:
    TTLs by meta get (``mg <key> t``), real waits. Keys go through the store's
    ``wire_key`` (keys memcached cannot take are hashed)."""

    raw: Any
    store: Any

    def remaining(self, key):
        seconds = mg_ttl(self.raw, self.store.wire_key(key))
        return None if seconds is None else float(seconds)

    def set_remaining(self, key, seconds):
        assert self.raw.touch(self.store.wire_key(key), seconds, noreply=False)

    def raw_get(self, key):
        return self.raw.get(self.store.wire_key(key))

    def elapse(self, seconds):
        time.sleep(seconds)  # memcached's own clock


class TestMemcachedStore(MemcachedHooks, StoreContract):
    """The contract over MemcachedStore(servers=...) on a real memcached."""

    # memcached has no operation over several keys at once, so MemcachedStore has no
    # index methods: no "my sessions" list and no index-based "log out everywhere" in
    # store mode on memcached (revoke_all works with a revocation_store:
    # test_revocation_generation_in_store_mode_too runs here).
    test_a_user_lists_and_revokes_their_sessions = None
    test_log_out_everywhere_but_here = None
    test_logout_regenerate_and_expiry_keep_the_list_true = None
    test_index_put_and_get_round_trip_entries_exactly = None
    test_index_members_expire_on_their_own = None
    test_index_revoke_deletes_records_and_members_together = None

    @pytest.fixture
    def store(self, memcached, raw):
        self.raw = raw
        store = MemcachedStore(servers=memcached.address)
        yield store
        store.close()

    def test_ttl_is_honoured(self):
        """As the contract's, started right after one of memcached's once-a-second
        ticks: a 1 s record lives between 0 and 1 s there, and the contract reads it
        back at once."""
        after_a_tick(self.raw)
        super().test_ttl_is_honoured()

    def test_memcached_store_has_no_index_methods(self):
        for name in ("index_put", "index_get", "index_revoke", "sweep"):
            assert not hasattr(self.store, name), name


# ======================================================================================
# The store itself
# ======================================================================================


def test_servers_get_pools_with_short_timeouts(memcached, open_store):
    store = open_store(memcached.address)
    assert store.servers == [memcached.address]
    (pool,) = store.clients.values()
    assert isinstance(pool, PooledClient)
    assert (pool.connect_timeout, pool.timeout) == (0.25, 0.5)
    assert pool.client_pool.max_size == 50
    assert pool.default_noreply is False
    assert pool.no_delay is True
    assert pool.ignore_exc is False
    store.set("session:probe", b"\x01value", 5)
    assert store.get("session:probe") == b"\x01value"
    assert repr(store) == f"<MemcachedStore servers={memcached.address}>"


def test_pymemcache_defaults_would_wait_forever_and_drop_writes():
    """The contrast: pymemcache's own defaults are no timeouts and noreply=True."""
    client = PooledClient(("127.0.0.1", 1))
    assert client.connect_timeout is None and client.timeout is None
    assert client.default_noreply is True


@pytest.mark.parametrize(
    ("url", "servers"),
    [
        ("memcached://127.0.0.1:11299", ["127.0.0.1:11299"]),
        ("memcached://cache-a:11211,cache-b:11212", ["cache-a:11211", "cache-b:11212"]),
        ("memcached://cache", ["cache:11211"]),
        ("memcached://[::1]:11213/", ["::1:11213"]),
    ],
)
def test_from_url(url, servers):
    store = MemcachedStore.from_url(url, timeout=0.3)
    assert store.servers == servers
    assert all(pool.timeout == 0.3 for pool in store.clients.values())


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "memcached://",
        "memcached://h:1/0",
        "memcached://h:1?timeout=1",
        "memcached://h:1#x",
        "memcached://h:99999",
        "memcached://h:abc",
        "memcached://h:1,,h:2",
        "memcached://[::1",
        "memcached://[::1]x",
    ],
)
def test_from_url_refuses(url):
    from wsgisession import ConfigurationError

    with pytest.raises(ConfigurationError):
        MemcachedStore.from_url(url)


def test_from_url_with_credentials_is_refused_without_echoing_them():
    from wsgisession import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        MemcachedStore.from_url("memcached://admin:s3cret-pw@127.0.0.1:11211")
    assert "s3cret-pw" not in str(info.value) and "admin" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({}, "store"),
        ({"servers": "h:1", "client": "both"}, "store"),
        ({"servers": "h:1", "connect_timeout": 0}, "connect_timeout"),
        ({"servers": "h:1", "timeout": -1}, "timeout"),
        ({"servers": "h:1", "timeout": True}, "timeout"),
        ({"servers": "h:1", "timeout": "1"}, "timeout"),
        ({"servers": "h:1", "max_value_size": 0}, "max_value_size"),
        ({"servers": "h:1", "max_pool_size": 0}, "max_pool_size"),
        ({"servers": "h:1", "clock": 5}, "clock"),
        ({"servers": []}, "servers"),
        ({"servers": 42}, "servers"),
        ({"servers": [42]}, "servers"),
        ({"servers": ["h:1", "h:1"]}, "servers"),
        ({"servers": "/tmp/memcached.sock"}, "servers"),
        ({"servers": ("h", "x")}, "servers"),
    ],
)
def test_configuration_errors(kwargs, option):
    from wsgisession import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        MemcachedStore(**kwargs)
    assert info.value.option == option


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: HashClient([("127.0.0.1", 1)], timeout=1, connect_timeout=1), "HashClient"),
        (lambda: Client(("127.0.0.1", 1), timeout=1, connect_timeout=1), "thread-safe"),
        (
            lambda: PooledClient(("127.0.0.1", 1), timeout=1, connect_timeout=1, ignore_exc=True),
            "ignore_exc",
        ),
        (lambda: PooledClient(("127.0.0.1", 1), connect_timeout=1), "timeout"),
        (lambda: PooledClient(("127.0.0.1", 1), timeout=1), "connect_timeout"),
        (
            lambda: PooledClient(
                ("127.0.0.1", 1), timeout=1, connect_timeout=1, key_prefix=b"p" * 190
            ),
            "key_prefix",
        ),
    ],
)
def test_clients_that_would_break_the_guarantees_are_refused(make, words):
    from wsgisession import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        MemcachedStore(client=make())
    assert words in str(info.value)
    assert info.value.option == "client"


def test_a_pooled_client_of_your_own_is_used_as_is(memcached):
    client = PooledClient(
        ("127.0.0.1", memcached.port), connect_timeout=1, timeout=1, key_prefix=b"app:"
    )
    store = MemcachedStore(client=client)
    try:
        assert store.clients == {memcached.address: client}
        key = "session:" + "x" * 240  # fits 250 bytes alone, not after "app:"
        store.set(key, b"v", 60)
        wire = store.wire_key(key)
        assert wire.startswith("~h:")
        assert memcached.keys() == ["app:" + wire]
        store.set("session:short", b"w", 60)
        assert memcached.call(lambda c: c.get("app:session:short")) == b"w"
        store.ping()
    finally:
        client.close()


def test_hashclient_answers_without_asking_the_server_after_an_error():
    """Why MemcachedStore does not take a HashClient: after one connection error its
    calls for that server, for retry_timeout (1 s), return defaults without asking —
    a read misses, and a logout's delete reports nothing, silently."""
    with refused_port() as port:
        client = HashClient([("127.0.0.1", port)], connect_timeout=0.25, timeout=0.5)
        with pytest.raises(ConnectionRefusedError):
            client.get("session:a")
        assert client.get("session:a") is None  # no exception: a "miss"
        assert client.delete("session:a", noreply=False) is False  # "nothing to delete"
        client.close()


# -- keys ------------------------------------------------------------------------------


def test_the_middlewares_keys_are_kept_as_they_are(memcached, open_store):
    store = open_store(memcached.address)
    key = store_key("some-session-id")
    assert store.wire_key(key) == key
    for prefix_length in (186, 187):
        key = "p" * prefix_length + "a" * 64
        wire = store.wire_key(key)
        assert (wire == key) is (prefix_length == 186)


@pytest.mark.parametrize(
    "key",
    ["with space", "tab\tkey", "nul\x00", "del\x7f", "ünïcode:✓", "x" * 251, "", "~h:abc"],
)
def test_keys_memcached_cannot_take_are_hashed(memcached, open_store, key):
    store = open_store(memcached.address)
    wire = store.wire_key(key)
    assert re.fullmatch(r"~h:[0-9a-f]{64}", wire)
    check_key_helper(wire, allow_unicode_keys=False)  # a valid memcached key
    store.set(key, b"v", 60)
    assert store.get(key) == b"v"
    assert memcached.keys() == [wire]


def test_hashed_keys_never_collide_with_kept_ones(memcached, open_store):
    store = open_store(memcached.address)
    keys = ["with space", "with\tspace", "x" * 251, "x" * 252, "", " ", "~h:", "é"]
    hashed = store.wire_key("with space")
    keys.append(hashed)  # a key that looks like a hashed one is hashed again
    wires = [store.wire_key(key) for key in keys]
    assert len(set(wires)) == len(keys)
    for index, key in enumerate(keys):
        store.set(key, str(index).encode(), 60)
    assert [store.get(key) for key in keys] == [str(i).encode() for i in range(len(keys))]


@pytest.mark.parametrize("prefix", ["p" * 300 + ":", "sessión:", "my app:"])
def test_a_prefix_memcached_cannot_take_still_works(memcached, open_store, harness, prefix):
    h = harness(App(), store=open_store(memcached.address), prefix=prefix)
    sid, cookie = login(h)
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}
    (wire,) = memcached.keys()
    assert wire == h.mw.store.wire_key(store_key(sid, prefix))
    assert wire.startswith("~h:")
    assert is_deletion_response(fresh(h, "/logout", cookie))
    assert memcached.keys() == []


def is_deletion_response(resp) -> bool:
    return cookie_value(resp) == "" and "Max-Age=0" in set_cookies(resp)[0]


# -- expiries --------------------------------------------------------------------------


def test_an_expiry_over_30_days_is_sent_as_a_unix_time(memcached, raw, open_store):
    store = open_store(memcached.address)
    ttl = 40 * DAY
    store.set("set", b"v", ttl)
    assert store.create("create", b"v", ttl)
    store.set("update", b"v", 5)
    assert store.update("update", b"w", ttl)
    store.set("touch", b"v", 5)
    assert store.touch("touch", ttl)
    store.set("old", b"v", 5)
    assert store.move("old", "moved", b"v", ttl)
    for key in ("set", "create", "update", "touch", "moved"):
        left = mg_ttl(raw, key)
        # memcached's clock lags real time by up to a second: one more is fine.
        assert left is not None and ttl - 5 < left <= ttl + 1, (key, left)
        assert store.get(key) is not None


def test_memcached_reads_a_relative_40_day_expiry_as_1970(memcached, raw):
    """What the conversion prevents: 40 days in seconds is a Unix time in 1970, and the
    item has expired before it is read."""
    assert raw.set("naive", b"v", 40 * DAY, noreply=False)
    assert raw.get("naive") is None


def test_30_days_exactly_stays_relative_and_none_never_expires(memcached, raw, open_store):
    store = open_store(memcached.address, clock=lambda: 0.0)  # a clock that is never used
    store.set("month", b"v", 30 * DAY)
    store.set("forever", b"v", None)
    assert mg_ttl(raw, "month") == 30 * DAY
    assert mg_ttl(raw, "forever") is None


def test_the_long_expiry_follows_the_given_clock(memcached, raw, open_store):
    """A Unix-time expiry is read by the server's clock: a skew between the two moves
    it (here: our clock 10 days behind the server's)."""
    store = open_store(memcached.address, clock=lambda: time.time() - 10 * DAY)
    store.set("skewed", b"v", 40 * DAY)
    left = mg_ttl(raw, "skewed")
    assert left is not None and 30 * DAY - 5 < left <= 30 * DAY + 1


def test_a_ttl_below_one_second_has_expired(memcached, open_store):
    store = open_store(memcached.address)
    store.set("zero", b"v", 0)
    assert store.get("zero") is None


def test_a_90_day_session_lives_90_days(memcached, raw, open_store, harness):
    h = harness(App(), store=open_store(memcached.address), max_age=90 * DAY)
    sid, cookie = login(h)
    left = mg_ttl(raw, store_key(sid))
    assert left is not None and 90 * DAY - 5 < left <= 90 * DAY + 1
    h.clock.advance(60 * DAY)
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}


# -- the item size limit ------------------------------------------------------------------


def test_a_value_over_max_value_size_is_refused_before_sending(memcached, open_store):
    store = open_store(memcached.address, max_value_size=1000)
    store.set("old", b"small", 60)
    before = memcached.stats()
    for call in (
        lambda: store.set("k", b"x" * 1001, 60),
        lambda: store.create("k", b"x" * 1001, 60),
        lambda: store.update("old", b"x" * 1001, 60),
        lambda: store.move("old", "new", b"x" * 1001, 60),
    ):
        with pytest.raises(StoreError, match=r"1001 bytes .* max_value_size=1000"):
            call()
    after = memcached.stats()
    assert after[b"cmd_set"] == before[b"cmd_set"]  # nothing was sent
    assert store.get("old") == b"small" and store.get("new") is None
    store.set("k", b"x" * 1000, 60)
    assert store.get("k") == b"x" * 1000


def test_the_default_limit_fits_memcacheds_default_item_size(memcached, open_store):
    store = open_store(memcached.address)
    longest = "k" * 250
    store.set(longest, b"x" * DEFAULT_MAX_VALUE_SIZE, 60)
    assert store.get(longest) == b"x" * DEFAULT_MAX_VALUE_SIZE
    with pytest.raises(StoreError, match="max_value_size"):
        store.set(longest, b"x" * (DEFAULT_MAX_VALUE_SIZE + 1), 60)


def test_a_server_with_a_smaller_item_limit_refuses_loudly(private_memcached, open_store):
    """``-I 64k``: our limit lets 100 KiB through, the server refuses it — an error,
    not a silent drop (every write waits for the server's answer)."""
    server = private_memcached("-I", "64k", "-o", "slab_chunk_max=32768")
    store = open_store(server.address)
    store.set("old", b"small", 60)
    big = os.urandom(100 * 1024)
    for what, call in (
        ("SET", lambda: store.set("k", big, 60)),
        ("ADD", lambda: store.create("k", big, 60)),
        ("REPLACE", lambda: store.update("old", big, 60)),
    ):
        with pytest.raises(StoreError) as info:
            call()
        assert str(info.value) == (
            f"memcached {what} failed: MemcacheServerError ({server.address})"
        )
        assert b"too large" in info.value.original_error.args[0]
    assert store.get("k") is None
    assert store.get("old") == b"small"


def test_a_session_too_large_for_the_store_is_a_write_error(memcached, open_store, harness):
    store = open_store(memcached.address, max_value_size=2000)
    h = harness(App(), store=store)
    with pytest.raises(StoreError, match="max_value_size=2000"):
        fresh(h, "/big?5000")
    assert h.events.reasons("store_error") == ["write"]
    assert memcached.keys() == []
    # An existing session grown too large: refused, the saved record left as it was.
    sid, cookie = login(h)
    saved = memcached.call(lambda c: c.get(store_key(sid)))
    h.events.clear()
    with pytest.raises(StoreError):
        fresh(h, "/big?5000", cookie)
    assert memcached.call(lambda c: c.get(store_key(sid))) == saved


def big_login(h: Harness, size: int) -> tuple[str, str, bytes]:
    """A new session holding ``size`` characters: (id, Cookie header, stored record)."""
    resp = fresh(h, f"/big?{size}")
    value = cookie_value(resp)
    assert value, set_cookies(resp)
    sid = resp.text
    return sid, f"session={value}", h.mw.store.get(store_key(sid))


def test_a_full_server_refuses_writes_with_an_error(private_memcached, open_store, harness):
    """``-m 2 -M``: out of memory is an error memcached returns (no eviction)."""
    server = private_memcached("-m", "2", "-M")
    store = open_store(server.address)
    h = harness(App(), store=store)
    sid, cookie, stored = big_login(h, 90_000)
    with pytest.raises(StoreError) as info:
        for index in range(100):  # fill the record's size class
            store.set(f"filler:{index}", os.urandom(len(stored)), None)
    assert isinstance(info.value.original_error, MemcacheServerError)
    assert b"out of memory" in info.value.original_error.args[0]
    # Reads still work; a new session or an update of that size fails loudly.
    h.events.clear()
    assert len(json.loads(fresh(h, "/read", cookie).text)["blob"]) == 90_000
    for request_cookie in (None, cookie):
        h.events.clear()
        with pytest.raises(StoreError, match=r"MemcacheServerError"):
            fresh(h, "/big?90000", request_cookie)
        assert h.events.reasons("store_error") == ["write"]
    assert store.get(store_key(sid)) == stored


def test_eviction_logs_users_out(private_memcached, open_store, harness):
    """``-m 2`` (memcached's default policy): a full server evicts the least recently
    used records, whose users get a fresh session (``missed``) — the failure mode the
    docs warn about."""
    server = private_memcached("-m", "2")
    store = open_store(server.address)
    h = harness(App(), store=store)
    _, cookie, stored = big_login(h, 90_000)
    for index in range(40):
        store.set(f"filler:{index}", os.urandom(len(stored)), None)
    assert server.stats()[b"evictions"] > 0
    h.events.clear()
    resp = fresh(h, "/read", cookie)
    assert resp.text == "{}"
    assert h.events.names() == ["missed"]


# -- move() ------------------------------------------------------------------------------


def test_move_replaces_the_old_record_in_two_commands(memcached, raw, open_store):
    store = open_store(memcached.address)
    store.set("old", b"old-value", 60)
    before = memcached.stats()
    assert store.move("old", "new", b"new-value", 100) is True
    after = memcached.stats()
    assert store.get("old") is None and store.get("new") == b"new-value"
    assert 95 < mg_ttl(raw, "new") <= 100
    assert after[b"cmd_set"] - before[b"cmd_set"] == 1  # the add
    assert after[b"delete_hits"] - before[b"delete_hits"] == 1  # the old record
    assert after[b"delete_misses"] == before[b"delete_misses"]


def test_move_of_a_missing_record_leaves_nothing(memcached, open_store):
    store = open_store(memcached.address)
    assert store.move("gone", "new", b"v", 100) is False
    assert memcached.keys() == []


def test_move_onto_an_existing_record_changes_nothing(memcached, open_store):
    store = open_store(memcached.address)
    store.set("old", b"old", 60)
    store.set("new", b"someone-else", 60)
    assert store.move("old", "new", b"mine", 100) is False
    assert store.get("old") == b"old" and store.get("new") == b"someone-else"


class LogoutInsideMove(MemcachedStore):
    """A store whose move() meets a concurrent logout at an exact point: right after
    its add of the new record, a raw client deletes the old one."""

    logout: Callable[[], None]

    def create(self, key, value, ttl):
        created = super().create(key, value, ttl)
        self.logout()
        return created


def test_a_logout_between_the_add_and_the_delete_wins(memcached):
    store = LogoutInsideMove(servers=memcached.address)
    store.logout = lambda: memcached.call(lambda c: c.delete("old", noreply=False))
    try:
        store.set("old", b"session", 60)
        assert store.move("old", "new", b"regenerated", 100) is False
        assert memcached.keys() == []  # neither id survives
    finally:
        store.close()


def test_a_move_whose_server_dies_inside_it_fails_loudly(memcached):
    store = LogoutInsideMove(servers=memcached.address)
    store.logout = memcached.stop
    try:
        store.set("old", b"session", 60)
        with pytest.raises(StoreError, match="memcached DELETE failed"):
            store.move("old", "new", b"regenerated", 100)
    finally:
        store.close()


def test_a_failed_delete_of_the_old_record_removes_the_new_one(private_memcached):
    """Old and new on two servers; the old one's server dies inside move(): the move
    fails loudly and the new record is deleted again."""
    a, b = private_memcached(), private_memcached()
    store = LogoutInsideMove(servers=[a.address, b.address])
    try:
        old = next(k for k in (f"old{i}" for i in range(100)) if store.server_for(k) == a.address)
        new = next(k for k in (f"new{i}" for i in range(100)) if store.server_for(k) == b.address)
        store.set(old, b"session", 60)
        store.logout = a.stop
        with pytest.raises(StoreError) as info:
            store.move(old, new, b"regenerated", 100)
        assert str(info.value) == (f"memcached DELETE failed: ConnectionRefusedError ({a.address})")
        assert b.keys() == []
    finally:
        store.close()


# -- ping, errors --------------------------------------------------------------------------


def test_ping(private_memcached, open_store):
    a, b = private_memcached(), private_memcached()
    store = open_store(a.address, b.address)
    store.ping()
    b.stop()
    with pytest.raises(StoreError) as info:
        store.ping()
    assert str(info.value) == f"memcached VERSION failed: ConnectionRefusedError ({b.address})"
    assert isinstance(info.value.original_error, ConnectionRefusedError)


@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("GET", lambda s: s.get("session:secret-key")),
        ("SET", lambda s: s.set("session:secret-key", b"v", 5)),
        ("ADD", lambda s: s.create("session:secret-key", b"v", 5)),
        ("REPLACE", lambda s: s.update("session:secret-key", b"v", 5)),
        ("TOUCH", lambda s: s.touch("session:secret-key", 5)),
        ("DELETE", lambda s: s.delete("session:secret-key")),
        ("ADD", lambda s: s.move("session:secret-old", "session:secret-key", b"v", 5)),
    ],
)
def test_errors_name_the_command_the_exception_and_the_server(open_store, what, call):
    with refused_port() as port:
        store = open_store(f"127.0.0.1:{port}")
        with pytest.raises(StoreError) as info:
            call(store)
    assert str(info.value) == f"memcached {what} failed: ConnectionRefusedError (127.0.0.1:{port})"
    assert "secret" not in str(info.value)
    assert isinstance(info.value.original_error, ConnectionRefusedError)


def test_every_write_waits_for_the_servers_answer(open_store):
    """Against a listener that never answers, our write fails after the read timeout;
    pymemcache's default (noreply) would have reported success at once."""
    with listener() as (port, _):
        quiet = Client(("127.0.0.1", port), connect_timeout=0.25, timeout=0.5)
        (ok, elapsed) = timed(lambda: quiet.set("k", b"v", 60))
        assert ok is True and elapsed < 0.1  # a silent "success"
        quiet.close()
        store = open_store(f"127.0.0.1:{port}")
        with pytest.raises(StoreError) as info:
            store.set("k", b"v", 60)
        assert isinstance(info.value.original_error, TimeoutError)


class OddClient:
    """A stand-in for a client that misbehaves in ways no real server can make it:
    a bug of its own (``ZeroDivisionError``), a ``RuntimeError`` raised outside
    pymemcache, or a ``set`` that reports "not stored"."""

    connect_timeout = timeout = 1.0

    def __init__(self, fault: BaseException | None = None) -> None:
        self.fault = fault

    def get(self, key):
        raise self.fault

    def set(self, key, value, expire, noreply):
        return False


def test_bugs_are_not_store_errors(memcached, open_store):
    store = open_store(memcached.address)
    with pytest.raises(TypeError):
        store.set("k", "not bytes", 60)  # type: ignore[arg-type]
    for fault in (ZeroDivisionError("bug"), RuntimeError("not from pymemcache")):
        odd = MemcachedStore(client=OddClient(fault))
        assert odd.servers == ["OddClient"]
        with pytest.raises(type(fault)):
            odd.get("k")


def test_a_write_the_server_did_not_store_is_an_error():
    with pytest.raises(StoreError, match=r"memcached SET was not stored \(OddClient\)"):
        MemcachedStore(client=OddClient()).set("k", b"v", 5)


def test_a_unix_socket_client_is_named_by_its_path():
    client = PooledClient("/run/memcached/memcached.sock", connect_timeout=1, timeout=1)
    assert MemcachedStore(client=client).servers == ["unix:/run/memcached/memcached.sock"]


def test_after_a_fork_the_next_call_opens_new_pools(memcached, open_store):
    """What a forked worker does on its first call (checked here without forking,
    by making the store believe it was made in another process)."""
    store = open_store(memcached.address)
    store.set("k", b"v", 60)
    (inherited,) = store.clients.values()
    (conn,) = inherited.client_pool.free
    for use in (lambda: store.get("k"), store.ping):
        store._pid = -1
        before = store.clients[memcached.address]
        use()
        assert store._pid == os.getpid()
        assert store.clients[memcached.address] is not before
    assert conn.sock is None  # the inherited connection was closed (in the child only)
    assert store.get("k") == b"v"


# -- several servers ---------------------------------------------------------------------


def test_several_servers_share_the_keys_as_hashclient_places_them(private_memcached, open_store):
    a, b = private_memcached(), private_memcached()
    store = open_store(a.address, b.address)
    keys = [store_key(f"id-{i}") for i in range(200)]
    for key in keys:
        store.set(key, key.encode(), 60)
    on_a, on_b = set(a.keys()), set(b.keys())
    assert on_a and on_b and on_a | on_b == set(keys) and not on_a & on_b
    assert all(store.server_for(k) == (a.address if k in on_a else b.address) for k in keys)
    # pymemcache's HashClient finds every record where this store put it.
    other = HashClient([("127.0.0.1", a.port), ("127.0.0.1", b.port)], connect_timeout=1, timeout=1)
    try:
        assert all(other.get(key) == key.encode() for key in keys)
    finally:
        other.close()


def test_a_down_server_fails_its_own_keys_and_never_moves_them(private_memcached, open_store):
    a, b = private_memcached(), private_memcached()
    store = open_store(a.address, b.address)
    keys = [store_key(f"id-{i}") for i in range(40)]
    for key in keys:
        store.set(key, b"v", 60)
    a.stop()
    for _ in range(3):  # repeated failures never move the keys to b
        for key in keys:
            if store.server_for(key) == a.address:
                for call in (store.get, store.delete, lambda k: store.set(k, b"w", 60)):
                    with pytest.raises(StoreError, match=re.escape(a.address)):
                        call(key)
            else:
                assert store.get(key) == b"v"
    assert set(b.keys()) == {k for k in keys if store.server_for(k) == b.address}


# -- fork safety ---------------------------------------------------------------------------


def test_a_forked_worker_opens_its_own_connections(memcached, open_store, tmp_path):
    """gunicorn --preload: the store is used in the parent, then the worker forks;
    the worker must not talk over the parent's pooled socket."""
    store = open_store(memcached.address)
    store.set("parent", b"p", 60)
    (pool,) = store.clients.values()
    (parent_conn,) = pool.client_pool.free
    parent_port = parent_conn.sock.getsockname()[1]
    out = tmp_path / "child.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            store.set("child", b"c", 60)
            got = store.get("parent")
            (child_pool,) = store.clients.values()
            (conn,) = child_pool.client_pool.free
            out.write_text(
                json.dumps(
                    {
                        "port": conn.sock.getsockname()[1],
                        "got": got.decode(),
                        "new": child_pool is not pool,
                    }
                )
            )
            status = 0
        finally:
            os._exit(status)
    deadline = time.monotonic() + WAIT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0
    child = json.loads(out.read_text())
    assert child == {"port": child["port"], "got": "p", "new": True}
    assert child["port"] != parent_port
    assert store.get("child") == b"c"  # the parent's own connection still works
    assert pool.client_pool.free[0].sock.getsockname()[1] == parent_port


# ======================================================================================
# Faults through the middleware
# ======================================================================================


def test_down_at_read_keeps_the_user_logged_in(private_memcached, open_store, harness):
    server = private_memcached()
    store = open_store(server.address)
    h = harness(App(), store=store)
    sid, cookie = login(h)
    server.stop()
    h.events.clear()
    assert_read_failure(h, fresh(h, "/read", cookie))
    # Writing to the unreadable session: refused, never clobbering the record.
    h.events.clear()
    with pytest.raises(StoreError):
        fresh(h, "/login", cookie)
    assert h.events.reasons("store_error") == ["read", "write"]
    ignoring = harness(App(), store=store, on_store_error="ignore")
    resp = fresh(ignoring, "/login", cookie)
    assert resp.status_int == 200 and set_cookies(resp) == []
    assert ignoring.events.reasons("store_error") == ["read", "write"]
    # Back up: memcached keeps nothing across a restart -> a plain miss.
    server.start()
    h.events.clear()
    resp = fresh(h, "/read", cookie)
    assert resp.text == "{}" and h.events.names() == ["missed"]
    new_sid, _ = login(h, cookie=cookie)
    assert new_sid != sid


@pytest.mark.parametrize("on_store_error", ["raise", "ignore"])
def test_down_at_write_of_a_new_session(private_memcached, open_store, harness, on_store_error):
    server = private_memcached()
    h = harness(App(), store=open_store(server.address), on_store_error=on_store_error)
    server.stop()
    if on_store_error == "raise":
        with pytest.raises(StoreError) as info:
            fresh(h, "/login")
        assert isinstance(info.value.original_error, ConnectionRefusedError)
    else:
        resp = fresh(h, "/login")
        assert resp.status_int == 200 and set_cookies(resp) == []
    assert h.events.reasons("store_error") == ["write"]
    assert "created" not in h.events.names()
    server.start()
    assert server.keys() == []


def test_server_dies_between_read_and_write(private_memcached, open_store, harness):
    server = private_memcached()
    h = harness(App(), store=open_store(server.address))
    _, cookie = login(h)
    h.events.clear()
    with pytest.raises(StoreError) as info:
        fresh(h, "/login", cookie, extra_environ={"test.hook": server.stop})
    assert str(info.value).startswith("memcached REPLACE failed: ")
    assert h.events.reasons("store_error") == ["write"]


@pytest.mark.parametrize("path", ["/logout", "/read-logout"])
def test_down_at_logout_still_clears_the_cookie(private_memcached, open_store, harness, path):
    server = private_memcached()
    h = harness(App(), store=open_store(server.address))
    _, cookie = login(h)
    server.stop()
    h.events.clear()
    resp = fresh(h, path, cookie)
    assert resp.status_int == 200
    assert is_deletion_response(resp)
    assert "destroyed" in h.events.names()
    expected = ["delete"] if path == "/logout" else ["read", "delete"]
    assert h.events.reasons("store_error") == expected


def test_logout_deletes_the_record(memcached, open_store, harness):
    h = harness(App(), store=open_store(memcached.address))
    sid, cookie = login(h)
    assert memcached.keys() == [store_key(sid)]
    assert is_deletion_response(fresh(h, "/logout", cookie))
    assert memcached.keys() == []


def test_restart_with_stale_pooled_connections_is_a_miss(private_memcached, open_store, harness):
    """The pooled connection dies with the old process; the one retry on a new
    connection makes the restart a plain miss, not a store error."""
    server = private_memcached()
    h = harness(App(), store=open_store(server.address))
    sid, cookie = login(h)
    server.stop()
    server.start()
    h.events.clear()
    resp = fresh(h, "/read", cookie)
    assert resp.text == "{}" and h.events.names() == ["missed"]
    h.events.clear()
    new_sid, new_cookie = login(h, cookie=cookie)
    assert new_sid != sid and "store_error" not in h.events.names()
    assert json.loads(fresh(h, "/read", new_cookie).text) == {"user": MARKER}


def test_hung_listener_read_fails_within_bound(memcached, open_store, harness):
    _, cookie = login(harness(App(), store=open_store(memcached.address)))
    with listener() as (port, accepted):
        h = harness(App(), store=open_store(f"127.0.0.1:{port}"))
        resp, elapsed = timed(lambda: fresh(h, "/read", cookie))
        assert LOWER_BOUND < elapsed < UPPER_BOUND, elapsed
        assert_read_failure(h, resp)
        assert wait_until(lambda: len(accepted) >= 1)
        assert len(accepted) == 1  # a timeout is not retried


def test_hung_listener_write_fails_within_bound(open_store, harness):
    with listener() as (port, _):
        h = harness(App(), store=open_store(f"127.0.0.1:{port}"))
        start = time.perf_counter()
        with pytest.raises(StoreError) as info:
            fresh(h, "/login")
        elapsed = time.perf_counter() - start
        assert LOWER_BOUND < elapsed < UPPER_BOUND, elapsed
        assert str(info.value) == f"memcached ADD failed: TimeoutError (127.0.0.1:{port})"
        assert h.events.reasons("store_error") == ["write"]


def test_paused_memcached_read_fails_within_bound(private_memcached, open_store, harness):
    server = private_memcached()
    h = harness(App(), store=open_store(server.address))
    _, cookie = login(h)
    h.events.clear()
    server.pause()
    try:
        resp, elapsed = timed(lambda: fresh(h, "/read", cookie))
    finally:
        server.resume()
    assert LOWER_BOUND < elapsed < UPPER_BOUND, elapsed
    assert_read_failure(h, resp)
    h.events.clear()
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}
    assert h.events.names() == []


def test_refused_port_fails_fast(memcached, open_store, harness):
    _, cookie = login(harness(App(), store=open_store(memcached.address)))
    with refused_port() as port:
        h = harness(App(), store=open_store(f"127.0.0.1:{port}"))
        resp, elapsed = timed(lambda: fresh(h, "/read", cookie))
        assert elapsed < 0.25, elapsed
        assert_read_failure(h, resp)
        h.events.clear()
        start = time.perf_counter()
        with pytest.raises(StoreError):
            fresh(h, "/login")
        assert time.perf_counter() - start < 0.25
        assert h.events.reasons("store_error") == ["write"]


@pytest.mark.parametrize(
    "reply", [b"HTTP/1.1 400 Bad Request\r\n\r\n", b"-ERR unknown command\r\n", b""]
)
def test_the_wrong_service_on_the_port_is_a_store_error(open_store, reply):
    with listener(reply) as (port, _):
        store = open_store(f"127.0.0.1:{port}")
        for call in (lambda: store.get("k"), lambda: store.set("k", b"v", 5)):
            with pytest.raises(StoreError, match=f"\\(127.0.0.1:{port}\\)"):
                call()


def test_exhausted_connection_pool_is_a_read_failure(memcached, open_store, harness):
    _, cookie = login(harness(App(), store=open_store(memcached.address)))
    store = open_store(memcached.address, max_pool_size=1)
    (pool,) = store.clients.values()
    held = pool.client_pool.get()  # the pool's only connection, taken elsewhere
    try:
        h = harness(App(), store=store)
        assert_read_failure(h, fresh(h, "/read", cookie))
        with pytest.raises(StoreError) as info:
            store.get("session:anything")
        assert str(info.value) == f"memcached GET failed: RuntimeError ({memcached.address})"
    finally:
        pool.client_pool.release(held)
    h = harness(App(), store=store)
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}


@pytest.mark.parametrize("kind", ["random", "empty", "other_session", "other_secret"])
def test_a_corrupted_record_is_invalid(memcached, open_store, harness, kind):
    h = harness(App(), store=open_store(memcached.address))
    sid, cookie = login(h)
    other_sid, _ = login(h, "other")
    key = store_key(sid)
    original = memcached.call(lambda c: c.get(key))
    if kind == "random":
        corrupted = random.Random(7).randbytes(80)
    elif kind == "empty":
        corrupted = b""
    elif kind == "other_session":
        corrupted = memcached.call(lambda c: c.get(store_key(other_sid)))
    else:
        plaintext, _ = TokenCodec([SECRET]).open_bytes(original, "store", key)
        corrupted = TokenCodec(["another-secret-0123456789abcdefghijklmnop"]).seal_bytes(
            plaintext, "store", key
        )
    memcached.call(lambda c: c.set(key, corrupted, 600))
    h.events.clear()
    resp = fresh(h, "/read", cookie)
    assert resp.text == "{}" and set_cookies(resp) == []
    assert h.events.names() == ["invalid"]
    new_sid, _ = login(h, "fresh", cookie=cookie)
    assert new_sid not in (sid, other_sid)
    assert memcached.call(lambda c: c.get(key)) == corrupted


def test_records_are_hashed_sealed_and_written_with_their_ttl(memcached, raw, open_store, harness):
    store = open_store(memcached.address)
    h = harness(App(), store=store, max_age=600)
    roller = harness(App(), store=store, max_age=600, rolling=True, clock=h.clock)
    login(h, "warm-up")
    before = memcached.stats()
    logins = [login(h, f"n{i}") for i in range(20)]
    after = memcached.stats()
    assert after[b"cmd_set"] - before[b"cmd_set"] == 20  # one add each, nothing else
    assert after[b"cmd_touch"] == before[b"cmd_touch"]
    keys = memcached.keys()
    assert len(keys) == 21 and all(KEY_RE.fullmatch(k) for k in keys)
    for key in keys:
        assert 595 < mg_ttl(raw, key) <= 600
        value = raw.get(key)
        assert MARKER.encode() not in value and b"user" not in value
        assert not any(sid.encode() in value or sid in key for sid, _ in logins)
    # A rolling read touches (one command) and moves a shortened TTL back.
    sid, cookie = logins[0]
    assert raw.touch(store_key(sid), 5, noreply=False)
    h.clock.advance(100)
    before = memcached.stats()
    resp = fresh(roller, "/read", cookie)
    assert json.loads(resp.text) == {"user": MARKER + "n0"} and cookie_value(resp)
    after = memcached.stats()
    assert after[b"cmd_touch"] - before[b"cmd_touch"] == 1
    assert after[b"cmd_set"] == before[b"cmd_set"]
    assert 595 < mg_ttl(raw, store_key(sid)) <= 600


# ======================================================================================
# Concurrency: 32 threads through one middleware
# ======================================================================================


@pytest.fixture
def mstore(memcached) -> Iterator[MemcachedStore]:
    store = MemcachedStore(servers=memcached.address)
    yield store
    store.close()


@pytest.fixture
def store(memcached, mstore) -> MemcachedStore:
    """The shared concurrency scenarios (tests/stores/test_concurrency.py) on memcached."""
    return mstore


@pytest.fixture(autouse=True)
def _count_memcached_items(monkeypatch, request):
    """test_concurrency counts records per store kind; teach it memcached's items (the
    test's own server, so every item on it is one of the test's records)."""
    original = concurrency.count_records

    def count(store: Any) -> int:
        if isinstance(store, MemcachedStore):
            return len(request.getfixturevalue("memcached").keys())
        return original(store)

    monkeypatch.setattr(concurrency, "count_records", count)


test_h85_many_users = concurrency.test_h85_many_users_share_one_middleware
test_h86_last_writer_wins = concurrency.test_h86_same_session_writers_whole_session_last_writer_wins
test_h87_increments = concurrency.test_h87_concurrent_increments_lose_updates_but_never_fail
test_h88_logout_race = concurrency.test_h88_logout_race_does_not_resurrect
test_h88_slow_regenerate = concurrency.test_h88_slow_regenerate_after_logout_does_not_resurrect
test_h89_regenerate_race = concurrency.test_h89_regenerate_race_drops_old_id_write
test_late_change_saved = concurrency.test_late_change_to_existing_session_saved_at_close
test_late_new_session = concurrency.test_late_change_to_new_session_is_not_saved
test_late_save_racing_logout = concurrency.test_late_save_racing_logout_is_interrupted


def _storm_handler(loaded: threading.Barrier | None, go: threading.Event | None):
    def handler(environ: dict[str, Any], session: Any) -> str | None:
        path = environ["PATH_INFO"]
        if path == "/seed":
            session.update(ORIGINAL)
            return None
        if path == "/logout":
            environ["session"] = None
            return None
        assert session["user"] == "alice"
        if loaded is not None and go is not None:
            loaded.wait()
            wait(go)
        if path == "/regenerate":
            session.regenerate()
            session["role"] = "admin"
        elif path == "/update":
            session["seen"] = environ["HTTP_X_N"]
        # /read: rolling refresh only
        return None

    return handler


def test_32_threads_logout_first_nothing_comes_back(memcached, mstore):
    """24 requests load the session and wait (8 regenerate, 8 update, 8 rolling
    reads); 8 logouts run together; then the 24 resume together. Nothing may survive:
    no record under any id, no live cookie, every slow request ``interrupted``."""
    loaded = threading.Barrier(25, timeout=WAIT)  # the 24 slow requests and the test
    go = threading.Event()
    handler = _storm_handler(loaded, go)
    h = Harness(handler, store=mstore)
    roller = Harness(handler, store=mstore, rolling=True, clock=h.clock)
    cookie = _seed(h)
    plan = ["/regenerate"] * 8 + ["/update"] * 8 + ["/read"] * 8

    def slow(i: int) -> Any:
        mw = roller.mw if plan[i] == "/read" else h.mw
        return call_wsgi(mw, plan[i], cookie=f"session={cookie}", HTTP_X_N=str(i))

    requests = [Background(lambda i=i: slow(i)) for i in range(24)]
    loaded.wait()
    byes = run_threads(8, lambda i: call_wsgi(h.mw, "/logout", cookie=f"session={cookie}"))
    assert all(is_deletion(bye) for bye in byes)
    assert memcached.keys() == []
    go.set()
    results = [request.result() for request in requests]
    assert all(res.status == "200 OK" and not token(res) for res in results)
    assert memcached.keys() == [], "a logged-out session came back"
    interrupted = [e for e in h.events + roller.events if e.name == "interrupted"]
    assert len(interrupted) == 24


def test_32_threads_regenerate_against_logout_at_most_one_survivor(memcached, mstore):
    """16 regenerates and 16 logouts of one session released together, 10 rounds: at
    most one regenerate wins, the old id never survives, and a record exists only for
    the one new id a response handed out."""
    for _ in range(10):
        assert memcached.keys() == []
        start = threading.Barrier(32, timeout=WAIT)

        def handler(environ: dict[str, Any], session: Any) -> str | None:
            path = environ["PATH_INFO"]
            if path == "/seed":
                session.update(ORIGINAL)
            elif path == "/logout":
                start.wait()
                environ["session"] = None
            else:
                assert session.get("user") in ("alice", None)
                start.wait()
                if session.get("user") == "alice":
                    session.regenerate()
                    session["role"] = "admin"
            return None

        h = Harness(handler, store=mstore)
        cookie = _seed(h)
        old_sid = sid_of(h.mw, cookie)
        paths = ["/regenerate", "/logout"] * 16
        results = run_threads(32, lambda i: call_wsgi(h.mw, paths[i], cookie=f"session={cookie}"))
        winners = [token(r) for r, p in zip(results, paths, strict=True) if p == "/regenerate"]
        winners = [w for w in winners if w]
        assert len(winners) <= 1, winners
        assert record(h.mw, mstore, old_sid) is None
        keys = memcached.keys()
        if winners:
            new_sid = sid_of(h.mw, winners[0])
            assert keys == [h.mw.store_key(new_sid)]
            meta = record(h.mw, mstore, new_sid)
            assert meta is not None and meta["d"] == {**ORIGINAL, "role": "admin"}
            mstore.delete(h.mw.store_key(new_sid))  # an empty server for the next round
        else:
            assert keys == []
