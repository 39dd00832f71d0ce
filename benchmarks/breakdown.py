"""Where an adapter's microseconds go: ``run.py --breakdown SYSTEM:SCENARIO``.

cProfile runs the cell and the cell of the system's floor (and, for an adapter, the
bare middleware over ``bare``), and adds up each function's own time by who owns the
code: the framework (Flask/Werkzeug, Django, Pyramid/WebOb and what they call), the
wsgisession adapter, the wsgisession core, and the harness. C functions (AES, JSON,
base64, ``dict`` methods) and standard-library Python count for the group that called
them. The report gives µs per request for each group in the system, in its floor, and
the difference: what the session machinery costs in each group.

cProfile adds a fixed cost to every call, so call-heavy code (the frameworks) looks
dearer than it is: read the groups as shares and compare them with the timing run's
overheads, not as timings of their own.
"""

from __future__ import annotations

import cProfile
import pstats
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

GROUPS = ("framework", "adapter", "core", "harness")
_PACKAGE = str(Path(__file__).resolve().parents[1] / "wsgisession")
_HERE = str(Path(__file__).resolve().parent)
_STDLIB = tuple(
    p for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]} if p
)


def _own_group(filename: str) -> str | None:
    """The group of code in ``filename``; None for C and the standard library."""
    if filename.startswith(_PACKAGE) or "/wsgisession/" in filename:
        return "adapter" if "/adapters/" in filename else "core"
    if filename.startswith(_HERE):
        return "harness"
    if filename == "~" or filename.startswith("<"):
        return None
    if "site-packages" in filename:
        return "framework"
    if filename.startswith(_STDLIB):
        return None
    return "framework"


def by_group(stats: pstats.Stats, requests: int) -> dict[str, float]:
    """µs per request of own time per group; C and stdlib time goes to the caller's."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    memo: dict[Any, dict[str, float]] = {}

    def shares(func: Any, depth: int = 0) -> dict[str, float]:
        """How a function's own time splits across groups (by its callers if unowned)."""
        if func in memo:
            return memo[func]
        group = _own_group(func[0])
        if group is not None:
            out = {group: 1.0}
        else:
            callers = raw[func][4]
            total = sum(v[2] for v in callers.values())
            out = {}
            if depth > 20 or not callers or total <= 0:
                out = {"framework": 1.0}
            else:
                for caller, values in callers.items():
                    for g, w in shares(caller, depth + 1).items():
                        out[g] = out.get(g, 0.0) + w * values[2] / total
        memo[func] = out
        return out

    result = dict.fromkeys(GROUPS, 0.0)
    for func, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        for group, weight in shares(func).items():
            result[group] += tottime * weight
    return {g: v / requests * 1e6 for g, v in result.items()}


def profile_groups(run: Callable[[int], int], requests: int) -> dict[str, float]:
    run(1000)
    prof = cProfile.Profile()
    prof.enable()
    run(requests)
    prof.disable()
    return by_group(pstats.Stats(prof), requests)


def report(rows: list[tuple[str, dict[str, float]]]) -> str:
    """A table: one row per (label, groups), plus the total column."""
    head = f"{'':34} " + " ".join(f"{g:>10}" for g in GROUPS) + f" {'total':>10}"
    lines = [head]
    for label, groups in rows:
        cells = " ".join(f"{groups[g]:10.2f}" for g in GROUPS)
        lines.append(f"{label:34} {cells} {sum(groups.values()):10.2f}")
    return "\n".join(lines)


def difference(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {g: a[g] - b[g] for g in GROUPS}
