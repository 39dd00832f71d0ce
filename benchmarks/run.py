#!/usr/bin/env python3
# ruff: noqa: S603, S607, S311, S110, RUF001
# (subprocesses with fixed argument lists; a seeded shuffle; typographic signs in the report)
"""Side-by-side benchmark of wsgisession against Beaker, Flask, Django and Pyramid.

Run from the project root::

    python -m pip install -e . -r benchmarks/requirements.txt
    python benchmarks/run.py                     # full run (a few minutes)
    python benchmarks/run.py --quick             # CI smoke mode (seconds)
    python benchmarks/run.py --json out.json --plot docs/performance.png
    python benchmarks/run.py --memory --gunicorn # also: tracemalloc check, gunicorn req/s
    python benchmarks/run.py --no-timing --profile wsgisession:S1   # cProfile of one cell

One process, one run: every system is measured in the same interleaved loop, so the
ratios compare like with like on a noisy machine. Method (perf-anchors.md): in-process
WSGI calls, a fresh ``environ = template.copy()`` per request, the body iterable
consumed and closed, ``time.perf_counter_ns``, each cell calibrated to ``--time``
seconds, ``--repeats`` interleaved repeats across all cells (in a shuffled order of
groups, a floor next to the systems over it; ``gc.collect()`` before each measurement,
GC left on), medians, and a noise figure per cell, (max - min) / min of its repeats.
Overhead = t(system) - t(its floor), same scenario, same run; floors run the same
handler code on a plain dict.

Exit status: 0 when every system behaved (timing misses never fail the run), 1 on any
error or wrong behaviour (a missing Set-Cookie, a wrong body, a rejected cookie, memory
growth), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import http.client
import io
import json
import logging
import os
import platform
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# WSGISESSION_BENCH_PACKAGE: the checkout whose package is measured (compare.py).
for _path in (HERE, os.environ.get("WSGISESSION_BENCH_PACKAGE") or os.path.dirname(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import anchors as A  # noqa: E402
import breakdown as B  # noqa: E402
import integrations as I  # noqa: E402
import systems as S  # noqa: E402

perf_counter_ns = time.perf_counter_ns

#: Targets of issue 5 (overhead ratios of wsgisession : best peer, same scenario).
PEER_TARGETS = {"S1": 0.4, "S2": 0.4, "S3": 0.5, "S4": 0.5}
UNTOUCHED_TARGET_US = 1.0
CODEC_TARGET = 2.0
CODEC_SCENARIOS = ("S1", "S2", "S3", "S4")
#: --memory: allowed growth of traced memory over the whole run (bytes).
MEMORY_GROWTH_BOUND = 64 * 1024


class Failure(Exception):
    """Wrong behaviour of a system: the run exits non-zero."""


# -- requests ---------------------------------------------------------------------------


def environ_template(path: str, cookie: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "localhost",
        "HTTP_USER_AGENT": "wsgisession-bench/1",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie:
        env["HTTP_COOKIE"] = cookie
    return env


@dataclass
class Response:
    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def set_cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    def cookie_pairs(self) -> str | None:
        """The Cookie header a browser would send back (None: no Set-Cookie)."""
        pairs = [v.split(";", 1)[0].strip() for v in self.set_cookies]
        pairs = [p for p in pairs if p.split("=", 1)[1:] not in ([], [""], ['""'])]
        return "; ".join(pairs) or None


def call(app: Callable[..., Any], path: str, cookie: str | None) -> Response:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = status
        captured["headers"] = list(headers)
        return lambda data: None

    iterable = app(environ_template(path, cookie), start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return Response(captured.get("status", ""), captured.get("headers", []), body)


def wsgi_runner(app: Callable[..., Any], template: dict[str, Any]) -> Callable[[int], int]:
    """``run(n)``: n requests with a fresh copy of ``template``; returns elapsed ns."""

    def write(data: bytes) -> None:
        pass

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return write

    copy = template.copy

    def run(n: int) -> int:
        t0 = perf_counter_ns()
        for _ in range(n):
            iterable = app(copy(), start_response)
            for _chunk in iterable:
                pass
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        return perf_counter_ns() - t0

    return run


# -- cells ------------------------------------------------------------------------------


@dataclass
class Cell:
    system: str
    scenario: str
    run: Callable[[int], int]
    n: int = 0
    samples_us: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.system}:{self.scenario}"

    @property
    def median(self) -> float:
        return statistics.median(self.samples_us)

    @property
    def noise(self) -> float:
        lo = min(self.samples_us)
        return (max(self.samples_us) - lo) / lo if lo > 0 else 0.0


def calibrate(run: Callable[[int], int], target_ns: float) -> int:
    """Number of iterations that take about ``target_ns`` (the probing doubles as warm-up)."""
    run(1)
    n = 1
    probe = max(target_ns / 10, 2e6)
    while True:
        elapsed = max(run(n), 1)
        if elapsed >= probe or n >= 1 << 26:
            break
        n = min(max(n * 2, int(n * probe / elapsed * 1.1)), 1 << 26)
    return max(1, round(n * target_ns / elapsed))


# -- infrastructure: redis-server, free ports, process cleanup ----------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(proc: subprocess.Popen[bytes], name: str) -> None:
    """Stop a process this script started (and its process group, which it leads)."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print(f"  {name} (pid {proc.pid}) ignored SIGTERM; killing its process group")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class RedisServer:
    """A private redis-server on a free loopback port, without persistence."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not on PATH")
        port = free_port()
        self.proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        self.url = f"redis://127.0.0.1:{port}/0"
                        return self.url
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, "redis-server")
            self.proc = None


# -- building the systems --------------------------------------------------------------


class WarningCollector(logging.Handler):
    """Collects wsgisession's warnings (rejected cookies): none may occur in a run."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def build_systems(
    args: argparse.Namespace, redis: RedisServer
) -> tuple[dict[str, S.System], dict[str, str]]:
    """All systems that could be built, and the reason for each one skipped."""
    skipped: dict[str, str] = {}
    stores: dict[str, Any] = {}
    from wsgisession import MemoryStore

    stores["wsgisession-memory"] = (MemoryStore(), "MemoryStore()")
    if args.no_redis:
        skipped["wsgisession-redis"] = "--no-redis"
    else:
        try:
            from wsgisession import RedisStore

            url = args.redis_url or redis.start()
            store = RedisStore(url=url)
            store.get("wsgisession-bench:ping")
            stores["wsgisession-redis"] = (store, f"RedisStore(url={url!r})")
        except Exception as exc:  # any reason: no redis-py, no server, no answer
            skipped["wsgisession-redis"] = f"{type(exc).__name__}: {exc}"
    systems: dict[str, S.System] = {}
    for adapter, names in S.ADAPTERS:
        try:
            built = adapter(stores) if adapter is S.make_wsgisession else adapter()
        except ImportError as exc:
            if adapter is S.make_wsgisession:
                raise
            for name in names:
                skipped[name] = f"{type(exc).__name__}: {exc}"
            continue
        for system in built:
            systems[system.name] = system
    for maker, names in I.MAKERS:
        try:
            for system in maker(stores):
                systems[system.name] = system
        except ImportError as exc:  # a peer or framework that is not installed
            for name in names:
                skipped[name] = f"{type(exc).__name__}: {exc}"
    if args.systems:
        wanted = set(args.systems.split(","))
        known = {n for _, names in [*S.ADAPTERS, *I.MAKERS] for n in names}
        unknown = wanted - known - {"codec-floor"}
        if unknown:
            raise SystemExit(f"run.py: unknown system(s): {', '.join(sorted(unknown))}")
        # Keep the floors the wanted systems need, and wsgisession's cookie for `bare`.
        keep = set(wanted)
        for name in wanted:
            if name in systems and systems[name].floor:
                keep.add(systems[name].floor)  # type: ignore[arg-type]
        for name in list(keep):
            if name in systems and systems[name].cookie_from:
                keep.add(systems[name].cookie_from)  # type: ignore[arg-type]
        systems = {k: v for k, v in systems.items() if k in keep}
    return systems, skipped


def seed_cookies(systems: dict[str, S.System]) -> None:
    """Each session system reads back its own format: cookies come from a seed request."""
    for system in systems.values():
        if system.kind == "floor":
            continue
        for scn in system.scenarios:
            if S.SEED_DATA[scn] is None:
                system.cookies[scn] = None
                continue
            resp = call(system.app, f"/seed/{scn}", None)
            cookie = resp.cookie_pairs()
            if not resp.status.startswith("200") or cookie is None:
                raise Failure(
                    f"{system.name}: the seed request for {scn} got {resp.status!r} "
                    f"and no session cookie"
                )
            system.cookies[scn] = cookie
    for system in systems.values():
        if system.kind != "floor":
            continue
        partner = systems.get(system.cookie_from or "")
        for scn in system.scenarios:
            system.cookies[scn] = partner.cookies.get(scn) if partner else None


# -- sanity checks (after timing) ----------------------------------------------------------


@dataclass
class Check:
    system: str
    scenario: str
    set_cookie: bool
    cookie_bytes: int
    set_cookie_bytes: int
    body: bytes
    problems: list[str]


#: Kinds whose data lives in a store: a write need not send a cookie, and must persist.
STORE_KINDS = frozenset({"ours-store", "store-peer"})


def check_system(system: S.System) -> list[Check]:
    checks = []
    for scn in system.scenarios:
        cookie = system.cookies.get(scn)
        resp = call(system.app, f"/{scn}", cookie)
        problems = []
        if not resp.status.startswith("200"):
            problems.append(f"status {resp.status!r}")
        if system.kind == "floor" and scn == "S2":
            if not resp.body.isdigit():
                problems.append(f"body {resp.body!r}, expected a counter")
        elif system.kind in STORE_KINDS and scn == "S2":
            if not resp.body.isdigit() or int(resp.body) < 1:
                problems.append(f"body {resp.body!r}, expected a counter >= 1")
            else:
                again = call(system.app, f"/{scn}", cookie)
                if again.body != str(int(resp.body) + 1).encode():
                    problems.append(f"the write did not persist: {resp.body!r} then {again.body!r}")
        elif resp.body != S.EXPECTED_BODY[scn]:
            problems.append(f"body {resp.body!r}, expected {S.EXPECTED_BODY[scn]!r}")
        has_cookie = bool(resp.set_cookies)
        if system.kind == "floor":
            if has_cookie:
                problems.append("a floor sent Set-Cookie")
        else:
            if scn == "S0" and has_cookie:
                problems.append("Set-Cookie on an untouched session")
            if scn == "S4" and not has_cookie:
                problems.append("no Set-Cookie for a new session")
            if scn == "S2" and system.kind not in STORE_KINDS and not has_cookie:
                problems.append("no Set-Cookie after a write")
            if system.kind.startswith("ours") and scn in ("S1", "S3") and has_cookie:
                problems.append("Set-Cookie on an unchanged session (wsgisession must not)")
            # The cookie the response set must hold what the handler did.
            if scn == "S2" and system.kind not in STORE_KINDS and has_cookie:
                again = call(system.app, "/S2", resp.cookie_pairs())
                if again.body != b"2":
                    problems.append(f"the written cookie gives counter {again.body!r}, not b'2'")
            if scn == "S4" and has_cookie:
                again = call(system.app, "/S1", resp.cookie_pairs())
                if again.body != b"42":
                    problems.append(f"the new session's cookie reads {again.body!r}, not b'42'")
        checks.append(
            Check(
                system.name,
                scn,
                has_cookie,
                len(cookie or ""),
                sum(len(v) for v in resp.set_cookies),
                resp.body,
                problems,
            )
        )
    return checks


# -- the timing run ----------------------------------------------------------------------


def make_cells(systems: dict[str, S.System], codec: S.CodecFloor | None) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    for system in systems.values():
        for scn in system.scenarios:
            template = environ_template(f"/{scn}", system.cookies.get(scn))
            run = wsgi_runner(system.app, template)
            cells[f"{system.name}:{scn}"] = Cell(system.name, scn, run)
    if codec is not None:
        for scn in CODEC_SCENARIOS:
            run, _ = codec.runner(scn)
            cells[f"codec-floor:{scn}"] = Cell("codec-floor", scn, run)
    return cells


def time_cells(
    cells: dict[str, Cell], systems: dict[str, S.System], target_s: float, repeats: int, seed: int
) -> float:
    """Calibrate every cell, then measure all of them ``repeats`` times, interleaved.

    A cell is measured right next to its floor: the unit of the shuffle is a group (one
    floor and scenario, with every system over that floor and, for ``bare``, the codec
    floor), so an overhead is a difference of two measurements taken seconds apart even
    when the machine's speed drifts. Groups and the cells inside them are shuffled anew
    in every repeat.
    """
    started = time.perf_counter()
    target_ns = target_s * 1e9
    print(f"calibrating {len(cells)} cells to ~{target_s:g} s each ...", flush=True)
    for cell in cells.values():
        gc.collect()
        cell.n = calibrate(cell.run, target_ns)
    groups: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells.values():
        system = systems.get(cell.system)
        if system is None:  # the codec floor goes with wsgisession's floor
            base = "bare"
        else:
            base = system.floor or system.name
        groups.setdefault((base, cell.scenario), []).append(cell)
    order = list(groups.values())
    rng = random.Random(seed)
    for rep in range(repeats):
        rng.shuffle(order)
        t0 = time.perf_counter()
        for group in order:
            rng.shuffle(group)
            for cell in group:
                gc.collect()
                elapsed = cell.run(cell.n)
                cell.samples_us.append(elapsed / cell.n / 1000)
        print(f"  repeat {rep + 1}/{repeats}: {time.perf_counter() - t0:.1f} s", flush=True)
    return time.perf_counter() - started


# -- analysis ------------------------------------------------------------------------------


@dataclass
class Analysis:
    overhead: dict[str, float]  # "system:S" -> µs over its floor
    overhead_per_repeat: dict[str, list[float]]
    #: min(system) - min(floor): interference only adds time, so the minima are the
    #: least disturbed estimate (a cross-check of the medians on a noisy machine)
    overhead_min: dict[str, float]
    best_peer: dict[str, tuple[str, float]]
    targets: list[dict[str, Any]]
    #: how much slower than the anchor run this machine ran the peers (machine_speed)
    speed: dict[str, Any] | None = None
    #: the framework adapters' and the store-mode targets (integrations.py)
    integration_targets: list[dict[str, Any]] = field(default_factory=list)
    #: Redis commands per request of each store-mode system (integrations.round_trips)
    round_trips: dict[str, dict[str, float]] = field(default_factory=dict)


def machine_speed(cells: dict[str, Cell], overhead: dict[str, float]) -> dict[str, Any] | None:
    """This run's time over the anchor run's for the same peer code: the framework
    floors (µs per request) and the peers' overheads of at least
    ``anchors.MIN_OVERHEAD_US``. The median of those ratios is the slowdown of this
    machine (and this moment) against the one the untouched target was set on."""
    ratios: list[float] = []
    for key, (kind, anchor_us) in A.reference_cells().items():
        if kind == "floor" and key in cells:
            ratios.append(cells[key].median / anchor_us)
        elif kind == "overhead" and key in overhead:
            ratios.append(overhead[key] / anchor_us)
    if len(ratios) < 5:
        return None
    quartiles = statistics.quantiles(ratios, n=4)
    return {
        "slowdown": statistics.median(ratios),
        "quartiles": [quartiles[0], quartiles[2]],
        "cells": len(ratios),
        "reference": A.RUN,
    }


def analyse(systems: dict[str, S.System], cells: dict[str, Cell]) -> Analysis:
    overhead: dict[str, float] = {}
    per_repeat: dict[str, list[float]] = {}
    ov_min: dict[str, float] = {}
    for key, cell in cells.items():
        system = systems.get(cell.system)
        if system is None or system.floor is None:
            if cell.system == "codec-floor":
                overhead[key] = cell.median
                per_repeat[key] = list(cell.samples_us)
                ov_min[key] = min(cell.samples_us)
            continue
        floor = cells.get(f"{system.floor}:{cell.scenario}")
        if floor is None:
            continue
        overhead[key] = cell.median - floor.median
        ov_min[key] = min(cell.samples_us) - min(floor.samples_us)
        per_repeat[key] = [a - b for a, b in zip(cell.samples_us, floor.samples_us, strict=True)]
    best: dict[str, tuple[str, float]] = {}
    for scn in S.SCENARIOS:
        candidates = [(p, overhead[f"{p}:{scn}"]) for p in S.PEERS if f"{p}:{scn}" in overhead]
        if candidates:
            best[scn] = min(candidates, key=lambda c: c[1])
    targets: list[dict[str, Any]] = []
    ours = "wsgisession"
    speed = machine_speed(cells, overhead)
    if f"{ours}:S0" in overhead:
        value = overhead[f"{ours}:S0"]
        reps = per_repeat[f"{ours}:S0"]
        scaled = value / speed["slowdown"] if speed else None
        targets.append(
            {
                "scenario": "S0",
                "target": f"untouched overhead <= {UNTOUCHED_TARGET_US:g} us",
                "value": value,
                "limit": UNTOUCHED_TARGET_US,
                "unit": "us",
                "range": [min(reps), max(reps)],
                "paired_median": statistics.median(reps),
                "from_minima": ov_min[f"{ours}:S0"],
                "pass": value <= UNTOUCHED_TARGET_US,
                # the same overhead at the speed of the machine the target was set on
                "at_anchor_speed": scaled,
                "pass_at_anchor_speed": scaled is not None and scaled <= UNTOUCHED_TARGET_US,
            }
        )
    for scn, limit in PEER_TARGETS.items():
        key = f"{ours}:{scn}"
        if key not in overhead or scn not in best:
            continue
        peer, peer_ov = best[scn]
        ratio = overhead[key] / peer_ov if peer_ov > 0 else float("inf")
        reps = [
            a / b if b > 0 else float("inf")
            for a, b in zip(per_repeat[key], per_repeat[f"{peer}:{scn}"], strict=True)
        ]
        targets.append(
            {
                "scenario": scn,
                "target": f"{S.SCENARIO_NAMES[scn]} <= {limit:g} x best peer",
                "ours_us": overhead[key],
                "peer": peer,
                "peer_us": peer_ov,
                "value": ratio,
                "limit": limit,
                "unit": "x",
                "range": [min(reps), max(reps)],
                "paired_median": statistics.median(reps),
                "from_minima": _ratio(ov_min[key], ov_min[f"{peer}:{scn}"]),
                "pass": ratio <= limit,
            }
        )
    for scn in CODEC_SCENARIOS:
        key = f"{ours}:{scn}"
        floor_key = f"codec-floor:{scn}"
        if key not in overhead or floor_key not in overhead:
            continue
        ratio = overhead[key] / overhead[floor_key]
        reps = [a / b for a, b in zip(per_repeat[key], per_repeat[floor_key], strict=True)]
        targets.append(
            {
                "scenario": scn,
                "target": f"{S.SCENARIO_NAMES[scn]} <= {CODEC_TARGET:g} x codec floor",
                "ours_us": overhead[key],
                "peer": "codec-floor",
                "peer_us": overhead[floor_key],
                "value": ratio,
                "limit": CODEC_TARGET,
                "unit": "x",
                "range": [min(reps), max(reps)],
                "paired_median": statistics.median(reps),
                "from_minima": _ratio(ov_min[key], ov_min[floor_key]),
                "pass": ratio <= CODEC_TARGET,
            }
        )
    more = I.targets(overhead, per_repeat, speed)
    return Analysis(overhead, per_repeat, ov_min, best, targets, speed, more)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


# -- reporting -------------------------------------------------------------------------


def fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def signed(value: float) -> str:
    return ("+" if value >= 0 else "−") + fmt(abs(value))


def system_order(systems: dict[str, S.System], cells: dict[str, Cell]) -> list[str]:
    names = [n for _, ns in [*S.ADAPTERS, *I.MAKERS] for n in ns if n in systems]
    if any(c.system == "codec-floor" for c in cells.values()):
        names.append("codec-floor")
    return names


def results_rows(
    systems: dict[str, S.System], cells: dict[str, Cell], an: Analysis, markdown: bool
) -> list[list[str]]:
    rows = []
    for name in system_order(systems, cells):
        floor = systems[name].floor if name in systems else None
        row = [name, floor or "—"]
        for scn in S.SCENARIOS:
            cell = cells.get(f"{name}:{scn}")
            if cell is None:
                row.append("0" if name == "codec-floor" and scn == "S0" else "")
                continue
            text = fmt(cell.median)
            if floor is not None and cell.key in an.overhead:
                ov = signed(an.overhead[cell.key])
                text += f" (**{ov}**)" if markdown else f" ({ov})"
            text += f" {cell.noise * 100:.0f}%"
            row.append(text)
        rows.append(row)
    return rows


def render(header: list[str], rows: list[list[str]], markdown: bool, align: str = "") -> str:
    if markdown:
        out = ["| " + " | ".join(header) + " |"]
        seps = [("---:" if a == "r" else "---") for a in (align or "l" * len(header))]
        out.append("|" + "|".join(seps) + "|")
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)


def verdict(target: dict[str, Any]) -> str:
    if target["pass"]:
        return "PASS"
    if target.get("pass_at_anchor_speed"):
        return "MISS (PASS at anchor speed)"
    return "MISS"


def speed_line(an: Analysis) -> str | None:
    """What the machine-speed calibration says, for the report (None without peers)."""
    s = an.speed
    if s is None:
        return None
    line = (
        f"machine speed: the peers ran {s['slowdown']:.2f}x slower here than in the run "
        f"that set the targets (median of {s['cells']} cells, quartiles "
        f"{s['quartiles'][0]:.2f}-{s['quartiles'][1]:.2f}x; {s['reference']})"
    )
    for t in an.targets:
        if t["unit"] == "us" and t.get("at_anchor_speed") is not None:
            line += (
                f"; untouched overhead at that speed: {fmt(t['at_anchor_speed'])} µs "
                f"({'PASS' if t['pass_at_anchor_speed'] else 'MISS'} against "
                f"{fmt(t['limit'])} µs)"
            )
    return line


def targets_rows(an: Analysis) -> list[list[str]]:
    rows = []
    for t in an.targets:
        if t["unit"] == "us":
            rows.append(
                [
                    t["scenario"],
                    t["target"],
                    f"{fmt(t['value'])} µs",
                    "bare",
                    "—",
                    "—",
                    f"{fmt(t['paired_median'])} ({fmt(t['range'][0])}–{fmt(t['range'][1])}) µs",
                    f"{fmt(t['from_minima'])} µs",
                    verdict(t),
                ]
            )
        else:
            rows.append(
                [
                    t["scenario"],
                    t["target"],
                    f"{fmt(t['ours_us'])} µs",
                    t["peer"],
                    f"{fmt(t['peer_us'])} µs",
                    f"{t['value']:.2f}×",
                    f"{t['paired_median']:.2f}× ({t['range'][0]:.2f}–{t['range'][1]:.2f})",
                    f"{t['from_minima']:.2f}×",
                    "PASS" if t["pass"] else "MISS",
                ]
            )
    return rows


TARGET_HEADER = [
    "scn",
    "target",
    "wsgisession overhead",
    "vs",
    "its overhead",
    "ratio",
    "per repeat: median (range)",
    "from minima",
    "verdict",
]


def sanity_rows(checks: list[Check]) -> list[list[str]]:
    by_system: dict[str, dict[str, Check]] = {}
    for c in checks:
        by_system.setdefault(c.system, {})[c.scenario] = c
    rows = []
    for name, per in by_system.items():
        row = [name]
        for scn in S.SCENARIOS:
            c = per.get(scn)
            if c is None:
                row.append("")
                continue
            sc = "Set-Cookie" if c.set_cookie else "none"
            row.append(f"{sc} / {c.cookie_bytes} / {c.set_cookie_bytes} / {c.body.decode()}")
        problems = [f"{c.scenario}: {p}" for c in per.values() for p in c.problems]
        row.append("OK" if not problems else "; ".join(problems))
        rows.append(row)
    return rows


def store_rows(cells: dict[str, Cell], an: Analysis) -> list[list[str]]:
    rows = []
    for name in ("wsgisession-memory", "wsgisession-redis"):
        for scn in S.STORE_SCENARIOS:
            key = f"{name}:{scn}"
            if key not in an.overhead:
                continue
            cookie_key = f"wsgisession:{scn}"
            rel = (
                f"{an.overhead[key] / an.overhead[cookie_key]:.2f}×"
                if an.overhead.get(cookie_key, 0) > 0
                else "—"
            )
            best = an.best_peer.get(scn)
            vs_peer = "—"
            if best and best[1] > 0:
                vs_peer = f"{an.overhead[key] / best[1]:.2f}× {best[0]}"
            rows.append(
                [
                    name,
                    f"{scn} {S.SCENARIO_NAMES[scn]}",
                    fmt(cells[key].median),
                    signed(an.overhead[key]),
                    f"{cells[key].noise * 100:.0f}%",
                    rel,
                    vs_peer,
                ]
            )
    return rows


STORE_HEADER = [
    "system",
    "scenario",
    "µs",
    "overhead µs",
    "noise",
    "vs cookie mode",
    "vs best cookie peer",
]


def machine_info() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str] = {}
    for dist in (
        "wsgisession-aead",
        "cryptography",
        "Beaker",
        "Flask",
        "Werkzeug",
        "itsdangerous",
        "Django",
        "pyramid",
        "WebOb",
        "redis",
        "gunicorn",
        "matplotlib",
    ):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "not installed"
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        versions["OpenSSL (cryptography)"] = backend.openssl_version_text()
    except Exception:  # pragma: no cover - informational only
        pass
    redis_version = "not on PATH"
    exe = shutil.which("redis-server")
    if exe:
        try:
            redis_version = subprocess.run(
                [exe, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    import wsgisession

    try:
        revision = subprocess.run(
            ["git", "-C", ROOT, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = "unknown"
    return {
        "revision": revision,
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "versions": versions,
        "redis_server": redis_version,
        "wsgisession_path": os.path.dirname(wsgisession.__file__),
    }


# -- plot --------------------------------------------------------------------------------


def plot(
    path: str,
    systems: dict[str, S.System],
    cells: dict[str, Cell],
    an: Analysis,
    machine: dict[str, Any],
    repeats: int,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [
        n
        for n in ["wsgisession", "wsgisession-memory", "wsgisession-redis", *S.PEERS]
        if n in systems
    ] + ["codec-floor"]
    colors = {
        "wsgisession": "#d62728",
        "wsgisession-memory": "#ff9896",
        "wsgisession-redis": "#e377c2",
        "beaker-enc": "#1f77b4",
        "beaker-signed": "#aec7e8",
        "flask": "#2ca02c",
        "django": "#9467bd",
        "pyramid": "#ff7f0e",
        "pyramid-noreissue": "#ffbb78",
        "codec-floor": "#7f7f7f",
    }
    floor_value = 0.1
    fig, ax = plt.subplots(figsize=(12, 5.5))
    width = 0.8 / len(series)
    for i, name in enumerate(series):
        xs, ys = [], []
        for j, scn in enumerate(S.SCENARIOS):
            key = f"{name}:{scn}"
            if key not in an.overhead:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(max(an.overhead[key], floor_value))
        if xs:
            ax.bar(
                xs,
                ys,
                width,
                label=name,
                color=colors.get(name),
                hatch="//" if name == "codec-floor" else None,
                edgecolor="white",
            )
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor_value)
    ax.set_xticks(range(len(S.SCENARIOS)))
    ax.set_xticklabels([f"{s} {S.SCENARIO_NAMES[s]}" for s in S.SCENARIOS])
    ax.set_ylabel("session overhead per request, µs (log; ≤0.1 drawn at 0.1)")
    ax.set_title(
        f"Session overhead over each framework's no-session floor — median of {repeats}"
        f" interleaved repeats\n{machine['cpu']}, {machine['logical_cpus']} CPUs, "
        f"Python {machine['python']}, cryptography "
        f"{machine['versions'].get('cryptography')}",
        fontsize=10,
    )
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.07))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- --memory ----------------------------------------------------------------------------


def memory_check(
    systems: dict[str, S.System], requests: int
) -> tuple[list[dict[str, Any]], list[str]]:
    import tracemalloc

    from wsgisession import MemoryStore, SessionMiddleware

    results: list[dict[str, Any]] = []
    problems: list[str] = []
    warm = max(1000, requests // 100)
    targets = [
        (n, scn)
        for n in ("wsgisession", "wsgisession-memory")
        if n in systems
        for scn in systems[n].scenarios
    ]
    for name, scn in targets:
        system = systems[name]
        run = wsgi_runner(system.app, environ_template(f"/{scn}", system.cookies.get(scn)))
        run(warm)
        gc.collect()
        tracemalloc.start()
        try:
            run(warm)
            gc.collect()
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            t0 = time.perf_counter()
            run(requests)
            elapsed = time.perf_counter() - t0
            run_peak = tracemalloc.get_traced_memory()[1]
            gc.collect()
            current = tracemalloc.get_traced_memory()[0]
            # One request at a time: its transient peak, and the objects it leaves in
            # reference cycles (freed only by the cyclic GC, not by refcounting).
            peaks, cyclic = [], []
            gc.disable()
            try:
                for _ in range(100):
                    gc.collect(0)
                    before = tracemalloc.get_traced_memory()[0]
                    tracemalloc.reset_peak()
                    run(1)
                    peaks.append(tracemalloc.get_traced_memory()[1] - before)
                    cyclic.append(gc.collect(0))
            finally:
                gc.enable()
        finally:
            tracemalloc.stop()
        growth = current - base
        ok = growth <= MEMORY_GROWTH_BOUND
        results.append(
            {
                "system": name,
                "scenario": scn,
                "requests": requests,
                "baseline_bytes": base,
                "end_bytes": current,
                "growth_bytes": growth,
                "peak_per_request_bytes": int(statistics.median(peaks)),
                "cyclic_garbage_objects_per_request": int(statistics.median(cyclic)),
                "peak_during_run_bytes": run_peak - base,
                "ok": ok,
                "seconds": round(elapsed, 2),
            }
        )
        if not ok:
            problems.append(
                f"{name}:{scn}: traced memory grew by {growth} bytes over "
                f"{requests} requests (bound {MEMORY_GROWTH_BOUND})"
            )
    # MemoryStore stays within max_entries: 5,000 new sessions into a 1,000-entry store.
    limit, total = 1000, 5000
    store = MemoryStore(max_entries=limit)
    app = SessionMiddleware(S.session_app("session"), secret_keys=[S.SECRET], store=store)
    run = wsgi_runner(app, environ_template("/S4", None))
    gc.collect()
    tracemalloc.start()
    try:
        run(limit)
        gc.collect()
        at_limit = tracemalloc.get_traced_memory()[0]
        sizes = []
        for _ in range((total - limit) // 500):
            run(500)
            sizes.append(len(store))
        gc.collect()
        at_end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    bound = max(MEMORY_GROWTH_BOUND, at_limit // 10)
    ok = max(sizes) <= limit and at_end - at_limit <= bound
    results.append(
        {
            "system": "MemoryStore(max_entries=1000)",
            "scenario": "S4 x 5000",
            "requests": total,
            "entries": len(store),
            "max_entries_seen": max(sizes),
            "baseline_bytes": at_limit,
            "end_bytes": at_end,
            "growth_bytes": at_end - at_limit,
            "ok": ok,
        }
    )
    if not ok:
        problems.append(
            f"MemoryStore(max_entries={limit}) after {total} new sessions: "
            f"{max(sizes)} entries, memory {at_limit} -> {at_end} bytes"
        )
    return results, problems


# -- --gunicorn --------------------------------------------------------------------------


def _client_process(
    port: int,
    path: str,
    cookie: str | None,
    start_at: float,
    seconds: float,
    threads: int,
    expected: bytes | None,
    out: Any,
) -> None:
    """One client process: ``threads`` keep-alive connections from ``start_at`` on."""
    counts = [0] * threads
    errors = [0] * threads
    wrong = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    headers = {"Cookie": cookie} if cookie else {}
    deadline = start_at + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        lat = latencies[i]
        while time.time() < start_at:
            time.sleep(0.001)
        while True:
            t0 = time.perf_counter()
            if time.time() >= deadline:
                break
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or (expected is not None and body != expected):
                    wrong[i] += 1
                counts[i] += 1
                lat.append(time.perf_counter() - t0)
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
        conn.close()

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds + 60)
    out.put(
        {
            "requests": sum(counts),
            "errors": sum(errors),
            "wrong": sum(wrong),
            "latencies": [x for lat in latencies for x in lat[:: max(1, len(lat) // 2000)]],
        }
    )


def load_python(
    port: int,
    path: str,
    cookie: str | None,
    seconds: float,
    connections: int,
    expected: bytes | None,
    procs: int,
) -> dict[str, Any]:
    """A bounded load: ``connections`` keep-alive http.client connections, spread over
    ``procs`` client processes (threads within each, so the GIL does not cap the client),
    for ``seconds``; every answer is checked."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 0.3
    per = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
    workers = [
        ctx.Process(
            target=_client_process, args=(port, path, cookie, start_at, seconds, n, expected, out)
        )
        for n in per
        if n
    ]
    for w in workers:
        w.start()
    parts = [out.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join(30)
    total = sum(p["requests"] for p in parts)
    lat = sorted(x for p in parts for x in p["latencies"])

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    return {
        "requests": total,
        "errors": sum(p["errors"] for p in parts),
        "wrong": sum(p["wrong"] for p in parts),
        "seconds": seconds,
        "rps": total / seconds,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
    }


def load_wrk(
    port: int, path: str, cookie: str | None, seconds: float, connections: int
) -> dict[str, Any]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float("nan")
    non2xx = 0
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        if "Non-2xx" in line:
            non2xx = int(line.split()[-1])
    return {"rps": rps, "errors": 0, "wrong": non2xx, "raw": out}


def start_gunicorn(wclass: str, wargs: list[str], appname: str, env: dict[str, str]) -> Any:
    """Start gunicorn on a free loopback port; return ``(proc, port, log)`` once it answers."""
    port = free_port()
    log = tempfile.TemporaryFile()
    cmd = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *wargs,
        "--chdir", HERE, "--log-level", "warning", "--keep-alive", "5",
        f"gunicorn_app:{appname}",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")[-2000:]
            log.close()
            raise Failure(f"gunicorn {wclass} {appname} exited: {output}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/S0")
            if conn.getresponse().read() == b"ok":
                conn.close()
                return proc, port, log
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_process(proc, f"gunicorn {wclass} {appname}")
            log.close()
            raise Failure(f"gunicorn {wclass} {appname} did not answer in 30 s")
        time.sleep(0.1)


def gunicorn_bench(
    seconds: float, connections: int, tool: str, procs: int, rounds: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """requests/s of ``plain`` and ``with_session`` under gunicorn sync and gthread workers.

    Per worker class both servers run side by side (an idle server costs nothing) and
    the measurements alternate between them, in ``rounds`` rounds with a shuffled order,
    so a slow spell of the machine hits both; the median per cell is reported.
    """
    import secrets

    problems: list[str] = []
    results: list[dict[str, Any]] = []
    secret = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "WSGISESSION_BENCH_SECRET": secret,
        "PYTHONPATH": os.pathsep.join([HERE, ROOT, os.environ.get("PYTHONPATH", "")]),
    }
    workers = {
        "sync": ["-k", "sync", "-w", "2"],
        "gthread": ["-k", "gthread", "-w", "2", "--threads", "4"],
    }
    # The servers share this secret: seed the cookie in-process (S2 data also serves S1).
    from wsgisession import SessionMiddleware

    seeder = SessionMiddleware(S.session_app("session"), secret_keys=[secret])
    cookie = call(seeder, "/seed/S2", None).cookie_pairs()
    if cookie is None:
        raise Failure("gunicorn: the seed request set no cookie")
    rng = random.Random(7)
    for wclass, wargs in workers.items():
        servers: dict[str, tuple[Any, int, Any]] = {}
        try:
            for appname in ("plain", "with_session"):
                servers[appname] = start_gunicorn(wclass, wargs, appname, env)
            samples: dict[tuple[str, str], list[float]] = {}
            errors: dict[tuple[str, str], int] = {}
            for _ in range(rounds):
                jobs = [(scn, app) for scn in ("S0", "S1", "S2") for app in servers]
                rng.shuffle(jobs)
                for scn, appname in jobs:
                    port = servers[appname][1]
                    # Both servers get the same Cookie bytes; the floor's S2 counter keeps
                    # counting (one dict per worker).
                    this_cookie = None if scn == "S0" else cookie
                    expected = None if appname == "plain" and scn == "S2" else S.EXPECTED_BODY[scn]
                    # One checked request first, whatever the load tool.
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", f"/{scn}", headers={"Cookie": this_cookie or ""})
                    resp = conn.getresponse()
                    body = resp.read()
                    conn.close()
                    if resp.status != 200 or (expected is not None and body != expected):
                        raise Failure(
                            f"gunicorn {wclass} {appname} {scn}: {resp.status} {body[:80]!r}"
                        )
                    if tool == "wrk":
                        r = load_wrk(port, f"/{scn}", this_cookie, seconds, connections)
                    else:
                        load_python(
                            port, f"/{scn}", this_cookie, min(0.3, seconds), connections,
                            expected, procs,
                        )  # fmt: skip
                        r = load_python(
                            port, f"/{scn}", this_cookie, seconds, connections, expected, procs
                        )
                    samples.setdefault((appname, scn), []).append(r["rps"])
                    errors[(appname, scn)] = (
                        errors.get((appname, scn), 0) + r["errors"] + r["wrong"]
                    )
                    if r["wrong"]:
                        problems.append(
                            f"gunicorn {wclass} {appname} {scn}: {r['wrong']} wrong responses"
                        )
            for (appname, scn), rps in sorted(samples.items()):
                med = statistics.median(rps)
                noise = (max(rps) - min(rps)) / min(rps) if min(rps) > 0 else 0.0
                results.append(
                    {
                        "worker": wclass, "app": appname, "scenario": scn, "tool": tool,
                        "rps": med, "samples_rps": rps, "noise": noise,
                        "errors": errors[(appname, scn)],
                    }
                )  # fmt: skip
                print(
                    f"  gunicorn {wclass:7s} {appname:12s} {scn}: {med:8.0f} req/s "
                    f"(noise {noise * 100:.0f}%, errors {errors[(appname, scn)]})",
                    flush=True,
                )
        finally:
            for appname, (proc, _port, log) in servers.items():
                stop_process(proc, f"gunicorn {wclass} {appname}")
                log.close()
    return results, problems


# -- --profile ---------------------------------------------------------------------------


def profile(systems: dict[str, S.System], spec: str, requests: int) -> None:
    name, _, scn = spec.partition(":")
    if name not in systems or scn not in systems[name].scenarios:
        raise SystemExit(f"run.py: --profile {spec}: no such cell")
    system = systems[name]
    run = wsgi_runner(system.app, environ_template(f"/{scn}", system.cookies.get(scn)))
    run(1000)
    prof = cProfile.Profile()
    prof.enable()
    run(requests)
    prof.disable()
    print(f"\n== cProfile of {spec}, {requests} requests (sorted by tottime)")
    pstats.Stats(prof, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(30)


def breakdown(systems: dict[str, S.System], spec: str, requests: int) -> None:
    """cProfile time by owner (framework, adapter, core) for a cell, its floor and, for
    an adapter, the bare middleware over ``bare``: see ``breakdown.py``."""
    name, _, scn = spec.partition(":")
    if name not in systems or scn not in systems[name].scenarios:
        raise SystemExit(f"run.py: --breakdown {spec}: no such cell")

    def groups(sys_name: str) -> dict[str, float]:
        system = systems[sys_name]
        template = environ_template(f"/{scn}", system.cookies.get(scn))
        return B.profile_groups(wsgi_runner(system.app, template), requests)

    system = systems[name]
    rows = [(name, groups(name))]
    if system.floor:
        rows.append((system.floor, groups(system.floor)))
        rows.append((f"{name} - {system.floor}", B.difference(rows[0][1], rows[1][1])))
    bare = I.BARE_MIDDLEWARE
    if name in I.ADAPTER_PEERS and bare in systems and systems[bare].floor:
        ours = groups(bare)
        floor = groups(systems[bare].floor)  # type: ignore[arg-type]
        rows.append((f"{bare} - {systems[bare].floor}", B.difference(ours, floor)))
        rows.append(("adapter over the middleware", B.difference(rows[2][1], rows[-1][1])))
    print(f"\n== Breakdown of {spec}: µs per request of own time (cProfile), {requests} requests")
    print(B.report(rows))


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="wsgisession vs Beaker, Flask, Django and Pyramid: in-process WSGI "
        "overhead per request, ratios to the best peer and to the codec floor, targets of "
        "issue 5. Exit 0 unless a system misbehaved (timing misses never fail).",
    )
    p.add_argument(
        "--time",
        type=float,
        default=0.5,
        metavar="S",
        help="seconds per cell and repeat (default 0.5)",
    )
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default 5)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke mode: ~20 ms per cell, 1 repeat, every system and scenario, "
        "sanity checks; with --memory/--gunicorn also small counts",
    )
    p.add_argument("--json", metavar="PATH", help="write every number to PATH")
    p.add_argument("--plot", metavar="PATH.png", help="draw overhead per scenario (matplotlib)")
    p.add_argument("--markdown", metavar="PATH", help="write the result tables as Markdown")
    p.add_argument(
        "--memory",
        action="store_true",
        help="tracemalloc check: 100,000 requests per wsgisession scenario, no "
        "growth; MemoryStore(max_entries=1000) bounded after 5,000 new sessions",
    )
    p.add_argument(
        "--memory-requests",
        type=int,
        default=None,
        metavar="N",
        help="requests per scenario for --memory (default 100000, --quick 5000)",
    )
    p.add_argument(
        "--gunicorn",
        action="store_true",
        help="requests/s of the same app under gunicorn sync and gthread workers, "
        "with and without the middleware",
    )
    p.add_argument(
        "--gunicorn-seconds",
        type=float,
        default=None,
        metavar="S",
        help="load per measurement (default 2, --quick 0.5)",
    )
    p.add_argument(
        "--gunicorn-rounds",
        type=int,
        default=None,
        metavar="N",
        help="alternating rounds per cell, median reported (default 3, --quick 1)",
    )
    p.add_argument(
        "--gunicorn-connections",
        type=int,
        default=8,
        metavar="N",
        help="concurrent client connections (default 8)",
    )
    p.add_argument(
        "--client-procs",
        type=int,
        default=2,
        metavar="N",
        help="processes of the Python load generator (default 2)",
    )
    p.add_argument(
        "--load-tool",
        choices=("auto", "python", "wrk"),
        default="auto",
        help="load generator (auto: wrk if on PATH, else the threaded Python client)",
    )
    p.add_argument(
        "--no-timing",
        action="store_true",
        help="skip the in-process timing (with --memory/--gunicorn/--profile)",
    )
    p.add_argument("--systems", metavar="A,B", help="only these systems (floors are added)")
    p.add_argument(
        "--redis-url",
        metavar="URL",
        help="use this Redis instead of starting a private redis-server",
    )
    p.add_argument("--no-redis", action="store_true", help="skip wsgisession-redis")
    p.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="SYSTEM:SCENARIO",
        help="cProfile this cell (e.g. wsgisession:S1); repeatable",
    )
    p.add_argument("--profile-requests", type=int, default=20000, metavar="N")
    p.add_argument(
        "--breakdown",
        action="append",
        default=[],
        metavar="SYSTEM:SCENARIO",
        help="cProfile time by owner (framework, adapter, core) against the floor; repeatable",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the cell order shuffle")
    args = p.parse_args(argv)
    if args.quick:
        if "--time" not in (argv if argv is not None else sys.argv):
            args.time = 0.02
        if "--repeats" not in (argv if argv is not None else sys.argv):
            args.repeats = 1
    if args.time <= 0 or args.repeats < 1:
        p.error("--time must be > 0 and --repeats >= 1")
    if args.memory_requests is None:
        args.memory_requests = 5000 if args.quick else 100_000
    if args.gunicorn_seconds is None:
        args.gunicorn_seconds = 0.5 if args.quick else 2.0
    if args.gunicorn_rounds is None:
        args.gunicorn_rounds = 1 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wall = time.perf_counter()
    redis = RedisServer()
    collector = WarningCollector()
    logging.getLogger("wsgisession").addHandler(collector)
    errors: list[str] = []
    report: dict[str, Any] = {"config": {k: v for k, v in vars(args).items()}}
    try:
        return _main(args, redis, collector, errors, report, wall)
    except Failure as exc:
        errors.append(str(exc))
    except Exception:
        errors.append(traceback.format_exc())
    finally:
        redis.stop()
    print("\nFAILED:\n  " + "\n  ".join(errors))
    if args.json:
        report["errors"] = errors
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2, default=str)
    return 1


def _main(
    args: argparse.Namespace,
    redis: RedisServer,
    collector: WarningCollector,
    errors: list[str],
    report: dict[str, Any],
    wall: float,
) -> int:
    machine = machine_info()
    report["machine"] = machine
    print(
        f"machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, {machine['platform']}"
    )
    print(
        "versions: Python "
        + machine["python"]
        + ", "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    )
    print(f"wsgisession from {machine['wsgisession_path']} (revision {machine['revision']})")

    systems, skipped = build_systems(args, redis)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    report["skipped"] = skipped
    report["systems"] = {
        n: {
            "floor": s.floor,
            "kind": s.kind,
            "label": s.label,
            "version": s.version,
            "notes": s.notes,
            "scenarios": list(s.scenarios),
        }
        for n, s in systems.items()
    }
    seed_cookies(systems)
    report["cookies"] = {
        n: {scn: len(c or "") for scn, c in s.cookies.items()} for n, s in systems.items()
    }

    checks: list[Check] = []
    if not args.no_timing:
        want_codec = (
            not args.systems
            or "codec-floor" in args.systems.split(",")
            or "wsgisession" in args.systems.split(",")
        )
        codec = S.CodecFloor() if want_codec else None
        if codec is not None:
            # The floor's token must be the wsgisession token's size: same plaintext.
            for scn in ("S1", "S3"):
                _, once = codec.runner(scn)
                if once() != 42:
                    raise Failure(f"codec floor {scn}: the round trip lost the data")
                ours = systems.get("wsgisession")
                if ours is not None and ours.cookies.get(scn):
                    ours_len = len(ours.cookies[scn].split("=", 1)[1])  # type: ignore[union-attr]
                    floor_len = len(codec.seal(codec.payload(S.SEED_DATA[scn] or {})))
                    if ours_len != floor_len:
                        print(
                            f"note: codec floor token for {scn} is {floor_len} characters, "
                            f"wsgisession's cookie value {ours_len}: the plaintexts differ"
                        )
        cells = make_cells(systems, codec)
        elapsed = time_cells(cells, systems, args.time, args.repeats, args.seed)
        print(f"timing: {elapsed:.0f} s for {len(cells)} cells x {args.repeats} repeats")
        for system in systems.values():
            checks += check_system(system)
        an = analyse(systems, cells)
        if redis.url:
            an.round_trips = I.round_trips(systems, call, redis.url)
        print_report(args, systems, cells, an, checks, machine)
        report["cells"] = {
            k: {
                "system": c.system,
                "scenario": c.scenario,
                "n": c.n,
                "samples_us": c.samples_us,
                "median_us": c.median,
                "noise": c.noise,
                "overhead_us": an.overhead.get(k),
                "overhead_per_repeat_us": an.overhead_per_repeat.get(k),
            }
            for k, c in cells.items()
        }
        report["best_peer"] = {
            scn: {"system": p, "overhead_us": v} for scn, (p, v) in an.best_peer.items()
        }
        report["targets"] = an.targets
        report["integration_targets"] = an.integration_targets
        report["round_trips"] = an.round_trips
        report["machine_speed"] = an.speed
        report["overhead_from_minima_us"] = an.overhead_min
        report["sanity"] = [vars(c) | {"body": c.body.decode(errors="replace")} for c in checks]
        report["timing_seconds"] = elapsed
        if args.plot:
            plot(args.plot, systems, cells, an, machine, args.repeats)
            print(f"plot written to {args.plot}")
        if args.markdown:
            write_markdown(args.markdown, systems, cells, an, checks)
            print(f"markdown written to {args.markdown}")
        for c in checks:
            errors += [f"{c.system}:{c.scenario}: {p}" for p in c.problems]

    for spec in args.profile:
        profile(systems, spec, args.profile_requests)
    for spec in args.breakdown:
        breakdown(systems, spec, args.profile_requests)

    if args.memory:
        print(f"\n== Memory (tracemalloc): {args.memory_requests} requests per scenario")
        results, problems = memory_check(systems, args.memory_requests)
        for r in results:
            extra = (
                f", peak per request {r['peak_per_request_bytes']} B, "
                f"{r['cyclic_garbage_objects_per_request']} objects in cycles per request, "
                f"peak during the run {r['peak_during_run_bytes']} B"
                if "peak_per_request_bytes" in r
                else f", {r['entries']} entries (max seen {r['max_entries_seen']})"
            )
            print(
                f"  {r['system']:28s} {r['scenario']:10s} growth {r['growth_bytes']:>7} B "
                f"(baseline {r['baseline_bytes']} B){extra}  {'OK' if r['ok'] else 'GROWTH'}"
            )
        report["memory"] = results
        errors += problems

    if args.gunicorn:
        tool = args.load_tool
        if tool == "auto":
            tool = "wrk" if shutil.which("wrk") else "python"
        print(
            f"\n== gunicorn on 127.0.0.1 ({tool} load, {args.gunicorn_connections} connections"
            + (f" in {args.client_procs} processes" if tool == "python" else "")
            + f", {args.gunicorn_seconds:g} s per measurement, {args.gunicorn_rounds} alternating"
            " rounds, median; 2 workers per server)"
        )
        results, problems = gunicorn_bench(
            args.gunicorn_seconds,
            args.gunicorn_connections,
            tool,
            args.client_procs,
            args.gunicorn_rounds,
        )
        print_gunicorn(results)
        report["gunicorn"] = results
        errors += problems

    if collector.records:
        errors += [f"wsgisession logged a warning: {m}" for m in collector.records[:10]]
    report["errors"] = errors
    report["wall_seconds"] = time.perf_counter() - wall
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2, default=str)
        print(f"json written to {args.json}")
    print(f"\nwall time: {report['wall_seconds']:.0f} s")
    if errors:
        print("\nFAILED (wrong behaviour or errors):\n  " + "\n  ".join(errors))
        return 1
    print("OK: every system behaved (timing misses, if any, do not fail the run)")
    return 0


def print_report(
    args: argparse.Namespace,
    systems: dict[str, S.System],
    cells: dict[str, Cell],
    an: Analysis,
    checks: list[Check],
    machine: dict[str, Any],
) -> None:
    header = ["system", "floor", *(f"{s} {S.SCENARIO_NAMES[s]}" for s in S.SCENARIOS)]
    print(f"\n== µs per request: median of {args.repeats} (overhead over the floor) noise")
    print(render(header, results_rows(systems, cells, an, False), False))
    rows = store_rows(cells, an)
    if rows:
        print("\n== Store mode (floor: bare)")
        print(render(STORE_HEADER, rows, False))
    print("\n== Targets (issue 5): overhead ratios, same run")
    print(render(TARGET_HEADER, targets_rows(an), False))
    line = speed_line(an)
    if line:
        print(line)
    missed = [t for t in an.targets if not t["pass"]]
    if missed:
        print(
            "MISSED: "
            + "; ".join(
                f"{t['scenario']} {t['target']}: {fmt(t['value'])}"
                f"{' µs' if t['unit'] == 'us' else '×'}"
                for t in missed
            )
        )
    else:
        print("every target met")
    if an.integration_targets:
        print("\n== Framework adapters and store mode (issues 13, 15): same run")
        print(render(INTEGRATION_HEADER, integration_rows(an), False))
    if an.round_trips:
        print("\n== Redis round trips per request (server statistics)")
        print(render(["system", "S1 read", "S2 write"], round_trip_rows(an), False))
    print("\n== Sanity (after timing): Set-Cookie? / Cookie bytes / Set-Cookie bytes / body")
    print(render(["system", *S.SCENARIOS, "verdict"], sanity_rows(checks), False))


INTEGRATION_HEADER = [
    "system",
    "scn",
    "target",
    "overhead",
    "vs",
    "its overhead",
    "ratio (per repeat)",
    "over the bare middleware",
    "verdict",
]


def integration_rows(an: Analysis) -> list[list[str]]:
    rows = []
    for t in an.integration_targets:
        over = t.get("over_bare_us")
        over_text = "—" if over is None else f"{signed(over)} µs"
        if t["unit"] == "us":
            scaled = t.get("at_anchor_speed")
            value = f"{fmt(t['value'])} µs"
            if scaled is not None:
                value += f" ({fmt(scaled)} at anchor speed)"
            reps = f"{fmt(t['range'][0])}–{fmt(t['range'][1])} µs"
            rows.append(
                [t["group"], "S0", t["target"], value, "floor", "—", reps, over_text, verdict(t)]
            )
        else:
            ratio = f"{t['value']:.2f}× ({t['range'][0]:.2f}–{t['range'][1]:.2f})"
            rows.append(
                [
                    t["group"],
                    t["scenario"],
                    t["target"],
                    f"{fmt(t['ours_us'])} µs",
                    t["peer"],
                    f"{fmt(t['peer_us'])} µs",
                    ratio,
                    over_text,
                    "PASS" if t["pass"] else "MISS",
                ]
            )
    return rows


def round_trip_rows(an: Analysis) -> list[list[str]]:
    return [
        [name, *(f"{per.get(scn, float('nan')):.2f}" for scn in S.STORE_SCENARIOS)]
        for name, per in an.round_trips.items()
    ]


def print_gunicorn(results: list[dict[str, Any]]) -> None:
    print(render(GUNICORN_HEADER, gunicorn_rows(results), False))


GUNICORN_HEADER = [
    "worker", "scenario", "req/s plain", "noise", "req/s with session", "noise", "with/plain",
]  # fmt: skip


def gunicorn_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    table: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in results:
        table.setdefault((r["worker"], r["scenario"]), {})[r["app"]] = r
    rows = []
    for (worker, scn), per in table.items():
        plain, sess = per.get("plain"), per.get("with_session")
        if not plain or not sess:
            continue
        rows.append(
            [
                worker,
                f"{scn} {S.SCENARIO_NAMES[scn]}",
                f"{plain['rps']:.0f}",
                f"{plain['noise'] * 100:.0f}%",
                f"{sess['rps']:.0f}",
                f"{sess['noise'] * 100:.0f}%",
                f"{sess['rps'] / plain['rps']:.2f}",
            ]
        )
    return rows


def write_markdown(
    path: str,
    systems: dict[str, S.System],
    cells: dict[str, Cell],
    an: Analysis,
    checks: list[Check],
) -> None:
    header = ["system", "floor", *(f"{s} {S.SCENARIO_NAMES[s]}" for s in S.SCENARIOS)]
    parts = [
        "### µs per request: median (**overhead over the floor**) noise\n",
        render(header, results_rows(systems, cells, an, True), True, "ll" + "r" * 5),
    ]
    rows = store_rows(cells, an)
    if rows:
        parts += ["\n### Store mode (floor: bare)\n", render(STORE_HEADER, rows, True, "llrrrrr")]
    parts += ["\n### Targets\n", render(TARGET_HEADER, targets_rows(an), True, "llrlrrrrl")]
    line = speed_line(an)
    if line:
        parts += ["\n" + line + "\n"]
    if an.integration_targets:
        parts += [
            "\n### Framework adapters and store mode (same run)\n",
            render(INTEGRATION_HEADER, integration_rows(an), True),
        ]
    if an.round_trips:
        parts += [
            "\n### Redis round trips per request\n",
            render(["system", "S1 read", "S2 write"], round_trip_rows(an), True),
        ]
    parts += [
        "\n### Sanity (after timing): Set-Cookie? / Cookie bytes / Set-Cookie bytes / body\n",
        render(["system", *S.SCENARIOS, "verdict"], sanity_rows(checks), True),
    ]
    with open(path, "w") as fh:
        fh.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    sys.exit(main())
