"""The documentation builds with warnings as errors and covers what it must (issue 14).

The Sphinx build runs once per session in a subprocess (``python -m sphinx -W
--keep-going -E -b html docs <tmp>``, as ``tox -e docs`` and Read the Docs do); the
checks read its ``objects.inv``: the configuration reference documents every option of
:data:`wsgisession.options.OPTION_NAMES` (a ``confval`` each) and the API reference
every name of ``wsgisession.__all__``. The event table of the API page is checked
against :data:`wsgisession.events.LEVELS` from the source.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import wsgisession
from wsgisession.events import EVENT_NAMES, LEVELS
from wsgisession.options import OPTION_NAMES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None
    or importlib.util.find_spec("furo") is None
    or importlib.util.find_spec("myst_parser") is None,
    reason="the docs build needs docs/requirements.txt (pip install -r docs/requirements.txt)",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html"]
    done = subprocess.run(
        [*command, str(DOCS), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"the docs build failed:\n{done.stdout}\n{done.stderr}"
    assert not done.stderr.strip(), f"the docs build warned:\n{done.stderr}"
    return out


def inventory(out: Path) -> dict[tuple[str, str], str]:
    """``(domain:role, name) -> page`` from Sphinx's ``objects.inv``."""
    raw = (out / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four header lines, then the zlib-compressed entries
        header_end = raw.index(b"\n", header_end) + 1
    entries: dict[tuple[str, str], str] = {}
    line = re.compile(r"^(?P<name>.+?)\s+(?P<type>\S+:\S+)\s+-?\d+\s+(?P<uri>\S+)\s+.*$")
    for text in zlib.decompress(raw[header_end:]).decode("utf-8").splitlines():
        match = line.match(text)
        if match:
            entries[match["type"], match["name"]] = match["uri"].partition("#")[0]
    return entries


def test_the_docs_build_with_warnings_as_errors(built: Path) -> None:
    for page in ("index", "quickstart", "configuration", "api", "flask", "django", "pyramid"):
        assert (built / f"{page}.html").is_file(), page
    assert (built / "_images" / "performance.png").is_file()  # the plot of performance.md


def test_the_configuration_reference_lists_every_option(built: Path) -> None:
    entries = inventory(built)
    documented = {name for (kind, name), page in entries.items() if kind == "std:confval"}
    assert set(OPTION_NAMES) <= documented, sorted(set(OPTION_NAMES) - documented)
    pages = {entries["std:confval", name] for name in OPTION_NAMES}
    assert pages == {"configuration.html"}


def test_the_api_reference_documents_every_public_name(built: Path) -> None:
    entries = inventory(built)
    documented = {
        name.removeprefix("wsgisession.")
        for (kind, name), page in entries.items()
        if kind.startswith("py:") and page == "api.html" and name.count(".") == 1
    }
    missing = sorted(set(wsgisession.__all__) - documented)
    assert not missing, f"not in docs/api.rst: {missing}"


def test_the_event_table_matches_the_log_levels() -> None:
    """docs/api.rst's table: one row per event, with the level events.LEVELS gives it."""
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    table = text[text.index(".. _event-table:") :]
    rows = re.findall(r"^   \* - ``(\w+)``\n     - (\w+)$", table, re.MULTILINE)
    assert {name for name, _ in rows} == set(EVENT_NAMES)
    assert len(rows) == len(EVENT_NAMES)
    for name, level in rows:
        assert level == logging.getLevelName(LEVELS[name]), name
