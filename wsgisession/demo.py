"""A small demo application: view counter, login/logout, flash messages.

Run it with ``python -m wsgisession demo`` (encrypted cookie sessions, no server
needed). Pages:

``/``          shows and increments a view counter
``/login``     a form; POST logs in (and regenerates the session)
``/logout``    a form with a "Log out" button; POST destroys the session
               (``environ["session"] = None``)
``/flash``     a form; POST stores a one-time message and redirects to ``/``
``/session``   shows the session's metadata and the cookie attributes in use
``/big``       stores more than a cookie can hold: in cookie mode an error page,
               never a silently dropped cookie; in store mode it just works

Every request that changes the session from user input is a POST carrying a CSRF
token bound to the session (``session["_csrf"]``, a hidden field of every form,
compared in constant time and replaced at login); a missing or wrong token is a
403 that changes nothing. Input is read strictly: only an
``application/x-www-form-urlencoded`` body of at most :data:`MAX_BODY` bytes (its
``Content-Length`` is checked before anything is read) and a query string of at
most :data:`MAX_QUERY` bytes, both valid UTF-8, with at most :data:`MAX_FIELDS`
fields; anything else is a 400. Redirects are relative (``Location: /``), never
built from the ``Host`` header.
"""

from __future__ import annotations

import hmac
import html
import secrets
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from .errors import SessionTooLarge
from .middleware import SessionMiddleware

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["demo_app", "make_demo", "MAX_BODY", "MAX_QUERY", "MAX_FIELDS"]

#: The largest form body read, in bytes; a larger ``Content-Length`` is a 400.
MAX_BODY = 8 * 1024
#: The longest query string accepted, in bytes.
MAX_QUERY = 2 * 1024
#: The most ``name=value`` pairs parsed from a body or a query string.
MAX_FIELDS = 16
#: The longest user name and flash message, in characters.
MAX_TEXT = 100
#: Flash messages kept until the next page view (older ones are dropped).
MAX_FLASHES = 5
CSRF_KEY = "_csrf"
CSRF_FIELD = "csrf_token"
FORM_TYPE = "application/x-www-form-urlencoded"

# One page layout, styled inline: no external assets (the demo runs offline).
_STYLE = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;
background:#f4f6fa}
header{background:#1d2a4d;color:#fff;padding:.8rem 1.5rem;display:flex;gap:1.5rem;
align-items:center;flex-wrap:wrap}
header b{font-size:1.1rem;letter-spacing:.02em}
nav a{color:#cfe0ff;text-decoration:none;margin-right:1rem}
nav a:hover{color:#fff;text-decoration:underline}
main{max-width:46rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;
border-radius:10px;box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{margin-top:0;font-size:1.6rem}
.flash{max-width:46rem;margin:1rem auto 0;padding:.7rem 1rem;border-radius:8px;
background:#e6f4ea;border:1px solid #b7dfc3;color:#1e5631}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e4e8f0;vertical-align:top}
th{width:34%;font-weight:600;color:#46506a}
caption{text-align:left;font-weight:700;padding:.4rem 0;color:#1d2a4d}
code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f0f2f7;padding:.1rem .3rem;
border-radius:4px}
form{display:flex;gap:.6rem;align-items:center;flex-wrap:wrap}
input[type=text],input:not([type]){padding:.45rem .6rem;border:1px solid #c6cddd;
border-radius:6px;font:inherit}
button{padding:.5rem 1.1rem;border:0;border-radius:6px;background:#2f5bd3;color:#fff;
font:inherit;cursor:pointer}
button:hover{background:#2549ad}
.muted{color:#6b7385;font-size:.9rem}
"""

_PAGE = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsgisession demo</title><style>"""
    + _STYLE.replace("{", "{{").replace("}", "}}")
    + """</style>
</head>
<body>
<header><b>wsgisession demo</b>
<nav><a href="/">home</a> <a href="/login">log in</a> <a href="/logout">log out</a>
<a href="/flash">flash</a> <a href="/session">session</a> <a href="/big">too big</a></nav>
</header>
{flash}
<main>{body}</main>
</body></html>
"""
)

_STATUS = {
    200: "200 OK",
    303: "303 See Other",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    500: "500 Internal Server Error",
}


class BadRequest(Exception):
    """Input the demo refuses to read: answered with a 400 and the message."""


class Reply:
    """A response: status code, extra headers and an HTML body (or none)."""

    def __init__(
        self, status: int, body: str = "", headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.status = status
        self.body = body.encode("utf-8")
        self.headers = list(headers or [])
        if body:
            self.headers.append(("Content-Type", "text/html; charset=utf-8"))
        self.headers.append(("Content-Length", str(len(self.body))))


def _page(body: str, flash: list[str] | None = None, status: int = 200) -> Reply:
    notes = "".join(f'<p class="flash">{html.escape(m)}</p>' for m in flash or [])
    return Reply(status, _PAGE.format(body=body, flash=notes))


def _redirect_home() -> Reply:
    # Relative on purpose: an absolute URL would have to trust the Host header.
    return Reply(303, headers=[("Location", "/")])


def _parse(raw: bytes, what: str) -> dict[str, str]:
    """``name=value&...`` as UTF-8 (strict, percent-escapes too); first value wins."""
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise BadRequest(f"the {what} is not valid UTF-8") from None
    except ValueError:  # more than MAX_FIELDS fields
        raise BadRequest(f"the {what} has more than {MAX_FIELDS} fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def _query(environ: WSGIEnvironment) -> dict[str, str]:
    # PEP 3333: the server hands over the raw bytes decoded as latin-1.
    try:
        raw = str(environ.get("QUERY_STRING", "")).encode("latin-1")
    except UnicodeEncodeError:
        raise BadRequest("the query string is not valid UTF-8") from None
    if len(raw) > MAX_QUERY:
        raise BadRequest(f"the query string is longer than {MAX_QUERY} bytes")
    return _parse(raw, "query string")


def _form(environ: WSGIEnvironment) -> dict[str, str]:
    """A small urlencoded body, read in full but never past ``MAX_BODY`` bytes."""
    length = str(environ.get("CONTENT_LENGTH", "")).strip()
    if not (length.isascii() and length.isdigit()):
        raise BadRequest("the request has no Content-Length")
    size = int(length)
    if size > MAX_BODY:
        raise BadRequest(f"the body is larger than {MAX_BODY} bytes")
    # Read even a body that is refused below, so the connection closes cleanly.
    raw = environ["wsgi.input"].read(size) if size else b""
    if not isinstance(raw, bytes) or len(raw) != size:
        raise BadRequest("the body is shorter than its Content-Length")
    mime = str(environ.get("CONTENT_TYPE", "")).partition(";")[0].strip().lower()
    if mime != FORM_TYPE:
        raise BadRequest(f"the body must be {FORM_TYPE}")
    return _parse(raw, "form")


def _text(fields: dict[str, str], name: str, default: str) -> str:
    value = fields.get(name, "").strip() or default
    if len(value) > MAX_TEXT or not value.isprintable():
        raise BadRequest(f"{name} must be at most {MAX_TEXT} printable characters")
    return value


def _csrf_token(session: Any) -> str:
    """The session's CSRF token, made (and stored in the session) on first use."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def _csrf_valid(session: Any, fields: dict[str, str]) -> bool:
    expected = session.get(CSRF_KEY)
    sent = fields.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not expected:
        return False  # no token was ever handed out for this session
    return hmac.compare_digest(expected.encode("utf-8"), sent.encode("utf-8"))


def _form_html(session: Any, action: str, fields: str, button: str, button_id: str) -> str:
    token = html.escape(_csrf_token(session), quote=True)
    return (
        f'<form method="post" action="{action}">'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{token}">{fields} '
        f'<button id="{button_id}">{button}</button></form>'
    )


def _add_flash(session: Any, message: str) -> None:
    session["_flash"] = [*session.get("_flash", []), message][-MAX_FLASHES:]


def _forbidden() -> Reply:
    return _page(
        "<h1 id=forbidden>Forbidden</h1><p>The form's CSRF token is missing or does not "
        "belong to this session (a stale page, or a form on another site). Nothing "
        'changed; <a href="/">go home</a> and try again.</p>',
        status=403,
    )


def _post(environ: WSGIEnvironment, path: str) -> Reply:
    session = environ["session"]
    fields = _form(environ)
    if not _csrf_valid(session, fields):
        return _forbidden()
    if path == "/login":
        user = _text(fields, "user", "guest")
        session.regenerate()
        session[CSRF_KEY] = secrets.token_urlsafe(32)  # a new session, a new token
        session["user"] = user
        _add_flash(session, f"Welcome, {user}!")
        return _redirect_home()
    if path == "/logout":
        environ["session"] = None
        return _page("<p id=logged-out>Logged out; the session cookie is cleared.</p>")
    _add_flash(session, _text(fields, "msg", "Hello from /flash"))
    return _redirect_home()


def _form_page(environ: WSGIEnvironment, path: str, query: dict[str, str]) -> Reply:
    session = environ["session"]
    if path == "/login":
        form = _form_html(
            session,
            "/login",
            '<label>User <input name="user" id="user-field"></label>',
            "Log in",
            "login",
        )
    elif path == "/logout":
        form = _form_html(session, "/logout", "", "Log out", "logout")
    else:
        default = html.escape(query.get("msg", "Hello from /flash"), quote=True)
        form = _form_html(
            session,
            "/flash",
            f'<label>Message <input name="msg" id="msg-field" value="{default}"></label>',
            "Flash it",
            "flash",
        )
    return _page(form)


def _when(unix: int | None, now: float) -> str:
    """``2026-12-03 14:05:09 UTC (in 23 h 59 min)``; ``never`` for None."""
    if unix is None:
        return "when the browser closes (no absolute lifetime)"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))
    return f"{stamp} ({_span(unix - now)})"


def _span(seconds: float) -> str:
    ahead, left = seconds >= 0, int(abs(seconds))
    days, left = divmod(left, 86400)
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    text = " ".join(parts[:2]) or f"{secs} s"
    return f"in {text}" if ahead else f"{text} ago"


def _table(caption: str, rows: dict[str, Any]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items()
    )
    return f"<table><caption>{html.escape(caption)}</caption>{cells}</table>"


def _session_page(environ: WSGIEnvironment) -> Reply:
    session = environ["session"]
    mw: SessionMiddleware = environ["wsgisession.middleware"]
    now = time.time()
    lifetime = session.max_age
    about = {
        "is_new": "yes: no valid session came in" if session.is_new else "no",
        "id (hash)": session.id_hash,
        "created_at": _when(session.created_at, now),
        "expires_at": _when(session.expires_at, now),
        "max_age": "browser session"
        if lifetime is None
        else f"{lifetime} s ({_span(lifetime)[3:]})",
        "keys": ", ".join(sorted(session)) or "(none)",
        "mode": "cookie" if mw.store is None else f"store ({type(mw.store).__name__})",
    }
    cookie = {
        "cookie name": mw.cookie_name,
        "HttpOnly": "yes" if mw.httponly else "no",
        "SameSite": mw.samesite or "(not set)",
        "Secure": "always" if mw.always_secure else "on https",
        "Path": mw.path,
    }
    return _page(
        "<h1>Session</h1>"
        + _table("This session", about)
        + _table("The cookie", cookie)
        + '<p class="muted">Times are UTC. The id is never shown, only a hash of it.</p>'
    )


def _handle(environ: WSGIEnvironment) -> Reply:
    session = environ["session"]
    path = environ.get("PATH_INFO", "") or "/"
    method = environ.get("REQUEST_METHOD", "GET")
    query = _query(environ)
    if path in ("/login", "/logout", "/flash"):
        if method == "POST":
            return _post(environ, path)
        if method in ("GET", "HEAD"):
            return _form_page(environ, path, query)
        reply = _page("<p>Method not allowed</p>", status=405)
        reply.headers.append(("Allow", "GET, HEAD, POST"))
        return reply
    if path == "/":
        session["views"] = session.get("views", 0) + 1
        flashes = session.pop("_flash", [])
        user = session.get("user")
        who = f"Logged in as <b id=user>{html.escape(user)}</b>." if user else "Not logged in."
        return _page(
            f"<h1>Views: <span id=views>{session['views']}</span></h1><p>{who}</p>", flashes
        )
    if path == "/session":
        return _session_page(environ)
    if path == "/big":
        session["big"] = "x" * 6000
        # Reached only in store mode: a cookie session raises SessionTooLarge instead.
        return _page("<p id=big-stored>Stored 6000 characters on the server.</p>")
    return _page("<p>Not found</p>", status=404)


def demo_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The demo WSGI application (expects ``SessionMiddleware`` around it)."""
    try:
        reply = _handle(environ)
    except BadRequest as exc:
        reply = _page(
            f"<h1 id=bad-request>Bad request</h1><p>{html.escape(str(exc))}.</p>", status=400
        )
    head = environ.get("REQUEST_METHOD") == "HEAD"
    try:
        start_response(_STATUS[reply.status], reply.headers)
    except SessionTooLarge as exc:
        page = _page(
            "<h1 id=too-large>Session too large</h1><p>The session no longer fits in a "
            f"cookie ({exc.size} bytes, limit {exc.limit}). Nothing was saved.</p>",
            status=500,
        )
        start_response(_STATUS[page.status], page.headers, sys.exc_info())
        return [] if head else [page.body]
    return [] if head else [reply.body]


def make_demo(secret_keys: list[str | bytes], **options: Any) -> SessionMiddleware:
    """Wrap :func:`demo_app` in a :class:`SessionMiddleware`."""
    middleware: SessionMiddleware

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgisession.middleware"] = middleware
        return demo_app(environ, start_response)

    middleware = SessionMiddleware(app, secret_keys=secret_keys, **options)
    return middleware
