"""Sockets that stand in for a broken server: a listener that accepts and never
answers (or answers with the wrong protocol), and a port that refuses connections."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


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
