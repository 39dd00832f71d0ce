"""A small demo application: view counter, login/logout, flash messages.

Run it with ``python -m wsgisession demo`` (encrypted cookie sessions, no server
needed). Pages:

``/``          shows and increments a view counter
``/login``     a form; POST logs in (and regenerates the session)
``/logout``    destroys the session (``environ["session"] = None``)
``/flash``     stores a one-time message and redirects to ``/``
``/session``   shows the session's metadata and the cookie attributes in use
``/big``       stores more than a cookie can hold: in cookie mode an error page,
               never a silently dropped cookie; in store mode it just works
"""

from __future__ import annotations

import html
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from webob import Request, Response

from .errors import SessionTooLarge
from .middleware import SessionMiddleware

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["demo_app", "make_demo"]

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>wsgisession demo</title></head>
<body>
<nav><a href="/">home</a> | <a href="/login">log in</a> | <a href="/logout">log out</a>
| <a href="/flash">flash</a> | <a href="/session">session</a> | <a href="/big">too big</a></nav>
{flash}
<main>{body}</main>
</body></html>
"""


def _page(body: str, flash: list[str] | None = None, status: int = 200) -> Response:
    notes = "".join(f'<p class="flash">{html.escape(m)}</p>' for m in flash or [])
    return Response(
        _PAGE.format(body=body, flash=notes),
        status=status,
        content_type="text/html",
        charset="utf-8",
    )


def _handle(request: Request) -> Response:
    session = request.environ["session"]
    path = request.path_info
    if path == "/":
        session["views"] = session.get("views", 0) + 1
        flashes = session.pop("_flash", [])
        user = session.get("user")
        who = f"Logged in as <b id=user>{html.escape(user)}</b>." if user else "Not logged in."
        return _page(
            f"<h1>Views: <span id=views>{session['views']}</span></h1><p>{who}</p>", flashes
        )
    if path == "/login":
        if request.method == "POST":
            user = request.POST.get("user", "").strip() or "guest"
            session.regenerate()
            session["user"] = user
            session.setdefault("_flash", []).append(f"Welcome, {user}!")
            return Response(status=303, location="/")
        return _page(
            '<form method="post" action="/login"><label>User '
            '<input name="user" id="user-field"></label> <button id="login">Log in</button>'
            "</form>"
        )
    if path == "/logout":
        request.environ["session"] = None
        return _page("<p id=logged-out>Logged out; the session cookie is cleared.</p>")
    if path == "/flash":
        session.setdefault("_flash", []).append(request.GET.get("msg", "Hello from /flash"))
        return Response(status=303, location="/")
    if path == "/session":
        mw: SessionMiddleware = request.environ["wsgisession.middleware"]
        rows = {
            "is_new": session.is_new,
            "id (hash)": session.id_hash,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
            "max_age": session.max_age,
            "keys": sorted(session),
            "mode": "cookie" if mw.store is None else f"store ({type(mw.store).__name__})",
            "cookie name": mw.cookie_name,
            "HttpOnly": mw.httponly,
            "SameSite": mw.samesite,
            "Secure": "always" if mw._always_secure else "on https",
            "Path": mw.path,
        }
        body = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in rows.items()
        )
        return _page(f"<h1>Session</h1><table>{body}</table>")
    if path == "/big":
        session["big"] = "x" * 6000
        # Reached only in store mode: a cookie session raises SessionTooLarge instead.
        return _page("<p id=big-stored>Stored 6000 characters on the server.</p>")
    return _page("<p>Not found</p>", status=404)


def demo_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The demo WSGI application (expects ``SessionMiddleware`` around it)."""
    request = Request(environ)
    response = _handle(request)
    try:
        body: Iterable[bytes] = response(environ, start_response)
        return body
    except SessionTooLarge as exc:
        page = _page(
            "<h1 id=too-large>Session too large</h1><p>The session no longer fits in a "
            f"cookie ({exc.size} bytes, limit {exc.limit}). Nothing was saved.</p>",
            status=500,
        )
        error_body: Iterable[bytes] = page(
            environ, lambda s, h, e=None: start_response(s, h, sys.exc_info())
        )
        return error_body


def make_demo(secret_keys: list[str], **options: Any) -> SessionMiddleware:
    """Wrap :func:`demo_app` in a :class:`SessionMiddleware`."""
    middleware: SessionMiddleware

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgisession.middleware"] = middleware
        return demo_app(environ, start_response)

    middleware = SessionMiddleware(app, secret_keys=secret_keys, **options)
    return middleware
