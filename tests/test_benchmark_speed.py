"""The benchmark's machine-speed calibration (benchmarks/run.py, benchmarks/anchors.py):
the arithmetic behind "untouched overhead at anchor speed" in its report."""

from __future__ import annotations

import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH)
try:
    import anchors as A
    import run as R
    import systems as S
finally:
    # run.py puts its own folder on sys.path too: take every copy out again.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p) != BENCH]


#: each session system's floor, as in benchmarks/systems.py
FLOORS = {"wsgisession": "bare", "beaker-enc": "bare", "beaker-signed": "bare"}
FLOORS |= {"flask": "flask-bare", "django": "django-bare", "pyramid": "pyramid-bare"}
FLOORS["pyramid-noreissue"] = "pyramid-bare"


def cells_at(slowdown: float, ours_s0_us: float) -> dict[str, R.Cell]:
    """Cells whose medians are the anchor run's times multiplied by ``slowdown``."""
    cells: dict[str, R.Cell] = {}

    def put(key: str, us: float) -> None:
        system, scn = key.split(":")
        cells[key] = R.Cell(system, scn, run=lambda n: 0, samples_us=[us] * 3)

    for scn in S.SCENARIOS:
        put(f"bare:{scn}", 1.0)
    put("wsgisession:S0", 1.0 + ours_s0_us)
    for name, values in A.FLOOR_US.items():
        for i, us in enumerate(values):
            put(f"{name}:S{i}", us * slowdown)
    for name, values in A.OVERHEAD_US.items():
        for i, us in enumerate(values):
            floor = cells[f"{FLOORS[name]}:S{i}"].median
            put(f"{name}:S{i}", floor + us * slowdown)
    return cells


def systems_for(cells: dict[str, R.Cell]) -> dict[str, S.System]:
    names = {c.system for c in cells.values()}
    return {n: S.System(n, app=lambda e, s: [], floor=FLOORS.get(n), kind="peer") for n in names}


@pytest.mark.parametrize("slowdown", [0.5, 1.0, 2.5])
def test_slowdown_is_this_run_over_the_anchor_run(slowdown):
    cells = cells_at(slowdown, ours_s0_us=1.5)
    an = R.analyse(systems_for(cells), cells)
    assert an.speed is not None
    assert an.speed["slowdown"] == pytest.approx(slowdown)
    (s0,) = [t for t in an.targets if t["scenario"] == "S0"]
    assert s0["value"] == pytest.approx(1.5)
    assert s0["at_anchor_speed"] == pytest.approx(1.5 / slowdown)
    assert s0["pass"] is False
    assert s0["pass_at_anchor_speed"] is (1.5 / slowdown <= 1.0)
    assert R.verdict(s0) == ("MISS (PASS at anchor speed)" if slowdown > 1.5 else "MISS")


def test_small_overheads_do_not_count_and_without_peers_there_is_no_speed():
    reference = A.reference_cells()
    assert "beaker-enc:S0" not in reference  # 1.7 µs: too small to compare machines
    assert reference["flask:S0"] == ("overhead", 17.0)
    cells = {k: v for k, v in cells_at(2.0, 0.5).items() if k.startswith(("bare", "wsgi"))}
    an = R.analyse(systems_for(cells), cells)
    assert an.speed is None
    (s0,) = [t for t in an.targets if t["scenario"] == "S0"]
    assert s0["pass"] is True and s0["at_anchor_speed"] is None
    assert R.speed_line(an) is None


def test_the_breakdown_sorts_time_by_owner():
    """``run.py --breakdown``: an adapter's own code shows up in the adapter column, the
    core's in the core column, and a floor without sessions has neither."""
    import subprocess

    out = subprocess.run(
        [
            *(sys.executable, os.path.join(BENCH, "run.py"), "--no-timing", "--no-redis"),
            *("--systems", "flask-adapter,wsgisession", "--breakdown", "flask-adapter:S2"),
            *("--profile-requests", "300"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    rows = {}
    for line in out.split("== Breakdown of flask-adapter:S2")[1].splitlines()[2:7]:
        label, *numbers = line.rsplit(None, 5)
        rows[label.strip()] = dict(
            zip(("framework", "adapter", "core", "harness", "total"), map(float, numbers))
        )
    assert rows["flask-bare"]["adapter"] == rows["flask-bare"]["core"] == 0
    assert rows["flask-adapter"]["adapter"] > 0 and rows["flask-adapter"]["core"] > 0
    assert rows["flask-adapter"]["framework"] > rows["flask-adapter"]["core"]
    assert rows["wsgisession - bare"]["adapter"] == 0 and rows["wsgisession - bare"]["core"] > 0
    assert "adapter over the middleware" in rows
