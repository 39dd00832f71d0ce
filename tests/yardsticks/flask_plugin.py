"""pytest plugin for ``flask_suite.py`` (``-p flask_plugin``): every Flask app of Flask's
own test suite gets wsgisession's session interface, and only the selected tests run.

* ``Flask.session_interface`` becomes one :class:`WSGISessionInterface` with a secret
  key of ours (Flask's ``SECRET_KEY`` is not used by it), so every app the tests create
  — unless it brings its own interface — has wsgisession sessions.
* ``WSGISESSION_YARDSTICK_SELECTION`` names the selection file: lines
  ``<test file>: word word -word``; a test of that file runs when its name (class and
  parameters included) contains one of the words and none of the ``-`` words.
* Flask's ``conftest.py`` still works under pytest 9 (a renamed sentinel, restored).
* ``WSGISESSION_YARDSTICK_RESULTS`` names the JSON file the outcomes go to
  (``{node id: "passed" | "failed" | "skipped"}``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import flask
import pytest

from wsgisession.adapters.flask import WSGISessionInterface

SECRET = "flask-yardstick-secret-0123456789abcdefghijklmnop"
_outcomes: dict[str, str] = {}


def read_selection(path: str) -> dict[str, tuple[list[str], list[str]]]:
    """``{test file: (words, excluded words)}`` from a selection file."""
    selection: dict[str, tuple[list[str], list[str]]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        file, sep, words = line.partition(":")
        if not sep or not words.split():
            raise ValueError(f"bad selection line: {line!r}")
        include = [w.lower() for w in words.split() if not w.startswith("-")]
        exclude = [w[1:].lower() for w in words.split() if w.startswith("-")]
        selection[file.strip()] = (include, exclude)
    return selection


def pytest_configure(config: pytest.Config) -> None:
    flask.Flask.session_interface = WSGISessionInterface(secret_keys=[SECRET])
    # Flask's conftest.py uses ``_pytest.monkeypatch.notset``, which pytest 9 renamed.
    import _pytest.monkeypatch

    if not hasattr(_pytest.monkeypatch, "notset"):
        from _pytest.compat import NOTSET

        _pytest.monkeypatch.notset = NOTSET  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selection = read_selection(os.environ["WSGISESSION_YARDSTICK_SELECTION"])
    selected, deselected = [], []
    for item in items:
        file, _, name = item.nodeid.partition("::")
        include, exclude = selection.get(file, ([], []))
        name = name.lower()
        if any(w in name for w in include) and not any(w in name for w in exclude):
            selected.append(item)
        else:
            deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = selected


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    previous = _outcomes.get(report.nodeid)
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and previous != "failed":
        _outcomes[report.nodeid] = "skipped"
    elif report.when == "call" and previous is None:
        _outcomes[report.nodeid] = "passed"


def pytest_sessionfinish(session: pytest.Session, exitstatus: Any) -> None:
    path = os.environ.get("WSGISESSION_YARDSTICK_RESULTS")
    interface = flask.Flask.session_interface
    if not isinstance(interface, WSGISessionInterface) or not interface._managers:
        # Nothing went through our interface: the run measured Flask's own session.
        _outcomes["<the session interface>"] = "failed"
    if path:
        Path(path).write_text(json.dumps(_outcomes, indent=1, sort_keys=True), encoding="utf-8")
