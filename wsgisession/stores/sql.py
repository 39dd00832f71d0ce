"""``SQLStore``: sessions in a SQL database, on SQLAlchemy Core (no ORM).

SQLite (a file, or in memory) is the embedded choice for one machine; PostgreSQL is
shared by every worker and host. Two tables, created on first use (or beforehand from
:meth:`SQLStore.ddl`): the records (key, sealed value, expiry) and the per-user index
(index name, member, sealed entry, expiry). Expiry is an absolute Unix time from the
store's ``clock``: an expired row is never served, and :meth:`SQLStore.sweep` (``python
-m wsgisession sweep URL``, or ``sweep_fraction`` of the writes) deletes it.

Creating is ``INSERT … ON CONFLICT DO UPDATE … WHERE expired`` (a live row is never
overwritten), updating and touching are ``UPDATE … WHERE key AND unexpired``, and
``move()`` deletes the old row (only while it is live) and creates the new one in one
transaction, so a request that overlaps a logout or a ``regenerate()`` never brings
the old session back. Every SQLAlchemy, driver or network error becomes
:class:`~wsgisession.errors.StoreError` naming the operation, the exception classes
(and the SQLSTATE or SQLite error name) and the server — never a password, a
statement or its parameters. ``docs/stores/sql.md`` has the DDL, the timeouts and the
failure modes.
"""

from __future__ import annotations

import functools
import os
import random
import re
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..errors import ConfigurationError, StoreError

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.pool import StaticPool
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("SQLStore needs SQLAlchemy 2: pip install 'wsgisession[sql]'") from error
if tuple(int(n) for n in re.findall(r"\d+", sa.__version__)[:3]) < (2, 0, 28):
    # preserve_rowcount (2.0.28): without it an INSERT's rowcount can read as -1.
    raise ImportError(  # pragma: no cover - depends on the environment
        "SQLStore needs SQLAlchemy 2.0.28 or newer: pip install 'wsgisession[sql]'"
    )

from ._sqlengine import (
    CONNECT_TIMEOUT,
    MAX_OVERFLOW,
    POOL_SIZE,
    POOL_TIMEOUT,
    TIMEOUT,
    Lender,
    build_engine,
    check_engine,
    check_names,
    describe,
    explain,
    is_creation_race,
    is_db_failure,
    is_memory,
    logger,
    positive,
    render_ddl,
    tables,
)

__all__ = ["SQLStore", "SWEEP_BATCH"]

#: Rows one sweep statement deletes at most (short locks on a large table).
SWEEP_BATCH = 1000
#: Members of an ``IN (…)`` list per statement (SQLite allows 999 parameters).
_CHUNK = 500
_T = TypeVar("_T")
_NO_TURN = Lender(None, "", "")


def _live(column: Any, now: float) -> Any:
    return sa.or_(column.is_(None), column > now)


def _expired(column: Any, now: float) -> Any:
    return sa.and_(column.is_not(None), column <= now)


def _count(conn: Connection, stmt: Any) -> int:
    """Rows ``stmt`` wrote (``preserve_rowcount``: some drivers forget it for INSERT)."""
    result = conn.execute(stmt, execution_options={"preserve_rowcount": True})
    return int(result.rowcount)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _after_fork(ref: weakref.ReferenceType[SQLStore]) -> None:  # pragma: no cover - child
    store = ref()
    if store is not None:
        store._after_fork()


class SQLStore:
    """A session store on a SQL database.

    :param url_or_engine: a ``sqlite:///path``, ``sqlite://`` (memory) or
        ``postgresql://user@host/db`` URL (an engine is built with the timeouts below),
        or your own SQLAlchemy :class:`~sqlalchemy.engine.Engine`, used as it is (its
        pool and timeouts are then yours).
    :param table: the records' table (default ``wsgisession_sessions``).
    :param index_table: the per-user index's table (default ``<table>_index``).
    :param schema: a PostgreSQL schema for both tables (default: the search path).
    :param create_table: create missing tables (and indexes) on first use (default
        True; False: create them beforehand from :meth:`ddl`).
    :param sweep_fraction: the share of writes (0.0 to 1.0, default 0) that also delete up
        to :data:`SWEEP_BATCH` expired rows of each table, for deployments that run no
        ``sweep`` job.
    :param connect_timeout: seconds to wait for a PostgreSQL connection (default 2,
        libpq's minimum).
    :param timeout: seconds a statement may take (default 0.5): PostgreSQL's
        ``statement_timeout`` (the client gives up 0.25 s later); for a SQLite file,
        how long a write waits for the other writes of this process, and then for
        another process's (SQLite's busy timeout).
    :param pool_timeout: seconds to wait for a free pooled connection (default 0.5).
    :param pool_size: connections kept open (default 10); ``max_overflow`` more may be
        opened under load (default 10). Not for in-memory SQLite (one connection).
    :param clock: Unix seconds for expiry (default :func:`time.time`; every host that
        shares the database needs a synchronised clock).
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine,
        *,
        table: str = "wsgisession_sessions",
        index_table: str | None = None,
        schema: str | None = None,
        create_table: bool = True,
        sweep_fraction: float = 0.0,
        connect_timeout: float = CONNECT_TIMEOUT,
        timeout: float = TIMEOUT,
        pool_timeout: float = POOL_TIMEOUT,
        pool_size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        index_table = check_names(table, index_table, schema)
        timeout, pool_timeout = positive("timeout", timeout), positive("pool_timeout", pool_timeout)
        if (
            not isinstance(sweep_fraction, int | float)
            or isinstance(sweep_fraction, bool)
            or not 0 <= sweep_fraction <= 1
        ):
            raise ConfigurationError("sweep_fraction must be from 0.0 to 1.0", "sweep_fraction")
        if not callable(clock):
            raise ConfigurationError("clock must be callable", "clock")
        if isinstance(url_or_engine, Engine):
            check_engine(url_or_engine)
            engine, self.owns_engine = url_or_engine, False
        elif isinstance(url_or_engine, str | URL):
            engine = build_engine(
                url_or_engine,
                connect_timeout=connect_timeout,
                timeout=timeout,
                pool_timeout=pool_timeout,
                pool_size=pool_size,
                max_overflow=max_overflow,
            )
            self.owns_engine = True
        else:
            raise ConfigurationError("SQLStore needs a database URL or an Engine", "store")
        self.engine = engine
        self.dialect = engine.dialect.name
        #: Where the store talks to (for messages and repr); never credentials.
        self.address = describe(engine.url)
        self.records, self.members = tables(table, index_table, schema)
        self.create_table = bool(create_table)
        self.sweep_fraction = float(sweep_fraction)
        self._clock = clock
        self._memory = is_memory(engine.url)
        # One connection for every thread (in-memory SQLite): lent to one call at a time.
        self._shared = isinstance(engine.pool, StaticPool)
        self._lender = Lender(
            pool_timeout if self._shared else None, self.address, "no free connection"
        )
        # A SQLite file's writers in this process take turns here (woken in order)
        # rather than in SQLite's busy handler, which polls and can starve one.
        sqlite_file = self.dialect == "sqlite" and not self._shared
        self._writer = Lender(
            timeout if sqlite_file else None, self.address, "another write held the database"
        )
        # Single statements run in autocommit on PostgreSQL (no BEGIN/COMMIT round
        # trips); SQLite's driver begins a transaction only for writes anyway.
        self._single = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else engine
        )
        #: ``INSERT … ON CONFLICT`` (PostgreSQL, SQLite); else insert and catch.
        self._insert: Any = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(
            self.dialect
        )
        self._prepared = False
        os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))

    def __repr__(self) -> str:
        return f"<SQLStore {self.address} table={self.records.name}>"

    def close(self) -> None:
        """Close the pool's connections (an engine you passed in is left alone)."""
        if self.owns_engine:
            self.engine.dispose()

    def _after_fork(self) -> None:  # pragma: no cover - runs in the child (os.fork)
        if self.owns_engine and not self._shared:
            self.engine.dispose(close=False)  # the parent's connections stay the parent's
        self._lender.reset()
        self._writer.reset()

    # -- DDL ----------------------------------------------------------------------------

    @staticmethod
    def ddl(
        dialect: str = "postgresql",
        *,
        table: str = "wsgisession_sessions",
        index_table: str | None = None,
        schema: str | None = None,
    ) -> str:
        """The ``CREATE TABLE``/``CREATE INDEX`` statements for ``dialect``
        (``postgresql``, ``sqlite``, …), to create the tables yourself."""
        return render_ddl(dialect, table, index_table, schema)

    def _prepare(self) -> None:
        """First use: switch an SQLite file to WAL and create the tables (a failure to
        connect is not retried; a creation race with another process is, once)."""
        with self.engine.connect() as conn:
            if self.owns_engine and self.dialect == "sqlite" and not self._memory:
                try:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                    conn.commit()
                except sa.exc.DBAPIError:
                    conn.rollback()
                    logger.warning("SQLStore could not switch %s to WAL", self.address)
            for attempt in (1, 2) if self.create_table else ():
                try:
                    with conn.begin():
                        self.records.metadata.create_all(conn, checkfirst=True)
                    break
                except sa.exc.DBAPIError as error:
                    if attempt == 2 or not is_creation_race(error):
                        raise
        self._prepared = True

    # -- running statements -------------------------------------------------------------

    def _run(
        self,
        what: str,
        work: Callable[[Connection], _T],
        *,
        transaction: bool = False,
        write: bool = True,
    ) -> _T:
        """Run ``work`` on a connection (in one transaction, committed at the end) and
        turn the database's failures into StoreError."""
        with (self._writer if write else _NO_TURN).lend(what), self._lender.lend(what):
            try:
                if not self._prepared:
                    self._prepare()
                engine = self.engine if transaction else self._single
                with engine.begin() as conn:
                    return work(conn)
            except Exception as error:
                if not is_db_failure(error):
                    raise
                raise StoreError(
                    f"sql {what} failed: {explain(error)} ({self.address})", error
                ) from error

    def _now(self) -> float:
        return float(self._clock())

    def _expiry(self, ttl: int | None) -> float | None:
        return None if ttl is None else self._now() + ttl

    def _after_write(self) -> None:
        if self.sweep_fraction and random.random() < self.sweep_fraction:  # noqa: S311
            try:
                self._sweep(batches=1)
            except StoreError as error:
                logger.warning("SQLStore sweep after a write failed: %s", error)

    def _put(self, conn: Connection, table: sa.Table, row: dict[str, Any], *, fresh: bool) -> bool:
        """Insert ``row``, or replace the row with its primary key (``fresh``: only if
        that row has expired). False: a live row was kept."""
        keys = [column.name for column in table.primary_key.columns]
        stale = _expired(table.c.expires, self._now()) if fresh else None
        if self._insert is not None:
            stmt = self._insert(table).values(row)
            stmt = stmt.on_conflict_do_update(
                index_elements=keys,
                set_={name: stmt.excluded[name] for name in row if name not in keys},
                where=stale,
            )
            return _count(conn, stmt) == 1
        # Other databases: two statements (in a transaction); a live row makes the
        # insert an IntegrityError, which _refusable() turns into False.
        match = [table.c[name] == row[name] for name in keys]
        conn.execute(sa.delete(table).where(*match, *([] if stale is None else [stale])))
        conn.execute(sa.insert(table).values(row))
        return True

    def _record(self, key: str, value: bytes, ttl: int | None) -> dict[str, Any]:
        return {"key": key, "value": bytes(value), "expires": self._expiry(ttl)}

    def _refusable(
        self, what: str, work: Callable[[Connection], bool], *, transaction: bool = True
    ) -> bool:
        """Run ``work``; on other databases a unique-key conflict means False."""
        try:
            return self._run(what, work, transaction=transaction)
        except StoreError as error:
            if self._insert is None and isinstance(error.original_error, sa.exc.IntegrityError):
                return False
            raise

    # -- the Store protocol -------------------------------------------------------------

    def ping(self) -> None:
        """Check that the database answers and the records' table can be read.

        :raises StoreError: naming the cause and the server when it cannot.
        """
        t = self.records
        self._run("PING", lambda conn: conn.execute(sa.select(t.c.key).limit(1)).all(), write=False)

    def get(self, key: str) -> bytes | None:
        t, now = self.records, self._now()
        query = sa.select(t.c.value).where(t.c.key == key, _live(t.c.expires, now))
        value = self._run("GET", lambda conn: conn.execute(query).scalar(), write=False)
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        row = self._record(key, value, ttl)
        self._run(
            "SET",
            lambda conn: self._put(conn, self.records, row, fresh=False),
            transaction=self._insert is None,
        )
        self._after_write()

    def create(self, key: str, value: bytes, ttl: int | None) -> bool:
        row = self._record(key, value, ttl)
        created = self._refusable(
            "CREATE",
            lambda conn: self._put(conn, self.records, row, fresh=True),
            transaction=self._insert is None,
        )
        self._after_write()
        return created

    def update(self, key: str, value: bytes, ttl: int | None) -> bool:
        t, now = self.records, self._now()
        stmt = (
            sa.update(t)
            .where(t.c.key == key, _live(t.c.expires, now))
            .values(value=bytes(value), expires=self._expiry(ttl))
        )
        updated = self._run("UPDATE", lambda conn: _count(conn, stmt) == 1)
        self._after_write()
        return bool(updated)

    def touch(self, key: str, ttl: int | None) -> bool:
        t, now = self.records, self._now()
        stmt = (
            sa.update(t)
            .where(t.c.key == key, _live(t.c.expires, now))
            .values(expires=self._expiry(ttl))
        )
        return self._run("TOUCH", lambda conn: _count(conn, stmt) == 1)

    def move(self, old: str, new: str, value: bytes, ttl: int | None) -> bool:
        """In one transaction: delete ``old`` (only while it is live) and create ``new``
        (only while it is absent or expired); neither happens otherwise."""
        t = self.records

        def swap(conn: Connection) -> bool:
            gone = sa.delete(t).where(t.c.key == old, _live(t.c.expires, self._now()))
            row = self._record(new, value, ttl)
            if _count(conn, gone) != 1 or not self._put(conn, t, row, fresh=True):
                transaction = conn.get_transaction()
                assert transaction is not None
                transaction.rollback()
                return False
            return True

        moved = self._refusable("MOVE", swap)
        self._after_write()
        return moved

    def delete(self, key: str) -> None:
        t = self.records
        self._run("DELETE", lambda conn: conn.execute(sa.delete(t).where(t.c.key == key)))

    def ttl(self, key: str) -> float | None:
        """Seconds ``key`` has left (``None``: no expiry); ``KeyError`` if absent."""
        t, now = self.records, self._now()
        query = sa.select(t.c.expires).where(t.c.key == key, _live(t.c.expires, now))
        row = self._run("TTL", lambda conn: conn.execute(query).first(), write=False)
        if row is None:
            raise KeyError(key)
        return None if row[0] is None else float(row[0]) - now

    # -- the per-user index -------------------------------------------------------------

    def index_put(self, index: str, member: str, entry: bytes, ttl: int | None) -> None:
        """Add or replace ``member`` of ``index`` (and drop that index's expired ones)."""
        m = self.members

        def put(conn: Connection) -> None:
            now = self._now()
            expires = None if ttl is None else now + ttl
            row = {"name": index, "member": member, "entry": bytes(entry), "expires": expires}
            conn.execute(sa.delete(m).where(m.c.name == index, _expired(m.c.expires, now)))
            self._put(conn, m, row, fresh=False)

        self._run("INDEX PUT", put, transaction=True)
        self._after_write()

    def index_get(self, index: str) -> dict[str, bytes]:
        """The live members of ``index`` with their entries."""
        m, now = self.members, self._now()
        query = sa.select(m.c.member, m.c.entry).where(m.c.name == index, _live(m.c.expires, now))
        rows = self._run("INDEX GET", lambda conn: conn.execute(query).all(), write=False)
        return {str(member): bytes(entry) for member, entry in rows}

    def index_revoke(self, index: str, members: Iterable[str]) -> None:
        """In one transaction: delete the records named by ``members`` and remove them
        from ``index``."""
        t, m, keys = self.records, self.members, list(dict.fromkeys(members))
        if not keys:
            return

        def revoke(conn: Connection) -> None:
            for chunk in _chunks(keys):
                conn.execute(sa.delete(t).where(t.c.key.in_(chunk)))
                conn.execute(sa.delete(m).where(m.c.name == index, m.c.member.in_(chunk)))

        self._run("INDEX REVOKE", revoke, transaction=True)

    # -- sweeping -----------------------------------------------------------------------

    def sweep(self) -> int:
        """Delete every expired record and index member; return how many rows went.

        Runs in batches of :data:`SWEEP_BATCH` rows (each its own statement), so a
        large sweep never holds long locks.
        """
        return self._sweep(batches=None)

    def _sweep(self, *, batches: int | None) -> int:
        removed = 0
        for table, keys in ((self.records, ("key",)), (self.members, ("name", "member"))):
            done = 0
            while batches is None or done < batches:
                count = self._run(
                    "SWEEP", functools.partial(self._sweep_batch, table=table, keys=keys)
                )
                removed += count
                done += 1
                if count < SWEEP_BATCH or self._insert is None:
                    break
        return removed

    def _sweep_batch(self, conn: Connection, *, table: sa.Table, keys: tuple[str, ...]) -> int:
        now = self._now()
        expired = _expired(table.c.expires, now)
        if self._insert is None:  # other databases: one statement, no batches
            return _count(conn, sa.delete(table).where(expired))
        columns = [table.c[name] for name in keys]
        batch = sa.select(*columns).where(expired).limit(SWEEP_BATCH)
        target = columns[0] if len(columns) == 1 else sa.tuple_(*columns)
        stmt = sa.delete(table).where(target.in_(batch), expired)
        return _count(conn, stmt)
