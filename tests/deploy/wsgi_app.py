"""The demo app as gunicorn loads it: ``gunicorn tests.deploy.wsgi_app:app``.

Configured only through the environment, like a real deployment:

``WSGISESSION_SECRET_KEYS``  comma-separated secrets, first = current (required)
``WSGISESSION_STORE``        ``cookie`` (default) or a ``redis://`` URL (store mode)

Besides the demo's pages it serves ``/whoami``: JSON with the worker's pid and
thread, the key ids this process was configured with and what the session holds
(``views``, ``user``, ``is_new``). It reads the session and never changes it, so a
``Set-Cookie`` on it comes only from the middleware itself (re-keying). Every
response carries an ``X-Worker-Pid`` header.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from wsgisession.codec import TokenCodec
from wsgisession.demo import make_demo

__all__ = ["app", "build_app"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _secret_keys(env: Mapping[str, str]) -> list[str]:
    raw = env.get("WSGISESSION_SECRET_KEYS", "")
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if not keys:
        raise RuntimeError("WSGISESSION_SECRET_KEYS must hold at least one secret")
    return keys


def _store_options(env: Mapping[str, str]) -> dict[str, Any]:
    spec = env.get("WSGISESSION_STORE", "cookie").strip() or "cookie"
    if spec == "cookie":
        return {}
    if spec.startswith("redis://"):
        from wsgisession.stores.redis import RedisStore

        return {"store": RedisStore(url=spec)}
    raise RuntimeError(f"WSGISESSION_STORE must be 'cookie' or a redis:// URL, not {spec!r}")


def build_app(env: Mapping[str, str] = os.environ) -> WSGIApp:
    keys = _secret_keys(env)
    options = _store_options(env)
    middleware = make_demo(keys, **options)
    key_ids = TokenCodec(keys).key_ids
    mode = "cookie" if "store" not in options else "redis"
    demo = middleware.app  # the demo app inside the middleware (sees environ["session"])

    def inner(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/whoami":
            return demo(environ, start_response)
        session = environ["session"]
        body = json.dumps(
            {
                "pid": os.getpid(),
                "thread": threading.get_ident(),
                "mode": mode,
                "key_ids": key_ids,
                "is_new": session.is_new,
                "views": session.get("views"),
                "user": session.get("user"),
            }
        ).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    middleware.app = inner

    def outer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def tagged(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, ("X-Worker-Pid", str(os.getpid()))], exc_info)

        return middleware(environ, tagged)

    return outer


app = build_app()
