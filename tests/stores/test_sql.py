"""SQLStore on real databases: the store contract (and store mode over it) on a SQLite
file, in-memory SQLite and PostgreSQL; the faults each can really have; 32 threads
through the middleware; sweeping (also through ``python -m wsgisession sweep``).

PostgreSQL is a real server that ``tests/stores/servers.py`` initdb's into a temp dir
and runs as an unprivileged user on a free loopback port (fixtures ``postgres`` and
``private_postgres``); each test uses tables of its own. Without PostgreSQL (or
SQLAlchemy, psycopg) those tests skip, unless ``WSGISESSION_REQUIRE_REDIS=1``: then
they fail. Faults are real — a stopped, crashed, paused (SIGSTOP) or read-only server,
a held row lock, an exhausted pool, a locked or read-only SQLite file — and nothing is
mocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

try:
    import sqlalchemy as sa
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("WSGISESSION_REQUIRE_REDIS") == "1":
        raise
    pytest.skip(
        "SQLAlchemy is not installed: pip install 'wsgisession[sql]'", allow_module_level=True
    )

from tests.conftest import Clock, Harness, cookie_value, set_cookies
from tests.stores import test_concurrency as concurrency
from tests.stores.faults import refused_port
from tests.stores.test_contract import StoreContract
from wsgisession import ConfigurationError, StoreError
from wsgisession.stores.sql import SWEEP_BATCH, SQLStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKER = "SQL-PLAINTEXT-MARKER-93f1"


# -- reading the tables behind the store's back -----------------------------------------


class Raw:
    """Direct access to a store's tables over an engine of the test's own (for
    in-memory SQLite: the store's engine, the only way to its database)."""

    def __init__(self, engine: sa.Engine, store: SQLStore) -> None:
        self.engine = engine
        self.t = store.records
        self.m = store.members

    def row(self, key: str) -> tuple[bytes, float | None] | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(self.t.c.value, self.t.c.expires).where(self.t.c.key == key)
            ).first()
        return None if found is None else (bytes(found[0]), found[1])

    def set_expiry(self, key: str, expires: float | None) -> int:
        with self.engine.begin() as conn:
            stmt = sa.update(self.t).where(self.t.c.key == key).values(expires=expires)
            return int(conn.execute(stmt).rowcount)

    def count(self, table: sa.Table | None = None) -> int:
        table = self.t if table is None else table
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar())

    def live(self, now: float) -> int:
        t = self.t
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(
                sa.or_(t.c.expires.is_(None), t.c.expires > now)
            )
            return int(conn.execute(query).scalar())


class SQLHooks:
    """The contract's inspection hooks over :class:`Raw`, with the injected clock:
    an expired row counts as absent, as an expired key does in Redis."""

    raw: Raw
    clock: Clock

    def remaining(self, key):
        row = self.raw.row(key)
        if row is None:
            raise KeyError(key)
        if row[1] is None:
            return None
        left = row[1] - self.clock()
        if left <= 0:
            raise KeyError(key)
        return left

    def set_remaining(self, key, seconds):
        assert self.raw.set_expiry(key, self.clock() + seconds) == 1

    def raw_get(self, key):
        row = self.raw.row(key)
        if row is None or (row[1] is not None and row[1] <= self.clock()):
            return None
        return row[0]

    def elapse(self, seconds):
        self.clock.advance(seconds)


def table_name() -> str:
    return "s_" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def pg_raw(postgres_server) -> Iterator[sa.Engine]:
    """An engine of the tests' own on the session's PostgreSQL."""
    engine = sa.create_engine(postgres_server.url(driver="psycopg"))
    yield engine
    engine.dispose()


@pytest.fixture
def pg_table(postgres) -> Iterator[str]:
    """A table name of this test's own on the session's PostgreSQL, dropped after."""
    name = table_name()
    yield name
    if postgres.running:
        postgres.execute(f"DROP TABLE IF EXISTS {name}, {name}_index")


@pytest.fixture
def pg_database(postgres) -> Iterator[str]:
    """A database of this test's own on the session's PostgreSQL, dropped after."""
    name = "d_" + uuid.uuid4().hex[:12]
    postgres.execute(f"CREATE DATABASE {name}")
    yield name
    if postgres.running:
        postgres.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def stores() -> Iterator[Callable[..., SQLStore]]:
    """Factory: ``stores(url_or_engine, **kw)`` -> SQLStore, closed after the test."""
    made: list[SQLStore] = []

    def make(target: Any, **kw: Any) -> SQLStore:
        store = SQLStore(target, **kw)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


# -- the contract on three databases ----------------------------------------------------


class TestSQLiteFileStore(SQLHooks, StoreContract):
    """The contract over a SQLite file (WAL), the store's clock being the harness's."""

    @pytest.fixture
    def store(self, clock, tmp_path):
        url = f"sqlite:///{tmp_path}/sessions.db"
        store = SQLStore(url, clock=clock)
        store.ping()  # creates the tables
        engine = sa.create_engine(url)
        self.raw = Raw(engine, store)
        yield store
        store.close()
        engine.dispose()


class TestSQLiteMemoryStore(SQLHooks, StoreContract):
    """The contract over in-memory SQLite (one shared connection)."""

    @pytest.fixture
    def store(self, clock):
        store = SQLStore("sqlite://", clock=clock)
        store.ping()
        self.raw = Raw(store.engine, store)
        yield store
        store.close()


class TestPostgresStore(SQLHooks, StoreContract):
    """The contract over PostgreSQL, on tables of the test's own."""

    @pytest.fixture
    def store(self, clock, postgres, pg_table, pg_raw):
        store = SQLStore(postgres.url(), table=pg_table, clock=clock)
        store.ping()
        self.raw = Raw(pg_raw, store)
        yield store
        store.close()


class TestSQLiteWithoutOnConflict(TestSQLiteFileStore):
    """The path for databases without ``INSERT … ON CONFLICT``: insert, and a unique-key
    conflict means "exists" (exercised on SQLite, which has both)."""

    @pytest.fixture
    def store(self, clock, tmp_path):
        url = f"sqlite:///{tmp_path}/sessions.db"
        store = SQLStore(url, clock=clock)
        store._insert = None
        store.ping()
        engine = sa.create_engine(url)
        self.raw = Raw(engine, store)
        yield store
        store.close()
        engine.dispose()


# -- construction, DDL, messages --------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"table": "bad name"}, "table"),
        ({"table": "x" * 64}, "table"),
        ({"table": "t", "index_table": "t"}, "index_table"),
        ({"schema": "a.b"}, "schema"),
        ({"sweep_fraction": 1.5}, "sweep_fraction"),
        ({"sweep_fraction": True}, "sweep_fraction"),
        ({"clock": 5}, "clock"),
        ({"timeout": 0}, "timeout"),
        ({"pool_timeout": -1}, "pool_timeout"),
        ({"pool_size": 0}, "pool_size"),
        ({"max_overflow": -1}, "max_overflow"),
        ({"connect_timeout": 1}, "connect_timeout"),
    ],
)
def test_bad_options_are_configuration_errors(kwargs, option):
    with pytest.raises(ConfigurationError) as info:
        SQLStore("sqlite://", **kwargs)
    assert info.value.option == option


@pytest.mark.parametrize(
    "target",
    [
        "mysql://u:hunter2-secret@db/x",
        "postgresql+pg8000://u:hunter2-secret@db/x",
        "not a url hunter2-secret",
        12,
    ],
)
def test_unsupported_targets_are_refused_without_echoing_them(target):
    with pytest.raises(ConfigurationError) as info:
        SQLStore(target)
    assert info.value.option == "store"
    assert "hunter2" not in str(info.value)


def test_in_memory_engine_with_a_database_per_thread_is_refused():
    engine = sa.create_engine("sqlite://")  # SingletonThreadPool: one database per thread
    with pytest.raises(ConfigurationError, match="StaticPool"):
        SQLStore(engine)
    engine.dispose()


def test_ddl_creates_working_tables(tmp_path, stores):
    ddl = SQLStore.ddl("sqlite", table="mine")
    assert ddl.count("CREATE TABLE") == 2 and ddl.count("CREATE INDEX") == 2
    assert all(line == line.rstrip() for line in ddl.splitlines())
    path = tmp_path / "ddl.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(ddl)
    store = stores(f"sqlite:///{path}", table="mine", create_table=False)
    store.set("k", b"v", 10)
    store.index_put("i", "k", b"e", 10)
    assert store.get("k") == b"v" and store.index_get("i") == {"k": b"e"}
    assert "BYTEA" in SQLStore.ddl() and "DOUBLE PRECISION" in SQLStore.ddl()
    assert "CREATE TABLE app.x_index" in SQLStore.ddl("postgresql", table="x", schema="app")
    with pytest.raises(ConfigurationError):
        SQLStore.ddl("no-such-dialect")


def test_missing_tables_without_create_table_are_a_store_error(tmp_path, stores):
    store = stores(f"sqlite:///{tmp_path}/empty.db", create_table=False)
    with pytest.raises(StoreError, match=r"^sql GET failed: OperationalError .*sqlite "):
        store.get("k")


def test_tables_are_created_once_even_by_racing_stores(postgres, pg_table, stores):
    """Eight stores (as eight workers would) create the same tables at the same time."""
    racers = [stores(postgres.url(), table=pg_table) for _ in range(8)]
    start = threading.Barrier(len(racers), timeout=10)
    errors: list[BaseException] = []

    def race(store: SQLStore) -> None:
        start.wait()
        try:
            store.set("k", b"v", 10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(s,)) for s in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert racers[0].get("k") == b"v"


def test_url_engine_settings(postgres, pg_table, stores):
    """The engine a URL gets: pre-ping, the pool's size and checkout timeout, the
    statement timeout on the server, psycopg, and the reply deadline on the client."""
    store = stores(postgres.url(), table=pg_table)
    pool = store.engine.pool
    assert pool._pre_ping is False  # our own, without a round trip (below)
    assert pool.size() == 10 and pool._max_overflow == 10 and pool.timeout() == 0.5
    assert store.engine.dialect.driver == "psycopg"
    assert store.engine.hide_parameters
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "500ms"
        dbapi = conn.connection.dbapi_connection
        assert dbapi.wsgisession_reply_timeout == 0.75
    own = stores(postgres.url() + "?options=-c%20statement_timeout%3D1234", table=pg_table)
    with own.engine.connect() as conn:  # the URL's own options win
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "1234ms"
    heroku = stores(postgres.url().replace("postgresql://", "postgres://"), table=pg_table)
    heroku.ping()
    slow = stores(postgres.url() + "?connect_timeout=3", table=pg_table)
    slow.ping()  # the URL's connect_timeout wins too
    assert repr(stores("postgresql://u:pw@db.example/x")) == (
        "<SQLStore postgresql db.example/x table=wsgisession_sessions>"
    )
    sqlite_store = stores("sqlite://")
    assert type(sqlite_store.engine.pool).__name__ == "StaticPool"


def test_store_urls_in_settings_and_the_cli_make_sql_stores(tmp_path, postgres, pg_database):
    from wsgisession.settings import store_from_url

    for url in (
        f"sqlite:///{tmp_path}/u.db",
        "sqlite://",
        f"sqlite+pysqlite:///{tmp_path}/u.db",
        postgres.url(pg_database),
        postgres.url(pg_database, driver="psycopg"),
        postgres.url(pg_database).replace("postgresql://", "postgres://"),
    ):
        store = store_from_url(url)
        try:
            assert isinstance(store, SQLStore), url
            store.set("k", b"v", 10)
            assert store.get("k") == b"v"
        finally:
            store.close()


def test_a_given_engine_is_used_as_is_and_left_open(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/given.db")
    store = SQLStore(engine)
    store.set("k", b"v", 10)
    store.close()
    assert SQLStore(engine).get("k") == b"v"  # the engine still works
    assert not SQLStore(engine).owns_engine
    engine.dispose()


def test_repr_and_errors_never_show_the_password_the_query_or_parameters(stores):
    with refused_port() as port:
        url = f"postgresql://alice:hunter2-pw@127.0.0.1:{port}/db?password=query-secret"
        store = stores(url)
        assert (
            repr(store) == f"<SQLStore postgresql 127.0.0.1:{port}/db table=wsgisession_sessions>"
        )
        with pytest.raises(StoreError) as info:
            store.set("session:KEY-IN-PARAMETERS", b"VALUE-IN-PARAMETERS", 10)
    text = str(info.value)
    assert text.startswith("sql SET failed: OperationalError (OperationalError)"), text
    assert f"(postgresql 127.0.0.1:{port}/db)" in text
    for secret in ("hunter2", "query-secret", "alice", "KEY-IN", "VALUE-IN"):
        assert secret not in text and secret not in repr(store)


def test_driver_errors_name_their_sqlstate_and_hide_parameters(postgres, pg_table, stores):
    store = stores(postgres.url(), table=pg_table)
    key = "session:" + "k" * 2000  # longer than the key column
    with pytest.raises(StoreError) as info:
        store.set(key, b"SECRET-VALUE", 10)
    assert str(info.value) == (
        f"sql SET failed: DataError (StringDataRightTruncation, 22001) "
        f"(postgresql 127.0.0.1:{postgres.port}/postgres)"
    )
    original = str(info.value.original_error)
    assert "kkkkkkkk" not in original and "SECRET" not in original
    assert "parameters hidden" in original


# -- sweeping ---------------------------------------------------------------------------


def _sql_targets(request: pytest.FixtureRequest, tmp_path) -> tuple[str, dict[str, Any]]:
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path}/sweep.db", {}
    if request.param == "sqlite-memory":
        return "sqlite://", {}
    server = request.getfixturevalue("postgres")
    return server.url(), {"table": request.getfixturevalue("pg_table")}


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql"])
def sql_target(request, tmp_path):
    """(URL, store options) on each database."""
    return _sql_targets(request, tmp_path)


def test_sweep_removes_expired_rows_and_members_in_batches(sql_target, stores):
    url, options = sql_target
    clock = Clock(1_000_000.0)
    store = stores(url, clock=clock, **options)
    expired = 2 * SWEEP_BATCH + 7
    store.ping()
    with store.engine.begin() as conn:  # many expired rows, fast
        rows = [{"key": f"old:{i}", "value": b"x", "expires": 999_000.0} for i in range(expired)]
        conn.execute(sa.insert(store.records), rows)
    store.set("live", b"l", 100)
    store.set("forever", b"f", None)
    store.index_put("i", "m-old", b"e", 1)
    store.index_put("i", "m-live", b"e", 100)
    store.index_put("j", "m-old", b"e", 1)
    clock.advance(2)
    assert store.get("old:0") is None  # never served, though still there
    assert store.sweep() == expired + 2
    assert store.get("live") == b"l" and store.get("forever") == b"f"
    assert store.index_get("i") == {"m-live": b"e"} and store.index_get("j") == {}
    assert store.sweep() == 0
    with store.engine.connect() as conn:
        counts = [
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in (store.records, store.members)
        ]
    assert counts == [2, 1]


def test_ttl_reports_what_is_left(sql_target, stores):
    url, options = sql_target
    clock = Clock(1_000_000.0)
    store = stores(url, clock=clock, **options)
    store.set("k", b"v", 100)
    store.set("forever", b"f", None)
    clock.advance(40)
    assert store.ttl("k") == pytest.approx(60) and store.ttl("forever") is None
    clock.advance(60)
    for key in ("k", "absent"):
        with pytest.raises(KeyError):
            store.ttl(key)


def test_sweep_without_on_conflict_is_one_statement_per_table(tmp_path, stores):
    clock = Clock(1_000_000.0)
    store = stores(f"sqlite:///{tmp_path}/generic.db", clock=clock)
    store._insert = None
    for i in range(SWEEP_BATCH + 5):
        store.set(f"old:{i}", b"x", 1)
    store.index_put("u", "old:0", b"e", 1)
    store.set("live", b"l", 100)
    clock.advance(2)
    assert store.sweep() == SWEEP_BATCH + 6
    assert store.get("live") == b"l"


def test_a_failed_sweep_after_a_write_is_logged_not_raised(tmp_path, stores, caplog):
    """``sweep_fraction``: the write succeeded, so a sweep that fails (here: the index
    table is missing) is a warning, never the write's error."""
    path = tmp_path / "half.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            SQLStore.ddl("sqlite").split("CREATE TABLE wsgisession_sessions_index")[0]
        )
    store = stores(f"sqlite:///{path}", create_table=False, sweep_fraction=1.0)
    store.set("k", b"v", 100)
    assert store.get("k") == b"v"
    assert "SQLStore sweep after a write failed: sql SWEEP failed: OperationalError" in caplog.text


def test_sweep_fraction_sweeps_on_writes(tmp_path, stores):
    clock = Clock(1_000_000.0)
    never = stores(f"sqlite:///{tmp_path}/f.db", clock=clock)
    always = stores(f"sqlite:///{tmp_path}/f.db", clock=clock, sweep_fraction=1.0)
    for i in range(5):
        never.set(f"old:{i}", b"x", 1)
    clock.advance(5)
    never.set("new", b"n", 100)
    raw = Raw(never.engine, never)
    assert raw.count() == 6
    assert always.update("new", b"n2", 100)
    assert raw.count() == 1


def test_index_put_drops_that_index_expired_members(sql_target, stores):
    url, options = sql_target
    clock = Clock(1_000_000.0)
    store = stores(url, clock=clock, **options)
    store.index_put("i", "a", b"1", 1)
    store.index_put("other", "a", b"1", 1)
    clock.advance(2)
    store.index_put("i", "b", b"2", 10)
    raw = Raw(store.engine, store)
    assert raw.count(store.members) == 2  # "other" waits for a sweep
    assert store.index_get("i") == {"b": b"2"}


def test_index_revoke_of_many_members_at_once(sql_target, stores):
    url, options = sql_target
    store = stores(url, **options)
    members = [f"session:{i}" for i in range(1234)]
    for key in members[:3]:
        store.set(key, b"v", 100)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(store.members),
            [{"name": "u", "member": m, "entry": b"e", "expires": None} for m in members],
        )
    assert len(store.index_get("u")) == 1234
    store.index_revoke("u", members)
    assert store.index_get("u") == {} and store.get(members[0]) is None


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsgisession", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
    )


def test_cli_sweep_on_sqlite_and_postgresql(tmp_path, postgres, pg_database, stores):
    past = Clock(time.time() - 3600)
    for url in (f"sqlite:///{tmp_path}/cli.db", postgres.url(pg_database)):
        writer = stores(url, clock=past)
        for i in range(3):
            writer.set(f"old:{i}", b"x", 10)
        writer.index_put("u", "old:0", b"e", 10)
        live = stores(url)
        live.set("live", b"l", 100)
        done = _cli("sweep", url)
        assert (done.returncode, done.stdout, done.stderr) == (0, "removed 4 expired entries\n", "")
        assert live.get("live") == b"l"
        assert Raw(live.engine, live).count() == 1
    with refused_port() as port:
        done = _cli("sweep", f"postgresql://u:hunter2-pw@127.0.0.1:{port}/x")
    assert done.returncode == 69 and "sql SWEEP failed: OperationalError" in done.stderr
    assert "hunter2" not in done.stderr


# -- faults: PostgreSQL -----------------------------------------------------------------


class App:
    """``/login`` writes ``user``; ``/read`` shows the session as JSON; ``/logout``."""

    def __call__(self, environ: dict[str, Any], session: Any) -> Any:
        path = environ["PATH_INFO"]
        if path == "/login":
            session["user"] = MARKER
            return session.id
        if path == "/read":
            return json.dumps(dict(session), sort_keys=True)
        if path == "/logout":
            environ["session"] = None
        return "ok"


def fresh(h: Harness, path: str, cookie: str | None = None):
    h.client.reset()
    return h.get(path, cookie=cookie)


def login(h: Harness) -> str:
    resp = fresh(h, "/login")
    value = cookie_value(resp)
    assert value, set_cookies(resp)
    return f"session={value}"


def assert_read_failure(h: Harness, resp) -> None:
    """An empty, read-only session, ``store_error`` (read) and no Set-Cookie."""
    assert resp.status_int == 200 and resp.text == "{}"
    assert set_cookies(resp) == []
    assert h.events.reasons("store_error") == ["read"]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    try:
        return fn(), time.perf_counter() - start
    except StoreError as exc:
        return exc, time.perf_counter() - start


def test_pg_stopped_server(private_postgres, stores):
    """Stopped: a read is an empty read-only session with ``store_error``, a write a
    StoreError, both at once; started again, the record is back (it is on disk)."""
    store = stores(private_postgres.url())
    h = Harness(App(), store=store)
    cookie = login(h)
    private_postgres.stop()
    h.events.clear()
    resp, elapsed = timed(lambda: fresh(h, "/read", cookie))
    assert elapsed < 0.25, elapsed
    assert_read_failure(h, resp)
    h.events.clear()
    error, elapsed = timed(lambda: fresh(h, "/login"))
    assert isinstance(error, StoreError) and elapsed < 0.25
    assert str(error).startswith("sql CREATE failed: OperationalError")
    assert h.events.reasons("store_error") == ["write"]
    with pytest.raises(StoreError, match=r"^sql PING failed"):
        store.ping()

    private_postgres.start()
    h.events.clear()
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}
    assert h.events.names() == []


def test_pg_immediate_shutdown_and_crash_recovery(private_postgres, stores):
    """``pg_ctl stop -m immediate`` (SIGQUIT): pooled connections break; after crash
    recovery the committed record is there and the pool reconnects by itself."""
    store = stores(private_postgres.url())
    store.set("k", b"committed", 100)
    private_postgres.crash()
    error, elapsed = timed(lambda: store.get("k"))
    assert isinstance(error, StoreError) and elapsed < 0.25, (error, elapsed)
    private_postgres.start()
    assert store.get("k") == b"committed"


def test_pg_hung_server_waits_are_bounded(private_postgres, stores):
    """Every process of the server SIGSTOPped: the kernel accepts connections and
    acknowledges data, nothing answers. A pooled connection gives up after the reply
    deadline (0.75 s) and is dropped; with the pool empty, a request costs libpq's
    connect timeout (2 s). Resumed, the store works again."""
    store = stores(private_postgres.url())
    h = Harness(App(), store=store)
    cookie = login(h)
    private_postgres.pause()
    try:
        h.events.clear()
        resp, first = timed(lambda: fresh(h, "/read", cookie))
        assert_read_failure(h, resp)
        error, second = timed(lambda: store.set("k", b"v", 10))
        assert isinstance(error, StoreError)
        assert "ConnectionTimeout" in str(error), error
    finally:
        private_postgres.resume()
    print(f"hung server: first request {first:.2f} s, then {second:.2f} s")
    assert 0.7 < first < 1.2, first
    assert 1.9 < second < 2.5, second
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}


def test_pg_hung_server_with_a_live_pooled_connection_is_the_reply_deadline(
    private_postgres, stores
):
    """Paused while a connection is checked out (past its pre-ping): the statement
    waits the reply deadline, 0.75 s, and the connection is closed, not reused."""
    store = stores(private_postgres.url())
    store.set("k", b"v", 100)
    t = store.records
    with store.engine.connect() as conn:
        conn.execute(sa.select(t.c.key).limit(1)).all()
        private_postgres.pause()
        try:
            start = time.perf_counter()
            with pytest.raises(sa.exc.OperationalError, match="no reply from the server") as info:
                conn.execute(sa.select(t.c.value).where(t.c.key == "k")).all()
            elapsed = time.perf_counter() - start
            assert type(info.value.orig).__name__ == "ReplyTimeout"
        finally:
            private_postgres.resume()
        assert conn.invalidated
    assert 0.7 < elapsed < 1.0, elapsed
    assert store.get("k") == b"v"


def test_pg_connection_the_server_closed_is_replaced_not_reported(postgres, pg_table, stores):
    """The pre-ping: a pooled connection that the server terminated (a restart, an
    idle timeout, ``pg_terminate_backend``) is noticed at checkout, without a round
    trip, and replaced."""
    store = stores(postgres.url(), table=pg_table)
    store.set("k", b"v", 100)
    with store.engine.connect() as conn:
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    assert postgres.execute(f"SELECT pg_terminate_backend({backend})") == [(True,)]
    time.sleep(0.1)
    assert store.get("k") == b"v"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != backend


def test_pg_connection_idle_for_long_is_pinged_first(private_postgres, stores):
    """A pooled connection idle for more than 30 s is pinged at checkout: on a hung
    server that ping's reply deadline (0.75 s) and then a reconnection (2 s) are what
    a request waits; a connection used recently goes straight to its statement."""
    store = stores(private_postgres.url())
    store.set("k", b"v", 100)
    with store.engine.connect() as conn:
        info = conn.connection.info  # the pool record's, kept across checkouts
    info["wsgisession_idle_since"] -= 60
    private_postgres.pause()
    try:
        error, elapsed = timed(lambda: store.get("k"))
    finally:
        private_postgres.resume()
    assert isinstance(error, StoreError) and "ConnectionTimeout" in str(error), error
    assert 2.5 < elapsed < 3.3, elapsed
    assert store.get("k") == b"v"


def test_pg_held_row_lock_is_the_statement_timeout(postgres, pg_table, pg_raw, stores):
    """Another transaction holds the row (``SELECT … FOR UPDATE``): an update waits
    ``statement_timeout`` (0.5 s) and fails with QueryCanceled, a read does not wait
    (MVCC), and the connection is fine afterwards."""
    store = stores(postgres.url(), table=pg_table)
    store.set("k", b"v", 100)
    t = store.records
    with pg_raw.begin() as holder:
        holder.execute(sa.select(t.c.key).where(t.c.key == "k").with_for_update()).all()
        error, elapsed = timed(lambda: store.update("k", b"new", 100))
        assert isinstance(error, StoreError)
        assert str(error).startswith("sql UPDATE failed: OperationalError (QueryCanceled, 57014)")
        assert 0.45 < elapsed < 0.8, elapsed
        value, read = timed(lambda: store.get("k"))
        assert value == b"v" and read < 0.2
    assert store.update("k", b"new", 100) and store.get("k") == b"new"


def test_pg_read_only_database(postgres, pg_database, stores):
    """``default_transaction_read_only=on``: reads work, every write is a StoreError
    (ReadOnlySqlTransaction); through the middleware, a logged-in user still reads."""
    url = postgres.url(pg_database)
    writer = stores(url)
    h = Harness(App(), store=writer)
    cookie = login(h)
    writer.close()
    postgres.execute(f"ALTER DATABASE {pg_database} SET default_transaction_read_only = on")
    store = stores(url)
    h = Harness(App(), store=store)
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}
    with pytest.raises(StoreError, match=r"ReadOnlySqlTransaction, 25006"):
        store.set("k", b"v", 10)
    with pytest.raises(StoreError, match=r"^sql MOVE failed: .*25006"):
        store.move("a", "b", b"v", 10)
    with pytest.raises(StoreError):
        fresh(h, "/login")
    assert h.events.reasons("store_error") == ["write"]


def test_pg_exhausted_pool_waits_the_pool_timeout(postgres, pg_table, stores):
    store = stores(postgres.url(), table=pg_table, pool_size=1, max_overflow=0)
    store.ping()
    h = Harness(App(), store=store)
    cookie = login(h)
    with store.engine.connect():  # the only connection
        h.events.clear()
        resp, elapsed = timed(lambda: fresh(h, "/read", cookie))
        assert_read_failure(h, resp)
        error, _ = timed(lambda: store.get("k"))
        assert isinstance(error, StoreError)
        assert str(error).startswith("sql GET failed: TimeoutError ("), error
    assert 0.45 < elapsed < 0.8, elapsed
    assert json.loads(fresh(h, "/read", cookie).text) == {"user": MARKER}


def test_pg_connect_to_a_hung_listener_is_the_connect_timeout(stores):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)  # accepted by the kernel, never answered
    try:
        store = stores(f"postgresql://u@127.0.0.1:{server.getsockname()[1]}/x")
        error, elapsed = timed(store.ping)
    finally:
        server.close()
    assert isinstance(error, StoreError) and "ConnectionTimeout" in str(error)
    assert 1.9 < elapsed < 2.5, elapsed


def test_pg_fork_gives_the_child_its_own_connections(postgres, pg_table, stores, tmp_path):
    """A store used before ``fork()`` (gunicorn --preload): the child opens its own
    connections, the parent's keep working."""
    store = stores(postgres.url(), table=pg_table)
    store.set("parent", b"p", 100)
    with store.engine.connect() as conn:
        parent_backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    out = tmp_path / "child.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            store.set("child", b"c", 100)
            with store.engine.connect() as conn:
                backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            out.write_text(json.dumps({"backend": backend, "parent": store.get("parent").decode()}))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    child = json.loads(out.read_text())
    assert child["parent"] == "p" and child["backend"] != parent_backend
    assert store.get("child") == b"c"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == parent_backend


# -- faults: SQLite ---------------------------------------------------------------------


def test_sqlite_locked_by_another_writer(tmp_path, stores):
    """Another process's connection holds the write lock: a write waits the busy
    timeout (0.5 s) and fails with SQLITE_BUSY; reads go on (WAL)."""
    path = tmp_path / "locked.db"
    store = stores(f"sqlite:///{path}")
    store.set("k", b"v", 100)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        error, elapsed = timed(lambda: store.set("k", b"new", 100))
        assert isinstance(error, StoreError)
        assert (
            str(error)
            == f"sql SET failed: OperationalError (OperationalError, SQLITE_BUSY) (sqlite {path})"
        )
        assert 0.45 < elapsed < 0.9, elapsed
        value, read = timed(lambda: store.get("k"))
        assert value == b"v" and read < 0.2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.update("k", b"new", 100) and store.get("k") == b"new"


def test_sqlite_read_only_file(tmp_path, stores):
    path = tmp_path / "ro.db"
    stores(f"sqlite:///{path}").set("k", b"v", 100)
    store = stores(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert store.get("k") == b"v"
    with pytest.raises(StoreError, match=r"SQLITE_READONLY"):
        store.set("k", b"new", 100)


def test_sqlite_missing_directory(tmp_path, stores):
    store = stores(f"sqlite:///{tmp_path}/no/such/dir/s.db")
    with pytest.raises(StoreError, match=r"^sql GET failed: .*SQLITE_CANTOPEN"):
        store.get("k")


def test_in_memory_connection_is_lent_with_a_bounded_wait(stores):
    store = stores("sqlite://")
    store.set("k", b"v", 100)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._lender.lend("TEST"):
            taken.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(5)
    error, elapsed = timed(lambda: store.get("k"))
    release.set()
    holder.join(5)
    assert isinstance(error, StoreError)
    assert str(error) == "sql GET failed: no free connection for 0.5 s (sqlite :memory:)"
    assert 0.45 < elapsed < 0.8
    assert store.get("k") == b"v"


def test_sqlite_file_writes_of_one_process_take_turns_with_a_bounded_wait(tmp_path, stores):
    """A write of this process waits for the others of this process at most ``timeout``
    (reads never do)."""
    store = stores(f"sqlite:///{tmp_path}/turns.db")
    store.set("k", b"v", 100)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._writer.lend("TEST"):
            taken.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(5)
    error, elapsed = timed(lambda: store.update("k", b"new", 100))
    value, read = timed(lambda: store.get("k"))
    release.set()
    holder.join(5)
    assert str(error) == (
        f"sql UPDATE failed: another write held the database for 0.5 s (sqlite {tmp_path}/turns.db)"
    )
    assert 0.45 < elapsed < 0.8 and value == b"v" and read < 0.2
    assert store.update("k", b"new", 100)


def test_a_missing_driver_is_a_configuration_error():
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed")
    with pytest.raises(ConfigurationError, match=r"driver is not installed \(psycopg2\)"):
        SQLStore("postgresql+psycopg2://u:hunter2@127.0.0.1/x")


# -- concurrency: 32 threads through the middleware (tests/stores/test_concurrency.py) --


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql"])
def store(request, tmp_path) -> Iterator[SQLStore]:
    """A fresh SQLStore for the concurrency scenarios (default clock and timeouts)."""
    if request.param == "sqlite-file":
        made = SQLStore(f"sqlite:///{tmp_path}/threads.db")
    elif request.param == "sqlite-memory":
        made = SQLStore("sqlite://")
    else:
        server = request.getfixturevalue("postgres")
        made = SQLStore(server.url(), table=request.getfixturevalue("pg_table"))
    made.ping()
    yield made
    made.close()


@pytest.fixture(autouse=True)
def _count_sql_records(monkeypatch):
    """test_concurrency counts records per store kind; teach it SQLStore's live rows."""
    original = concurrency.count_records

    def count(store: Any) -> int:
        if isinstance(store, SQLStore):
            return Raw(store.engine, store).live(time.time())
        return original(store)

    monkeypatch.setattr(concurrency, "count_records", count)


test_h85_many_users = concurrency.test_h85_many_users_share_one_middleware
test_h86_last_writer_wins = concurrency.test_h86_same_session_writers_whole_session_last_writer_wins
test_h87_increments = concurrency.test_h87_concurrent_increments_lose_updates_but_never_fail
test_h88_logout_race = concurrency.test_h88_logout_race_does_not_resurrect
test_h88_slow_regenerate = concurrency.test_h88_slow_regenerate_after_logout_does_not_resurrect
test_h89_regenerate_race = concurrency.test_h89_regenerate_race_drops_old_id_write
test_late_change_saved = concurrency.test_late_change_to_existing_session_saved_at_close
test_late_new_session = concurrency.test_late_change_to_new_session_is_not_saved
test_late_save_racing_logout = concurrency.test_late_save_racing_logout_is_interrupted


def test_32_threads_logging_out_and_regenerating_never_resurrect(store):
    """32 threads on one session: half keep writing it, one logs it out, others try to
    regenerate it, all released together. Afterwards no record lives: neither the old
    id nor any id a regenerate produced, and no response carries a live cookie except
    a regenerate that won before the logout (whose new session then is the only one)."""
    threads = 32
    go = threading.Barrier(threads, timeout=10)

    def handler(environ: dict[str, Any], session: Any) -> Any:
        path = environ["PATH_INFO"]
        if path == "/seed":
            session["user"] = "alice"
            return None
        assert session["user"] == "alice" or session.is_new
        go.wait()
        if path == "/logout":
            environ["session"] = None
        elif path == "/regenerate":
            session.regenerate()
            session["role"] = "admin"
        else:
            session["n"] = session.get("n", 0) + 1
        return None

    h = Harness(handler, store=store)
    seed = concurrency.token(concurrency.call_wsgi(h.mw, "/seed"))
    assert seed
    sid = concurrency.sid_of(h.mw, seed)
    paths = ["/logout"] + ["/regenerate"] * 7 + ["/write"] * (threads - 8)
    results = concurrency.run_threads(
        threads, lambda i: concurrency.call_wsgi(h.mw, paths[i], cookie=f"session={seed}")
    )
    assert concurrency.record(h.mw, store, sid) is None, "the logged-out id came back"
    live = [
        concurrency.token(r)
        for r, path in zip(results, paths, strict=True)
        if path != "/logout" and concurrency.token(r)
    ]
    survivors = {
        concurrency.sid_of(h.mw, value)
        for value in live
        if concurrency.record(h.mw, store, concurrency.sid_of(h.mw, value)) is not None
    }
    # At most one regenerate can win (the others find the old record gone), and only
    # if it won before the logout; every other id is gone.
    assert len(survivors) <= 1
    assert concurrency.count_records(store) == len(survivors)
    assert "store_error" not in h.events.names()
