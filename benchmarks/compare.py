"""wsgisession against a checkout of another revision, side by side.

    git worktree add /tmp/base main            # or any checkout of the other revision
    python benchmarks/compare.py /tmp/base     # instructions (callgrind) and time
    python benchmarks/compare.py /tmp/base --no-time --scenarios S0,S1

Both revisions run *this* checkout's benchmark code (``systems.py``, ``run.py``), each
with its own ``wsgisession`` package first on ``PYTHONPATH``:

* **instructions** (deterministic): ``valgrind --tool=callgrind`` over
  ``profile_loop.py`` for N requests minus the same loop for 0 requests, divided by N;
  a request here includes the bare WSGI call (~8 thousand), the same for both.
* **time**: ``run.py --systems wsgisession`` for each revision in turn, ``--rounds``
  times (alternating, so drift hits both alike); the median overhead over the ``bare``
  floor of each cell across the rounds.

The report gives both revisions and the new ÷ base ratio per scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CELLS = [
    ("wsgisession", "S0"),
    ("wsgisession", "S1"),
    ("wsgisession", "S2"),
    ("wsgisession", "S3"),
    ("wsgisession", "S4"),
    ("wsgisession-memory", "S1"),
    ("wsgisession-memory", "S2"),
]


def _env(package_root: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(package_root), PYTHONHASHSEED="0")
    return env


def instructions(package_root: Path, system: str, scenario: str, n: int) -> int:
    """Instructions callgrind counts for the profile loop of ``n`` requests."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(  # noqa: S603 - our own command line
            [  # noqa: S607 - valgrind from PATH
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(HERE / "profile_loop.py"),
                scenario,
                str(n),
                system,
            ],
            env=_env(package_root),
            check=True,
            capture_output=True,
        )
        summary = re.search(r"^summary: (\d+)", out.read_text(), re.M)
        assert summary, "callgrind wrote no summary"
        return int(summary.group(1))


def per_request(package_root: Path, system: str, scenario: str, n: int) -> float:
    return (
        instructions(package_root, system, scenario, n)
        - instructions(package_root, system, scenario, 0)
    ) / n


def timing(package_root: Path, seed: int, repeats: int, seconds: float) -> dict[str, float]:
    """One run.py run: overhead in µs per "system:scenario"."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        subprocess.run(  # noqa: S603 - our own command line
            [
                sys.executable,
                str(HERE / "run.py"),
                "--systems",
                "wsgisession,wsgisession-memory",
                "--no-redis",
                "--repeats",
                str(repeats),
                "--time",
                str(seconds),
                "--seed",
                str(seed),
                "--json",
                str(out),
            ],
            env=_env(package_root),
            check=True,
            capture_output=True,
        )
        cells = json.loads(out.read_text())["cells"]
    return {k: c["overhead_us"] for k, c in cells.items() if c.get("overhead_us") is not None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("base", type=Path, help="a checkout of the revision to compare with")
    p.add_argument("--new", type=Path, default=ROOT, help="the other checkout (default: this one)")
    p.add_argument("--requests", type=int, default=3000, help="requests per callgrind loop")
    p.add_argument("--rounds", type=int, default=4, help="timing rounds per revision")
    p.add_argument("--repeats", type=int, default=3, help="run.py repeats per round")
    p.add_argument("--time", type=float, default=0.3, help="run.py seconds per cell")
    p.add_argument("--scenarios", default="", help="only these, e.g. S0,S1")
    p.add_argument("--no-time", action="store_true", help="instructions only")
    p.add_argument("--no-instructions", action="store_true", help="time only")
    args = p.parse_args(argv)
    wanted = set(filter(None, args.scenarios.split(",")))
    cells = [c for c in CELLS if not wanted or c[1] in wanted]
    revisions = {"base": args.base.resolve(), "new": args.new.resolve()}
    for root in revisions.values():
        if not (root / "wsgisession" / "__init__.py").is_file():
            print(f"error: {root} has no wsgisession package", file=sys.stderr)
            return 64
    rows: dict[str, dict[str, float]] = {}
    if not args.no_instructions:
        if shutil.which("valgrind") is None:
            print("error: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
            return 69
        for system, scenario in cells:
            key = f"{system}:{scenario}"
            rows[key] = {}
            for name, root in revisions.items():
                rows[key][f"{name} instr (K)"] = (
                    per_request(root, system, scenario, args.requests) / 1000
                )
            print(f"instructions {key}: {rows[key]}", file=sys.stderr)
    if not args.no_time:
        samples: dict[str, dict[str, list[float]]] = {}
        for round_ in range(args.rounds):
            for name, root in revisions.items():
                for key, value in timing(root, round_ + 1, args.repeats, args.time).items():
                    samples.setdefault(key, {}).setdefault(name, []).append(value)
            print(f"timing round {round_ + 1}/{args.rounds} done", file=sys.stderr)
        for system, scenario in cells:
            key = f"{system}:{scenario}"
            for name, values in samples.get(key, {}).items():
                rows.setdefault(key, {})[f"{name} µs"] = statistics.median(values)
                rows[key][f"{name} µs range"] = f"{min(values):.2f}-{max(values):.2f}"
    columns = sorted({c for r in rows.values() for c in r}, key=lambda c: (c.split()[1:], c))
    print("| cell | " + " | ".join(columns) + " | new/base instr | new/base µs |")
    print("|---" * (len(columns) + 3) + "|")
    for key, row in rows.items():
        ratios = []
        for unit in ("instr (K)", "µs"):
            base, new = row.get(f"base {unit}"), row.get(f"new {unit}")
            ok = isinstance(base, float) and isinstance(new, float) and base > 0
            ratios.append(f"{new / base:.3f}" if ok else "-")  # type: ignore[operator]
        cells_text = [
            f"{row[c]:.2f}" if isinstance(row.get(c), float) else str(row.get(c, "-"))
            for c in columns
        ]
        print(f"| {key} | " + " | ".join(cells_text) + " | " + " | ".join(ratios) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
