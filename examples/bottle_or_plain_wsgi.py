"""Sessions for a plain WSGI application (Bottle, Falcon and friends work the same way:
wrap the WSGI callable they give you).

Run it with ``python examples/bottle_or_plain_wsgi.py`` and open http://127.0.0.1:8001/.
"""

from __future__ import annotations

import html
import os
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server

from wsgisession import SessionMiddleware


def _page(start_response: Any, body: str, status: str = "200 OK") -> Iterable[bytes]:
    data = f"<!doctype html><title>plain WSGI</title>{body}".encode()
    start_response(status, [("Content-Type", "text/html; charset=utf-8")])
    return [data]


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Log in with ?user=NAME at /login, log out at /logout; / greets and counts."""
    session = environ["session"]
    path = environ.get("PATH_INFO", "/")
    if path == "/login":
        user = parse_qs(environ.get("QUERY_STRING", "")).get("user", ["guest"])[0]
        session.regenerate()  # a new id at every login (session fixation)
        session["user"] = user
        session.setdefault("flash", []).append(f"Welcome, {user}!")
        start_response("303 See Other", [("Location", "/")])
        return [b""]
    if path == "/logout":
        environ["session"] = None  # destroys the session and clears the cookie
        start_response("303 See Other", [("Location", "/")])
        return [b""]
    session["visits"] = session.get("visits", 0) + 1
    flashes = "".join(f"<p class=flash>{html.escape(m)}</p>" for m in session.pop("flash", []))
    user = session.get("user")
    who = f"Hello, <b>{html.escape(user)}</b>." if user else "Not logged in."
    return _page(start_response, f"{flashes}<p>{who}</p><p>Visits: {session['visits']}</p>")


def make_app(secret_keys: list[str] | None = None, **options: Any) -> SessionMiddleware:
    keys = secret_keys or [os.environ.get("WSGISESSION_SECRET_KEY") or secrets.token_urlsafe(32)]
    return SessionMiddleware(app, secret_keys=keys, **options)


if __name__ == "__main__":  # pragma: no cover - manual demo
    with make_server("127.0.0.1", 8001, make_app()) as server:
        print("plain WSGI demo on http://127.0.0.1:8001/")
        server.serve_forever()
