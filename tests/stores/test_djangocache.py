"""``DjangoCacheStore`` over three of Django's own cache backends: ``LocMemCache``
(in-process), ``RedisCache`` on a real redis-server and ``PyMemcacheCache`` on a real
memcached. The store contract runs on each (TTLs read behind Django's back: LocMem's
expiry table, Redis ``PTTL``, memcached's meta get), then what is particular to the
store: no update/move (the checked fallback, announced once), no index, faults of a
real unreachable server become ``StoreError`` naming the alias, the alias looked up on
every call.

Django's settings are process-wide: this module uses the Django adapter tests' project
settings (setting them up if nothing did yet) and changes ``CACHES`` with
``override_settings``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Harness, set_cookies
from tests.stores.test_contract import RedisHooks, StoreContract, jar, routes, store_key
from tests.stores.test_memcached import mg_ttl
from wsgisession import ConfigurationError, StoreError

django = pytest.importorskip("django", reason="pip install Django")

from django.test import override_settings  # noqa: E402

from wsgisession.stores.djangocache import DjangoCacheStore  # noqa: E402

SETTINGS = "tests.adapters.django_project.settings"
ALIAS = "sessions"


@pytest.fixture(scope="module", autouse=True)
def django_ready(tmp_path_factory) -> None:
    """Django set up with the adapter tests' project (if no test did it already)."""
    from django.conf import settings

    if not settings.configured:
        db = tmp_path_factory.mktemp("django-cache") / "db.sqlite3"
        os.environ.setdefault("WSGISESSION_DJANGO_TEST_DB", str(db))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
        django.setup()


@pytest.fixture
def caches_as():
    """Factory: ``caches_as(backend, location, **options)`` points the ``sessions``
    alias at that backend for the rest of the test."""
    overrides: list[Any] = []

    def configure(backend: str, location: str, **options: Any) -> Any:
        from django.core.cache import caches

        entry = {"BACKEND": backend, "LOCATION": location, **options}
        override = override_settings(CACHES={"default": entry, ALIAS: entry})
        override.enable()
        overrides.append(override)
        return caches[ALIAS]

    yield configure
    for override in reversed(overrides):
        override.disable()


LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
REDIS = "django.core.cache.backends.redis.RedisCache"
PYMEMCACHE = "django.core.cache.backends.memcached.PyMemcacheCache"


class DjangoCacheHooks:
    """What the three backends share: the store has ``create`` and ``touch`` only
    (Django's ``add``/``touch``), no index; values are read back through the cache."""

    methods = frozenset({"create", "touch"})
    # Django's cache API has nothing over several keys at once: no index methods.
    test_a_user_lists_and_revokes_their_sessions = None
    test_log_out_everywhere_but_here = None
    test_logout_regenerate_and_expiry_keep_the_list_true = None
    test_index_put_and_get_round_trip_entries_exactly = None
    test_index_members_expire_on_their_own = None
    test_index_revoke_deletes_records_and_members_together = None
    test_update_only_if_present = None  # no update(): the checked fallback instead

    cache: Any
    store: Any

    def wire(self, key: str) -> str:
        """The key the backend really holds (after the store's and Django's mapping)."""
        return self.cache.make_key(self.store.cache_key(key))

    def raw_get(self, key):
        return self.cache.get(self.store.cache_key(key))

    def set_remaining(self, key, seconds):
        assert self.cache.touch(self.store.cache_key(key), seconds)

    def elapse(self, seconds):
        time.sleep(seconds)  # the backends' own clocks


class TestLocMemCache(DjangoCacheHooks, StoreContract):
    """The contract over Django's ``LocMemCache``; TTLs from its expiry table."""

    @pytest.fixture
    def store(self, caches_as):
        self.cache = caches_as(LOCMEM, "wsgisession-contract")
        self.cache.clear()
        return DjangoCacheStore(alias=ALIAS)

    def remaining(self, key):
        expires = self.cache._expire_info[self.wire(key)]  # KeyError: absent
        return None if expires is None else expires - time.time()


class TestRedisCache(DjangoCacheHooks, RedisHooks, StoreContract):
    """The contract over Django's ``RedisCache`` on a real redis-server; TTLs by
    ``PTTL`` of the key Django made."""

    @pytest.fixture
    def store(self, caches_as, redis_server, redis_url):
        self.raw = redis_server.client()
        self.cache = caches_as(REDIS, redis_url)
        yield DjangoCacheStore(alias=ALIAS)
        self.raw.close()

    def remaining(self, key):
        return RedisHooks.remaining(self, self.wire(key))

    raw_get = DjangoCacheHooks.raw_get
    set_remaining = DjangoCacheHooks.set_remaining


class TestPyMemcacheCache(DjangoCacheHooks, StoreContract):
    """The contract over Django's ``PyMemcacheCache`` on a real memcached; TTLs by
    meta get of the key Django made."""

    @pytest.fixture
    def store(self, caches_as, memcached):
        pytest.importorskip("pymemcache")
        self.raw = memcached.client()
        self.cache = caches_as(PYMEMCACHE, memcached.address)
        yield DjangoCacheStore(alias=ALIAS)
        self.raw.close()

    def remaining(self, key):
        seconds = mg_ttl(self.raw, self.wire(key))
        return None if seconds is None else float(seconds)

    def test_ttl_is_honoured(self):
        """As the contract's, started right after one of memcached's once-a-second
        ticks (it counts whole seconds)."""
        from tests.stores.test_memcached import after_a_tick

        after_a_tick(self.raw)
        super().test_ttl_is_honoured()


# ======================================================================================
# The store itself
# ======================================================================================


@pytest.fixture
def locmem(caches_as) -> Iterator[Any]:
    cache = caches_as(LOCMEM, "wsgisession-own")
    cache.clear()
    yield cache
    cache.clear()


def test_alias_must_name_a_cache() -> None:
    for bad in ("", None, 3):
        with pytest.raises(ConfigurationError) as info:
            DjangoCacheStore(alias=bad)  # type: ignore[arg-type]
        assert "alias" in str(info.value)


def test_the_alias_is_looked_up_on_every_call(caches_as) -> None:
    """Constructed before the caches exist (as in settings.py), it follows CACHES."""
    store = DjangoCacheStore(alias=ALIAS)
    first = caches_as(LOCMEM, "wsgisession-first")
    store.set("k", b"one", 60)
    assert first.get("k") == b"one"
    second = caches_as(LOCMEM, "wsgisession-second")
    assert store.get("k") is None
    store.set("k", b"two", 60)
    assert second.get("k") == b"two" and first.get("k") == b"one"
    first.clear()
    second.clear()


def test_an_unknown_alias_is_a_store_error_naming_it(locmem) -> None:
    store = DjangoCacheStore(alias="nowhere")
    with pytest.raises(StoreError) as info:
        store.get("k")
    message = str(info.value)
    assert "get" in message and "'nowhere'" in message
    assert "InvalidCacheBackendError" in message


def test_an_unreachable_redis_is_a_store_error_for_every_operation(caches_as) -> None:
    """A real fault: Django's RedisCache on a loopback port nothing listens on."""
    from tests.stores.conftest import free_port

    caches_as(
        REDIS,
        f"redis://127.0.0.1:{free_port()}/0",
        OPTIONS={"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    )
    store = DjangoCacheStore(alias=ALIAS)
    calls = {
        "get": lambda: store.get("k"),
        "set": lambda: store.set("k", b"v", 5),
        "add": lambda: store.create("k", b"v", 5),
        "touch": lambda: store.touch("k", 5),
        "delete": lambda: store.delete("k"),
    }
    for what, call in calls.items():
        with pytest.raises(StoreError) as info:
            call()
        assert f"django cache {what} failed: ConnectionError" in str(info.value), what
        assert f"cache {ALIAS!r}" in str(info.value)
    with pytest.raises(StoreError):
        store.ping()


def test_keys_memcached_cannot_take_are_hashed(locmem) -> None:
    """Django warns about (and memcached refuses) such keys: they are stored hashed;
    the middleware's own keys are used as they are."""
    import warnings

    store = DjangoCacheStore(alias=ALIAS)
    own = "session:" + "ab" * 32
    assert store.cache_key(own) == own
    for key in ("with space", "x" * 201, "ünïcode", "tab\tkey", "~h:looks-hashed"):
        wire = store.cache_key(key)
        assert wire.startswith("~h:") and len(wire) == 67, key
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # CacheKeyWarning would be raised here
            store.set(key, b"v", 60)
        assert locmem.get(wire) == b"v"


def test_repr_names_the_alias_only(locmem) -> None:
    store = DjangoCacheStore(alias=ALIAS)
    store.set("session:abc", b"secret-bytes", 60)
    assert repr(store) == "<DjangoCacheStore alias='sessions'>"


def test_none_ttl_keeps_the_record_until_deleted(locmem) -> None:
    store = DjangoCacheStore(alias=ALIAS)
    store.set("forever", b"f", None)
    assert locmem._expire_info[locmem.make_key("forever")] is None
    assert store.touch("forever", None) is True
    store.delete("forever")
    assert store.get("forever") is None


def test_the_middleware_announces_the_missing_methods_once(locmem, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="wsgisession")
    Harness(lambda environ, session: "", store=DjangoCacheStore(alias=ALIAS))
    (record,) = [r for r in caplog.records if "narrows" in r.getMessage()]
    assert "DjangoCacheStore has no update():" in record.getMessage()


def test_a_logout_during_a_slow_request_is_not_undone(locmem, clock) -> None:
    """The checked fallback: a request that read the session, then finds its record
    deleted by a logout before it saves, sends no cookie and writes nothing."""
    store = DjangoCacheStore(alias=ALIAS)

    def login(environ, session):
        session["n"] = 1
        return session.id

    def slow(environ, session):
        session.get("n")
        store.delete(environ["test.key"])  # the logout, by another request
        session["n"] = 2
        return "saved?"

    h = Harness(routes(index=slow, set=login), clock=clock, store=store)
    first = h.get("/set", cookie="")
    key = store_key(first.text)
    assert locmem.get(key) is not None
    second = h.get("/", cookie=jar(first), extra_environ={"test.key": key})
    assert second.text == "saved?"
    assert set_cookies(second) == []
    assert locmem.get(key) is None
    assert [(e.name, e.reason) for e in h.events][-1] == ("interrupted", "record_gone")


def test_an_evicted_record_is_a_fresh_session(caches_as, clock) -> None:
    """LocMemCache's MAX_ENTRIES evicts; the user whose record went gets a new session
    (event ``missed``), never an error."""
    cache = caches_as(LOCMEM, "wsgisession-tiny", OPTIONS={"MAX_ENTRIES": 2, "CULL_FREQUENCY": 1})
    cache.clear()
    h = Harness(
        routes(index=lambda e, s: str(s.get("n")), set=lambda e, s: s.__setitem__("n", 1)),
        clock=clock,
        store=DjangoCacheStore(alias=ALIAS),
    )
    first = h.get("/set", cookie="")
    for _ in range(3):  # past MAX_ENTRIES: the cache culls everything it holds
        h.get("/set", cookie="")
    assert h.get("/", cookie=jar(first)).text == "None"
    assert ("missed", "no_record") in [(e.name, e.reason) for e in h.events]
    cache.clear()
