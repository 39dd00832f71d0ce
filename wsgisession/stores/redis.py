"""``RedisStore``: sessions in Redis, shared by every worker and host.

Built on redis-py with short, explicit timeouts and at most one retry: redis-py's
defaults (5 s timeouts, several retries with backoff) can hold a request for about a
minute when Redis hangs. Every exception redis-py raises — the cluster client's own
``RedisClusterException`` family included — and every socket error becomes
:class:`~wsgisession.errors.StoreError`, whose message names the command, the
exception class and the server (never a password).

Creating uses ``SET NX`` and updating ``SET XX``, so a request that finishes after a
logout or a ``regenerate()`` cannot bring the old session back. Pass your own
``client=`` for Sentinel or Cluster (its timeouts are then yours to set; the docs' "Scaling
out" gives client lines that keep a request's wait near 1.5 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigurationError, StoreError

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("RedisStore needs redis-py: pip install 'wsgisession[redis]'") from exc

__all__ = ["RedisStore"]

# KEYS[1] old, KEYS[2] new, ARGV[1] value, ARGV[2] ttl (0: none).
_MOVE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
else
  redis.call('SET', KEYS[2], ARGV[1])
end
redis.call('DEL', KEYS[1])
return 1
"""

# Index scripts: KEYS[1] the members' entries (a hash), KEYS[2] their expiries (a sorted
# set, Unix seconds). Expired members are dropped on every put and get; the two keys
# live as long as the longest member.
_INDEX_PRUNE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, member in ipairs(expired) do redis.call('HDEL', KEYS[1], member) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
"""
# ARGV[1] now, ARGV[2] member, ARGV[3] entry, ARGV[4] expires at
_INDEX_PUT_SCRIPT = (
    _INDEX_PRUNE
    + """
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local ttl = math.ceil(tonumber(top[2]) - tonumber(ARGV[1]))
if ttl < 1 then ttl = 1 end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return 1
"""
)
# ARGV[1] now
_INDEX_GET_SCRIPT = (
    _INDEX_PRUNE
    + """
return redis.call('HGETALL', KEYS[1])
"""
)
# KEYS[3..] the records to delete (also the members to remove)
_INDEX_REVOKE_SCRIPT = """
for i = 3, #KEYS do
  redis.call('DEL', KEYS[i])
  redis.call('HDEL', KEYS[1], KEYS[i])
  redis.call('ZREM', KEYS[2], KEYS[i])
end
return 1
"""

#: Defaults chosen so a request waits at most ~1.5 s on a dead or hung Redis.
CONNECT_TIMEOUT = 0.25
READ_TIMEOUT = 0.5
RETRIES = 1
#: How long a write waits for ``min_replicas`` acknowledgements (WAIT), by default.
REPLICA_TIMEOUT = 0.2

_T = TypeVar("_T")


def _from_redis(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the store (redis-py's or the network's), not a
    bug: redis-py's exceptions do not share one base class (``RedisError``,
    ``RedisClusterException``, ``ChildDeadlockedError``, ...), but all live in it."""
    if isinstance(exc, OSError):
        return True
    module = type(exc).__module__ or ""
    return module == "redis" or module.startswith("redis.")


def _address(client: Any) -> str:
    """Where ``client`` talks to, for error messages: host:port, socket path, the
    Sentinel service name or the cluster's nodes. Never credentials."""
    if isinstance(client, RedisCluster):
        nodes = sorted(node.name for node in client.get_nodes())  # type: ignore[no-untyped-call]
        return "cluster " + ",".join(nodes[:3]) + (",..." if len(nodes) > 3 else "")
    pool = getattr(client, "connection_pool", None)
    service = getattr(pool, "service_name", None)
    if isinstance(service, str):
        return f"sentinel service {service}"
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    if "host" in kwargs:
        return f"{kwargs['host']}:{kwargs.get('port', 6379)}"
    return type(client).__name__


class RedisStore:
    """A session store on Redis.

    :param client: a ready ``redis.Redis`` (or ``RedisCluster``, or a Sentinel
        master) to use as is.
    :param url: a ``redis://``, ``rediss://`` or ``unix://`` URL; a client is built with
        the timeouts below. Give ``client`` or ``url``, not both.
    :param connect_timeout: seconds to wait for a connection (default 0.25).
    :param timeout: seconds to wait for a reply (default 0.5).
    :param retries: retries after a connection error or timeout (default 1, no backoff).
    :param max_connections: size of the connection pool (default 50).
    :param min_replicas: replicas that must have a write before it counts as saved
        (``WAIT``; default 0). With a Sentinel group, ``min_replicas=1`` means a
        failover never loses a saved session or undoes a logout; a write that is not
        acknowledged in time raises :class:`~wsgisession.errors.StoreError`. Give the
        group one replica more than ``min_replicas``: after a failover the promoted
        replica needs replicas of its own before writes are accepted again. Not
        available on Redis Cluster.
    :param replica_timeout: seconds a write waits for those acknowledgements
        (default 0.2; less than ``timeout``).

    ``move()`` runs as one Lua script on a single server. On Redis Cluster, where the
    old and new keys live in different slots, it checks, writes and then deletes the
    old key; if that delete finds the old key already gone (a logout came in between)
    it deletes the new one again, so a logout is never undone.
    """

    def __init__(
        self,
        client: Any = None,
        url: str | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        timeout: float = READ_TIMEOUT,
        retries: int = RETRIES,
        max_connections: int = 50,
        min_replicas: int = 0,
        replica_timeout: float = REPLICA_TIMEOUT,
    ) -> None:
        if (client is None) == (url is None):
            raise ConfigurationError("RedisStore needs exactly one of client= or url=", "store")
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("timeout", timeout),
            ("replica_timeout", replica_timeout),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds", name)
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 5:
            raise ConfigurationError("retries must be an int from 0 to 5", "retries")
        if (
            not isinstance(min_replicas, int)
            or isinstance(min_replicas, bool)
            or not 0 <= min_replicas <= 16
        ):
            raise ConfigurationError("min_replicas must be an int from 0 to 16", "min_replicas")
        if min_replicas and client is not None:
            kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
            read_timeout = kwargs.get("socket_timeout")
            if isinstance(read_timeout, (int, float)):
                timeout = read_timeout  # the client's own reply timeout is what counts
        if min_replicas and replica_timeout >= timeout:
            raise ConfigurationError(
                "replica_timeout must be shorter than timeout (the reply waits for it)",
                "replica_timeout",
            )
        if client is None:
            assert url is not None
            if not url.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigurationError(
                    "url must start with redis://, rediss:// or unix://", "store"
                )
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=connect_timeout,
                socket_timeout=timeout,
                retry=Retry(NoBackoff(), retries),
                retry_on_timeout=retries > 0,
                max_connections=max_connections,
                health_check_interval=0,
            )
        self.client = client
        #: Redis Cluster: the two keys of move() sit in different slots (no Lua).
        self.clustered = isinstance(client, RedisCluster)
        if min_replicas and self.clustered:
            raise ConfigurationError(
                "min_replicas (WAIT) is not available on Redis Cluster", "min_replicas"
            )
        self.min_replicas = min_replicas
        self._wait_ms = round(replica_timeout * 1000)
        self._move = None if self.clustered else client.register_script(_MOVE_SCRIPT)
        self._index_put = client.register_script(_INDEX_PUT_SCRIPT)
        self._index_get = client.register_script(_INDEX_GET_SCRIPT)
        self._index_revoke = client.register_script(_INDEX_REVOKE_SCRIPT)
        #: Where the client talks to (for messages); computed once.
        self.address = _address(client)

    def __repr__(self) -> str:
        return "<RedisStore>"

    def _run(self, what: str, call: Callable[[], _T]) -> _T:
        """Run one client call; turn redis-py's and the network's failures into
        StoreError (anything else is a bug and propagates)."""
        try:
            return call()
        except Exception as exc:
            if not _from_redis(exc):
                raise
            raise StoreError(
                f"redis {what} failed: {type(exc).__name__} ({self.address})", exc
            ) from exc

    def _write(self, what: str, command: Callable[[Any], Any]) -> Any:
        """Run a write command; with ``min_replicas``, in one pipeline with ``WAIT``,
        and fail unless enough replicas acknowledged it."""
        if not self.min_replicas:
            return self._run(what, lambda: command(self.client))

        def pipelined() -> Any:
            pipe = self.client.pipeline(transaction=False)
            command(pipe)
            pipe.execute_command("WAIT", self.min_replicas, self._wait_ms)
            return pipe.execute()

        result, acknowledged = self._run(what, pipelined)
        if acknowledged < self.min_replicas:
            raise StoreError(
                f"redis {what} reached {acknowledged} of {self.min_replicas} replica(s) "
                f"within {self._wait_ms} ms ({self.address})"
            )
        return result

    def ping(self) -> None:
        """Check that Redis answers (for readiness probes at start-up). On Redis
        Cluster, every primary must answer and report ``cluster_state:ok`` (a cluster
        that lost a master still answers ``PING`` on any node, but refuses keys).

        :raises StoreError: naming the cause and the server when it does not.
        """
        if not self.clustered:
            self._run("PING", self.client.ping)
            return
        client = self.client

        def check_every_primary() -> None:
            for node in client.get_primaries():
                info = client.cluster_info(target_nodes=node)
                if info.get("cluster_state") != "ok":
                    raise StoreError(
                        f"redis cluster node {node.name} reports cluster_state "
                        f"{info.get('cluster_state')} ({self.address})"
                    )

        self._run("CLUSTER INFO", check_every_primary)

    def get(self, key: str) -> bytes | None:
        value = self._run("GET", lambda: self.client.get(key))
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        self._write("SET", lambda c: c.set(key, value, ex=ttl))

    def create(self, key: str, value: bytes, ttl: int | None) -> bool:
        return bool(self._write("SET NX", lambda c: c.set(key, value, ex=ttl, nx=True)))

    def update(self, key: str, value: bytes, ttl: int | None) -> bool:
        return bool(self._write("SET XX", lambda c: c.set(key, value, ex=ttl, xx=True)))

    def touch(self, key: str, ttl: int | None) -> bool:
        if ttl is None:
            if self._write("PERSIST", lambda c: c.persist(key)):
                return True
            return bool(self._run("EXISTS", lambda: self.client.exists(key)))
        return bool(self._write("EXPIRE", lambda c: c.expire(key, ttl)))

    def move(self, old: str, new: str, value: bytes, ttl: int | None) -> bool:
        """Write ``new`` and delete ``old``, only while ``old`` exists (see the class
        docstring for Redis Cluster)."""
        if self._move is not None:
            script = self._move
            try:
                return bool(
                    self._write(
                        "MOVE", lambda c: script(keys=[old, new], args=[value, ttl or 0], client=c)
                    )
                )
            except StoreError as exc:
                # A plain client talking to one node of a cluster gets CROSSSLOT.
                if "CROSSSLOT" not in str(exc.original_error):
                    raise
        return self._move_in_steps(old, new, value, ttl)

    def _move_in_steps(self, old: str, new: str, value: bytes, ttl: int | None) -> bool:
        client = self.client
        if not self._run("EXISTS", lambda: client.exists(old)):
            return False
        if not self._write("SET NX", lambda c: c.set(new, value, ex=ttl, nx=True)):
            return False
        if not self._write("DEL", lambda c: c.delete(old)):
            # The old record vanished after the check (a concurrent logout): the new
            # one must not outlive it.
            self._write("DEL", lambda c: c.delete(new))
            return False
        return True

    def delete(self, key: str) -> None:
        self._write("DEL", lambda c: c.delete(key))

    # -- index methods (per-user session lists) ------------------------------------------

    def _index_keys(self, index: str) -> list[str]:
        # A hash tag keeps an index's two keys in one slot on Redis Cluster.
        base = f"{{{index}}}" if self.clustered else index
        return [base, base + ":expiry"]

    def index_put(self, index: str, member: str, entry: bytes, ttl: int) -> None:
        now = time.time()
        script, keys = self._index_put, self._index_keys(index)
        self._write(
            "INDEX PUT",
            lambda c: script(keys=keys, args=[now, member, entry, now + ttl], client=c),
        )

    def index_get(self, index: str) -> dict[str, bytes]:
        script, keys, now = self._index_get, self._index_keys(index), time.time()
        flat = self._run("INDEX GET", lambda: script(keys=keys, args=[now]))
        pairs = iter(flat)
        return {
            (m.decode() if isinstance(m, bytes) else str(m)): bytes(e)
            for m, e in zip(pairs, pairs, strict=False)
        }

    def index_revoke(self, index: str, members: list[str]) -> None:
        """Delete the records and remove the members in one script; on Redis Cluster,
        where the records live in other slots, the records are deleted first and the
        members removed after (not atomic: a listing in between shows members whose
        record is gone, which the middleware skips)."""
        if not members:
            return
        script, keys = self._index_revoke, self._index_keys(index)
        if not self.clustered:
            self._write("INDEX REVOKE", lambda c: script(keys=[*keys, *members], client=c))
            return
        for member in members:
            self.delete(member)
        self._run(
            "INDEX REVOKE",
            lambda: (
                self.client.hdel(keys[0], *members),
                self.client.zrem(keys[1], *members),
            ),
        )
