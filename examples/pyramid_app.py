"""Pyramid login/logout/flash demo on wsgisession.

Run it (from the repository root, with ``pip install -e . pyramid``)::

    python examples/pyramid_app.py            # http://127.0.0.1:6543/
    pserve examples/pyramid_app.ini           # the same, with examples/ on PYTHONPATH

``main`` builds the Pyramid application only; the ``.ini`` pipeline wraps it with the
PasteDeploy filter ``egg:wsgisession#session``. Without an ``.ini``, wrap it in code::

    app = SessionMiddleware(main({}), secret_keys=[...])

Logging in calls ``request.session.invalidate()`` and then writes, which starts a new
session (new id): the defence against session fixation.
"""

from __future__ import annotations

import hmac
import html
from typing import Any

from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy, get_csrf_token
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.response import Response

#: The demo's only account. A real application checks a password hash.
USERS = {"alice": "wonderland"}


def _page(request: Any, body: str) -> Response:
    session = request.session
    notices = "".join(f"<p class='flash'>{html.escape(m)}</p>" for m in session.pop_flash())
    errors = "".join(f"<p class='error'>{html.escape(m)}</p>" for m in session.pop_flash("error"))
    return Response(
        f"<!doctype html><title>wsgisession + Pyramid</title>{notices}{errors}{body}",
        content_type="text/html",
        charset="utf-8",
    )


def home(request: Any) -> Response:
    session = request.session
    token = html.escape(get_csrf_token(request))
    user = session.get("user")
    if user is None:
        body = (
            "<h1>Not logged in</h1>"
            "<form method='post' action='/login'>"
            f"<input type='hidden' name='csrf_token' value='{token}'>"
            "<input name='username' placeholder='alice'> "
            "<input name='password' type='password' placeholder='wonderland'> "
            "<button>Log in</button></form>"
        )
    else:
        session["visits"] = session.get("visits", 0) + 1
        body = (
            f"<h1>Hello, {html.escape(user)}</h1><p>visits: {session['visits']}</p>"
            "<form method='post' action='/logout'>"
            f"<input type='hidden' name='csrf_token' value='{token}'>"
            "<button>Log out</button></form>"
        )
    return _page(request, body + "<p><a href='/flash'>flash a message</a></p>")


def login(request: Any) -> HTTPSeeOther:
    username = request.POST.get("username", "")
    password = request.POST.get("password", "")
    expected = USERS.get(username)
    session = request.session
    if expected is None or not hmac.compare_digest(expected, password):
        session.flash("Wrong username or password.", "error")
        return HTTPSeeOther(location=request.route_url("home"))
    session.invalidate()  # a new session, and a new id, for the logged-in user
    session["user"] = username
    session.flash(f"Welcome, {username}!")
    return HTTPSeeOther(location=request.route_url("home"))


def logout(request: Any) -> HTTPSeeOther:
    session = request.session
    session.invalidate()
    session.flash("You are logged out.")  # written to a fresh, anonymous session
    return HTTPSeeOther(location=request.route_url("home"))


def flash(request: Any) -> HTTPSeeOther:
    request.session.flash("This message is shown once.", allow_duplicate=False)
    return HTTPSeeOther(location=request.route_url("home"))


def main(global_config: Any = None, **settings: Any) -> Any:
    """PasteDeploy app factory: the Pyramid application, not yet wrapped."""
    with Configurator(settings=settings) as config:
        config.include("wsgisession.adapters.pyramid")
        config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
        config.add_route("home", "/")
        config.add_view(home, route_name="home", request_method="GET")
        config.add_route("login", "/login")
        config.add_view(login, route_name="login", request_method="POST", require_csrf=True)
        config.add_route("logout", "/logout")
        config.add_view(logout, route_name="logout", request_method="POST", require_csrf=True)
        config.add_route("flash", "/flash")
        config.add_view(flash, route_name="flash", request_method="GET")
        return config.make_wsgi_app()


if __name__ == "__main__":  # pragma: no cover
    import os
    import sys
    from wsgiref.simple_server import make_server

    from paste.deploy import loadapp

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    application = loadapp("config:" + os.path.join(here, "pyramid_app.ini"))
    with make_server("127.0.0.1", 6543, application) as server:
        print("serving on http://127.0.0.1:6543/")
        server.serve_forever()
