"""The plain WSGI example runs: visits, login with regeneration and a flash, logout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import webtest

from tests.conftest import SECRET

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "bottle_or_plain_wsgi.py"


def load_example():
    spec = importlib.util.spec_from_file_location("plain_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_wsgi_example_flow():
    client = webtest.TestApp(load_example().make_app([SECRET]))
    assert "Visits: 1" in client.get("/").text
    before = client.cookies["session"]
    assert client.get("/login", {"user": "ann"}).status_int == 303
    assert client.cookies["session"] != before
    page = client.get("/").text
    assert "Hello, <b>ann</b>." in page and "Welcome, ann!" in page and "Visits: 2" in page
    assert "Welcome, ann!" not in client.get("/").text
    response = client.get("/logout")
    assert response.headers["Set-Cookie"].startswith("session=; Max-Age=0;")
    assert "Not logged in." in client.get("/").text
