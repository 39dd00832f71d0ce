"""A Flask login/logout/flash demo on wsgisession sessions (with Flask-Login).

Run it with::

    pip install -e '.[flask]'          # or: pip install flask flask-login
    WSGISESSION_SECRET_KEY=... python examples/flask_app.py

then open http://127.0.0.1:5000/ and log in as ``alice`` / ``wonderland``.

The session cookie is wsgisession's encrypted cookie; Flask's ``SECRET_KEY`` is only
used by Flask-Login for its own "remember me" cookie.
"""

from __future__ import annotations

import os
import secrets
import sys

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

from wsgisession.adapters.flask import init_app

USERS = {"alice": "wonderland"}


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


PAGE = """<!doctype html><title>wsgisession Flask demo</title>
<ul>{messages}</ul>
<p>{body}</p>"""


def create_app(secret_keys: list[str] | None = None, **options: object) -> Flask:
    """Build the demo app; ``options`` go to :func:`init_app`."""
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
            who = f"Logged in as {escape(current_user.id)}. <a href='/logout'>Log out</a>"
        else:
            who = "Not logged in. <a href='/login'>Log in</a>"
        return page(f"{who} — views: {session['views']}")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> object:
        if request.method == "POST":
            name = request.form.get("username", "")
            if USERS.get(name) == request.form.get("password"):
                session.regenerate()  # type: ignore[attr-defined]  # new id at login
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

    @app.get("/logout")
    def logout() -> object:
        logout_user()
        flash("You have been logged out.", "info")
        return redirect(url_for("index"))

    return app


if __name__ == "__main__":
    create_app().run(port=int(os.environ.get("PORT", "5000")))
