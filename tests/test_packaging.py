"""A release people can install (issue 14): the import is clean under ``-W error``
without hiding the application's own warnings, and the package says its version."""

from __future__ import annotations

import subprocess
import sys
import warnings

import wsgisession


def _python(*code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", "\n".join(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_import_is_clean_under_warnings_as_errors():
    done = _python("import wsgisession, wsgisession.adapters.flask, wsgisession.adapters.pyramid")
    assert done.returncode == 0, done.stderr


def test_the_applications_own_warnings_are_not_hidden():
    """Only WebOb's cgi warning is hidden, and only while wsgisession imports WebOb:
    the application's deprecation warnings still fail under -W error afterwards."""
    done = _python(
        "import wsgisession, warnings",
        "warnings.warn('mine', DeprecationWarning)",
    )
    assert done.returncode != 0 and "DeprecationWarning: mine" in done.stderr
    before = list(warnings.filters)
    import importlib

    importlib.reload(wsgisession.cookies)
    assert warnings.filters == before
