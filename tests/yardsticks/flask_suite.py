"""Flask's own tests as the yardstick of the Flask adapter.

Downloads the source distribution of the *installed* Flask from the package index
(``pip download --no-binary :all: --no-deps flask==<version>``; Flask's code is never
committed here), unpacks it in a temporary directory and runs, with pytest, the tests
``flask_selection.txt`` selects (the session, flash, cookie and ``Vary`` tests of
``tests/test_basic.py``, the session tests of ``tests/test_testing.py`` and
``tests/test_reqctx.py``), every app using wsgisession's session interface
(``flask_plugin.py``, passed with ``-p``).

A selected test that fails must be listed in ``flask_expected_failures.txt`` with a
one-line reason (a deliberate difference). Exit status: 0 when every failure is listed
and every listed test failed; 1 on an unlisted failure or on a listed test that now
passes; 2 when pytest could not run the tests; 3 when the source could not be had.

Usage::

    python tests/yardsticks/flask_suite.py [--source DIR_OR_SDIST] [-v]

``--source`` (or ``WSGISESSION_FLASK_SOURCE``) uses an sdist or an unpacked source
tree already on disk instead of downloading one (offline use); it must be the
installed version.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from _sdist import SourceMissing, download_sdist

HERE = Path(__file__).resolve().parent
SELECTION = HERE / "flask_selection.txt"
EXPECTED = HERE / "flask_expected_failures.txt"
EXIT_UNEXPECTED, EXIT_BROKEN, EXIT_NO_SOURCE = 1, 2, 3


def read_expected(path: Path) -> dict[str, str]:
    """``{node id: reason}``: one ``<node id> <reason>`` per line, ``#`` comments."""
    expected = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        nodeid, _, reason = line.strip().partition(" ")
        if not reason.strip():
            raise SystemExit(f"{path.name}:{number}: {nodeid} has no reason")
        expected[nodeid] = reason.strip()
    return expected


def get_source(version: str, work: Path, source: str | None) -> Path:
    """The root of Flask's source tree (the directory holding ``tests/``)."""
    if source is None:
        try:
            source = str(download_sdist("flask", version, work / "download", 300))
        except SourceMissing as exc:
            print(exc)
            raise SystemExit(EXIT_NO_SOURCE) from None
    path = Path(source)
    if path.is_file():
        unpacked = work / "src"
        with tarfile.open(path) as archive:
            archive.extractall(unpacked, filter="data")
        roots = [p for p in unpacked.iterdir() if (p / "tests").is_dir()]
        if not roots:
            print(f"{path.name} has no tests/ directory")
            raise SystemExit(EXIT_NO_SOURCE)
        path = roots[0]
    if not (path / "tests" / "test_basic.py").is_file():
        print(f"{path} is not Flask's source tree (no tests/test_basic.py)")
        raise SystemExit(EXIT_NO_SOURCE)
    return path


def run_tests(root: Path, work: Path, verbose: bool) -> dict[str, str]:
    results = work / "results.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env["WSGISESSION_YARDSTICK_SELECTION"] = str(SELECTION)
    env["WSGISESSION_YARDSTICK_RESULTS"] = str(results)
    files = sorted({line.split(":", 1)[0].strip() for line in _selection_lines()})
    command = [sys.executable, "-m", "pytest", "-p", "flask_plugin", "-p", "no:cacheprovider"]
    # WebOb (which wsgisession writes cookies with) imports cgi: not Flask's warning.
    command += ["-W", "ignore:'cgi' is deprecated:DeprecationWarning"]
    command += ["-q", "-rfE", "--tb=short" if verbose else "--tb=line", *files]
    completed = subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    if verbose or completed.returncode not in (0, 1):
        print(completed.stdout[-20000:])
        print(completed.stderr[-5000:])
    if completed.returncode not in (0, 1) or not results.is_file():
        print(f"pytest could not run Flask's tests (exit status {completed.returncode})")
        raise SystemExit(EXIT_BROKEN)
    outcomes: dict[str, str] = json.loads(results.read_text(encoding="utf-8"))
    return outcomes


def _selection_lines() -> list[str]:
    lines = SELECTION.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.split("#", 1)[0].strip()]


def compare(version: str, outcomes: dict[str, str], expected: dict[str, str]) -> int:
    counts = {kind: sum(1 for o in outcomes.values() if o == kind) for kind in ("passed",)}
    failed = sorted(n for n, o in outcomes.items() if o == "failed")
    skipped = sorted(n for n, o in outcomes.items() if o == "skipped")
    unexpected = [n for n in failed if n not in expected]
    fixed = sorted(n for n in expected if outcomes.get(n) == "passed")
    absent = sorted(n for n in expected if n not in outcomes)
    print(
        f"Flask {version}: {len(outcomes)} selected tests: {counts['passed']} passed, "
        f"{len(failed)} failed ({len(failed) - len(unexpected)} expected, "
        f"{len(unexpected)} unexpected), {len(skipped)} skipped"
    )
    for nodeid in failed:
        if nodeid in expected:
            print(f"  expected failure: {nodeid} — {expected[nodeid]}")
    for nodeid in skipped:
        print(f"  skipped: {nodeid}")
    for nodeid in absent:
        print(f"  listed but not run here: {nodeid}")
    for nodeid in unexpected:
        print(f"  UNEXPECTED FAILURE: {nodeid}")
    for nodeid in fixed:
        print(f"  LISTED BUT PASSES (remove it from {EXPECTED.name}): {nodeid}")
    return EXIT_UNEXPECTED if unexpected or fixed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=os.environ.get("WSGISESSION_FLASK_SOURCE"))
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    args = parser.parse_args(argv)
    version = importlib.metadata.version("flask")
    expected = read_expected(EXPECTED)
    with tempfile.TemporaryDirectory(prefix="flask-yardstick-") as tmp:
        work = Path(tmp)
        root = get_source(version, work, args.source)
        outcomes = run_tests(root, work, args.verbose)
    return compare(version, outcomes, expected)


if __name__ == "__main__":
    sys.exit(main())
