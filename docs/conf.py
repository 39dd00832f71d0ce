"""Sphinx configuration of the wsgisession documentation.

Build it, warnings being errors, with::

    python -m pip install -e . -r docs/requirements.txt
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A checkout without an installed package builds too (Read the Docs installs it).
sys.path.insert(0, str(ROOT))

# The Django adapter imports Django, whose settings must be configured before its
# modules can be imported (autodoc imports wsgisession.adapters.django).
import django  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        SECRET_KEY="only-for-building-the-docs",  # noqa: S106
        INSTALLED_APPS=[],
        SESSION_ENGINE="wsgisession.adapters.django",
        WSGISESSION={"secret_keys": ["only-for-building-the-docs-0123456789"]},
    )
    django.setup()

import wsgisession  # noqa: E402

project = "wsgisession"
author = "the wsgisession authors"
copyright = "the wsgisession authors (MIT License)"
release = wsgisession.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "requirements.txt"]
# "Title <page.md#section>" links inside the Markdown pages.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"show-inheritance": False}

html_theme = "furo"
html_title = f"wsgisession {release}"
html_static_path: list[str] = []
pygments_style = "sphinx"
pygments_dark_style = "monokai"
