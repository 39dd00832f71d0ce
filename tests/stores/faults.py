"""Helpers of the store fault tests (Redis, memcached): sockets that stand in for a
broken server — a listener that accepts and never answers (or answers with the wrong
protocol), a port that refuses connections — and the requests and checks the fault
tests share."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.conftest import Harness, cookie_value, set_cookies


@contextmanager
def listener(reply: bytes | None = None) -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (or, with
    ``reply``, answers that and closes: the wrong service on the port). Yields
    ``(port, accepted)``."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.02)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)
            if reply is not None:
                try:
                    conn.settimeout(1)
                    conn.recv(4096)
                    conn.sendall(reply)
                except OSError:
                    pass
                conn.close()

    thread = threading.Thread(target=run, name="fake-memcached", daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that is bound but not listening: connecting is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def fresh(h: Harness, path: str, cookie: str | None = None, **kw: Any):
    """A request carrying exactly ``cookie`` (WebTest's cookie jar is emptied first)."""
    h.client.reset()
    return h.get(path, cookie=cookie, **kw)


def login(h: Harness, query: str = "", cookie: str | None = None) -> tuple[str, str]:
    """Write a session; return ``(session id, Cookie header value)``."""
    resp = fresh(h, "/login" + (f"?{query}" if query else ""), cookie)
    assert resp.status_int == 200
    token = cookie_value(resp)
    assert token, set_cookies(resp)
    return resp.text, f"session={token}"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def assert_read_failure(h: Harness, resp) -> None:
    """DESIGN §5/§8: empty read-only session, ``store_error`` (read), the app's 200, and
    no Set-Cookie (a store outage must not log anybody out)."""
    assert resp.status_int == 200
    assert resp.text == "{}"
    assert set_cookies(resp) == []
    assert h.events.reasons("store_error") == ["read"]
    assert "missed" not in h.events.names()
    assert "invalid" not in h.events.names()
