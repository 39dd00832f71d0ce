"""Real Redis processes for the store tests: a 3-master Redis Cluster and a Sentinel
group (master, replicas, three sentinels), each on free loopback ports in a temp dir.

Every process is started with ``subprocess.Popen`` and stopped by its PID (SIGCONT in
case a test paused it, SIGTERM, SIGKILL after a timeout); the temp dir is removed.
Nothing here is mocked: the tests talk to these servers with redis-py.

A missing binary skips the tests that need it, with a message, unless
``WSGISESSION_REQUIRE_REDIS=1`` is set: then it fails (see ``require_binary``).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

HOST = "127.0.0.1"
#: The cluster bus of a node listens on its port + 10000.
BUS_OFFSET = 10000
SERVICE = "wsgisession"

_taken: set[int] = set()


def require_binary(name: str, package: str) -> str:
    """The path of ``name``; skip (or, with WSGISESSION_REQUIRE_REDIS=1, fail) without
    it or without redis-py."""
    required = os.environ.get("WSGISESSION_REQUIRE_REDIS") == "1"
    path = shutil.which(name)
    if path is None:
        if required:
            pytest.fail(f"WSGISESSION_REQUIRE_REDIS=1 but no {name} on PATH")
        pytest.skip(
            f"no {name} on PATH: install it (apt-get install {package}) or set "
            "WSGISESSION_REQUIRE_REDIS=1 to make its absence an error"
        )
    try:
        import redis  # noqa: F401
    except ImportError:
        if required:
            pytest.fail("WSGISESSION_REQUIRE_REDIS=1 but redis-py is not installed")
        pytest.skip("redis-py is not installed: pip install 'wsgisession[redis]'")
    return path


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port (chosen by the kernel), not handed out before."""
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        if port not in _taken:
            _taken.add(port)
            return port


def free_cluster_port() -> int:
    """A port P such that P and P + 10000 (the cluster bus) are both free and at most
    65535; below the kernel's ephemeral range when possible, so that no outgoing
    connection can be holding either of them."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    top = min(low, 65536) - BUS_OFFSET - 1
    first, last = (20000, top) if top > 20500 else (20000, 65535 - BUS_OFFSET)
    for _ in range(2000):
        port = random.randint(first, last)
        if {port, port + BUS_OFFSET} & _taken:
            continue
        if _bindable(port) and _bindable(port + BUS_OFFSET):
            _taken.update((port, port + BUS_OFFSET))
            return port
    raise RuntimeError("no free port pair (P, P + 10000) found on 127.0.0.1")


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` (exceptions count as False) until true, or raise naming ``what``."""
    deadline = time.monotonic() + timeout
    error: BaseException | None = None
    while True:
        try:
            if predicate():
                return
            error = None
        except Exception as exc:
            error = exc
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what} (last: {error!r})")
        time.sleep(interval)


def _stopped(pid: int) -> bool:
    """Every thread of ``pid`` in the stopped state (``T`` in ``/proc/<pid>/task/*/stat``);
    a process that is gone counts as stopped."""
    try:
        states = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii") as f:
                states.append(f.read().rpartition(")")[2].split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return True
    return all(state in ("T", "t") for state in states)


def wait_stopped(pid: int, timeout: float = 5.0) -> None:
    """After SIGSTOP: return once every thread of ``pid`` has stopped."""
    wait_for(lambda: _stopped(pid), timeout, f"process {pid} to stop", interval=0.001)


class Process:
    """One server process, stopped by PID; its output goes to ``log``."""

    def __init__(self, argv: list[str], log: str) -> None:
        self.argv = argv
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)

    def tail(self, lines: int = 15) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL by PID (a crash: nothing is flushed, no goodbye to anybody)."""
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=5)

    def pause(self) -> None:
        """SIGSTOP: the process hangs, its sockets still accept connections. Returns
        once every thread of it is stopped (``kill`` returns before a thread running
        on another CPU has stopped, and it could still answer one request)."""
        os.kill(self.pid, signal.SIGSTOP)
        wait_stopped(self.pid)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL if it has not exited after 5 s."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)  # a paused process cannot exit
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


class Node(Process):
    """A redis-server on ``port`` with its own (initially empty, writable) config file,
    so that ``CONFIG REWRITE`` works when Sentinel reconfigures it."""

    def __init__(self, binary: str, port: int, directory: str, extra: list[str]) -> None:
        self.port = port
        conf = os.path.join(directory, f"redis-{port}.conf")
        with open(conf, "w"):
            pass
        argv = [
            binary,
            conf,
            "--port",
            str(port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
            # Replicas sync at once (the default waits 5 s for more replicas to join).
            "--repl-diskless-sync-delay",
            "0",
            *extra,
        ]
        super().__init__(argv, os.path.join(directory, f"redis-{port}.log"))

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    def client(self, **kwargs: Any):
        """A plain client for poking at this one server (2 s timeouts, no retry)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        kwargs.setdefault("socket_timeout", 2)
        kwargs.setdefault("socket_connect_timeout", 2)
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        return redis.Redis(host=HOST, port=self.port, **kwargs)

    def call(self, *args: Any) -> Any:
        """Run one command on a short-lived connection."""
        client = self.client()
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def info(self, section: str) -> dict[str, Any]:
        client = self.client()
        try:
            return client.info(section)
        finally:
            client.close()

    def start(self) -> None:
        super().start()
        try:
            wait_for(lambda: self.call("PING"), 10, f"redis-server on port {self.port}")
        except RuntimeError as exc:
            log = self.tail()
            self.stop()
            raise RuntimeError(f"{exc}\n{log}") from None


def _cluster_info(node: Node) -> dict[str, str]:
    info = node.call("CLUSTER INFO")
    if isinstance(info, bytes):
        pairs = (line.split(":", 1) for line in info.decode().splitlines() if ":" in line)
        info = dict(pairs)
    return {str(k): str(v) for k, v in info.items()}


class Cluster:
    """A Redis Cluster of ``masters`` masters and no replicas.

    ``cluster-node-timeout`` is ``node_timeout`` ms: after that long without an answer
    the other masters flag a node as failing, and (``cluster-require-full-coverage``
    being on by default) the whole cluster answers CLUSTERDOWN until it is back.
    """

    def __init__(
        self, server: str, cli: str, *, masters: int = 3, node_timeout: int = 2000
    ) -> None:
        self.cli = cli
        self.dir = tempfile.mkdtemp(prefix="wsgisession-cluster-")
        self.node_timeout = node_timeout
        self.nodes: list[Node] = []
        for _ in range(masters):
            port = free_cluster_port()
            extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                os.path.join(self.dir, f"nodes-{port}.conf"),
                "--cluster-node-timeout",
                str(node_timeout),
            ]
            self.nodes.append(Node(server, port, self.dir, extra))
        #: (first slot, last slot, node) of every slot range, once created.
        self.slots: list[tuple[int, int, Node]] = []

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        command = [
            self.cli,
            "--cluster",
            "create",
            *(f"{HOST}:{node.port}" for node in self.nodes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        done = subprocess.run(command, capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed ({done.returncode}):\n"
                + done.stdout.decode(errors="replace")[-2000:]
                + done.stderr.decode(errors="replace")[-2000:]
            )
        self.wait_ok(self.nodes, 20)
        by_port = {node.port: node for node in self.nodes}
        self.slots = sorted(
            (int(first), int(last), by_port[int(owner[1])])
            for first, last, owner, *_ in self.nodes[0].call("CLUSTER SLOTS")
        )

    def wait_ok(self, nodes: list[Node], timeout: float) -> None:
        """Wait until every node in ``nodes`` says cluster_state:ok with all slots."""

        def ok() -> bool:
            for node in nodes:
                info = _cluster_info(node)
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
                    return False
                if info.get("cluster_known_nodes") != str(len(self.nodes)):
                    return False
            return True

        wait_for(ok, timeout, "cluster_state:ok on every node")

    def state(self, node: Node) -> str:
        return _cluster_info(node)["cluster_state"]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def masters(self) -> list[Node]:
        return list(self.nodes)

    def startup_nodes(self):
        from redis.cluster import ClusterNode

        return [ClusterNode(HOST, node.port) for node in self.nodes]

    def node_for(self, key: str) -> Node:
        """The master holding ``key``'s slot."""
        from redis.crc import key_slot

        slot = key_slot(key.encode("utf-8"))
        for first, last, node in self.slots:
            if first <= slot <= last:
                return node
        raise AssertionError(f"slot {slot} is not covered")

    def healthy(self) -> bool:
        return all(node.running for node in self.nodes)

    def flush(self) -> None:
        """FLUSHALL on every master."""
        for node in self.masters:
            assert node.call("FLUSHALL")

    def client(self, **kwargs: Any):
        """A cluster client for inspecting the data (2 s timeouts)."""
        from redis.cluster import RedisCluster

        kwargs.setdefault("socket_timeout", 2)
        kwargs.setdefault("socket_connect_timeout", 2)
        return RedisCluster(startup_nodes=self.startup_nodes(), **kwargs)


class SentinelGroup:
    """A master, ``replicas`` replicas (``--replicaof``) and ``sentinels`` sentinels
    monitoring them as service ``SERVICE`` with quorum 2."""

    def __init__(
        self,
        server: str,
        sentinel: str,
        *,
        replicas: int = 1,
        sentinels: int = 3,
        down_after: int = 500,
        failover_timeout: int = 2000,
    ) -> None:
        self.dir = tempfile.mkdtemp(prefix="wsgisession-sentinel-")
        self.service = SERVICE
        self.master = Node(server, free_port(), self.dir, [])
        replica_of = ["--replicaof", HOST, str(self.master.port)]
        self.replicas = [Node(server, free_port(), self.dir, replica_of) for _ in range(replicas)]
        self.sentinels: list[Process] = []
        self.sentinel_ports: list[int] = []
        for _ in range(sentinels):
            port = free_port()
            conf = os.path.join(self.dir, f"sentinel-{port}.conf")
            with open(conf, "w") as f:
                f.write(
                    f"port {port}\n"
                    f"bind {HOST}\n"
                    f"dir {self.dir}\n"
                    f"sentinel monitor {self.service} {HOST} {self.master.port} 2\n"
                    f"sentinel down-after-milliseconds {self.service} {down_after}\n"
                    f"sentinel failover-timeout {self.service} {failover_timeout}\n"
                    f"sentinel parallel-syncs {self.service} {max(replicas, 1)}\n"
                )
            log = os.path.join(self.dir, f"sentinel-{port}.log")
            self.sentinels.append(Process([sentinel, conf], log))
            self.sentinel_ports.append(port)

    @property
    def data_nodes(self) -> list[Node]:
        return [self.master, *self.replicas]

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(HOST, port) for port in self.sentinel_ports]

    def _sentinel_call(self, port: int, *args: Any) -> Any:
        import redis

        client = redis.Redis(host=HOST, port=port, socket_timeout=2, socket_connect_timeout=2)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def sentinel_view(self, port: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """What one sentinel knows: (master state, replica states)."""
        import redis

        client = redis.Redis(host=HOST, port=port, socket_timeout=2, socket_connect_timeout=2)
        try:
            return client.sentinel_master(self.service), client.sentinel_slaves(self.service)
        finally:
            client.close()

    def start(self) -> None:
        for node in self.data_nodes:
            node.start()
        for replica in self.replicas:
            wait_for(
                lambda r=replica: r.info("replication").get("master_link_status") == "up",
                15,
                f"replica {replica.port} in sync",
            )
        for process, port in zip(self.sentinels, self.sentinel_ports, strict=True):
            process.start()
            try:
                wait_for(lambda p=port: self._sentinel_call(p, "PING"), 10, f"sentinel {port}")
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{process.tail()}") from None
        self.wait_settled(self.master, 30)

    def wait_settled(self, master: Node, timeout: float) -> None:
        """Wait until every live sentinel reports ``master`` as the master (not down),
        sees the other sentinels, and sees every live replica of it as up and linked."""
        live = [
            port
            for process, port in zip(self.sentinels, self.sentinel_ports, strict=True)
            if process.running
        ]
        replicas = {node.port for node in self.data_nodes if node.running and node is not master}

        def settled() -> bool:
            for port in live:
                state, seen = self.sentinel_view(port)
                if int(state["port"]) != master.port or not state["is_master"]:
                    return False
                if state["is_sdown"] or state["is_odown"] or "failover" in state["flags"]:
                    return False
                if state["num-other-sentinels"] != len(self.sentinel_ports) - 1:
                    return False
                up = {
                    int(r["port"])
                    for r in seen
                    if not r["is_sdown"]
                    and not r["is_odown"]
                    and r.get("master-link-status") == "ok"
                    and int(r.get("master-port", -1)) == master.port
                }
                if not replicas <= up:
                    return False
            return True

        wait_for(settled, timeout, f"the sentinels to agree on master {master.port}", 0.1)

    def current_master(self) -> Node | None:
        """The data node the sentinels name as master (None while they disagree or
        report it down)."""
        ports = set()
        for port, process in zip(self.sentinel_ports, self.sentinels, strict=True):
            if not process.running:
                continue
            state, _ = self.sentinel_view(port)
            if state["is_sdown"] or state["is_odown"]:
                return None
            ports.add(int(state["port"]))
        if len(ports) != 1:
            return None
        (port,) = ports
        return next((node for node in self.data_nodes if node.port == port), None)

    def healthy(self) -> bool:
        return all(node.running for node in self.data_nodes) and all(
            process.running for process in self.sentinels
        )

    def flush(self) -> None:
        """FLUSHALL on the master (replicated to the replicas)."""
        assert self.master.call("FLUSHALL")

    def stop(self) -> None:
        for process in self.sentinels:
            process.stop()
        for node in self.data_nodes:
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_cluster(**kwargs: Any) -> Iterator[Cluster]:
    server = require_binary("redis-server", "redis-server")
    cli = require_binary("redis-cli", "redis-tools")
    cluster = Cluster(server, cli, **kwargs)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def running_sentinel_group(**kwargs: Any) -> Iterator[SentinelGroup]:
    server = require_binary("redis-server", "redis-server")
    sentinel = require_binary("redis-sentinel", "redis-sentinel")
    group = SentinelGroup(server, sentinel, **kwargs)
    try:
        group.start()
        yield group
    finally:
        group.stop()


# -- memcached ---------------------------------------------------------------------------


def require_memcached() -> str:
    """memcached's path; skip (or, with WSGISESSION_REQUIRE_REDIS=1, fail) without it or
    without pymemcache. The one switch makes every missing store server an error."""
    required = os.environ.get("WSGISESSION_REQUIRE_REDIS") == "1"
    path = shutil.which("memcached")
    if path is None:
        if required:
            pytest.fail("WSGISESSION_REQUIRE_REDIS=1 but no memcached on PATH")
        pytest.skip(
            "no memcached on PATH: install it (apt-get install memcached) or set "
            "WSGISESSION_REQUIRE_REDIS=1 to make its absence an error"
        )
    try:
        import pymemcache  # noqa: F401
    except ImportError:
        if required:
            pytest.fail("WSGISESSION_REQUIRE_REDIS=1 but pymemcache is not installed")
        pytest.skip("pymemcache is not installed: pip install 'wsgisession[memcached]'")
    return path


def _memcached_user() -> list[str]:
    """memcached refuses to run as root without ``-u``: drop to ``nobody`` then."""
    if os.geteuid() != 0:
        return []
    import pwd

    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return ["-u", "root"]
    return ["-u", "nobody"]


class Memcached(Process):
    """A memcached on a free loopback port, TCP only (``-U 0``), with ``extra``
    options (``-m 2 -M``, ``-I 64k``, ...); ``stop()``/``start()`` restart it (empty:
    memcached keeps nothing) on the same port."""

    def __init__(self, binary: str, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="wsgisession-memcached-")
        argv = [binary, "-l", HOST, "-p", str(self.port), "-U", "0", *extra, *_memcached_user()]
        super().__init__(argv, os.path.join(self.dir, f"memcached-{self.port}.log"))

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def client(self, **kwargs: Any):
        """A plain pymemcache Client for poking at this server (2 s timeouts)."""
        from pymemcache.client.base import Client

        kwargs.setdefault("timeout", 2)
        kwargs.setdefault("connect_timeout", 2)
        kwargs.setdefault("default_noreply", False)
        return Client((HOST, self.port), **kwargs)

    def call(self, command: Callable[[Any], Any]) -> Any:
        """Run ``command(client)`` on a short-lived connection."""
        client = self.client()
        try:
            return command(client)
        finally:
            client.close()

    def start(self) -> None:
        super().start()
        try:
            wait_for(
                lambda: self.call(lambda c: c.version()), 10, f"memcached on {self.port}", 0.005
            )
        except RuntimeError as exc:
            log = self.tail()
            self.stop()
            raise RuntimeError(f"{exc}\n{log}") from None

    def stop(self) -> None:
        """SIGKILL by PID: memcached keeps nothing a clean stop would save, and its
        SIGTERM waits up to a second for its clock to tick."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def stats(self, *args: str) -> dict[bytes, Any]:
        return self.call(lambda c: c.stats(*args))

    def keys(self) -> list[str]:
        """The keys of every item, sorted. ``lru_crawler metadump all`` can miss items
        that memcached's LRU maintainer moves during the dump, so it is repeated until
        it lists as many as ``curr_items`` counts. Exact on a server that was never
        flushed and holds no expired items (those stay counted until reclaimed)."""
        from urllib.parse import unquote

        deadline = time.monotonic() + 5
        while True:
            count = self.stats()[b"curr_items"]
            dump = self.raw(b"lru_crawler metadump all\r\n", (b"END\r\n", b"BUSY"))
            keys = []
            for line in dump.decode().splitlines():
                fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
                if "key" in fields:
                    keys.append(unquote(fields["key"]))
            if not dump.startswith(b"BUSY") and len(set(keys)) == count:
                return sorted(set(keys))
            if time.monotonic() > deadline:
                raise RuntimeError(f"metadump listed {len(keys)} of {count} items for 5 s")
            time.sleep(0.01)

    def raw(self, command: bytes, ends: tuple[bytes, ...]) -> bytes:
        """Send ``command`` on a new socket and read until the reply ends with one of
        ``ends`` (pymemcache's raw_command keeps only the last chunk of a long reply)."""
        with socket.create_connection((HOST, self.port), timeout=5) as sock:
            sock.sendall(command)
            reply = b""
            while not any(reply.endswith(end) or reply.startswith(end) for end in ends):
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError(f"memcached closed the connection: {reply[-200:]!r}")
                reply += chunk
            return reply

    def flush(self) -> None:
        """``flush_all``: every item is gone for the clients (but stays counted in
        ``curr_items``, so ``keys()`` is no longer exact)."""
        assert self.call(lambda c: c.flush_all(noreply=False))

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_memcached(*extra: str) -> Iterator[Memcached]:
    server = Memcached(require_memcached(), extra)
    try:
        server.start()
        yield server
    finally:
        server.remove()


# -- PostgreSQL (issue 15): initdb into a temp dir, run as an unprivileged user ----------

#: Where Debian's ``postgresql`` package puts the server programs (not on PATH).
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_USER = "wsgisession"


def require_postgres() -> str:
    """The directory holding ``initdb`` and ``postgres`` (PATH first, then Debian's
    ``/usr/lib/postgresql/<version>/bin``, newest first); skip without it or without
    SQLAlchemy and psycopg, unless ``WSGISESSION_REQUIRE_REDIS=1`` (CI): then fail."""
    import glob
    import re

    required = os.environ.get("WSGISESSION_REQUIRE_REDIS") == "1"
    found = shutil.which("initdb")
    candidates = [os.path.dirname(found)] if found else []
    candidates += sorted(
        glob.glob(PG_BIN_GLOB),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p)],
        reverse=True,
    )
    bindir = next(
        (
            d
            for d in candidates
            if all(os.access(os.path.join(d, n), os.X_OK) for n in ("initdb", "postgres"))
        ),
        None,
    )
    if bindir is None:
        if required:
            pytest.fail("WSGISESSION_REQUIRE_REDIS=1 but PostgreSQL's initdb/postgres are missing")
        pytest.skip(
            "no PostgreSQL server programs (initdb, postgres): install them (apt-get install "
            "postgresql) or set WSGISESSION_REQUIRE_REDIS=1 to make their absence an error"
        )
    for module, extra in (("sqlalchemy", "sql"), ("psycopg", "postgresql")):
        try:
            __import__(module)
        except ImportError:
            if required:
                pytest.fail(f"WSGISESSION_REQUIRE_REDIS=1 but {module} is not installed")
            pytest.skip(f"{module} is not installed: pip install 'wsgisession[{extra}]'")
    return bindir


def unprivileged_user() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root (it refuses to run as root):
    the ``postgres`` user Debian's package creates, else ``nobody``. None when we are
    not root (it then runs as us)."""
    import pwd

    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


def postgres_tmp(prefix: str) -> str:
    """A new temp dir the PostgreSQL user can reach: under ``tempfile.gettempdir()``
    unless one of its parents is closed to that user (a private TMPDIR), else /tmp."""
    user = unprivileged_user()
    base = tempfile.gettempdir()
    path = os.path.abspath(base)
    while user is not None:
        info = os.stat(path)
        if not (info.st_mode & 0o001 or info.st_uid == user[0]):
            base = "/tmp"
            break
        if path == os.path.dirname(path):
            break
        path = os.path.dirname(path)
    directory = tempfile.mkdtemp(prefix=prefix, dir=base)
    if user is not None:
        os.chown(directory, *user)
    return directory


class PostgresServer:
    """One PostgreSQL cluster in a temp dir of its own, on a free loopback port.

    ``initdb`` runs once per test session into a template directory; each server copies
    it (``cp -a``, a tenth of a second). The ``postgres`` process is started directly
    (no ``pg_ctl``), so its PID is the postmaster's: ``stop()`` sends SIGINT (fast
    shutdown), ``crash()`` SIGKILL, ``pause()`` SIGSTOPs it and every backend.
    """

    def __init__(self, bindir: str, template: str) -> None:
        self.bindir = bindir
        self.user = unprivileged_user()
        self.dir = postgres_tmp("wsgisession-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        subprocess.run(["cp", "-a", template, self.data], check=True, timeout=60)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.paused: list[int] = []

    def _as_user(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user[0], "group": self.user[1], "extra_groups": []}

    @staticmethod
    def initdb(bindir: str, directory: str) -> str:
        """A fresh cluster (superuser ``wsgisession``, trust on loopback) in
        ``directory``/template; returns its path."""
        user = unprivileged_user()
        data = os.path.join(directory, "template")
        done = subprocess.run(
            [
                os.path.join(bindir, "initdb"),
                "-D",
                data,
                "-U",
                PG_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            timeout=120,
            check=False,
            **({} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}),
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"initdb failed ({done.returncode}) as uid {user}:\n"
                + done.stdout.decode(errors="replace")[-2000:]
                + done.stderr.decode(errors="replace")[-2000:]
            )
        return data

    def url(self, database: str = "postgres", driver: str = "") -> str:
        scheme = "postgresql" + (f"+{driver}" if driver else "")
        return f"{scheme}://{PG_USER}@{HOST}:{self.port}/{database}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        argv = [
            os.path.join(self.bindir, "postgres"),
            "-D",
            self.data,
            "-p",
            str(self.port),
            "-k",
            self.dir,  # the Unix socket and its lock file, not /var/run/postgresql
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "shared_buffers=16MB",
            "-c",
            "max_connections=200",
            "-c",
            "dynamic_shared_memory_type=mmap",  # no /dev/shm needed in containers
        ]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, **self._as_user()
            )
        try:
            wait_for(lambda: self.execute("SELECT 1") == [(1,)], 30, f"postgres on {self.port}")
        except RuntimeError as exc:
            log = self.tail()
            self.stop()
            raise RuntimeError(f"{exc}\n{log}") from None

    def tail(self, lines: int = 20) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def execute(self, statement: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement on a short-lived autocommit connection (2 s timeouts)."""
        import psycopg

        with psycopg.connect(
            host=HOST,
            port=self.port,
            user=PG_USER,
            dbname=database,
            connect_timeout=2,
            autocommit=True,
            options="-c statement_timeout=5000",
        ) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def backends(self) -> list[int]:
        """The PIDs of the postmaster's children (backends and helpers)."""
        children: list[int] = []
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{self.pid}/task"):
                with open(f"/proc/{self.pid}/task/{task}/children") as f:
                    children += [int(pid) for pid in f.read().split()]
        return children

    def pause(self) -> None:
        """SIGSTOP the postmaster and every child: the kernel still accepts
        connections and acknowledges data, nothing ever answers."""
        self.paused = [self.pid, *self.backends()]
        for pid in self.paused:
            os.kill(pid, signal.SIGSTOP)
        for pid in self.paused:
            wait_stopped(pid)

    def resume(self) -> None:
        for pid in self.paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.paused = []

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: SIGQUIT, every backend exits at once, no
        checkpoint (the next start runs crash recovery)."""
        self._signal_and_wait(signal.SIGQUIT)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, then the server exits;
        SIGKILL if it has not after 10 s."""
        self._signal_and_wait(signal.SIGINT)

    def _signal_and_wait(self, sig: int) -> None:
        self.resume()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def postgres_template() -> Iterator[tuple[str, str]]:
    """(bindir, template data directory) for PostgresServer, removed afterwards."""
    bindir = require_postgres()
    directory = postgres_tmp("wsgisession-pg-template-")
    try:
        yield bindir, PostgresServer.initdb(bindir, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def running_postgres(bindir: str, template: str) -> Iterator[PostgresServer]:
    server = PostgresServer(bindir, template)
    try:
        server.start()
        yield server
    finally:
        server.remove()
