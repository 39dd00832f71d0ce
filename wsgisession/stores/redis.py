"""``RedisStore``: sessions in Redis, shared by every worker and host.

Built on redis-py with short, explicit timeouts and at most one retry: redis-py's
defaults (5 s timeouts, several retries with backoff) can hold a request for about a
minute when Redis hangs. Every :class:`redis.exceptions.RedisError` and socket error
becomes :class:`~wsgisession.errors.StoreError`.

Creating uses ``SET NX`` and updating ``SET XX``, so a request that finishes after a
logout or a ``regenerate()`` cannot bring the old session back. Pass your own
``client=`` for Sentinel or Cluster (its timeouts are then yours to set).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError, StoreError

try:
    import redis
    from redis.backoff import NoBackoff
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

#: Defaults chosen so a request waits at most ~1.5 s on a dead or hung Redis.
CONNECT_TIMEOUT = 0.25
READ_TIMEOUT = 0.5
RETRIES = 1


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
    ) -> None:
        if (client is None) == (url is None):
            raise ConfigurationError("RedisStore needs exactly one of client= or url=", "store")
        for name, value in (("connect_timeout", connect_timeout), ("timeout", timeout)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds", name)
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 5:
            raise ConfigurationError("retries must be an int from 0 to 5", "retries")
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
        self._move = client.register_script(_MOVE_SCRIPT)

    def __repr__(self) -> str:
        return "<RedisStore>"

    def _fail(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(f"redis {what} failed: {type(exc).__name__}", exc)

    def get(self, key: str) -> bytes | None:
        try:
            value = self.client.get(key)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._fail("GET", exc) from exc
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        try:
            self.client.set(key, value, ex=ttl)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._fail("SET", exc) from exc

    def create(self, key: str, value: bytes, ttl: int | None) -> bool:
        try:
            return bool(self.client.set(key, value, ex=ttl, nx=True))
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._fail("SET NX", exc) from exc

    def update(self, key: str, value: bytes, ttl: int | None) -> bool:
        try:
            return bool(self.client.set(key, value, ex=ttl, xx=True))
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._fail("SET XX", exc) from exc

    def touch(self, key: str, ttl: int | None) -> bool:
        try:
            if ttl is None:
                return bool(self.client.persist(key)) or bool(self.client.exists(key))
            return bool(self.client.expire(key, ttl))
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._fail("EXPIRE", exc) from exc

    def move(self, old: str, new: str, value: bytes, ttl: int | None) -> bool:
        """Write ``new`` and delete ``old`` atomically, only while ``old`` exists.

        One Lua script on a single server; on Redis Cluster, where the two keys live in
        different slots, a check-then-write fallback with a tiny race window.
        """
        try:
            try:
                return bool(self._move(keys=[old, new], args=[value, ttl or 0]))
            except redis.exceptions.ResponseError as exc:
                if "CROSSSLOT" not in str(exc) and "NOSCRIPT" not in str(exc):
                    raise
            if not self.client.exists(old):
                return False
            if not self.client.set(new, value, ex=ttl, nx=True):
                return False
            self.client.delete(old)
            return True
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._fail("MOVE", exc) from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete(key)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise self._fail("DEL", exc) from exc
