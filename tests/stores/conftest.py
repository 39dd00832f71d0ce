"""Real Redis servers for the store tests, on free loopback ports: a redis-server, a
3-master Redis Cluster and a Sentinel group (the last two managed by ``servers.py``).

Without a ``redis-server`` (``redis-cli``, ``redis-sentinel``) binary the Redis tests
skip with a message, unless ``WSGISESSION_REQUIRE_REDIS=1`` is set (CI sets it): then
they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.stores.servers import Cluster, SentinelGroup, running_cluster, running_sentinel_group


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server process; ``stop()``/``start()`` restart it on the same port."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="wsgisession-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start within 10 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None

    def client(self, **kwargs):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2, **kwargs)


def _redis_binary() -> str:
    """redis-server's path; skip (or, with WSGISESSION_REQUIRE_REDIS=1, fail) without it."""
    required = os.environ.get("WSGISESSION_REQUIRE_REDIS") == "1"
    binary = shutil.which("redis-server")
    if binary is None:
        if required:
            pytest.fail("WSGISESSION_REQUIRE_REDIS=1 but no redis-server on PATH")
        pytest.skip(
            "no redis-server on PATH: install it (apt-get install redis-server) or set "
            "WSGISESSION_REQUIRE_REDIS=1 to make its absence an error"
        )
    try:
        import redis  # noqa: F401
    except ImportError:
        if required:
            pytest.fail("WSGISESSION_REQUIRE_REDIS=1 but redis-py is not installed")
        pytest.skip("redis-py is not installed: pip install 'wsgisession[redis]'")
    return binary


@contextlib.contextmanager
def _running_server() -> Iterator[RedisServer]:
    server = RedisServer(_redis_binary())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A running redis-server for the whole test session (flushed per test by users)."""
    with _running_server() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of a running, flushed redis-server (restarted if a test stopped it)."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    client = redis_server.client()
    try:
        client.flushall()
        client.config_set("maxmemory", "0")
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, for faults that would disturb others
    (stopping it, pausing it, filling its memory)."""
    with _running_server() as server:
        yield server


# -- Redis Cluster and Sentinel (servers.py) ---------------------------------------------


@pytest.fixture(scope="session")
def redis_cluster_servers() -> Iterator[Cluster]:
    """A running 3-master Redis Cluster for the whole test session."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def redis_cluster(redis_cluster_servers: Cluster) -> Cluster:
    """The session's Redis Cluster, FLUSHALLed on every master."""
    if not redis_cluster_servers.healthy():
        pytest.fail("a test stopped a node of the shared cluster: use private_cluster")
    redis_cluster_servers.flush()
    return redis_cluster_servers


@pytest.fixture
def private_cluster() -> Iterator[Cluster]:
    """A Redis Cluster of the test's own, for killing or pausing its nodes (a short
    cluster-node-timeout, so the survivors notice within about a second)."""
    with running_cluster(node_timeout=500) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel_servers() -> Iterator[SentinelGroup]:
    """A running Sentinel group (master, one replica, three sentinels) for the session."""
    with running_sentinel_group(replicas=1) as group:
        yield group


@pytest.fixture
def redis_sentinel(redis_sentinel_servers: SentinelGroup) -> SentinelGroup:
    """The session's Sentinel group, its master FLUSHALLed."""
    if not redis_sentinel_servers.healthy():
        pytest.fail("a test stopped a server of the shared Sentinel group: use private_sentinel")
    redis_sentinel_servers.flush()
    return redis_sentinel_servers


@pytest.fixture
def private_sentinel() -> Iterator[SentinelGroup]:
    """A Sentinel group of the test's own (master, two replicas, three sentinels), for
    failovers: they change the topology for good."""
    with running_sentinel_group(replicas=2) as group:
        yield group


# -- memcached (servers.py) ---------------------------------------------------------------


@pytest.fixture
def memcached():
    """A memcached of the test's own, empty (so that its item count, and the keys
    ``keys()`` lists, are exact); about 10 ms to start, stopped by PID afterwards."""
    from tests.stores.servers import running_memcached

    with running_memcached() as server:
        yield server


@pytest.fixture
def private_memcached():
    """Factory: ``private_memcached(*options)`` -> another memcached of the test's own,
    with those command-line options (``-m 2 -M``, ``-I 64k``, ...); all stopped by PID
    after the test."""
    from tests.stores.servers import running_memcached

    with contextlib.ExitStack() as stack:

        def start(*options: str):
            return stack.enter_context(running_memcached(*options))

        yield start


# -- PostgreSQL (servers.py) --------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster_template():
    """(bindir, data directory) of one initdb'd cluster, copied by every server."""
    from tests.stores.servers import postgres_template

    with postgres_template() as template:
        yield template


@pytest.fixture(scope="session")
def postgres_server(postgres_cluster_template):
    """A running PostgreSQL for the whole test session (tests use tables of their own)."""
    from tests.stores.servers import running_postgres

    with running_postgres(*postgres_cluster_template) as server:
        yield server


@pytest.fixture
def postgres(postgres_server):
    """The session's PostgreSQL (restarted if a test stopped it)."""
    if not postgres_server.running:
        postgres_server.start()
    return postgres_server


@pytest.fixture
def private_postgres(postgres_cluster_template):
    """A PostgreSQL of the test's own, for faults that would disturb others (stopping,
    pausing or crashing it); stopped by PID and removed after the test."""
    from tests.stores.servers import running_postgres

    with running_postgres(*postgres_cluster_template) as server:
        yield server
