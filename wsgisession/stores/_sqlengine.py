"""Engines for :class:`~wsgisession.stores.sql.SQLStore`: a pool with bounded waits,
error classification and descriptions that never show a password.

From a URL, :func:`build_engine` makes an engine whose every wait has a limit:

* **PostgreSQL** (``postgresql://`` means ``postgresql+psycopg://``): ``connect_timeout``
  (libpq's, whole seconds, at least 2), ``statement_timeout`` = ``timeout`` on the
  server, a client-side deadline of ``timeout`` + 0.25 s on every reply (psycopg 3.2+:
  a hung server, which cannot enforce its own statement timeout, costs that and no
  more; the connection is then closed), ``pool_timeout`` for a free connection, and a
  pre-ping at every checkout (:func:`add_liveness_check`: a look at the socket, and a
  ``SELECT 1`` after 30 s idle), so a connection the server dropped is replaced, not
  reported.
* **SQLite file**: ``timeout`` is the busy timeout (how long a write waits for another
  writer's lock); the file is switched to WAL, so readers never wait for a writer, with
  ``synchronous=NORMAL`` (no fsync per commit).
* **SQLite in memory** (``sqlite://``): one connection (``StaticPool``,
  ``check_same_thread=False``) that the store lends to one operation at a time, waiting
  at most ``pool_timeout`` for it; the database lives as long as the store, in one
  process.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import select
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import SingletonThreadPool, StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable

from ..errors import ConfigurationError, StoreError

__all__ = [
    "CONNECT_TIMEOUT",
    "TIMEOUT",
    "POOL_TIMEOUT",
    "POOL_SIZE",
    "MAX_OVERFLOW",
    "REPLY_MARGIN",
    "PING_AFTER_IDLE",
    "add_liveness_check",
    "build_engine",
    "check_engine",
    "describe",
    "explain",
    "is_creation_race",
    "is_db_failure",
    "is_memory",
    "logger",
    "Lender",
    "check_names",
    "positive",
    "render_ddl",
    "tables",
]

logger = logging.getLogger("wsgisession")

#: Seconds to wait for a PostgreSQL connection (libpq's floor: 2, whole seconds).
CONNECT_TIMEOUT = 2
#: Seconds a statement may run (PostgreSQL ``statement_timeout``; SQLite busy timeout).
TIMEOUT = 0.5
#: Seconds to wait for a free connection from the pool.
POOL_TIMEOUT = 0.5
#: Connections kept open, and how many more may be opened under load.
POOL_SIZE = 10
MAX_OVERFLOW = 10
#: How much longer than ``timeout`` the client waits for any PostgreSQL reply.
REPLY_MARGIN = 0.25
#: A pooled PostgreSQL connection idle for longer is pinged at checkout.
PING_AFTER_IDLE = 30.0

_PG_DRIVERS = ("psycopg", "psycopg2")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_KEY_LENGTH = 1024


def positive(name: str, value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds", name)
    return float(value)


def _count(name: str, value: object, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigurationError(f"{name} must be an int of at least {low}", name)
    return value


def is_memory(url: URL) -> bool:
    """Whether a SQLite URL names an in-memory database."""
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def describe(url: URL) -> str:
    """Where ``url`` points, for messages and ``repr``: backend, host, port and
    database. Never the user name, the password or the query (which libpq lets carry
    a password too)."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return "sqlite :memory:" if is_memory(url) else f"sqlite {url.database}"
    where = url.host or "local socket"
    if url.port is not None:
        where += f":{url.port}"
    return f"{backend} {where}/{url.database or ''}"


def is_db_failure(error: BaseException) -> bool:
    """Whether ``error`` is the database's or the network's failure (not a bug)."""
    if isinstance(error, exc.DBAPIError | exc.TimeoutError | exc.DisconnectionError | OSError):
        return True
    module = type(error).__module__ or ""
    return module.split(".")[0] in ("psycopg", "psycopg2", "sqlite3")


def is_creation_race(error: exc.DBAPIError) -> bool:
    """Whether creating the tables failed as a concurrent creation makes it fail (a
    duplicate table or type; SQLite's "already exists"), not for want of a server."""
    if isinstance(error, exc.IntegrityError | exc.ProgrammingError):
        return True
    return getattr(error.orig, "sqlite_errorname", None) == "SQLITE_ERROR"


def explain(error: BaseException) -> str:
    """``Class (DriverClass, code)``: the classes and the SQLSTATE or SQLite error name,
    never the message (which can quote SQL, parameters or values)."""
    orig = getattr(error, "orig", None)
    parts = [type(orig).__name__] if orig is not None and orig is not error else []
    source = orig if orig is not None else error
    code = getattr(source, "sqlstate", None) or getattr(source, "sqlite_errorname", None)
    if isinstance(code, str) and code.isascii() and code.replace("_", "").isalnum():
        parts.append(code)
    return type(error).__name__ + (f" ({', '.join(parts)})" if parts else "")


class Lender:
    """One caller at a time, each waiting at most ``timeout`` seconds (``None``: no
    limit on callers): in-memory SQLite's one connection, and a SQLite file's writes
    within a process (they queue here, woken in turn, instead of polling SQLite's
    lock; other processes' writers still meet SQLite's busy timeout)."""

    def __init__(self, timeout: float | None, address: str, waiting_for: str) -> None:
        self.timeout = timeout
        self.address = address
        self.waiting_for = waiting_for
        self.lock = threading.RLock()

    def reset(self) -> None:  # pragma: no cover - runs in the child (os.fork)
        """After ``fork()``: a lock held by another thread of the parent is not ours."""
        self.lock = threading.RLock()

    @contextlib.contextmanager
    def lend(self, what: str) -> Iterator[None]:
        if self.timeout is None:
            yield
            return
        if not self.lock.acquire(timeout=self.timeout):
            raise StoreError(
                f"sql {what} failed: {self.waiting_for} for {self.timeout} s ({self.address})"
            )
        try:
            yield
        finally:
            self.lock.release()


def _deadline_connection_class() -> Any:
    """A psycopg connection whose every wait for the server ends after
    ``wsgisession_reply_timeout`` seconds (None without a psycopg that can do it)."""
    try:
        import inspect

        import psycopg
        import psycopg.errors
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    found = getattr(psycopg.errors, "_WaitTimeout", None)
    parameters = inspect.signature(psycopg.Connection.wait).parameters
    if not isinstance(found, type) or not {"interval", "timeout"} <= set(parameters):
        return None  # pragma: no cover - psycopg < 3.2
    wait_timeout: type[BaseException] = found

    class ReplyTimeout(psycopg.OperationalError):
        """No reply from the server within the deadline; the connection is closed."""

    class DeadlineConnection(psycopg.Connection[Any]):
        wsgisession_reply_timeout: float | None = None

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            if timeout is None:
                timeout = self.wsgisession_reply_timeout
            try:
                return super().wait(gen, interval=interval, timeout=timeout)
            except wait_timeout:
                # Mid-reply: the connection's state is unknown; never reuse it.
                self.close()
                raise ReplyTimeout(f"no reply from the server within {timeout} s") from None

    return DeadlineConnection


def _postgresql_args(url: URL, connect_timeout: float, timeout: float) -> dict[str, Any]:
    """libpq parameters, the URL's own winning (its ``options`` come last)."""
    ms = max(1, round(timeout * 1000))
    args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        args["connect_timeout"] = max(2, math.ceil(connect_timeout))
    own = url.query.get("options")
    own_text = " ".join(own) if isinstance(own, tuple) else (own or "")
    args["options"] = f"-c statement_timeout={ms} {own_text}".strip()
    return args


def build_engine(
    url_text: str | URL,
    *,
    connect_timeout: float,
    timeout: float,
    pool_timeout: float,
    pool_size: int,
    max_overflow: int,
) -> Engine:
    """An engine for a ``sqlite:`` or ``postgresql:`` URL, every wait bounded (see the
    module docstring)."""
    connect_timeout = positive("connect_timeout", connect_timeout)
    if connect_timeout < 2:
        raise ConfigurationError(
            "connect_timeout must be at least 2 s (libpq's floor, whole seconds)",
            "connect_timeout",
        )
    timeout = positive("timeout", timeout)
    pool_timeout = positive("pool_timeout", pool_timeout)
    pool_size = _count("pool_size", pool_size, 1)
    max_overflow = _count("max_overflow", max_overflow, 0)
    try:
        url = make_url(url_text)
    except exc.ArgumentError:
        raise ConfigurationError("not a valid database URL", "store") from None
    if url.get_backend_name() == "postgres":  # the spelling Heroku and others use
        url = url.set(drivername="postgresql" + url.drivername[len("postgres") :])
    backend, driver = url.get_backend_name(), url.get_driver_name()
    pool: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout": pool_timeout,
    }
    if backend == "sqlite":
        args: dict[str, Any] = {"timeout": timeout}
        if is_memory(url):
            args["check_same_thread"] = False
            pool = {"poolclass": StaticPool}
    elif backend == "postgresql":
        if "+" not in url.drivername:
            url = url.set(drivername="postgresql+psycopg")
            driver = "psycopg"
        if driver not in _PG_DRIVERS:
            raise ConfigurationError(
                "PostgreSQL URLs must use psycopg (postgresql:// or postgresql+psycopg://) "
                "or psycopg2; pass an engine for other drivers",
                "store",
            )
        args = _postgresql_args(url, connect_timeout, timeout)
    else:
        raise ConfigurationError(
            "SQLStore URLs are sqlite:// or postgresql://; pass an engine for other databases",
            "store",
        )
    try:
        engine = sa.create_engine(url, connect_args=args, hide_parameters=True, **pool)
    except ImportError as error:
        raise ConfigurationError(
            f"the {backend} driver is not installed ({error.name}): "
            "pip install 'wsgisession[postgresql]'",
            "store",
        ) from None
    if backend == "postgresql":
        add_liveness_check(engine)
    if backend == "postgresql" and driver == "psycopg":
        _add_reply_deadline(engine, timeout + REPLY_MARGIN)
    if backend == "sqlite" and not is_memory(url):
        event.listen(engine, "connect", _sqlite_normal_sync)
    return engine


def _sqlite_normal_sync(dbapi_connection: Any, record: Any) -> None:
    """WAL with ``synchronous=NORMAL``: a commit is not fsynced (a crash of the
    process loses nothing, a power cut the last writes; the file is never corrupted)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _said_goodbye(dbapi_connection: Any) -> bool:
    """Whether an idle connection is closed or has something to read: an idle
    connection receives nothing, so that is the server's goodbye (a shutdown, a
    restart, ``pg_terminate_backend``) or the end of the socket."""
    if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
        return True
    try:
        fd = dbapi_connection.fileno()
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN | select.POLLPRI)
            return bool(poller.poll(0))
        return bool(select.select([fd], [], [], 0)[0])  # pragma: no cover - Windows
    except (OSError, ValueError):
        return True


def add_liveness_check(engine: Engine, ping_after: float = PING_AFTER_IDLE) -> None:
    """The pool's pre-ping, without a round trip per checkout: every checkout looks
    at the socket (a connection the server closed is replaced, not reported), and one
    idle for more than ``ping_after`` seconds is pinged (one a firewall dropped
    without a word; ``timeout`` bounds that ping)."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def idle_since(dbapi_connection: Any, record: Any) -> None:
        record.info["wsgisession_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if _said_goodbye(dbapi_connection):
            raise exc.DisconnectionError("the server closed the connection")
        since = record.info.get("wsgisession_idle_since", 0.0)
        if time.monotonic() - since > ping_after:
            try:
                cursor = dbapi_connection.cursor()
                try:
                    cursor.execute("SELECT 1")
                finally:
                    cursor.close()
            except Exception as error:
                raise exc.DisconnectionError("the ping of an idle connection failed") from error


def _add_reply_deadline(engine: Engine, seconds: float) -> None:
    connection_class = _deadline_connection_class()
    if connection_class is None:  # pragma: no cover - psycopg < 3.2
        logger.warning("psycopg < 3.2: a hung PostgreSQL server can hold a request")
        return

    @event.listens_for(engine, "do_connect")
    def connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
        connection = connection_class.connect(*cargs, **cparams)
        connection.wsgisession_reply_timeout = seconds
        return connection


def check_engine(engine: Engine) -> None:
    """Refuse an in-memory SQLite engine that gives each thread its own database."""
    if is_memory(engine.url) and isinstance(engine.pool, SingletonThreadPool):
        raise ConfigurationError(
            "an in-memory SQLite engine needs poolclass=StaticPool and "
            "connect_args={'check_same_thread': False} (with SingletonThreadPool every "
            "thread sees a database of its own)",
            "store",
        )


def tables(table: str, index_table: str, schema: str | None) -> tuple[sa.Table, sa.Table]:
    """The records' and the index's tables."""
    metadata = sa.MetaData(schema=schema)
    records = sa.Table(
        table,
        metadata,
        sa.Column("key", sa.String(_KEY_LENGTH), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("expires", sa.Double, nullable=True),
        sa.Index(f"ix_{table}_expires", "expires"),
    )
    members = sa.Table(
        index_table,
        metadata,
        sa.Column("name", sa.String(_KEY_LENGTH), primary_key=True),
        sa.Column("member", sa.String(_KEY_LENGTH), primary_key=True),
        sa.Column("entry", sa.LargeBinary, nullable=False),
        sa.Column("expires", sa.Double, nullable=True),
        sa.Index(f"ix_{index_table}_expires", "expires"),
    )
    return records, members


def check_names(table: str, index_table: str | None, schema: str | None) -> str:
    """Refuse names that are not plain SQL names; return the index table's name."""
    index_table = f"{table}_index" if index_table is None else index_table
    for option, name in (("table", table), ("index_table", index_table), ("schema", schema)):
        if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
            raise ConfigurationError(
                f"{option} must be a plain SQL name (letters, digits, _; at most 63)", option
            )
    if index_table == table:
        raise ConfigurationError("index_table must differ from table", "index_table")
    return index_table


def render_ddl(dialect: str, table: str, index_table: str | None, schema: str | None) -> str:
    """The ``CREATE TABLE``/``CREATE INDEX`` statements of both tables for ``dialect``."""
    index_table = check_names(table, index_table, schema)
    try:
        compiler = make_url(f"{dialect}://").get_dialect()()
    except Exception:
        raise ConfigurationError(f"unknown SQL dialect {dialect!r}", "dialect") from None
    statements = []
    for item in tables(table, index_table, schema):
        statements.append(str(CreateTable(item).compile(dialect=compiler)))
        for index in sorted(item.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=compiler)))
    lines = "\n".join(s.strip() + ";" for s in statements).replace("\t", "    ").splitlines()
    return "".join(line.rstrip() + "\n" for line in lines)
