"""A Pyramid starter (the shape of ``pyramid-cookiecutter-starter``) with a login on
wsgisession's session factory, in store mode.

Run it (from the repository root, with ``pip install -e . pyramid``)::

    PYTHONPATH=examples pserve examples/pyramid_app.ini     # http://127.0.0.1:6543/
    python examples/pyramid_app.py                          # the same, without pserve

``main`` is the starter's: a ``Configurator`` over the ``.ini``'s settings. The one
line that brings sessions is ``config.include("wsgisession.adapters.pyramid")``: it
builds a ``PyramidSessionFactory`` from the ``session.*`` settings (secret keys, the
store, Pyramid's ``timeout`` and ``reissue_time``) and registers it, so no WSGI
middleware is needed. ``SessionCSRFStoragePolicy`` keeps the CSRF token in the session.

Logging in calls ``request.session.invalidate()`` and then writes the user: a new
session with a new id (the old record is deleted), the defence against session
fixation. Logging out invalidates and flashes into a fresh, anonymous session.
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


def _form(action: str, token: str, fields: str, button: str) -> str:
    return (
        f"<form method='post' action='{action}'>"
        f"<input type='hidden' name='csrf_token' value='{html.escape(token)}'>"
        f"{fields}<button>{button}</button></form>"
    )


# -- views (the starter's views/default.py) -------------------------------------------


def home(request: Any) -> Response:
    session = request.session
    token = get_csrf_token(request)
    user = session.get("user")
    if user is None:
        fields = (
            "<input name='username' placeholder='alice'> "
            "<input name='password' type='password' placeholder='wonderland'> "
        )
        body = "<h1>Not logged in</h1>" + _form("/login", token, fields, "Log in")
    else:
        session["visits"] = session.get("visits", 0) + 1
        greeting = f"<h1>Hello, {html.escape(user)}</h1><p>visits: {session['visits']}</p>"
        body = greeting + _form("/logout", token, "", "Log out")
    return _page(request, body + "<p><a href='/flash'>flash a message</a></p>")


def login(request: Any) -> HTTPSeeOther:
    username = request.POST.get("username", "")
    password = request.POST.get("password", "")
    expected = USERS.get(username)
    session = request.session
    if expected is None or not hmac.compare_digest(expected, password):
        session.flash("Wrong username or password.", "error")
        return HTTPSeeOther(location=request.route_url("home"))
    session.invalidate()  # a new session, with a new id, for the logged-in user
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


# -- the application (the starter's __init__.py and routes.py) ------------------------


def includeme(config: Any) -> None:
    """The routes and views."""
    config.add_route("home", "/")
    config.add_view(home, route_name="home", request_method="GET")
    config.add_route("login", "/login")
    config.add_view(login, route_name="login", request_method="POST")
    config.add_route("logout", "/logout")
    config.add_view(logout, route_name="logout", request_method="POST")
    config.add_route("flash", "/flash")
    config.add_view(flash, route_name="flash", request_method="GET")


def main(global_config: Any = None, **settings: Any) -> Any:
    """This function returns a Pyramid WSGI application."""
    with Configurator(settings=settings) as config:
        config.include("wsgisession.adapters.pyramid")  # request.session, from session.*
        config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
        config.set_default_csrf_options(require_csrf=True)  # every POST checks the token
        config.include(includeme)
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
