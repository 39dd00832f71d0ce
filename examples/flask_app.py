"""A minimal Flask app with a login (Flask-Login), flash messages and server-side
sessions: wsgisession's encrypted cookie holds only the session id, the data lives in
a store (``docs/flask.md`` walks through it).

Run it with Flask's own command::

    pip install -e '.[flask]' flask-login   # or: pip install wsgisession-aead flask flask-login
    export WSGISESSION_SECRET_KEY="$(python -m wsgisession genkey)"
    flask --app examples/flask_app.py run        # http://127.0.0.1:5000/

and log in as ``alice`` / ``wonderland``. The store is in memory (one process, as
``flask run`` is); set ``WSGISESSION_REDIS_URL=redis://localhost:6379/0`` for Redis
(``pip install 'wsgisession[redis]'``), which several workers or servers can share.

Flask's ``SECRET_KEY`` is used only by Flask-Login for its "remember me" cookie; the
session needs none. Logging in gives the session a new id (the adapter does it on
Flask-Login's login signal), so an id planted before login is never a logged-in one.
"""

from __future__ import annotations

import os
import secrets
import sys
from typing import Any

from flask import Flask, flash, get_flashed_messages, redirect, request, session, url_for
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from markupsafe import Markup, escape

from wsgisession import MemoryStore
from wsgisession.adapters.flask import init_app

USERS = {"alice": "wonderland"}
PAGE = """<!doctype html><title>wsgisession Flask demo</title>
<ul>{messages}</ul>
<p>{body}</p>"""


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


def make_store() -> Any:
    """A Redis store when ``WSGISESSION_REDIS_URL`` is set, else one in memory."""
    url = os.environ.get("WSGISESSION_REDIS_URL")
    if url:
        from wsgisession import RedisStore

        return RedisStore(url=url)
    return MemoryStore()


def create_app(secret_keys: list[str] | None = None, **options: Any) -> Flask:
    """The app (``flask --app`` calls it with no arguments); ``options`` go to
    :func:`~wsgisession.adapters.flask.init_app` (``store=`` replaces the default)."""
    app = Flask(__name__)
    if secret_keys is None:
        key = os.environ.get("WSGISESSION_SECRET_KEY")
        if key is None:
            key = secrets.token_urlsafe(32)
            print("no WSGISESSION_SECRET_KEY: using a random key for this run", file=sys.stderr)
        secret_keys = [key]
    app.config["WSGISESSION_SECRET_KEYS"] = secret_keys
    # Flask-Login signs its "remember me" cookie with SECRET_KEY (sessions don't need it).
    app.config["SECRET_KEY"] = os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)
    options.setdefault("store", make_store())
    init_app(app, **options)

    login_manager = LoginManager(app)
    login_manager.login_view = "login"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id in USERS else None

    def page(body: str) -> str:
        messages = "".join(
            f"<li>{escape(category)}: {escape(message)}</li>"
            for category, message in get_flashed_messages(with_categories=True)
        )
        return PAGE.format(messages=messages, body=body)

    @app.get("/")
    def index() -> str:
        session["views"] = session.get("views", 0) + 1
        if current_user.is_authenticated:
            who = (
                f"Logged in as {escape(current_user.id)}. "
                "<form method=post action=/logout><button>Log out</button></form>"
            )
        else:
            who = "Not logged in. <a href='/login'>Log in</a>"
        return page(f"{who} — views: {session['views']}")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            name = request.form.get("username", "")
            if USERS.get(name) == request.form.get("password"):
                # Flask-Login's login signal makes the adapter regenerate the session id.
                login_user(User(name), remember=request.form.get("remember") == "on")
                flash(Markup("Welcome, <b>{}</b>!").format(name), "success")
                return redirect(url_for("index"))
            flash("Wrong user name or password.", "error")
        return page(
            "<form method=post>user <input name=username> password "
            "<input name=password type=password> <label><input type=checkbox "
            "name=remember> remember me</label> <button>Log in</button></form>"
        )

    @app.get("/private")
    @login_required
    def private() -> str:
        return page(f"Secret page for {escape(current_user.id)}.")

    @app.post("/logout")
    def logout() -> Any:
        # The whole session goes (its record is deleted, its id never works again);
        # what follows is written to a new, anonymous session. Invalidate first:
        # logout_user() then marks Flask-Login's remember cookie for deletion in it.
        session.invalidate()  # type: ignore[attr-defined]
        logout_user()
        flash("You have been logged out.", "info")
        return redirect(url_for("index"))

    return app
