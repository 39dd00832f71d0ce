"""Django's own tests, run against the session engine by
``tests/yardsticks/django_suite.py`` (in a subprocess: it downloads the installed
Django's source distribution, runs ``runtests.py`` in cookie and in store mode and
compares the failures with ``django_expected_failures.txt``). About a minute.

When the source cannot be had (no network), the test is skipped with the reason,
unless ``WSGISESSION_REQUIRE_YARDSTICKS=1`` (then it fails, as CI wants).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("django")

SCRIPT = Path(__file__).resolve().parents[1] / "yardsticks" / "django_suite.py"
EXIT_NO_SOURCE = 3


def test_djangos_own_session_auth_client_and_messages_tests():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode == EXIT_NO_SOURCE and not os.environ.get("WSGISESSION_REQUIRE_YARDSTICKS"):
        pytest.skip(f"Django's sources could not be had: {output.strip()[-300:]}")
    assert proc.returncode == 0, output[-20000:]
    assert "cookie mode:" in output and "store mode:" in output
