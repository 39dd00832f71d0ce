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
        """SIGSTOP: the process hangs, its sockets still accept connections."""
        os.kill(self.pid, signal.SIGSTOP)

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
