"""Issue 11 item 12: a Redis outage is diagnosable — one log line per failure naming the
cause (exception class, server address, never a password) — and ``RedisStore.ping()``
is a readiness check."""

from __future__ import annotations

import logging

import pytest
import redis

from tests.conftest import Harness, set_cookies
from tests.stores.conftest import free_port
from tests.stores.test_contract import jar
from wsgisession import MemoryStore, RedisStore, StoreError


def test_a_store_outage_logs_its_cause_and_server_never_the_password(caplog):
    port = free_port()  # nothing listens here
    store = RedisStore(url=f"redis://:hunter2-secret@127.0.0.1:{port}/0", retries=0)
    with pytest.raises(StoreError) as info:
        store.ping()
    assert isinstance(info.value.original_error, redis.exceptions.ConnectionError)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "hunter2" not in str(info.value)
    cookie = jar(
        Harness(lambda environ, session: session.update(a=1), store=MemoryStore()).get("/")
    )
    h = Harness(lambda environ, session: dict(session), store=store)
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        response = h.get("/", cookie=cookie)
    assert response.status_int == 200 and set_cookies(response) == []
    lines = [r.getMessage() for r in caplog.records if r.name == "wsgisession"]
    [line] = [m for m in lines if "store_error" in m]  # one line for one failure
    assert "read" in line and "ConnectionError" in line and f"127.0.0.1:{port}" in line
    assert "hunter2" not in " ".join(lines)
    store.client.close()


def test_a_failed_write_and_delete_are_logged_with_their_cause(caplog, private_redis):
    store = RedisStore(url=private_redis.url, retries=0)

    def handler(environ, session):
        if environ["PATH_INFO"] == "/logout":
            environ["session"] = None
        else:
            session["n"] = session.get("n", 0) + 1

    h = Harness(handler, store=store, on_store_error="ignore")
    cookie = jar(h.get("/"))
    private_redis.stop()
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        h.get("/logout", cookie=cookie)
    lines = [r.getMessage() for r in caplog.records if "store_error" in r.getMessage()]
    assert len(lines) == 1 and "delete" in lines[0]
    assert "ConnectionError" in lines[0] and str(private_redis.port) in lines[0]
    store.client.close()


def test_redis_ping_succeeds_on_a_running_server(redis_url):
    store = RedisStore(url=redis_url)
    assert store.ping() is None
    assert store.address == redis_url.removeprefix("redis://").removesuffix("/0")
    store.client.close()


def test_min_replicas_without_a_replica_is_an_unacknowledged_write(redis_url):
    """min_replicas=1 on a server with no replica: WAIT answers 0, so the write does not
    count as saved (StoreError naming the shortfall), and the middleware says so."""
    store = RedisStore(url=redis_url, min_replicas=1, replica_timeout=0.05)
    with pytest.raises(StoreError, match="0 of 1 replica"):
        store.set("k", b"v", 10)
    h = Harness(lambda environ, session: session.update(a=1), store=store)
    with pytest.raises(StoreError):
        h.get("/")
    assert "store_error" in h.events.names()
    store.client.close()


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": True}, "min_replicas"),
        ({"min_replicas": 1, "replica_timeout": 0.5, "timeout": 0.5}, "replica_timeout"),
        ({"replica_timeout": 0}, "replica_timeout"),
    ],
)
def test_bad_replica_options_name_the_option(kwargs, option):
    from wsgisession import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        RedisStore(url="redis://127.0.0.1:1/0", **kwargs)
    assert info.value.option == option


def test_min_replicas_checks_the_given_client_reply_timeout():
    """WAIT blocks for replica_timeout: a client whose own reply timeout is not longer
    would fail every write, so that is a configuration error too."""
    from wsgisession import ConfigurationError

    client = redis.Redis(host="127.0.0.1", port=1, socket_timeout=0.2)
    with pytest.raises(ConfigurationError) as info:
        RedisStore(client=client, min_replicas=1)
    assert info.value.option == "replica_timeout"
    RedisStore(client=client, min_replicas=1, replica_timeout=0.1)  # shorter is fine
    RedisStore(client=redis.Redis(host="127.0.0.1", port=1), min_replicas=1)  # no timeout
