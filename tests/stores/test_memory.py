"""MemoryStore specifics: thread safety, LRU eviction at ``max_entries``, expiry with an
injected clock, ``ttl()``, ``len()`` and argument checks. (The behaviour every store
shares is in test_contract.py.)"""

from __future__ import annotations

import http.cookiejar
import random
import sys
import threading

import pytest
import webtest

from tests.conftest import SECRET, Clock, Harness, cookie_value, set_cookies
from wsgisession import ConfigurationError, MemoryStore, SessionMiddleware, Store, StoreError

THREADS = 8


@pytest.fixture
def contention():
    """Switch threads as often as possible, so races show up."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(target, count: int = THREADS) -> None:
    """Run ``target(index, barrier)`` in ``count`` threads; re-raise the first error."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def runner(index: int) -> None:
        try:
            target(index, barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]


def harness(store: MemoryStore, clock: Clock, handler, **options) -> Harness:
    h = Harness(handler, clock=clock, store=store, **options)
    h.client.cookiejar = http.cookiejar.CookieJar(
        http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
    )
    return h


def jar(response) -> str:
    value = cookie_value(response)
    assert value, set_cookies(response)
    return f"session={value}"


# -- construction -------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, False, "10", None])
def test_bad_max_entries_is_a_value_error(bad):
    """max_entries must be a positive int (bool is not an int here); the error is a
    ConfigurationError (a ValueError) naming the option, like every library error."""
    with pytest.raises(ConfigurationError, match="max_entries") as info:
        MemoryStore(bad)
    assert info.value.option == "max_entries"
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(bad)
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(max_entries=bad)


def test_defaults_and_protocol():
    """Default max_entries is 10000; a MemoryStore satisfies the Store protocol; the
    default clock is real (a fresh TTL reads back as its full length)."""
    store = MemoryStore()
    assert store.max_entries == 10000
    assert isinstance(store, Store)
    store.set("k", b"v", 1000)
    assert 999 < store.ttl("k") <= 1000


def test_repr_shows_counts_not_contents():
    """repr() gives sizes only, never keys or values."""
    store = MemoryStore(5, clock=Clock())
    store.set("session:secret-key", b"secret-value", None)
    text = repr(store)
    assert text == "<MemoryStore entries=1 max_entries=5 bytes=30 max_bytes=67108864>"
    assert "secret" not in text


def test_stores_a_copy_of_the_value():
    """The value is copied: mutating the caller's buffer afterwards changes nothing."""
    store = MemoryStore(clock=Clock())
    buffer = bytearray(b"abc")
    store.set("k", buffer, None)
    buffer[0] = ord("X")
    assert store.get("k") == b"abc"
    assert type(store.get("k")) is bytes


# -- ttl() and len() ----------------------------------------------------------------


def test_ttl_reports_remaining_seconds():
    """ttl(): seconds left (float) as the clock moves, None without expiry, KeyError
    when absent or expired."""
    clock = Clock()
    store = MemoryStore(clock=clock)
    store.set("k", b"v", 100)
    assert store.ttl("k") == 100
    clock.advance(40.5)
    assert store.ttl("k") == pytest.approx(59.5)
    store.touch("k", 10)
    assert store.ttl("k") == 10
    store.set("k", b"v", None)
    assert store.ttl("k") is None
    with pytest.raises(KeyError):
        store.ttl("missing")
    store.set("short", b"v", 5)
    clock.advance(5)
    with pytest.raises(KeyError):
        store.ttl("short")


def test_len_counts_live_entries_only():
    """len() counts live records: expired ones and deleted ones are not counted."""
    clock = Clock()
    store = MemoryStore(clock=clock)
    assert len(store) == 0
    store.set("a", b"1", None)
    store.set("b", b"2", 10)
    store.set("c", b"3", 20)
    assert len(store) == 3
    clock.advance(10)
    assert len(store) == 2
    store.delete("a")
    assert len(store) == 1
    clock.advance(10)
    assert len(store) == 0
    store.set("a", b"1", 1)
    store.set("a", b"1", 1)
    assert len(store) == 1


# -- expiry via the injected clock ---------------------------------------------------


def test_expiry_boundary():
    """A record is live strictly before now + ttl and gone at that instant."""
    clock = Clock()
    store = MemoryStore(clock=clock)
    store.set("k", b"v", 10)
    clock.advance(9.999)
    assert store.get("k") == b"v"
    clock.advance(0.001)
    assert store.get("k") is None


def test_expired_record_is_absent_for_every_operation():
    """Once expired, a record is absent for get/update/touch/ttl and create succeeds over it."""
    clock = Clock()
    store = MemoryStore(clock=clock)
    for key in ("g", "u", "t", "c"):
        store.set(key, b"old", 5)
    clock.advance(5)
    assert store.get("g") is None
    assert store.update("u", b"new", 100) is False
    assert store.get("u") is None
    assert store.touch("t", 100) is False
    assert store.get("t") is None
    assert store.create("c", b"new", 100) is True
    assert store.get("c") == b"new"
    assert store.ttl("c") == 100
    assert len(store) == 1


def test_touch_extends_life_past_the_old_deadline():
    """touch() moves the deadline: the record outlives its first TTL."""
    clock = Clock()
    store = MemoryStore(clock=clock)
    store.set("k", b"v", 10)
    clock.advance(8)
    assert store.touch("k", 10) is True
    clock.advance(8)
    assert store.get("k") == b"v"
    clock.advance(2)
    assert store.get("k") is None


def test_browser_session_record_expires_after_a_day():
    """max_age=None: the cookie has no expiry, so only the record's 24 h TTL ends the
    session: present at 24 h - 1 s, then `missed` and a fresh session with a new id."""
    clock = Clock()
    store = MemoryStore(clock=clock)

    def handler(environ, session):
        if environ["PATH_INFO"] == "/set":
            session["user"] = "alice"
        return f"{session.id}|{dict(session)}"

    h = harness(store, clock, handler, max_age=None)
    first = h.get("/set")
    sid = first.text.split("|")[0]
    cookie = jar(first)
    clock.advance(24 * 3600 - 1)
    assert h.get("/", cookie=cookie).text == f"{sid}|{{'user': 'alice'}}"
    clock.advance(1)
    response = h.get("/", cookie=cookie)
    new_id, data = response.text.split("|")
    assert data == "{}"
    assert new_id != sid
    assert set_cookies(response) == []
    assert h.events.names()[-1] == "missed"
    assert len(store) == 0


# -- LRU eviction --------------------------------------------------------------------


def test_lru_evicts_the_least_recently_used():
    """At max_entries, inserting evicts the least recently used record; get, set,
    update, touch and create all count as use."""
    store = MemoryStore(3, clock=Clock())
    store.set("a", b"a", None)
    store.set("b", b"b", None)
    store.set("c", b"c", None)
    assert store.get("a") == b"a"  # order: b c a
    store.set("d", b"d", None)  # evicts b → c a d
    assert store.get("b") is None
    assert len(store) == 3
    assert store.touch("c", None) is True  # a d c
    assert store.update("a", b"A", None) is True  # d c a
    assert store.create("e", b"e", None) is True  # evicts d → c a e
    assert store.get("d") is None
    assert [store.get(k) for k in ("c", "a", "e")] == [b"c", b"A", b"e"]
    store.set("c", b"C", None)  # a e c
    store.set("f", b"f", None)  # evicts a → e c f
    assert store.get("a") is None
    assert len(store) == 3


def test_max_entries_one_keeps_only_the_newest():
    """max_entries=1: every new key replaces the previous one; rewriting a key does not."""
    store = MemoryStore(1, clock=Clock())
    store.set("a", b"1", None)
    store.set("a", b"2", None)
    assert store.get("a") == b"2"
    store.set("b", b"3", None)
    assert store.get("a") is None
    assert store.get("b") == b"3"
    assert len(store) == 1


def test_evicted_user_gets_missed_and_a_fresh_session():
    """A user whose record was evicted (LRU at max_entries) gets `missed` and a fresh
    session with a new id; users still in the store are unaffected."""
    clock = Clock()
    store = MemoryStore(2, clock=clock)

    def handler(environ, session):
        name = environ["PATH_INFO"].strip("/")
        if name:
            session["user"] = name
        return f"{session.id}|{session.get('user', '')}"

    h = harness(store, clock, handler)
    users = {}
    for name in ("alice", "bob", "carol"):
        response = h.get(f"/{name}")
        users[name] = (jar(response), response.text.split("|")[0])
    assert len(store) == 2
    h.events.clear()
    response = h.get("/", cookie=users["alice"][0])
    new_id, user = response.text.split("|")
    assert user == ""
    assert new_id != users["alice"][1]
    assert set_cookies(response) == []
    assert h.events.names() == ["missed"]
    for name in ("bob", "carol"):
        cookie, sid = users[name]
        assert h.get("/", cookie=cookie).text == f"{sid}|{name}"


# -- thread safety -------------------------------------------------------------------


def test_concurrent_create_has_exactly_one_winner(contention):
    """Threads racing create() on the same keys: exactly one wins each key and its value
    is the one stored."""
    store = MemoryStore(clock=Clock())
    keys = [f"session:{i:04d}" for i in range(2000)]
    wins: list[list[str]] = [[] for _ in range(THREADS)]

    def work(index, barrier):
        # Every thread walks the keys in the same order: they collide on each key.
        value = f"thread-{index}".encode()
        barrier.wait()
        for key in keys:
            if store.create(key, value, 100):
                wins[index].append(key)

    run_threads(work)
    winners = {}
    for index, won in enumerate(wins):
        for key in won:
            assert key not in winners, f"{key} created twice"
            winners[key] = index
    assert sorted(winners) == keys
    for key, index in winners.items():
        assert store.get(key) == f"thread-{index}".encode()
    assert len(store) == len(keys)


def test_concurrent_mixed_operations_keep_invariants(contention):
    """Threads hammering create/update/touch/get/delete on their own keys while all of
    them fight over shared keys: no exception, every own-key result is exact, a deleted
    key is never resurrected by update/touch, shared keys only ever hold a value some
    thread wrote."""
    clock = Clock()
    store = MemoryStore(clock=clock)
    shared = [f"shared:{i}" for i in range(4)]
    written = {f"t{i}-{n}".encode() for i in range(THREADS) for n in range(400)}

    def work(index, barrier):
        rng = random.Random(index)
        own = f"own:{index}"
        barrier.wait()
        for n in range(400):
            value = f"t{index}-{n}".encode()
            assert store.create(own, value, 100) is True
            assert store.create(own, b"other", 100) is False
            assert store.update(own, value + b"!", 200) is True
            assert store.touch(own, 300) is True
            assert store.get(own) == value + b"!"
            assert store.ttl(own) == 300
            store.delete(own)
            assert store.get(own) is None
            assert store.update(own, value, 100) is False
            assert store.touch(own, 100) is False
            assert store.get(own) is None
            key = rng.choice(shared)
            action = rng.randrange(5)
            if action == 0:
                store.set(key, value, 100)
            elif action == 1:
                store.create(key, value, 100)
            elif action == 2:
                store.update(key, value, 100)
            elif action == 3:
                store.touch(key, 50)
            else:
                store.delete(key)
            got = store.get(key)
            assert got is None or got in written
            assert len(store) <= len(shared) + THREADS  # shared keys + each thread's own

    run_threads(work)
    for key in shared:
        got = store.get(key)
        assert got is None or got in written
    assert len(store) <= len(shared)
    assert all(store.get(f"own:{i}") is None for i in range(THREADS))


def test_concurrent_inserts_respect_max_entries(contention):
    """Threads inserting many distinct keys into a small store: the bound always holds,
    and a read returns either nothing (evicted) or exactly that key's value."""
    store = MemoryStore(32, clock=Clock())

    def work(index, barrier):
        barrier.wait()
        for n in range(1500):
            key = f"k{index}-{n}"
            store.set(key, key.encode(), 100)
            got = store.get(key)
            assert got is None or got == key.encode()
            earlier = store.get(f"k{index}-{n // 2}")
            assert earlier is None or earlier == f"k{index}-{n // 2}".encode()
            assert len(store) <= 32

    run_threads(work)
    assert len(store) == 32


def test_concurrent_eviction_under_time_pressure(contention):
    """Concurrent writers while the clock advances and entries expire: purge, eviction
    and TTL arithmetic never raise and len() stays within the bound."""
    clock = Clock()
    store = MemoryStore(64, clock=clock)
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            clock.advance(0.5)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:

        def work(index, barrier):
            barrier.wait()
            for n in range(800):
                key = f"k{index}-{n % 100}"
                store.set(key, b"v", 1 + n % 3)
                store.touch(key, 2)
                try:
                    left = store.ttl(key)
                except KeyError:
                    left = 0.0
                assert left is None or left <= 2
                assert len(store) <= 64

        run_threads(work)
    finally:
        stop.set()
        ticker.join(timeout=10)
    assert len(store) <= 64


# -- max_bytes (issue 11 item 10) ------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "64"])
def test_bad_max_bytes_is_a_configuration_error(bad):
    with pytest.raises(ConfigurationError) as info:
        MemoryStore(max_bytes=bad)
    assert info.value.option == "max_bytes"


def test_default_byte_bound_is_64_mib():
    assert MemoryStore().max_bytes == 64 * 1024 * 1024


def test_bytes_are_bounded_least_recently_used_first():
    """Records are evicted by bytes as well as by count: oldest (least recently used)
    first, and a read counts as a use."""
    store = MemoryStore(max_bytes=3000, clock=Clock())
    for name in "abc":
        store.set(name, name.encode() * 999, None)  # 1000 bytes with the key
    assert store.bytes_used == 3000
    assert store.get("a") is not None  # a is now the most recently used
    store.set("d", b"d" * 999, None)
    assert store.get("b") is None  # b was the least recently used
    assert [store.get(k) is not None for k in "acd"] == [True, True, True]
    assert store.bytes_used == 3000
    store.set("e", b"e" * 1999, None)  # 2000 bytes: two more must go
    assert len(store) == 2 and store.bytes_used == 3000
    assert store.get("d") is not None and store.get("e") is not None


def test_overwrites_deletes_expiry_and_moves_keep_the_count_exact():
    clock = Clock()
    store = MemoryStore(max_bytes=10_000, clock=clock)
    store.set("k", b"x" * 100, None)
    store.set("k", b"x" * 10, None)
    assert store.bytes_used == 11
    assert store.update("k", b"y" * 20, None) and store.bytes_used == 21
    assert store.move("k", "new", b"z" * 5, 10) and store.bytes_used == 8
    clock.advance(11)
    assert store.get("new") is None and store.bytes_used == 0
    store.set("gone", b"v", None)
    store.delete("gone")
    store.delete("gone")
    assert store.bytes_used == 0


def test_a_record_larger_than_the_bound_is_a_store_error_not_a_silent_drop():
    store = MemoryStore(max_bytes=1000, clock=Clock())
    store.set("keep", b"k", None)
    with pytest.raises(StoreError, match="max_bytes"):
        store.set("big", b"x" * 1000, None)
    store.set("old", b"o", None)
    with pytest.raises(StoreError):
        store.move("old", "big", b"x" * 1000, None)
    assert store.get("keep") == b"k" and store.get("old") == b"o"  # nothing lost


def test_anonymous_megabyte_sessions_cannot_grow_the_process():
    """Many anonymous requests that each make a 1 MB session: the store keeps at most
    max_bytes of them; the newest sessions still work."""
    store = MemoryStore(max_bytes=8 * 1024 * 1024)

    def app(environ, start_response):
        environ["session"]["blob"] = "x" * 1_000_000
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    mw = SessionMiddleware(app, secret_keys=[SECRET], store=store)
    client = webtest.TestApp(mw)
    last = None
    for _ in range(40):
        client.reset()
        last = client.get("/")
    record = store.bytes_used // len(store)
    assert record > 1_000_000
    assert 8 * 1024 * 1024 - record < store.bytes_used <= 8 * 1024 * 1024
    assert len(store) == 8 * 1024 * 1024 // record  # not 40
    assert last is not None and "session" in client.cookies
