"""Real gunicorn on loopback: start, wait for readiness, always stop.

``gunicorn(name, secret_keys, ...)`` (a fixture) starts ``python -m gunicorn
tests.deploy.wsgi_app:app`` on a free 127.0.0.1 port and returns a :class:`Gunicorn`.
Every process the test started is stopped when the test ends, whatever happened
(SIGTERM to the master, then SIGKILL to its whole process group after 5 s). Each
run's output (gunicorn's error log and an access log naming the worker pid) goes to
a file; when a test fails, every log of that test is attached to the report.

``Client`` is a browser reduced to what the tests need: it carries the session cookie
by hand, one ``Connection: close`` request at a time, so every request is a new TCP
connection that any worker may accept; ``submit`` fills in a form's CSRF token.

``redis_server``/``redis_url`` are the store tests' fixtures (a real redis-server on a
free loopback port, flushed per test), imported so the deploy tests share them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any

import pytest

from tests.stores.conftest import free_port, redis_server, redis_url  # noqa: F401
from wsgisession.codec import TokenCodec, b64decode

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.deploy.wsgi_app:app"
COOKIE = "session"
READY_TIMEOUT = 15.0
REQUEST_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
VIEWS_RE = re.compile(rb"<span id=views>(\d+)</span>")
CSRF_RE = re.compile(rb'name="csrf_token" value="([A-Za-z0-9_-]+)"')


# -- HTTP ---------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"several {name} headers: {values}"
        return values[0] if values else None

    @property
    def set_cookies(self) -> list[str]:
        """Our cookie's ``Set-Cookie`` header values (other cookies ignored)."""
        return [
            v
            for k, v in self.headers
            if k.lower() == "set-cookie" and v.split("=", 1)[0].strip() == COOKIE
        ]

    @property
    def pid(self) -> int:
        value = self.header("X-Worker-Pid")
        assert value is not None, f"no X-Worker-Pid header in {self.headers}"
        return int(value)

    @property
    def json(self) -> dict[str, Any]:
        assert self.status == 200, (self.status, self.body[:500])
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def views(self) -> int:
        assert self.status == 200, (self.status, self.body[:500])
        match = VIEWS_RE.search(self.body)
        assert match is not None, self.body[:500]
        return int(match.group(1))

    @property
    def csrf_token(self) -> str:
        """The CSRF token in the page's form (the demo's forms carry one each)."""
        assert self.status == 200, (self.status, self.body[:500])
        (token,) = CSRF_RE.findall(self.body)
        return token.decode("ascii")


def http(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    form: dict[str, str] | None = None,
    timeout: float = REQUEST_TIMEOUT,
    host: str | None = None,
) -> Reply:
    """One request on a fresh connection (``Connection: close``), fully read;
    ``host`` replaces the ``Host`` header."""
    headers = {"Connection": "close"}
    if host is not None:
        headers["Host"] = host
    body = None
    if token is not None:
        headers["Cookie"] = f"{COOKIE}={token}"
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


def kid_of(token: str) -> bytes:
    """The key id a token was sealed with (bytes 1..4 after the version byte)."""
    raw = b64decode(token)
    assert raw[0] == 1, f"token version {raw[0]}"
    return raw[1:5]


def primary_kid(secret_keys: Sequence[str]) -> bytes:
    return TokenCodec(list(secret_keys)).primary_kid


@dataclass
class Client:
    """A user agent that carries the session cookie by hand."""

    token: str | None = None
    history: list[Reply] = field(default_factory=list)

    def apply(self, reply: Reply) -> None:
        cookies = reply.set_cookies
        assert len(cookies) <= 1, f"several Set-Cookie for {COOKIE}: {cookies}"
        if not cookies:
            return
        pair, _, attributes = cookies[0].partition(";")
        value = pair.split("=", 1)[1].strip()
        attrs = [a.strip().lower() for a in attributes.split(";")]
        if not value or "max-age=0" in attrs:
            self.token = None
        else:
            self.token = value

    def request(
        self,
        server: Gunicorn,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        host: str | None = None,
    ) -> Reply:
        reply = http(server.port, method, path, token=self.token, form=form, host=host)
        self.apply(reply)
        self.history.append(reply)
        return reply

    def submit(
        self,
        server: Gunicorn,
        path: str,
        form: dict[str, str] | None = None,
        *,
        form_from: Gunicorn | None = None,
        host: str | None = None,
    ) -> Reply:
        """What a browser does with the demo's forms: GET the form (from ``form_from``,
        default ``server``), then POST it to ``server`` with its CSRF token."""
        token = self.get(form_from or server, path).csrf_token
        return self.request(server, "POST", path, {"csrf_token": token, **(form or {})}, host)

    def get(self, server: Gunicorn, path: str) -> Reply:
        return self.request(server, "GET", path)

    def visit(self, server: Gunicorn) -> int:
        """GET / (the demo's view counter) and return the count it shows."""
        return self.get(server, "/").views

    def whoami(self, server: Gunicorn) -> dict[str, Any]:
        return self.get(server, "/whoami").json


# -- gunicorn -----------------------------------------------------------------------


def child_pids(pid: int) -> set[int]:
    """Live direct children of ``pid`` (Linux /proc)."""
    children = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            children.add(int(entry.name))
    return children


def _has_option(flag: str) -> bool:
    """Does the installed gunicorn know this command-line flag?"""
    from gunicorn.config import KNOWN_SETTINGS

    return any(flag in setting.cli for setting in KNOWN_SETTINGS if setting.cli)


def _stat(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` fields after the command name (state, ppid, pgrp, ...)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_group(pid: int) -> int | None:
    """The process group of a live (non-zombie) ``pid``, or ``None``."""
    fields = _stat(pid)
    return None if fields is None or fields[0] == "Z" else int(fields[2])


class Gunicorn:
    """One gunicorn "host": a master with its workers, restartable on the same port."""

    def __init__(
        self,
        name: str,
        secret_keys: Sequence[str],
        log_dir: Path,
        *,
        store: str = "cookie",
        worker_class: str = "sync",
        workers: int = 3,
        threads: int = 4,
        preload: bool = False,
    ) -> None:
        self.name = name
        self.secret_keys = list(secret_keys)
        self.store = store
        self.worker_class = worker_class
        self.workers = workers
        self.threads = threads
        self.preload = preload
        self.log_dir = log_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def __repr__(self) -> str:
        return f"<Gunicorn {self.name} :{self.port} {self.worker_class}>"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def worker_pids(self) -> set[int]:
        return child_pids(self.pid)

    @contextlib.contextmanager
    def pinned_to(self, worker: int) -> Iterator[None]:
        """Only ``worker`` can accept connections inside the block: the others are
        paused (SIGSTOP, as a worker busy elsewhere) and resumed (SIGCONT) after.

        The kernel decides which idle worker accepts a connection and may favour one
        for a long run; this makes "served by several workers" deterministic."""
        others = self.worker_pids() - {worker}
        assert worker in self.worker_pids(), f"{worker} is not a worker of {self}"
        stopped = []
        try:
            for pid in others:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            deadline = time.monotonic() + READY_TIMEOUT
            while any((_stat(pid) or ["T"])[0] not in "Tt" for pid in stopped):
                assert time.monotonic() < deadline, "workers did not stop"
                time.sleep(0.005)
            yield
        finally:
            for pid in stopped:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--graceful-timeout",
            "2",
            "--timeout",
            "20",
            "--chdir",
            str(ROOT),
            "--access-logfile",
            "-",
            "--access-logformat",
            '%(h)s "%(r)s" %(s)s pid=%(p)s',
        ]
        if self.worker_class == "gthread":
            cmd += ["--threads", str(self.threads)]
        if self.preload:
            cmd.append("--preload")
        if _has_option("--no-control-socket"):
            # Recent gunicorn (27 here) opens a control socket at ~/.gunicorn/gunicorn.ctl,
            # one path for every instance: the test servers must not share one.
            cmd.append("--no-control-socket")
        return [*cmd, APP]

    def start(self) -> Gunicorn:
        assert self.process is None, f"{self.name} is already running"
        env = dict(os.environ)
        env["WSGISESSION_SECRET_KEYS"] = ",".join(self.secret_keys)
        env["WSGISESSION_STORE"] = self.store
        env["PYTHONUNBUFFERED"] = "1"
        log = self.log_dir / f"{self.name}.{len(self.logs) + 1}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            out.write(f"$ {' '.join(self.command())}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL reaches workers
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Until a worker answers /whoami with our key ids and every worker is up."""
        expected = TokenCodec(self.secret_keys).key_ids
        deadline = time.monotonic() + READY_TIMEOUT
        problem = "no answer"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn {self.name} exited with {self.process.returncode} before it "
                    f"was ready:\n{self.log_text()}"
                )
            try:
                who = http(self.port, "GET", "/whoami", timeout=1.0).json
            except (OSError, HTTPException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                workers = self.worker_pids()
                if who["key_ids"] != expected:
                    problem = f"wrong key ids {who['key_ids']} (expected {expected})"
                elif who["pid"] not in workers:
                    problem = f"pid {who['pid']} is not a worker of master {self.pid}"
                elif len(workers) < self.workers:
                    problem = f"{len(workers)} of {self.workers} workers up"
                else:
                    return
            time.sleep(0.05)
        raise RuntimeError(
            f"gunicorn {self.name} not ready within {READY_TIMEOUT} s ({problem}):\n"
            f"{self.log_text()}"
        )

    def stop(self) -> int | None:
        """SIGTERM the master, wait; SIGKILL the process group after 5 s. Idempotent."""
        process, self.process = self.process, None
        if process is None:
            return None
        workers = child_pids(process.pid) if process.poll() is None else set()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the master is alive: its group is ours
            process.wait(timeout=STOP_TIMEOUT)
            raise RuntimeError(
                f"gunicorn {self.name} ignored SIGTERM for {STOP_TIMEOUT} s; killed"
            ) from None
        finally:
            # Workers that outlived their master would keep serving on the port.
            for pid in workers:
                if process_group(pid) == process.pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def restart(self, secret_keys: Sequence[str] | None = None) -> Gunicorn:
        """A redeploy: stop, then start again on the same port (new keys if given)."""
        self.stop()
        if secret_keys is not None:
            self.secret_keys = list(secret_keys)
        return self.start()

    def log_text(self) -> str:
        parts = []
        for path in self.logs:
            try:
                parts.append(f"--- {path.name} ---\n{path.read_text(errors='replace')}")
            except OSError as exc:
                parts.append(f"--- {path.name}: {exc} ---")
        return "\n".join(parts)


_SERVERS = pytest.StashKey[list[Gunicorn]]()


@pytest.fixture
def gunicorn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    """A factory: ``gunicorn(name, secret_keys, **options)`` starts a ready server."""
    if importlib.util.find_spec("gunicorn") is None:
        pytest.fail(
            "gunicorn is not installed; the deploy tests need it: pip install gunicorn",
            pytrace=False,
        )
    servers: list[Gunicorn] = []
    request.node.stash[_SERVERS] = servers

    def start(name: str, secret_keys: Sequence[str], **options: Any) -> Gunicorn:
        assert all(s.name != name for s in servers), f"two servers named {name}"
        server = Gunicorn(name, secret_keys, tmp_path, **options)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        errors = []
        for server in servers:
            try:
                server.stop()
            except Exception as exc:  # stop every server, then report
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"gunicorn {server.name} log", server.log_text()))
    return report
