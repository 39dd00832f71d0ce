"""Store mode on a real 3-master Redis Cluster (issue 11, items 1 and 2).

* The store contract (``StoreContract``) over ``RedisStore(client=RedisCluster(...))``
  built with the client line of docs/stores.rst (``cluster_client`` below, pinned here exactly).
* Session flows through ``SessionMiddleware``: login → ``regenerate()`` → logout, and
  requests racing a logout (``SessionFlows``, shared with ``test_sentinel.py``).
* ``move()``'s cross-slot fallback with its window closed: the old key vanishes between
  the check and the write (the one fault injection: a ``RedisCluster`` subclass that
  deletes the key right after ``EXISTS`` answered).
* A master killed by PID (SIGKILL) or paused (SIGSTOP): requests fail with
  ``StoreError`` / a ``store_error`` event within a bound, measured with the
  recommended client and with redis-py's defaults.

Every server is real (``servers.py``); nothing else is mocked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from tests.conftest import Harness, cookie_value, set_cookies
from tests.stores.servers import Cluster, Node, wait_for
from tests.stores.test_contract import RedisHooks, StoreContract, no_jar, store_key
from wsgisession import StoreError
from wsgisession.stores.redis import RedisStore

#: Our configured worst case: connect 0.25 s + read 0.5 s, tried twice = 1.5 s.
UPPER_BOUND = 1.6


def cluster_client(startup_nodes: list[Any]) -> RedisCluster:
    """The client line of docs/stores.rst for Redis Cluster, exactly."""
    return RedisCluster(
        startup_nodes=startup_nodes,
        socket_connect_timeout=0.25,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 1),
    )


# -- helpers shared with test_sentinel.py ---------------------------------------------------


class FlowApp:
    """The application of the flow and fault tests.

    ``/login?NAME``  loads the session and writes ``user = NAME`` (a new session without
                     a cookie, an update with one); the body is the session id.
    ``/regenerate``  ``regenerate()`` (the data stays); the body is ``old|new`` id.
    ``/read``        the session data as sorted JSON (``{}``: empty).
    ``/logout``      ``environ["session"] = None`` without loading the session.

    ``environ["test.hook"]``, when given, runs after the session was loaded (and
    changed) and before the response: where a concurrent request is made to land.
    """

    def __call__(self, environ: dict[str, Any], session: Any) -> Any:
        path = environ["PATH_INFO"]
        hook = environ.get("test.hook")
        if path == "/login":
            session["user"] = environ.get("QUERY_STRING", "")
            body = session.id
        elif path == "/regenerate":
            old = session.id
            session.regenerate()
            body = f"{old}|{session.id}"
        elif path == "/read":
            body = json.dumps(dict(session), sort_keys=True)
        elif path == "/logout":
            environ["session"] = None
            body = "bye"
        else:
            return ("404 Not Found", "no such path")
        if hook is not None:
            hook()
        return body


def fresh(h: Harness, path: str, cookie: str | None = None, **kw: Any):
    """A request carrying exactly ``cookie`` (no cookie jar)."""
    return h.get(path, cookie=cookie, **kw)


def session_cookie(response) -> str:
    value = cookie_value(response)
    assert value, set_cookies(response)
    return f"session={value}"


def login(h: Harness, name: str, cookie: str | None = None) -> tuple[str, str]:
    """Write ``user = name``; return (session id, Cookie header)."""
    response = fresh(h, f"/login?{name}", cookie)
    assert response.status_int == 200
    return response.text, session_cookie(response)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def assert_read_failure(h: Harness, response) -> None:
    """An unreadable store: an empty read-only session, ``store_error`` (read), the
    app's 200 and no Set-Cookie (an outage must not log anybody out)."""
    assert response.status_int == 200
    assert response.text == "{}"
    assert set_cookies(response) == []
    assert h.events.reasons("store_error") == ["read"]
    assert "missed" not in h.events.names()


def harness(store: Any, **options: Any) -> Harness:
    return no_jar(Harness(FlowApp(), store=store, **options))


class SessionFlows:
    """Login → regenerate → logout and requests racing a logout, through the middleware.

    Subclasses provide the ``store`` fixture and ``session_keys()`` (every
    ``session:*`` key on the servers, read with a separate client)."""

    @pytest.fixture
    def store(self):  # pragma: no cover - always overridden
        raise NotImplementedError

    def session_keys(self) -> set[str]:
        raise NotImplementedError

    def test_login_regenerate_logout(self, store):
        """The whole life of a session: the record moves on regenerate() (old key gone,
        new key there, data kept, old cookie refused) and none is left after logout."""
        h = harness(store)
        sid, cookie = login(h, "alice")
        assert self.session_keys() == {store_key(sid)}

        regenerated = fresh(h, "/regenerate", cookie)
        assert regenerated.status_int == 200
        old_id, new_id = regenerated.text.split("|")
        assert old_id == sid
        assert new_id != sid
        new_cookie = session_cookie(regenerated)
        assert new_cookie != cookie
        assert "regenerated" in h.events.names()
        assert "store_error" not in h.events.names()
        assert self.session_keys() == {store_key(new_id)}
        assert fresh(h, "/read", new_cookie).text == '{"user": "alice"}'

        h.events.clear()
        stale = fresh(h, "/read", cookie)
        assert stale.text == "{}"
        assert h.events.names() == ["missed"]

        h.events.clear()
        bye = fresh(h, "/logout", new_cookie)
        assert cookie_value(bye) == ""
        assert h.events.names() == ["destroyed"]
        assert self.session_keys() == set()
        for old in (cookie, new_cookie):
            h.events.clear()
            assert fresh(h, "/read", old).text == "{}"
            assert h.events.names() == ["missed"]
        assert self.session_keys() == set()

    @pytest.mark.parametrize("path", ["/login?mallory", "/regenerate"])
    def test_request_racing_a_logout_never_recreates_the_record(self, store, path):
        """A request that loaded the session before a logout and writes after it (an
        update, or a regenerate's move) is `interrupted`: no record under the old or a
        new key, no cookie, and the logged-out session stays logged out."""
        h = harness(store)
        other = harness(store)
        sid, cookie = login(h, "alice")
        assert self.session_keys() == {store_key(sid)}

        def logout_elsewhere() -> None:
            bye = fresh(other, "/logout", cookie)
            assert cookie_value(bye) == ""
            assert self.session_keys() == set()

        h.events.clear()
        response = fresh(h, path, cookie, extra_environ={"test.hook": logout_elsewhere})
        assert response.status_int == 200
        assert set_cookies(response) == []
        assert h.events.reasons("interrupted") == ["record_gone"]
        assert "store_error" not in h.events.names()
        assert self.session_keys() == set()
        h.events.clear()
        assert fresh(h, "/read", cookie).text == "{}"
        assert h.events.names() == ["missed"]
        assert self.session_keys() == set()

    def test_logouts_racing_updates_leave_exactly_the_others(self, store):
        """Twelve sessions, every other one logged out while another request holds it:
        exactly the sessions not logged out remain, each with its own data."""
        h = harness(store)
        other = harness(store)
        kept: dict[str, tuple[str, str]] = {}
        for i in range(12):
            sid, cookie = login(h, f"user{i}")
            if i % 2:
                kept[sid] = (cookie, f"user{i}")
                continue

            def logout_elsewhere(cookie: str = cookie) -> None:
                fresh(other, "/logout", cookie)

            response = fresh(
                h, "/login?late", cookie, extra_environ={"test.hook": logout_elsewhere}
            )
            assert set_cookies(response) == []
        assert h.events.reasons("interrupted") == ["record_gone"] * 6
        assert self.session_keys() == {store_key(sid) for sid in kept}
        for cookie, name in kept.values():
            assert json.loads(fresh(h, "/read", cookie).text) == {"user": name}


# -- the contract ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_clients(redis_cluster_servers: Cluster) -> Iterator[tuple[RedisCluster, RedisCluster]]:
    """(the client of docs/stores.rst, a raw client with 2 s timeouts), shared by this module's
    tests: building a RedisCluster costs a COMMAND round trip and parsing its reply."""
    client = cluster_client(redis_cluster_servers.startup_nodes())
    raw = redis_cluster_servers.client()
    yield client, raw
    client.close()
    raw.close()


@pytest.fixture
def raw_cluster(redis_cluster: Cluster, cluster_clients) -> RedisCluster:
    """A separate cluster client for looking at the data (the cluster flushed)."""
    return cluster_clients[1]


@pytest.fixture
def cluster_store(redis_cluster: Cluster, cluster_clients) -> RedisStore:
    """RedisStore over the cluster client of docs/stores.rst (the cluster flushed)."""
    return RedisStore(client=cluster_clients[0])


class TestClusterStore(RedisHooks, StoreContract):
    """The contract over RedisStore on a real 3-master Redis Cluster; TTLs are read with
    a separate cluster client (PTTL)."""

    @pytest.fixture
    def store(self, cluster_store, raw_cluster):
        self.raw = raw_cluster
        assert isinstance(cluster_store.client, RedisCluster)
        return cluster_store


def cluster_session_keys(cluster: Cluster) -> set[str]:
    keys: set[str] = set()
    for node in cluster.masters:
        client = node.client()
        try:
            keys.update(key.decode() for key in client.scan_iter(match="session:*", count=1000))
        finally:
            client.close()
    return keys


class TestClusterFlows(SessionFlows):
    @pytest.fixture
    def store(self, redis_cluster, cluster_store):
        self.cluster = redis_cluster
        return cluster_store

    def session_keys(self):
        return cluster_session_keys(self.cluster)

    def test_regenerate_moves_the_record_across_masters(self, store):
        """regenerate() on the cluster (before the fallback it answered 500 with
        RedisClusterException): over several sessions the record moves between slots
        owned by different masters, each time leaving exactly the new key."""
        h = harness(store)
        crossed = 0
        for i in range(8):
            sid, cookie = login(h, f"u{i}")
            response = fresh(h, "/regenerate", cookie)
            assert response.status_int == 200
            old_id, new_id = response.text.split("|")
            assert old_id == sid
            old_node = self.cluster.node_for(store_key(old_id))
            new_node = self.cluster.node_for(store_key(new_id))
            crossed += old_node is not new_node
            assert store_key(old_id) not in self.session_keys()
            assert store_key(new_id) in self.session_keys()
            assert fresh(h, "/read", session_cookie(response)).text == f'{{"user": "u{i}"}}'
        assert "store_error" not in h.events.names()
        assert crossed, "no regenerate crossed masters: the fallback was not exercised"


# -- move(): the fallback's window, closed ------------------------------------------------


class DeletesAfterExists(RedisCluster):
    """The real cluster client, plus one fault: when armed, the key ``EXISTS`` asked
    about is deleted right after the answer (a logout landing between move()'s check
    and its write)."""

    armed = False

    def exists(self, *names: Any) -> int:
        found = super().exists(*names)
        if self.armed:
            self.armed = False
            super().delete(*names)
        return found


def keys_on_two_masters(cluster: Cluster) -> tuple[str, str]:
    """Two session keys whose slots live on different masters."""
    old = store_key("move-old")
    for i in range(100):
        new = store_key(f"move-new-{i}")
        if cluster.node_for(new) is not cluster.node_for(old):
            return old, new
    raise AssertionError("no second master found")


@pytest.fixture
def faulty_store(redis_cluster: Cluster) -> Iterator[RedisStore]:
    client = DeletesAfterExists(
        startup_nodes=redis_cluster.startup_nodes(),
        socket_connect_timeout=0.25,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 1),
    )
    store = RedisStore(client=client)
    yield store
    client.close()


def test_move_fallback_undoes_the_new_key_when_the_old_one_vanished(
    redis_cluster, faulty_store, raw_cluster
):
    """The old key disappears between the check (EXISTS) and the write (SET NX): the
    fallback's DEL of the old key finds nothing, so it deletes the new key again and
    move() answers False."""
    old, new = keys_on_two_masters(redis_cluster)
    faulty_store.set(old, b"record", 60)
    faulty_store.client.armed = True
    assert faulty_store.move(old, new, b"moved", 60) is False
    assert faulty_store.client.armed is False  # the fault did fire
    assert raw_cluster.exists(old) == 0
    assert raw_cluster.exists(new) == 0
    # Unarmed, the same client moves normally.
    faulty_store.set(old, b"record", 60)
    assert faulty_store.move(old, new, b"moved", 60) is True
    assert raw_cluster.get(new) == b"moved"
    assert raw_cluster.exists(old) == 0
    assert 55 < raw_cluster.ttl(new) <= 60


def test_regenerate_racing_a_logout_in_the_fallback_window(redis_cluster, faulty_store):
    """Through the middleware: the logout lands inside move()'s window; the regenerate
    is `interrupted`, sends no cookie, and leaves no record behind."""
    h = harness(faulty_store)
    _, cookie = login(h, "alice")
    faulty_store.client.armed = True
    h.events.clear()
    response = fresh(h, "/regenerate", cookie)
    assert faulty_store.client.armed is False
    assert response.status_int == 200
    assert set_cookies(response) == []
    assert h.events.reasons("interrupted") == ["record_gone"]
    assert cluster_session_keys(redis_cluster) == set()
    h.events.clear()
    assert fresh(h, "/read", cookie).text == "{}"
    assert h.events.names() == ["missed"]


# -- a master down ----------------------------------------------------------------------------


def sessions_on(cluster: Cluster, h: Harness) -> dict[Node, tuple[str, str]]:
    """Log in until every master holds one session: {node: (session id, cookie)}."""
    placed: dict[Node, tuple[str, str]] = {}
    for i in range(200):
        sid, cookie = login(h, f"user{i}")
        placed.setdefault(cluster.node_for(store_key(sid)), (sid, cookie))
        if len(placed) == len(cluster.masters):
            return placed
    raise AssertionError("sessions did not reach every master")


def read_failure_time(store: RedisStore, cookie: str) -> float:
    """One read request of ``cookie``'s session on ``store``: assert it failed as a read
    failure, return how long it took."""
    h = harness(store)
    response, elapsed = timed(lambda: fresh(h, "/read", cookie))
    assert_read_failure(h, response)
    return elapsed


@pytest.fixture
def two_stores(private_cluster: Cluster) -> Iterator[tuple[RedisStore, RedisStore]]:
    """(recommended, redis-py defaults) stores on the private cluster."""
    recommended = RedisStore(client=cluster_client(private_cluster.startup_nodes()))
    defaults = RedisStore(client=RedisCluster(startup_nodes=private_cluster.startup_nodes()))
    yield recommended, defaults
    recommended.client.close()
    defaults.client.close()


def test_killed_master_fails_within_bound(private_cluster, two_stores, capsys):
    """A master killed by PID: reads of its sessions are read failures, writes raise
    StoreError, within the bound; once the survivors declare the cluster down
    (CLUSTERDOWN), sessions on live masters fail the same way. redis-py's defaults
    retry CLUSTERDOWN ten times, 0.25 s apart: far past the bound."""
    recommended, defaults = two_stores
    h = harness(recommended)
    placed = sessions_on(private_cluster, h)
    victim = private_cluster.masters[0]
    survivor = private_cluster.masters[1]
    _, dead_cookie = placed[victim]
    _, live_cookie = placed[survivor]
    for store in two_stores:  # warm pools, as in a running application
        for cookie in (dead_cookie, live_cookie):
            assert fresh(harness(store), "/read", cookie).text.startswith('{"user"')

    victim.kill()
    times = {"dead, recommended": read_failure_time(recommended, dead_cookie)}
    times["dead, defaults"] = read_failure_time(defaults, dead_cookie)
    # An update of a session there: the read fails, so the write is refused.
    h.events.clear()
    start = time.perf_counter()
    with pytest.raises(StoreError):
        fresh(h, "/login?update", dead_cookie)
    times["dead, update, recommended"] = time.perf_counter() - start
    assert h.events.reasons("store_error") == ["read", "write"]
    # New sessions: those whose key falls on the dead master fail to be created.
    failed = 0
    for i in range(40):
        h.events.clear()
        start = time.perf_counter()
        try:
            login(h, f"new{i}")
        except StoreError:
            failed += 1
            times["dead, create, recommended"] = max(
                times.get("dead, create, recommended", 0), time.perf_counter() - start
            )
            assert h.events.reasons("store_error") == ["write"]
        if failed == 3:
            break
    assert failed == 3
    # Sessions on the live masters still work, until the cluster is declared down.
    assert fresh(h, "/read", live_cookie).text.startswith('{"user"')

    wait_for(
        lambda: all(private_cluster.state(node) == "fail" for node in private_cluster.masters[1:]),
        10,
        "the survivors to declare the cluster down",
    )
    times["clusterdown, recommended"] = read_failure_time(recommended, live_cookie)
    times["clusterdown, defaults"] = read_failure_time(defaults, live_cookie)
    times["dead after clusterdown, recommended"] = read_failure_time(recommended, dead_cookie)
    with capsys.disabled():
        print(f"\nmeasured (killed master): { {k: round(v, 3) for k, v in times.items()} }")
    for name, elapsed in times.items():
        if "defaults" not in name:
            assert elapsed < UPPER_BOUND, (name, times)
    # The contrast the recommended line removes: 11 tries x 0.25 s of CLUSTERDOWN sleep.
    assert times["clusterdown, defaults"] > 2.0, times
    assert times["clusterdown, defaults"] > 3 * times["clusterdown, recommended"], times


def test_hung_master_fails_within_bound(private_cluster, capsys):
    """A master paused with SIGSTOP (it accepts connections and never answers): a read
    of its session costs one read timeout per try (0.5 s x 2), not more."""
    store = RedisStore(client=cluster_client(private_cluster.startup_nodes()))
    try:
        h = harness(store)
        placed = sessions_on(private_cluster, h)
        victim = private_cluster.masters[2]
        _, hung_cookie = placed[victim]
        assert fresh(h, "/read", hung_cookie).text.startswith('{"user"')
        victim.pause()
        try:
            elapsed = read_failure_time(store, hung_cookie)
            h.events.clear()
            start = time.perf_counter()
            with pytest.raises(StoreError):
                fresh(h, "/login?update", hung_cookie)
            write_elapsed = time.perf_counter() - start
        finally:
            victim.resume()
        with capsys.disabled():
            print(f"\nmeasured (hung master): read {elapsed:.3f} s, write {write_elapsed:.3f} s")
        assert 0.4 < elapsed < UPPER_BOUND, elapsed
        # The read failed first (the session is read-only), then the write refused.
        assert write_elapsed < UPPER_BOUND, write_elapsed
        assert h.events.reasons("store_error") == ["read", "write"]
    finally:
        store.client.close()


def test_ping_fails_when_a_cluster_master_is_down(private_cluster):
    """A readiness probe must not pass on a broken cluster: any node still answers PING
    while the cluster refuses keys, so ping() asks every primary for cluster_state."""
    store = RedisStore(client=cluster_client(private_cluster.startup_nodes()))
    try:
        assert store.ping() is None
        private_cluster.masters[0].kill()
        with pytest.raises(StoreError):
            store.ping()
        wait_for(
            lambda: all(private_cluster.state(n) == "fail" for n in private_cluster.masters[1:]),
            10,
            "the survivors to declare the cluster down",
        )
        with pytest.raises(StoreError):
            store.get("session:probe")
        with pytest.raises(StoreError) as info:
            store.ping()
        assert "cluster" in str(info.value)
    finally:
        store.client.close()
