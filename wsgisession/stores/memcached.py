"""``MemcachedStore``: sessions in memcached, shared by every worker and host.

Built on pymemcache with a pool of connections per server, short explicit timeouts
(pymemcache's defaults wait forever) and every write answered by the server
(``noreply=False``: a refused value is an error, never a silent drop). Every exception
pymemcache raises, and every socket error, becomes
:class:`~wsgisession.errors.StoreError`, whose message names the command, the
exception class and the server.

Creating uses memcached's ``add`` and updating ``replace``, so a request that finishes
after a logout or a ``regenerate()`` cannot bring the old session back; ``touch`` moves
the expiry. See ``docs/stores/memcached.md`` for when to choose it and what memcached
cannot do (it evicts, it forgets on restart, it does not replicate).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..errors import ConfigurationError, StoreError
from ._keys import HASHED_KEY_PREFIX, portable_key

try:
    from pymemcache.client.base import (  # type: ignore[import-untyped]
        Client,
        PooledClient,
    )
    from pymemcache.client.hash import HashClient  # type: ignore[import-untyped]
    from pymemcache.client.rendezvous import RendezvousHash  # type: ignore[import-untyped]
    from pymemcache.exceptions import (  # type: ignore[import-untyped]
        MemcacheError,
        MemcacheUnexpectedCloseError,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "MemcachedStore needs pymemcache: pip install 'wsgisession[memcached]'"
    ) from exc

__all__ = ["MemcachedStore"]

#: Defaults chosen so a request waits well under a second on a dead or hung server.
CONNECT_TIMEOUT = 0.25
READ_TIMEOUT = 0.5
MAX_POOL_SIZE = 50
DEFAULT_PORT = 11211
#: memcached's item size limit by default (``-I 1m``) ...
ITEM_SIZE_MAX = 1024 * 1024
#: ... less room for the item header (about 60 bytes) and the longest key (250).
DEFAULT_MAX_VALUE_SIZE = ITEM_SIZE_MAX - 512
#: memcached's longest key, in bytes.
MAX_KEY_LENGTH = 250
#: memcached reads an expiry above 30 days as a Unix time, not a number of seconds.
RELATIVE_TTL_MAX = 30 * 24 * 3600

#: A connection the server closed (a restart, an idle timeout): worth one new try.
_STALE = (MemcacheUnexpectedCloseError, BrokenPipeError, ConnectionResetError)

_T = TypeVar("_T")


def _from_pymemcache(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the store (pymemcache's or the network's), not a
    bug: pymemcache's own exceptions, socket errors, and the ``RuntimeError`` (pool
    exhausted) or ``ValueError`` (a reply it cannot parse) raised inside pymemcache."""
    if isinstance(exc, MemcacheError | OSError):
        return True
    if isinstance(exc, RuntimeError | ValueError):
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        module = "" if tb is None else str(tb.tb_frame.f_globals.get("__name__", ""))
        return module.startswith("pymemcache.")
    return False


def _server(spec: Any) -> tuple[str, int]:
    """``(host, port)`` from ``"host"``, ``"host:port"``, ``"[v6]:port"`` or a tuple."""
    host: Any = ""
    port: Any = DEFAULT_PORT
    if isinstance(spec, tuple) and len(spec) == 2:
        host, port = spec
    elif isinstance(spec, str):
        text = spec.strip()
        if text.startswith("["):
            host, closed, rest = text[1:].partition("]")
            if not closed or (rest and not rest.startswith(":")):
                host = ""
            port = rest[1:] if rest else DEFAULT_PORT
        elif text.count(":") == 1:
            host, port = text.split(":")
        else:
            host = text  # a name, an IPv4 address or a bare IPv6 address
    try:
        number = int(port)
    except (TypeError, ValueError):
        number = 0
    if not isinstance(host, str) or not host or "/" in host or not 0 < number < 65536:
        raise ConfigurationError(
            f"not a memcached server address (expected host:port): {spec!r}", "servers"
        )
    return host, number


def _name(server: Any) -> str:
    """How error messages (and the key placement) name a server: ``host:port``."""
    if isinstance(server, tuple) and len(server) == 2:
        return f"{server[0]}:{server[1]}"
    return f"unix:{server}" if isinstance(server, str) else type(server).__name__


class MemcachedStore:
    """A session store on one or more memcached servers.

    :param client: a ready pymemcache ``PooledClient`` (or another thread-safe client
        with its interface) to use as is, with its own timeouts. A bare ``Client`` (one
        socket, not thread-safe), a ``HashClient`` (see below) and clients with
        ``ignore_exc=True`` (errors read as misses) or without timeouts are refused.
    :param servers: ``"host:port"`` (or ``(host, port)``), or a list of them; a pool
        of connections per server is built with the timeouts below. Several servers
        share the keys by rendezvous hashing, placing each key where pymemcache's
        ``HashClient`` would. Give ``client`` or ``servers``, not both.
    :param connect_timeout: seconds to wait for a connection (default 0.25).
    :param timeout: seconds to wait on each send or receive (default 0.5).
    :param max_pool_size: connections per server (default 50); when all are busy a
        call fails at once with :class:`~wsgisession.errors.StoreError`.
    :param max_value_size: the largest record sent, in bytes (default 1 MiB - 512, for
        memcached's default ``-I 1m``); a larger one is a ``StoreError`` raised before
        anything is sent. Raise it with ``-I``; a server whose limit is lower refuses
        the value itself, which is a ``StoreError`` too.
    :param tls_context: an ``ssl.SSLContext`` for servers behind TLS.
    :param clock: Unix time for expiries over 30 days, which memcached reads as a Unix
        time (default :func:`time.time`; the server's clock must agree).

    Keys that memcached cannot take as they are (over 250 bytes, or with spaces,
    control or non-ASCII characters — a long custom ``prefix``, say) are stored under
    ``"~h:" + sha256hex(key)`` instead; the middleware's usual ``prefix +
    sha256hex(id)`` keys are kept as they are while the prefix is 186 ASCII characters
    or fewer. A failed server is never taken out of the placement: its keys fail with
    ``StoreError`` until it is back, rather than moving to another server, where a
    logout would delete nothing and the old record would return with its server.

    ``move()`` (for ``regenerate()``) adds the new record, then deletes the old one
    and keeps the new one only if that delete found the old record: a logout that
    deleted it first makes the delete find nothing, and the new record is deleted
    again (``move`` returns False). So a regenerate racing a logout never keeps the
    session alive under either id. The new record exists, unreferenced, for the
    instant between the add and that delete, and if the second delete fails it stays
    (still unreferenced: its id was never sent) until its TTL ends.

    memcached has no operation over several keys at once, so this store has no index
    methods: no "my active sessions" list and no index-based "log out everywhere" in
    store mode on memcached (the middleware's ``revocation_store``, kept in a store
    that does not evict, is the way to revoke all of a user's sessions). Records
    expire within a second of ``ttl`` (memcached's clock ticks once a second).
    """

    def __init__(
        self,
        client: Any = None,
        servers: Any = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        timeout: float = READ_TIMEOUT,
        max_pool_size: int = MAX_POOL_SIZE,
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        tls_context: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (client is None) == (servers is None):
            raise ConfigurationError(
                "MemcachedStore needs exactly one of client= or servers=", "store"
            )
        for option, value in (("connect_timeout", connect_timeout), ("timeout", timeout)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigurationError(f"{option} must be a positive number of seconds", option)
        for option, number in (
            ("max_pool_size", max_pool_size),
            ("max_value_size", max_value_size),
        ):
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise ConfigurationError(f"{option} must be a positive int", option)
        if not callable(clock):
            raise ConfigurationError("clock must be callable", "clock")
        self.max_value_size = max_value_size
        self._clock = clock
        self._settings = {
            "connect_timeout": connect_timeout,
            "timeout": timeout,
            "max_pool_size": max_pool_size,
            "tls_context": tls_context,
        }
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._hasher: Any = None
        #: ``host:port`` -> the client (a connection pool) of that server.
        self.clients: dict[str, Any] = {}
        if client is not None:
            self._check_client(client)
            self._owned = False
            self.servers: list[str] = [_name(getattr(client, "server", client))]
            self.clients[self.servers[0]] = client
            prefix = getattr(client, "key_prefix", b"") or b""
        else:
            if isinstance(servers, str | tuple):
                specs = [servers]
            elif isinstance(servers, list):
                specs = list(servers)
            else:
                raise ConfigurationError(
                    "servers must be 'host:port', (host, port) or a list of them", "servers"
                )
            addresses = [_server(spec) for spec in specs]
            if not addresses:
                raise ConfigurationError("servers must name at least one server", "servers")
            self._owned = True
            self.servers = [_name(address) for address in addresses]
            if len(set(self.servers)) != len(self.servers):
                raise ConfigurationError("servers lists a server twice", "servers")
            self._addresses = dict(zip(self.servers, addresses, strict=True))
            self._build_pools()
            prefix = b""
        #: The longest key sent as it is (the client's own key_prefix takes room too).
        self._key_limit = MAX_KEY_LENGTH - len(prefix)
        if len(HASHED_KEY_PREFIX) + 64 > self._key_limit:
            raise ConfigurationError("the client's key_prefix leaves no room for keys", "client")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemcachedStore:
        """A store for ``memcached://host:port[,host:port...]`` (port 11211 if left
        out); ``options`` as for the constructor. memcached's text protocol has no
        passwords: a URL with credentials is refused (and not echoed)."""
        if not isinstance(url, str) or url[:12].lower() != "memcached://":
            raise ConfigurationError("url must start with memcached://", "store")
        try:
            parsed = urlsplit(url)
        except ValueError:  # e.g. an unclosed [ of an IPv6 address
            parsed = None
        if parsed is not None and "@" in parsed.netloc:
            raise ConfigurationError(
                "memcached URLs take no user or password (memcached has none)", "store"
            )
        if parsed is None or parsed.path.strip("/") or parsed.query or parsed.fragment:
            raise ConfigurationError(
                "expected memcached://host:port[,host:port...] and nothing else", "store"
            )
        netloc = parsed.netloc
        return cls(servers=netloc.split(","), **options)

    def __repr__(self) -> str:
        return f"<MemcachedStore servers={','.join(self.servers)}>"

    # -- connections ---------------------------------------------------------------------

    @staticmethod
    def _check_client(client: Any) -> None:
        if isinstance(client, HashClient):
            raise ConfigurationError(
                "MemcachedStore does not use a HashClient: after an error it answers "
                "calls without asking the server (a miss, a dropped save, a logout that "
                "deletes nothing) and then moves the failed server's keys to the others "
                "(a logout there is undone when the server is back). Pass servers=[...] "
                "instead: the same key placement, without that failover",
                "client",
            )
        if type(client) is Client:
            raise ConfigurationError(
                "a pymemcache Client is one socket and not thread-safe: pass a "
                "PooledClient, or servers=",
                "client",
            )
        if getattr(client, "ignore_exc", False):
            raise ConfigurationError(
                "a client with ignore_exc=True reads every failure as a missing session",
                "client",
            )
        for attribute in ("connect_timeout", "timeout"):
            if hasattr(client, attribute) and getattr(client, attribute) is None:
                raise ConfigurationError(
                    f"the client has no {attribute} (pymemcache's default waits forever)",
                    "client",
                )

    def _build_pools(self) -> None:
        settings = self._settings
        self.clients = {
            name: PooledClient(
                address,
                connect_timeout=settings["connect_timeout"],
                timeout=settings["timeout"],
                no_delay=True,
                max_pool_size=settings["max_pool_size"],
                default_noreply=False,
                tls_context=settings["tls_context"],
            )
            for name, address in self._addresses.items()
        }
        self._hasher = RendezvousHash(list(self.servers)) if len(self.servers) > 1 else None
        self._pid = os.getpid()

    def _reopen_after_fork(self) -> None:
        """A forked worker must not share the parent's sockets: new pools (the
        inherited ones are closed here, which leaves the parent's connections alone)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            for pool in self.clients.values():
                pool.close()
            self._build_pools()

    def server_for(self, key: str) -> str:
        """The server (``host:port``) that holds the record ``key``."""
        return self._route(self.wire_key(key))[0]

    def _route(self, wire: str) -> tuple[str, Any]:
        if self._owned and self._pid != os.getpid():
            self._reopen_after_fork()
        if self._hasher is None:
            name = self.servers[0]
        else:
            name = self._hasher.get_node(wire)
        return name, self.clients[name]

    def close(self) -> None:
        """Close every pooled connection (they reopen on the next call)."""
        for pool in self.clients.values():
            pool.close()

    # -- one call ------------------------------------------------------------------------

    def wire_key(self, key: str) -> str:
        """The key memcached sees for ``key``: ``key`` itself when memcached can take
        it (printable ASCII without spaces, within the length limit, not starting with
        ``~h:``), else ``"~h:" + sha256hex(key)``."""
        return portable_key(key, self._key_limit)

    def _expire(self, ttl: int | None) -> int:
        """memcached's exptime for ``ttl`` seconds: 0 never expires, a negative value
        has expired, and anything over 30 days is a Unix time."""
        if ttl is None:
            return 0
        seconds = int(ttl)
        if seconds < 1:
            return -1
        if seconds > RELATIVE_TTL_MAX:
            return int(self._clock()) + seconds
        return seconds

    def _call(self, what: str, wire: str, command: Callable[[Any], _T]) -> _T:
        """Run one command on the server of ``wire`` (see :meth:`_attempt`)."""
        name, client = self._route(wire)
        return self._attempt(what, name, client, command)

    @staticmethod
    def _attempt(what: str, name: str, client: Any, command: Callable[[Any], _T]) -> _T:
        """Run ``command(client)``; a connection the server had closed (a restart) is
        retried once on a new one. pymemcache's and the network's failures become
        StoreError (anything else is a bug and propagates)."""
        for attempt in (1, 2):
            try:
                return command(client)
            except Exception as exc:
                if not _from_pymemcache(exc):
                    raise
                if attempt == 1 and isinstance(exc, _STALE):
                    continue
                raise StoreError(
                    f"memcached {what} failed: {type(exc).__name__} ({name})", exc
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _value(self, what: str, value: bytes) -> bytes:
        value = bytes(value)
        if len(value) > self.max_value_size:
            raise StoreError(
                f"memcached {what} refused: a session record of {len(value)} bytes is "
                f"larger than max_value_size={self.max_value_size} (memcached's item "
                "size limit, -I)"
            )
        return value

    # -- the Store protocol --------------------------------------------------------------

    def ping(self) -> None:
        """Check that every server answers (``version``), for readiness probes.

        :raises StoreError: naming the cause and the server when one does not.
        """
        if self._owned and self._pid != os.getpid():
            self._reopen_after_fork()
        for name in self.servers:
            self._attempt("VERSION", name, self.clients[name], lambda c: c.version())

    def get(self, key: str) -> bytes | None:
        wire = self.wire_key(key)
        value = self._call("GET", wire, lambda c: c.get(wire))
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        wire, data, expire = self.wire_key(key), self._value("SET", value), self._expire(ttl)
        if not self._call("SET", wire, lambda c: c.set(wire, data, expire, noreply=False)):
            raise StoreError(f"memcached SET was not stored ({self._route(wire)[0]})")

    def create(self, key: str, value: bytes, ttl: int | None) -> bool:
        wire, data, expire = self.wire_key(key), self._value("ADD", value), self._expire(ttl)
        return bool(self._call("ADD", wire, lambda c: c.add(wire, data, expire, noreply=False)))

    def update(self, key: str, value: bytes, ttl: int | None) -> bool:
        wire, data, expire = self.wire_key(key), self._value("REPLACE", value), self._expire(ttl)
        return bool(
            self._call("REPLACE", wire, lambda c: c.replace(wire, data, expire, noreply=False))
        )

    def touch(self, key: str, ttl: int | None) -> bool:
        wire, expire = self.wire_key(key), self._expire(ttl)
        return bool(self._call("TOUCH", wire, lambda c: c.touch(wire, expire, noreply=False)))

    def _delete(self, key: str) -> bool:
        """Delete ``key``; True if it was there."""
        wire = self.wire_key(key)
        return bool(self._call("DELETE", wire, lambda c: c.delete(wire, noreply=False)))

    def delete(self, key: str) -> None:
        self._delete(key)

    def move(self, old: str, new: str, value: bytes, ttl: int | None) -> bool:
        """Write ``new`` and delete ``old``, only while ``old`` exists: add ``new``,
        delete ``old``, and delete ``new`` again unless ``old`` was still there (see
        the class docstring). False: ``old`` was gone (or ``new`` already existed)."""
        if not self.create(new, value, ttl):
            return False
        try:
            found = self._delete(old)
        except StoreError:
            # Whether the old record is still there is unknown: the new one must go.
            try:
                self._delete(new)
            except StoreError:
                pass  # unreferenced (its id is never sent) until its TTL ends
            raise
        if not found:
            # A concurrent logout (or expiry) took the old record first: undo.
            self._delete(new)
            return False
        return True
