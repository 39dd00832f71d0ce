"""Django's own tests as the yardstick of wsgisession's Django session engine.

Downloads the source distribution of the *installed* Django from the package index
(``pip download --no-binary :all: --no-deps django==<version>``; Django's code is
never committed here), unpacks it in a temporary directory, copies three modules of
ours into its ``tests/`` directory (``django_settings.py`` as the settings, which set
``SESSION_ENGINE = "wsgisession.adapters.django"``; ``django_runner.py``, a runner
that records every outcome; ``django_engine_tests.py``, Django's
``SessionTestsMixin`` run on our engine) and runs, with Django's ``runtests.py``, in
cookie mode and again in store mode (``MemoryStore``):

* ``sessions_tests.tests.SessionMiddlewareTests`` and our ``SessionTestsMixin`` class,
* ``test_client`` and ``test_client_regress`` (``client.session``, ``login``,
  ``force_login``, ``logout``, sync and async),
* ``auth_tests.test_views`` (login, logout, password change and reset views), and
  ``test_login``, ``test_middleware``, ``test_auth_backends``, ``test_remote_user``,
  ``test_signals`` of ``auth_tests``,
* ``messages_tests``.

A test that fails must be listed in ``django_expected_failures.txt`` (``<mode>
<test id> <one-line reason>``, mode ``cookie``, ``store`` or ``*``, optionally limited
to some Django versions: ``cookie:4.2``). Exit status: 0
when every failure is listed and every listed test failed; 1 on an unlisted failure
or on a listed test that now passes (a listed test this Django version does not have
is reported, not counted); 2 when the tests could not run; 3 when the source could not
be had.

Usage::

    python tests/yardsticks/django_suite.py [--source DIR_OR_SDIST] [--mode cookie|store] [-v]

``--source`` (or ``WSGISESSION_DJANGO_SOURCE``) uses an sdist or an unpacked source
tree already on disk instead of downloading one (offline use); it must be the
installed version.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _sdist import SourceMissing, download_sdist

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXPECTED = HERE / "django_expected_failures.txt"
MODES = ("cookie", "store")
LABELS = [
    "sessions_tests.tests.SessionMiddlewareTests",
    "wsgisession_engine_tests",
    "test_client",
    "test_client_regress",
    "auth_tests.test_views",
    "auth_tests.test_login",
    "auth_tests.test_middleware",
    "auth_tests.test_auth_backends",
    "auth_tests.test_remote_user",
    "auth_tests.test_signals",
    "messages_tests",
]
EXIT_UNEXPECTED, EXIT_BROKEN, EXIT_NO_SOURCE = 1, 2, 3


def read_expected(path: Path, version: str) -> dict[tuple[str, str], str]:
    """``{(mode, test id): reason}`` for this Django ``version``, from lines
    ``<mode>[:<versions>] <test id> <reason>``: mode ``cookie``, ``store`` or ``*``;
    ``versions`` (e.g. ``4.2`` or ``5,6``) limits a line to the Django versions that
    start so."""
    expected = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 2)
        spec, _, versions = parts[0].partition(":")
        if len(parts) < 3 or spec not in (*MODES, "*"):
            raise SystemExit(f"{path.name}:{number}: want '<mode> <test id> <reason>'")
        if versions and not any(_version_is(version, v) for v in versions.split(",")):
            continue
        for mode in MODES if spec == "*" else (spec,):
            expected[mode, parts[1]] = parts[2].strip()
    return expected


def _version_is(version: str, prefix: str) -> bool:
    return version == prefix or version.startswith(prefix + ".")


def get_source(version: str, work: Path, source: str | None) -> Path:
    """The root of Django's source tree (the directory holding ``tests/runtests.py``)."""
    if source is None:
        try:
            source = str(download_sdist("django", version, work / "download", 600))
        except SourceMissing as exc:
            print(exc)
            raise SystemExit(EXIT_NO_SOURCE) from None
    path = Path(source)
    if path.is_file():
        unpacked = work / "src"
        with tarfile.open(path) as archive:
            members = [m for m in archive.getmembers() if "/tests/" in m.name]
            archive.extractall(unpacked, members=members, filter="data")
        roots = [p for p in unpacked.iterdir() if (p / "tests" / "runtests.py").is_file()]
        if not roots:
            print(f"{path.name} has no tests/runtests.py")
            raise SystemExit(EXIT_NO_SOURCE)
        path = roots[0]
    else:
        # An unpacked tree: work on a copy of its tests, never on the original.
        if not (path / "tests" / "runtests.py").is_file():
            print(f"{path} is not Django's source tree (no tests/runtests.py)")
            raise SystemExit(EXIT_NO_SOURCE)
        shutil.copytree(path / "tests", work / "src" / "tests", symlinks=True)
        path = work / "src"
    return path


def install_ours(tests: Path) -> None:
    shutil.copy(HERE / "django_settings.py", tests / "wsgisession_settings.py")
    shutil.copy(HERE / "django_runner.py", tests / "wsgisession_runner.py")
    package = tests / "wsgisession_engine_tests"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    shutil.copy(HERE / "django_engine_tests.py", package / "tests.py")


def run_mode(tests: Path, mode: str, work: Path, verbose: bool) -> dict[str, str]:
    results = work / f"results-{mode}.json"
    env = dict(os.environ)
    # Our package from this checkout (editable or not); Django is the installed one.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["WSGISESSION_YARDSTICK_MODE"] = mode
    env["WSGISESSION_YARDSTICK_RESULTS"] = str(results)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "runtests.py", "--settings=wsgisession_settings"]
    # One process: the parallel runner needs tblib to send tracebacks between processes.
    command += ["--noinput", "--parallel=1", "-v", "2" if verbose else "1"]
    command += [label for label in LABELS if _has_module(tests, label)]
    completed = subprocess.run(
        command, cwd=tests, env=env, capture_output=True, text=True, timeout=900
    )
    if verbose or not results.is_file():
        print(completed.stdout[-20000:])
        print(completed.stderr[-20000:])
    if not results.is_file():
        print(f"runtests.py could not run Django's tests (exit status {completed.returncode})")
        raise SystemExit(EXIT_BROKEN)
    outcomes: dict[str, str] = json.loads(results.read_text(encoding="utf-8"))
    return outcomes


def _has_module(tests: Path, label: str) -> bool:
    """Whether this Django's tests have the module (or package) ``label`` names."""
    path = tests
    for part in label.split("."):
        path = path / part
        if path.with_suffix(".py").is_file():
            return True
        if not (path / "__init__.py").is_file():
            return False
    return True


def compare(
    version: str, runs: dict[str, dict[str, str]], expected: dict[tuple[str, str], str]
) -> int:
    status = 0
    for mode, outcomes in runs.items():
        failed = {t for t, o in outcomes.items() if o == "failed"}
        listed = {t for (m, t) in expected if m == mode}
        counts = {k: sum(1 for o in outcomes.values() if o == k) for k in _KINDS}
        print(
            f"Django {version}, {mode} mode: {len(outcomes)} tests, "
            + ", ".join(f"{n} {k}" for k, n in counts.items())
            + f"; {len(failed & listed)} of the failures expected"
        )
        for test in sorted(t for t, o in outcomes.items() if o == "skipped"):
            print(f"  skipped (by Django's own skip condition) [{mode}] {test}")
        for test in sorted(failed - listed):
            print(f"  UNEXPECTED FAILURE [{mode}] {test}")
            status = EXIT_UNEXPECTED
        absent = sorted(test for test in listed - failed if test not in outcomes)
        if absent:
            print(f"  ({len(absent)} listed tests are not in Django {version}'s selection)")
        for test in sorted(listed - failed - set(absent)):
            outcome = outcomes[test]
            print(f"  LISTED BUT {outcome.upper()} [{mode}] {test}: update the list")
            status = EXIT_UNEXPECTED
    return status


_KINDS = ("passed", "failed", "skipped", "xfailed", "xpassed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=os.environ.get("WSGISESSION_DJANGO_SOURCE"))
    parser.add_argument("--mode", choices=MODES, action="append")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    version = importlib.metadata.version("django")
    expected = read_expected(EXPECTED, version)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wsgisession-django-") as tmp:
        work = Path(tmp)
        tests = get_source(version, work, args.source) / "tests"
        install_ours(tests)
        runs = {mode: run_mode(tests, mode, work, args.verbose) for mode in args.mode or MODES}
    status = compare(version, runs, expected)
    print(f"({time.monotonic() - started:.0f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
