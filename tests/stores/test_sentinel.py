"""Store mode on a real Sentinel group (issue 11, items 1 and 2).

* The store contract (``StoreContract``) over ``RedisStore(client=Sentinel(...)
  .master_for(...), min_replicas=1)`` built with the client lines of docs/stores.rst
  (``sentinel_client`` below, pinned here exactly).
* Session flows through ``SessionMiddleware`` (``SessionFlows`` from
  ``test_cluster.py``): login → ``regenerate()`` → logout, requests racing a logout.
* ``min_replicas=1``: an acknowledged write is on the replica when the call returns;
  one the replica does not acknowledge in time is a ``StoreError``.
* A failover: the master killed by PID (SIGKILL) under load; every acknowledged write
  survives, no logout is undone, every request returns within the bound, and requests
  succeed again once a replica is promoted. With a single replica, the new master has
  none left: writes are refused until one is attached.
* A hung master (SIGSTOP): a read fails within the bound.

Every server is real (``servers.py``); nothing is mocked.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from tests.conftest import cookie_value
from tests.stores.servers import (
    HOST,
    Node,
    SentinelGroup,
    free_port,
    running_sentinel_group,
    wait_for,
)
from tests.stores.test_cluster import (
    UPPER_BOUND,
    SessionFlows,
    assert_read_failure,
    fresh,
    harness,
    login,
    session_cookie,
)
from tests.stores.test_contract import RedisHooks, StoreContract, store_key
from wsgisession import StoreError
from wsgisession.stores.redis import RedisStore


def sentinel_client(sentinels: list[tuple[str, int]], service: str) -> redis.Redis:
    """The client lines of docs/stores.rst for Sentinel, exactly (then
    ``RedisStore(client=client, min_replicas=1)``)."""
    sentinel = Sentinel(
        sentinels,
        sentinel_kwargs={
            "socket_connect_timeout": 0.1,
            "socket_timeout": 0.1,
            "retry": Retry(NoBackoff(), 0),
        },
    )
    return sentinel.master_for(
        service,
        socket_connect_timeout=0.25,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 1),
    )


def close(client: redis.Redis) -> None:
    """Close a master_for() client and its Sentinel's own connections."""
    client.close()
    client.connection_pool.sentinel_manager.close()


# -- the contract ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentinel_clients(redis_sentinel_servers: SentinelGroup) -> Iterator[tuple[Any, Any, Any]]:
    """(the master client of docs/stores.rst, a raw client of the master, one of the replica),
    shared by this module's tests."""
    group = redis_sentinel_servers
    client = sentinel_client(group.sentinel_addresses, group.service)
    raw = group.master.client()
    replica = group.replicas[0].client()
    yield client, raw, replica
    close(client)
    raw.close()
    replica.close()


@pytest.fixture
def sentinel_store(redis_sentinel: SentinelGroup, sentinel_clients) -> RedisStore:
    """RedisStore over the Sentinel client of docs/stores.rst, min_replicas=1 (data flushed)."""
    return RedisStore(client=sentinel_clients[0], min_replicas=1)


class TestSentinelStore(RedisHooks, StoreContract):
    """The contract over RedisStore on a Sentinel-managed master, every write waiting
    for the replica (WAIT); TTLs are read with a raw client of the master (PTTL)."""

    @pytest.fixture
    def store(self, sentinel_store, sentinel_clients):
        self.raw = sentinel_clients[1]
        return sentinel_store


def master_session_keys(group: SentinelGroup) -> set[str]:
    client = group.master.client()
    try:
        return {key.decode() for key in client.scan_iter(match="session:*", count=1000)}
    finally:
        client.close()


class TestSentinelFlows(SessionFlows):
    @pytest.fixture
    def store(self, redis_sentinel, sentinel_store):
        self.group = redis_sentinel
        return sentinel_store

    def session_keys(self):
        return master_session_keys(self.group)


# -- min_replicas=1 -------------------------------------------------------------------------


def test_acknowledged_writes_are_on_the_replica(redis_sentinel, sentinel_store, sentinel_clients):
    """With min_replicas=1 a write returns only once the replica has it: read from the
    replica right after each call, nothing is missing or left over."""
    store = sentinel_store
    replica = sentinel_clients[2]
    for i in range(20):
        key = f"session:w{i}"
        assert store.create(key, b"v%d" % i, 60)
        assert replica.get(key) == b"v%d" % i
        assert store.update(key, b"u%d" % i, 60)
        assert replica.get(key) == b"u%d" % i
        assert store.move(key, key + ":moved", b"m%d" % i, 60)
        assert replica.exists(key) == 0
        assert replica.get(key + ":moved") == b"m%d" % i
        store.delete(key + ":moved")
        assert replica.exists(key + ":moved") == 0


def test_write_the_replica_does_not_acknowledge_is_a_store_error(redis_sentinel, sentinel_store):
    """The replica paused (SIGSTOP, for less than the sentinels' down-after): a new
    session's write waits 0.2 s for WAIT and fails with StoreError, no cookie; a logout
    in the same state still clears the cookie (with a store_error event)."""
    h = harness(sentinel_store)
    _, cookie = login(h, "alice")
    replica = redis_sentinel.replicas[0]
    h.events.clear()
    replica.pause()
    try:
        start = time.perf_counter()
        with pytest.raises(StoreError) as info:
            fresh(h, "/login?bob")
        elapsed = time.perf_counter() - start
        bye = fresh(h, "/logout", cookie)
    finally:
        replica.resume()
    assert "0 of 1 replica" in str(info.value)
    assert "sentinel service" in str(info.value)
    assert 0.15 < elapsed < 1.0, elapsed  # WAIT's 0.2 s, not a socket timeout
    assert cookie_value(bye) == ""
    assert h.events.reasons("store_error") == ["write", "delete"]


# -- a failover ---------------------------------------------------------------------------------


class Ledger:
    """What the store acknowledged, per session, during a run of requests."""

    def __init__(self) -> None:
        #: sid -> (cookie, values it may hold: the last acknowledged one, plus any
        #: written later without acknowledgement).
        self.live: dict[str, tuple[str, set[str]]] = {}
        #: sid -> cookie of sessions whose logout was acknowledged.
        self.logged_out: dict[str, str] = {}
        #: sessions whose logout was not acknowledged: their record may or may not exist.
        self.uncertain: set[str] = set()
        self.times: list[float] = []
        self.saves = 0  # new sessions and updates attempted
        self.acknowledged = 0  # ... and acknowledged (their Set-Cookie went out)
        self.failures = 0  # requests that raised StoreError


#: The request mix, by turns: new sessions, updates, reads, a logout.
MIX = ("create", "update", "read", "create", "update", "logout")
WRITES = ("create", "update")


def run(h, ledger: Ledger, step: int) -> bool:
    """Request number ``step`` of the mix; record its outcome. True if it was a write
    (a new session, an update, a logout) the store acknowledged."""
    kind = MIX[step % len(MIX)]
    if kind == "logout" and len(ledger.live) <= 10:
        kind = "update"  # keep sessions to update and read while logouts fail
    sids = sorted(ledger.live)
    sid = sids[step * 7 % len(sids)] if sids else None
    value = f"v{step}"
    start = time.perf_counter()
    acknowledged = False
    try:
        if kind == "create" or sid is None:
            ledger.saves += 1
            response = fresh(h, f"/login?{value}")
            if cookie_value(response):
                ledger.live[response.text] = (session_cookie(response), {value})
                ledger.acknowledged += 1
                acknowledged = True
        elif kind == "update":
            cookie, values = ledger.live[sid]
            values.add(value)  # it may land even if not acknowledged
            ledger.saves += 1
            response = fresh(h, f"/login?{value}", cookie)
            assert response.text == sid
            if cookie_value(response):
                ledger.live[sid] = (cookie, {value})
                ledger.acknowledged += 1
                acknowledged = True
        elif kind == "logout":
            cookie, _ = ledger.live.pop(sid)
            h.events.clear()
            response = fresh(h, "/logout", cookie)
            assert cookie_value(response) == ""  # the cookie is cleared in any case
            if "store_error" in h.events.names():
                ledger.uncertain.add(sid)
            else:
                ledger.logged_out[sid] = cookie
                acknowledged = True
        else:
            cookie, values = ledger.live[sid]
            response = fresh(h, "/read", cookie)
            if response.text != "{}":
                assert json.loads(response.text)["user"] in values
    except StoreError:
        ledger.failures += 1
    finally:
        ledger.times.append(time.perf_counter() - start)
    return acknowledged


def test_failover_keeps_every_acknowledged_write(private_sentinel, capsys):
    """min_replicas=1, master killed by PID under load: every request returns within
    the bound; once a replica is promoted, writes succeed again; afterwards every
    acknowledged write is read back and no acknowledged logout is undone."""
    group = private_sentinel
    old_master = group.master
    client = sentinel_client(group.sentinel_addresses, group.service)
    try:
        store = RedisStore(client=client, min_replicas=1)
        h = harness(store)
        ledger = Ledger()
        for step in range(120):  # 40 new sessions, 45 updates, 20 reads, 15 logouts
            run(h, ledger, step)
        assert ledger.failures == 0
        assert ledger.acknowledged == 85
        assert len(ledger.logged_out) == 15
        assert len(ledger.live) == 25

        old_master.kill()
        killed = time.monotonic()
        promoted_at = recovered_at = None
        during: list[float] = []
        for step in itertools.count(120):
            start = len(ledger.times)
            acknowledged = run(h, ledger, step)
            during.extend(ledger.times[start:])
            now = time.monotonic()
            if promoted_at is None and step % 5 == 0:
                master = group.current_master()
                if master is not None and master is not old_master:
                    promoted_at = now
            if acknowledged and MIX[step % len(MIX)] in WRITES and recovered_at is None:
                recovered_at = now
            if promoted_at is not None and recovered_at is not None:
                break
            assert now - killed < 30, "no failover within 30 s"
            time.sleep(0.01)
        new_master = group.current_master()
        assert new_master is not None and new_master is not old_master

        # Writes work again: every one of these (new sessions, updates) is acknowledged.
        later = range(step + 1, step + 31)
        after = [run(h, ledger, s) for s in later if MIX[s % len(MIX)] in WRITES]
        assert all(after), after

        with capsys.disabled():
            print(
                f"\nmeasured (sentinel failover): {len(during)} requests during the failover, "
                f"{ledger.failures} failed, slowest {max(during):.3f} s, "
                f"slowest overall {max(ledger.times):.3f} s; promotion seen after "
                f"{promoted_at - killed:.2f} s, first acknowledged write after "
                f"{recovered_at - killed:.2f} s; {ledger.saves} saves, "
                f"{ledger.acknowledged} acknowledged; {len(ledger.live)} live, "
                f"{len(ledger.logged_out)} logged out, {len(ledger.uncertain)} uncertain"
            )
        assert max(ledger.times) < UPPER_BOUND, sorted(ledger.times)[-5:]
        assert ledger.failures > 0  # the failover really was in the way
        assert ledger.acknowledged >= 100

        raw = new_master.client()
        try:
            for sid, (cookie, values) in ledger.live.items():
                h.events.clear()
                response = fresh(h, "/read", cookie)
                assert response.text != "{}", (sid, h.events.names())
                assert json.loads(response.text)["user"] in values, sid
            for sid, cookie in ledger.logged_out.items():
                assert raw.exists(store_key(sid)) == 0, sid
                h.events.clear()
                response = fresh(h, "/read", cookie)
                assert response.text == "{}"
                assert h.events.names() == ["missed"]
        finally:
            raw.close()
    finally:
        close(client)


def test_hung_master_fails_within_bound(private_sentinel, capsys):
    """The master paused (SIGSTOP: it accepts connections and never answers): a read
    is a read failure within the bound, before any failover. (The group is the test's
    own: the sentinels fail over behind it.)"""
    group = private_sentinel
    client = sentinel_client(group.sentinel_addresses, group.service)
    try:
        h = harness(RedisStore(client=client, min_replicas=1))
        _, cookie = login(h, "alice")
        assert fresh(h, "/read", cookie).text == '{"user": "alice"}'
        h.events.clear()
        group.master.pause()
        try:
            start = time.perf_counter()
            response = fresh(h, "/read", cookie)
            elapsed = time.perf_counter() - start
        finally:
            group.master.resume()
        with capsys.disabled():
            print(f"\nmeasured (hung sentinel master): read {elapsed:.3f} s")
        assert_read_failure(h, response)
        assert 0.4 < elapsed < UPPER_BOUND, elapsed
    finally:
        close(client)


def test_failover_with_a_single_replica_refuses_writes_until_one_is_attached():
    """min_replicas=1 with ONE replica: after the failover the new master has no
    replica, so every write is an unacknowledged StoreError (quickly, no cookie) while
    reads work; attaching a replica to the new master makes writes succeed again. (With
    min_replicas=1 a group needs two replicas to keep taking writes after a failover.)"""
    with running_sentinel_group(replicas=1) as group:
        client = sentinel_client(group.sentinel_addresses, group.service)
        try:
            h = harness(RedisStore(client=client, min_replicas=1))
            sid, cookie = login(h, "alice")
            old_master = group.master
            old_master.kill()
            wait_for(lambda: group.current_master() not in (None, old_master), 30, "a promotion")
            new_master = group.current_master()
            assert new_master is group.replicas[0]
            # Reads: the acknowledged session is there (once the client finds the master).
            wait_for(lambda: fresh(h, "/read", cookie).text == '{"user": "alice"}', 5, "a read")
            # Writes: refused, each within the bound, no cookie.
            for path, request_cookie in (("/login?bob", None), ("/login?again", cookie)):
                h.events.clear()
                start = time.perf_counter()
                with pytest.raises(StoreError, match="0 of 1 replica"):
                    fresh(h, path, request_cookie)
                assert time.perf_counter() - start < UPPER_BOUND
                assert h.events.reasons("store_error") == ["write"]
            # An operator attaches a replica to the new master: writes are acknowledged.
            spare = Node(
                old_master.argv[0],
                free_port(),
                group.dir,
                ["--replicaof", HOST, str(new_master.port)],
            )
            group.replicas.append(spare)  # stopped with the group
            spare.start()
            wait_for(
                lambda: spare.info("replication").get("master_link_status") == "up",
                15,
                "the new replica in sync",
            )
            new_sid, _ = login(h, "bob")
            assert new_sid != sid
            assert login(h, "alice2", cookie)[0] == sid
            assert json.loads(fresh(h, "/read", cookie).text) == {"user": "alice2"}
        finally:
            close(client)
