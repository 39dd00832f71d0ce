"""The peers as measured by the run that set the issue-5 targets.

Source: ``research/perf-anchors.md`` (run of 2026-11-25 16:43 UTC: a 2-vCPU AMD EPYC VM,
CPython 3.11.7, Beaker 1.14.1, Flask 3.1.3, Django 5.2.19, Pyramid 2.1; in-process WSGI
calls, 5 interleaved repeats of ~0.5 s per cell, medians; the method ``run.py`` uses).

Every target of issue 5 is a ratio measured within one run except one: the untouched
request's ``<= 1 µs``, an absolute time set on that machine. The same peer code run here
says how fast this machine is compared with that one (``run.machine_speed``), so that
the report can state the untouched overhead at the speed the target was set at, next
to the raw figure.
"""

from __future__ import annotations

RUN = "perf-anchors.md, 2026-11-25 16:43 UTC, 2-vCPU AMD EPYC VM, CPython 3.11.7"

#: Median µs per request of the framework floors (no session), scenarios S0-S4.
FLOOR_US: dict[str, tuple[float, ...]] = {
    "flask-bare": (36.7, 36.8, 36.8, 36.7, 36.9),
    "django-bare": (37.3, 37.1, 36.9, 36.9, 36.5),
    "pyramid-bare": (7.0, 6.9, 6.9, 6.9, 7.0),
}

#: Median session overhead in µs (system minus its floor), scenarios S0-S4.
OVERHEAD_US: dict[str, tuple[float, ...]] = {
    "beaker-enc": (1.7, 96.7, 97.9, 175.1, 36.4),
    "beaker-signed": (1.7, 62.0, 64.1, 137.7, 25.1),
    "flask": (17.0, 52.1, 99.5, 91.6, 65.3),
    "django": (5.9, 27.7, 66.3, 46.5, 49.4),
    "pyramid": (0.0, 38.3, 39.4, 123.6, 20.1),
    "pyramid-noreissue": (0.0, 19.4, 38.4, 87.0, 19.9),
}

#: Overheads below this are too small to compare machines with (a few hundred ns of
#: noise would swing the ratio).
MIN_OVERHEAD_US = 5.0


def reference_cells() -> dict[str, tuple[str, float]]:
    """``"system:S<n>" -> ("floor" | "overhead", µs at the anchor run)``."""
    cells: dict[str, tuple[str, float]] = {}
    for name, values in FLOOR_US.items():
        for i, us in enumerate(values):
            cells[f"{name}:S{i}"] = ("floor", us)
    for name, values in OVERHEAD_US.items():
        for i, us in enumerate(values):
            if us >= MIN_OVERHEAD_US:
                cells[f"{name}:S{i}"] = ("overhead", us)
    return cells
