"""``python -m wsgisession``: genkey, inspect and demo (DESIGN §7, §8 "CLI").

Exit codes: 0 ok, 1 malformed/tampered, 2 expired, 3 unknown key, 64 usage,
69 unavailable (the demo's address or store). Bad input is one line on stderr and
an exit code, never a traceback.
The CLI runs both in a real subprocess and in-process through ``main([...])``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wsgisession.__main__
from tests.conftest import OLD_SECRET, OTHER_SECRET, SECRET, Clock, Harness, cookie_value
from wsgisession.__main__ import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 30
READY_TIMEOUT = 10
URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsgisession", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        check=False,
    )


def call_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``main([...])`` in-process: (exit code, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def make_cookie(data: dict[str, Any] | None = None, **options: Any) -> str:
    """A real cookie value, made by a middleware (clock: now unless given)."""
    payload = {"user": "alice", "n": 3} if data is None else data
    options.setdefault("clock", Clock(time.time()))

    def handler(environ, session):
        session.update(payload)

    harness = Harness(handler, **options)
    value = cookie_value(harness.client.get("/"), options.get("cookie_name", "session"))
    assert value
    return value


def tamper(value: str) -> str:
    """Flip one character in the middle (still strict base64url)."""
    middle = len(value) // 2
    flipped = "A" if value[middle] != "A" else "B"
    return value[:middle] + flipped + value[middle + 1 :]


# -- genkey --------------------------------------------------------------------------------


def test_genkey_subprocess_prints_one_fresh_line_each_run():
    first, second = run_cli("genkey"), run_cli("genkey")
    keys = []
    for result in (first, second):
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert result.stdout.endswith("\n")
        lines = result.stdout.splitlines()
        assert len(lines) == 1
        assert len(lines[0]) >= 43
        assert URLSAFE.fullmatch(lines[0])
        keys.append(lines[0])
    assert keys[0] != keys[1]


@pytest.mark.parametrize(("nbytes", "chars"), [(None, 43), ("32", 43), ("64", 86), ("128", 171)])
def test_genkey_bytes(capsys, nbytes, chars):
    args = ["genkey"] if nbytes is None else ["genkey", "--bytes", nbytes]
    code, out, err = call_main(capsys, *args)
    assert (code, err) == (0, "")
    [key] = out.splitlines()
    assert out == key + "\n"
    assert len(key) == chars and URLSAFE.fullmatch(key)
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == int(nbytes or 32)
    code, again, _ = call_main(capsys, *args)
    assert code == 0 and again != out


@pytest.mark.parametrize("nbytes", ["16", "31", "129", "many"])
def test_genkey_rejects_bad_byte_counts(capsys, nbytes):
    code, out, err = call_main(capsys, "genkey", "--bytes", nbytes)
    assert code == 64
    assert out == ""
    assert "--bytes" in err


# -- inspect: success ---------------------------------------------------------------------


def inspect_ok(capsys, *args: str) -> dict[str, Any]:
    code, out, err = call_main(capsys, "inspect", *args)
    assert code == 0, err
    assert err == ""
    return json.loads(out)


def test_inspect_prints_the_session_as_json(capsys):
    clock = Clock(time.time())
    value = make_cookie({"user": "alice", "cart": [1, 2]}, clock=clock, max_age=3600)
    report = inspect_ok(capsys, value, "--secret-key", SECRET)
    assert {"data", "created", "expires", "key_id", "purpose", "would_rekey"} <= set(report)
    assert report["data"] == {"user": "alice", "cart": [1, 2]}
    assert report["created"] == int(clock.now)
    assert report["expires"] == int(clock.now) + 3600
    assert report["purpose"] == "data"
    assert report["would_rekey"] is False
    assert re.fullmatch(r"[0-9a-f]{8}", report["key_id"])


def test_inspect_accepts_name_equals_value(capsys):
    value = make_cookie()
    alone = inspect_ok(capsys, value, "--secret-key", SECRET)
    pair = inspect_ok(capsys, f"session={value}", "--secret-key", SECRET)
    assert pair == alone
    assert pair["data"] == {"user": "alice", "n": 3}


def test_inspect_with_another_cookie_name(capsys):
    value = make_cookie(cookie_name="sid")
    report = inspect_ok(capsys, f"sid={value}", "--secret-key", SECRET, "--cookie-name", "sid")
    assert report["data"] == {"user": "alice", "n": 3}
    # the token is bound to its cookie name
    code, out, err = call_main(capsys, "inspect", value, "--secret-key", SECRET)
    assert (code, out) == (1, "")
    assert "tampered" in err


def test_inspect_would_rekey_when_sealed_by_the_second_key(capsys):
    old = make_cookie(secret_keys=[OLD_SECRET])
    current = make_cookie(secret_keys=[SECRET])
    rotated = inspect_ok(capsys, old, "--secret-key", SECRET, "--secret-key", OLD_SECRET)
    assert rotated["would_rekey"] is True
    assert rotated["data"] == {"user": "alice", "n": 3}
    as_primary = inspect_ok(capsys, old, "--secret-key", OLD_SECRET)
    assert as_primary["would_rekey"] is False
    assert as_primary["key_id"] == rotated["key_id"]
    fresh = inspect_ok(capsys, current, "--secret-key", SECRET, "--secret-key", OLD_SECRET)
    assert fresh["would_rekey"] is False
    assert fresh["key_id"] != rotated["key_id"]


def test_inspect_subprocess_round_trip():
    value = make_cookie()
    result = run_cli("inspect", f"session={value}", "--secret-key", SECRET)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"] == {"user": "alice", "n": 3}
    assert SECRET not in result.stdout + result.stderr


# -- inspect: failures ---------------------------------------------------------------------


def test_inspect_tampered_and_malformed_give_different_reasons(capsys):
    value = make_cookie()
    code_t, out_t, err_t = call_main(capsys, "inspect", tamper(value), "--secret-key", SECRET)
    code_m, out_m, err_m = call_main(capsys, "inspect", "not*base64!", "--secret-key", SECRET)
    assert (code_t, out_t) == (1, "")
    assert (code_m, out_m) == (1, "")
    assert "tampered" in err_t
    assert "malformed" in err_m
    assert err_t.strip() and err_m.strip() and err_t != err_m
    for err in (err_t, err_m):
        assert SECRET not in err


def test_inspect_expired_exits_2(capsys):
    past = Clock(time.time() - 7200)
    value = make_cookie(clock=past, max_age=60)
    code, out, err = call_main(capsys, "inspect", value, "--secret-key", SECRET)
    assert (code, out) == (2, "")
    assert "expired" in err
    assert SECRET not in err


def test_inspect_past_absolute_lifetime_exits_2(capsys):
    past = Clock(time.time() - 7200)
    value = make_cookie(clock=past, max_age=86400, absolute_max_age=600)
    code, out, err = call_main(capsys, "inspect", value, "--secret-key", SECRET)
    assert (code, out) == (2, "")
    assert "absolute" in err


def test_inspect_unknown_key_exits_3(capsys):
    value = make_cookie(secret_keys=[OTHER_SECRET])
    code, out, err = call_main(capsys, "inspect", value, "--secret-key", SECRET)
    assert (code, out) == (3, "")
    assert "key" in err
    assert SECRET not in err and OTHER_SECRET not in err


def test_inspect_failures_in_a_subprocess():
    value = make_cookie()
    expired = make_cookie(clock=Clock(time.time() - 7200), max_age=60)
    unknown = make_cookie(secret_keys=[OTHER_SECRET])
    cases = [(tamper(value), 1), ("%%%", 1), (expired, 2), (unknown, 3)]
    for cookie, expected in cases:
        result = run_cli("inspect", cookie, "--secret-key", SECRET)
        assert result.returncode == expected, (cookie, result.stderr)
        assert result.stdout == ""
        assert result.stderr.startswith("invalid cookie: ")
        assert SECRET not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="no-command"),
        pytest.param(["frobnicate"], id="unknown-command"),
        pytest.param(["inspect"], id="inspect-no-args"),
        pytest.param(["inspect", "--secret-key", SECRET], id="inspect-no-cookie"),
        pytest.param(["inspect", "abc", "--secret-key", SECRET, "--bogus"], id="bad-option"),
        pytest.param(["genkey", "--bogus"], id="genkey-bad-option"),
        pytest.param(["demo", "--port", "eighty"], id="demo-bad-port"),
    ],
)
def test_usage_errors_exit_64(capsys, args):
    code, out, err = call_main(capsys, *args)
    assert code == 64
    assert out == ""
    assert "usage:" in err
    assert SECRET not in err


def test_inspect_without_any_secret_is_one_usage_line(capsys, monkeypatch):
    monkeypatch.delenv("WSGISESSION_SECRET_KEY", raising=False)
    code, out, err = call_main(capsys, "inspect", "abc")
    assert (code, out) == (64, "")
    assert err.count("\n") == 1 and "WSGISESSION_SECRET_KEY" in err and "--secret-key -" in err


def test_inspect_reads_the_secret_from_the_environment(capsys, monkeypatch):
    """Secrets kept out of the shell history: the environment variable (several
    secrets separated by spaces, first = current)."""
    from tests.conftest import OLD_SECRET

    cookie = make_cookie(secret_keys=[OLD_SECRET])
    monkeypatch.setenv("WSGISESSION_SECRET_KEY", f"{SECRET} {OLD_SECRET}")
    code, out, err = call_main(capsys, "inspect", cookie)
    assert code == 0, err
    report = json.loads(out)
    assert report["data"] == {"user": "alice", "n": 3} and report["would_rekey"] is True


def test_inspect_reads_the_secrets_from_standard_input():
    cookie = make_cookie()
    done = subprocess.run(
        [sys.executable, "-m", "wsgisession", "inspect", cookie, "--secret-key", "-"],
        input=f"\n{SECRET}\n",
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "WSGISESSION_SECRET_KEY"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"] == {"user": "alice", "n": 3}
    assert SECRET not in done.stdout + done.stderr


def test_version_is_printed(capsys):
    import wsgisession

    code, out, _ = call_main(capsys, "--version")
    assert (code, out.strip()) == (0, f"wsgisession {wsgisession.__version__}")


def test_a_short_secret_is_a_usage_error_without_echoing_it(capsys):
    short = "short-but-secret-value"
    code, out, err = call_main(capsys, "inspect", make_cookie(), "--secret-key", short)
    assert (code, out) == (64, "")
    assert "at least 32" in err
    assert short not in err


def test_usage_error_subprocess():
    result = run_cli("inspect", "--secret-key", SECRET)
    assert result.returncode == 64
    assert "usage:" in result.stderr
    assert SECRET not in result.stderr


@pytest.mark.parametrize("command", [[], ["genkey"], ["inspect"], ["demo"]])
def test_help_exits_0(capsys, command):
    code, out, err = call_main(capsys, *command, "--help")
    assert code == 0
    assert out.startswith("usage: wsgisession")
    assert err == ""


def test_every_option_has_help_text():
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    parsers = {"wsgisession": parser, **commands.choices}
    assert set(parsers) == {"wsgisession", "genkey", "inspect", "demo", "sweep"}
    checked = set()
    for name, sub in parsers.items():
        for action in sub._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
            assert len(action.help) > 10, (name, action.dest, action.help)
            checked.add(f"{name} {action.dest}")
    assert {"inspect cookie_name", "inspect namespace", "demo host", "demo port"} <= checked
    assert "69 unavailable" in parser.epilog
    assert "69 unavailable" in wsgisession.__main__.__doc__


# A secret as bytes that are not UTF-8: argv and the environment carry it as
# surrogate escapes (os.fsdecode), and the CLI must hand the same bytes to the library.
BYTES_SECRET = b"\xff\xfe not UTF-8 \xc3\x28 " + b"k" * 32
ARGV_SECRET = os.fsdecode(BYTES_SECRET)


def test_inspect_with_a_secret_that_is_not_utf8(capsys):
    assert "\udcff" in ARGV_SECRET and os.fsencode(ARGV_SECRET) == BYTES_SECRET
    value = make_cookie(secret_keys=[BYTES_SECRET])
    report = inspect_ok(capsys, value, "--secret-key", ARGV_SECRET)
    assert report["data"] == {"user": "alice", "n": 3}
    assert report["would_rekey"] is False
    result = run_cli("inspect", value, "--secret-key", ARGV_SECRET)  # argv as bytes
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout)["key_id"] == report["key_id"]
    # The bytes are the secret: another secret does not open the cookie.
    other = run_cli("inspect", value, "--secret-key", ARGV_SECRET.replace("k", "j"))
    assert other.returncode == 3, other.stderr
    assert "Traceback" not in other.stderr


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The command failed with ``code`` and exactly one ``error: ...`` line."""
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    assert DEMO_SECRET not in result.stderr
    return lines[0]


@pytest.mark.parametrize("port", ["99999", "65536", "-5", "-1"])
def test_demo_port_out_of_range_is_one_usage_line(port):
    result = run_cli("demo", "--port", port, "--secret-key", DEMO_SECRET)
    line = assert_one_line_error(result, 64)
    assert "--port" in line and "65535" in line and port in line


def test_demo_host_that_is_not_a_host_name_is_one_usage_line():
    result = run_cli("demo", "--host", os.fsdecode(b"\xff\xfe"), "--secret-key", DEMO_SECRET)
    line = assert_one_line_error(result, 64)
    assert "--host" in line


def test_demo_port_in_use_exits_69():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_cli("demo", "--port", port, "--secret-key", DEMO_SECRET)
    line = assert_one_line_error(result, 69)
    assert f"127.0.0.1:{port}" in line and "in use" in line


# ``python -m wsgisession`` with ``import redis`` failing, as where redis-py is not
# installed: sys.modules[name] = None makes every import of that name raise ImportError.
WITHOUT_REDIS = """
import runpy, sys
sys.modules["redis"] = None
try:
    import redis
except ImportError:
    pass
else:
    sys.exit("redis-py is still importable")
runpy.run_module("wsgisession", run_name="__main__", alter_sys=True)
"""


def test_demo_store_redis_without_redis_py_exits_69():
    args = ["demo", "--port", str(free_port()), "--secret-key", DEMO_SECRET]
    args += ["--store", "redis://127.0.0.1:6379/0"]
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_REDIS, *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=ROOT,
        check=False,
    )
    line = assert_one_line_error(result, 69)
    assert "redis-py" in line and "pip install" in line


# -- demo ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Demo:
    """A ``python -m wsgisession demo`` subprocess with its output in files."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stdout_path = tmp / "demo.out"
        self.stderr_path = tmp / "demo.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wsgisession", "demo", "--port", str(self.port), *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                env=env,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"demo exited with {self.proc.returncode}: {self.stderr()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            try:
                conn.request("GET", "/not-a-page")
                response = conn.getresponse()
                response.read()
                if response.status == 404:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            if time.monotonic() > deadline:
                pytest.fail(f"demo did not answer within {READY_TIMEOUT} s: {self.stderr()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


DEMO_SECRET = "demo-secret-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    server = Demo(tmp_path_factory.mktemp("demo"), "--secret-key", DEMO_SECRET)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class _KeepErrors(urllib.request.HTTPErrorProcessor):
    """Hand back every response as is: no exceptions for 4xx/5xx, no redirects."""

    def http_response(self, request, response):
        return response

    https_response = http_response


class Page:
    def __init__(self, status: int, headers: Any, body: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def set_cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []

    @property
    def views(self) -> int:
        match = re.search(r"<span id=views>(\d+)</span>", self.body)
        assert match, self.body
        return int(match.group(1))

    @property
    def user(self) -> str | None:
        match = re.search(r"<b id=user>([^<]*)</b>", self.body)
        return match.group(1) if match else None

    @property
    def flashes(self) -> list[str]:
        return re.findall(r'<p class="flash">([^<]*)</p>', self.body)

    @property
    def csrf_token(self) -> str:
        [token] = re.findall(r'name="csrf_token" value="([A-Za-z0-9_-]+)"', self.body)
        return token


class Browser:
    """A cookie jar and an opener that does not follow redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _KeepErrors()
        )

    def open(self, path: str, form: dict[str, str] | None = None) -> Page:
        data = None if form is None else urllib.parse.urlencode(form).encode("ascii")
        request = urllib.request.Request(self.base + path, data=data)
        with self.opener.open(request, timeout=5) as response:
            body = response.read().decode("utf-8")
            return Page(response.status, response.headers, body)

    def submit(self, path: str, **fields: str) -> Page:
        """GET the form at ``path``, then POST it with its CSRF token and ``fields``."""
        form = self.open(path)
        assert form.status == 200, form.body
        return self.open(path, {"csrf_token": form.csrf_token, **fields})

    @property
    def cookie(self) -> str | None:
        for cookie in self.jar:
            if cookie.name == "session":
                return cookie.value
        return None

    def session_id_hash(self) -> str:
        page = self.open("/session")
        match = re.search(r"<th>id \(hash\)</th><td>([0-9a-f]{16})</td>", page.body)
        assert match, page.body
        return match.group(1)


def test_demo_announces_its_address(demo):
    assert f"wsgisession demo on http://127.0.0.1:{demo.port}/" in demo.stdout()
    assert "warning" not in demo.stderr()


def test_demo_view_counter(demo):
    browser = Browser(demo.base)
    first = browser.open("/")
    assert (first.status, first.views) == (200, 1)
    [set_cookie] = first.set_cookies
    attrs = [a.strip() for a in set_cookie.split(";")]
    assert "HttpOnly" in attrs
    assert "SameSite=Lax" in attrs
    assert "Path=/" in attrs
    assert browser.cookie
    assert browser.open("/").views == 2
    assert browser.open("/").views == 3
    # no cookie, no memory
    assert Browser(demo.base).open("/").views == 1
    assert browser.open("/").views == 4


def test_demo_login_regenerates_and_flashes_once(demo):
    browser = Browser(demo.base)
    assert browser.open("/").views == 1
    form = browser.open("/login")
    assert form.status == 200 and 'name="user"' in form.body
    before_value = browser.cookie
    before_id = browser.session_id_hash()

    login = browser.open("/login", {"user": "alice", "csrf_token": form.csrf_token})
    assert login.status == 303
    assert login.headers["Location"] == "/"
    assert len(login.set_cookies) == 1
    assert browser.cookie and browser.cookie != before_value
    assert browser.session_id_hash() != before_id

    home = browser.open("/")
    assert home.user == "alice"
    assert home.flashes == ["Welcome, alice!"]
    assert home.views == 2  # the data survived the regeneration
    again = browser.open("/")
    assert again.user == "alice"
    assert again.flashes == []
    assert "Welcome, alice!" not in again.body


def test_demo_flash_shows_once(demo):
    browser = Browser(demo.base)
    form = browser.open("/flash?msg=hi")
    assert (form.status, form.flashes) == (200, [])
    assert 'value="hi"' in form.body
    redirect = browser.open("/flash", {"csrf_token": form.csrf_token, "msg": "hi"})
    assert redirect.status == 303
    assert redirect.headers["Location"] == "/"
    home = browser.open("/")
    assert home.flashes == ["hi"]
    assert browser.open("/").flashes == []


def test_demo_logout_clears_the_session(demo):
    browser = Browser(demo.base)
    browser.submit("/login", user="alice")
    assert browser.open("/").user == "alice"
    form = browser.open("/logout")
    assert form.set_cookies == [] and "Logged out" not in form.body
    assert browser.open("/").user == "alice"
    logout = browser.open("/logout", {"csrf_token": form.csrf_token})
    assert logout.status == 200 and "Logged out" in logout.body
    [deletion] = logout.set_cookies
    parts = [p.strip() for p in deletion.split(";")]
    assert parts[0] == "session="
    assert "Max-Age=0" in parts
    assert browser.cookie is None
    home = browser.open("/")
    assert home.user is None
    assert "Not logged in." in home.body
    assert home.views == 1


def test_demo_big_is_an_error_page_without_a_cookie(demo):
    browser = Browser(demo.base)
    assert browser.open("/").views == 1
    kept = browser.cookie
    big = browser.open("/big")
    assert big.status == 500
    assert "Session too large" in big.body
    assert big.set_cookies == []
    assert browser.cookie == kept
    assert browser.open("/").views == 2  # the old session is intact


def test_demo_session_page_shows_the_cookie_attributes(demo):
    browser = Browser(demo.base)
    page = browser.open("/session")
    assert page.status == 200
    rows = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", page.body))
    assert rows["cookie name"] == "session"
    assert rows["HttpOnly"] == "yes"
    assert rows["SameSite"] == "Lax"
    assert rows["Path"] == "/"
    assert rows["Secure"] == "on https"
    assert rows["is_new"].startswith("yes")
    # Times people can read: a UTC date and how far away it is.
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 23 h 59 min\)", rows["expires_at"]
    )
    assert rows["max_age"] == "86400 s (1 d)"
    assert (
        "<style>" in page.body and "http" not in page.body.split("<style>")[1].split("</style>")[0]
    )


def test_demo_never_writes_the_secret(demo):
    Browser(demo.base).open("/")
    assert DEMO_SECRET not in demo.stderr()
    assert DEMO_SECRET not in demo.stdout()


def test_demo_without_a_secret_warns(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WSGISESSION_SECRET_KEY"}
    server = Demo(tmp_path, env=env)
    try:
        server.wait_ready()
        browser = Browser(server.base)
        assert browser.open("/").views == 1
        assert browser.open("/").views == 2
    finally:
        server.stop()
    err = server.stderr()
    assert "warning: no --secret-key or WSGISESSION_SECRET_KEY" in err
    assert "random secret" in err


def test_demo_with_a_secret_that_is_not_utf8(tmp_path):
    env = dict(os.environ, WSGISESSION_SECRET_KEY=ARGV_SECRET)  # passed on as the bytes
    server = Demo(tmp_path, env=env)
    try:
        server.wait_ready()
        browser = Browser(server.base)
        assert browser.open("/").views == 1
        assert browser.open("/").views == 2
        cookie = browser.cookie
    finally:
        server.stop()
    assert "warning" not in server.stderr() and "Traceback" not in server.stderr()
    # The demo sealed with exactly those bytes: inspect, given them on argv, opens it.
    result = run_cli("inspect", cookie, "--secret-key", ARGV_SECRET)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"] == {"views": 2}


def wire(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` bytes as they are on a new connection; read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


def logged_in_cookie(demo: Demo) -> tuple[Browser, str, str]:
    """A browser logged in as alice: (browser, its Cookie header, its CSRF token)."""
    browser = Browser(demo.base)
    assert browser.submit("/login", user="alice").status == 303
    token = browser.open("/logout").csrf_token
    return browser, f"session={browser.cookie}", token


def test_demo_answers_bad_input_on_the_wire_with_400(demo):
    browser, cookie, token = logged_in_cookie(demo)
    head = f"Host: 127.0.0.1\r\nCookie: {cookie}\r\nConnection: close\r\n".encode()
    form = "application/x-www-form-urlencoded"
    multipart = (
        b"--XyZ\r\nContent-Disposition: form-data; name=csrf_token\r\n\r\n"
        + token.encode()
        + b"\r\n--XyZ\r\nContent-Disposition: form-data; name=user; filename=u.txt\r\n"
        b"Content-Type: text/plain\r\n\r\nmallory\r\n--XyZ--\r\n"
    )
    requests = {
        "raw non-UTF-8 query": b"GET /flash?msg=\xff\xfe HTTP/1.1\r\n" + head + b"\r\n",
        "escaped non-UTF-8 query": b"GET /?msg=%FF HTTP/1.1\r\n" + head + b"\r\n",
        "file upload": b"POST /login HTTP/1.1\r\n"
        + head
        + f"Content-Type: multipart/form-data; boundary=XyZ\r\n"
        f"Content-Length: {len(multipart)}\r\n\r\n".encode()
        + multipart,
        # Only the headers: the answer must come from Content-Length alone, before
        # (and without) waiting for a megabyte that is never sent.
        "1 MB form": b"POST /login HTTP/1.1\r\n"
        + head
        + f"Content-Type: {form}\r\nContent-Length: 1048576\r\n\r\n".encode(),
    }
    for name, raw in requests.items():
        status, headers, body = wire(demo.port, raw)
        assert status == 400, (name, body)
        assert b"id=bad-request" in body, name
        assert "Set-Cookie" not in headers, name
    assert browser.open("/").user == "alice"
    assert "Traceback" not in demo.stderr()


def test_demo_redirects_stay_relative_with_a_hostile_host(demo):
    _, cookie, token = logged_in_cookie(demo)
    body = urllib.parse.urlencode({"csrf_token": token, "msg": "hi"}).encode()
    status, headers, _ = wire(
        demo.port,
        b"POST /flash HTTP/1.1\r\nHost: evil.example:8080\r\nX-Forwarded-Host: evil.example"
        + f"\r\nCookie: {cookie}\r\nConnection: close\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    assert status == 303
    assert headers["Location"] == "/"


def test_demo_refuses_a_post_without_the_session_token(demo):
    browser = Browser(demo.base)
    browser.submit("/login", user="alice")
    kept = browser.cookie
    for form in ({"user": "mallory"}, {"user": "mallory", "csrf_token": "guess"}):
        refused = browser.open("/login", form)
        assert refused.status == 403
        assert refused.set_cookies == []
    assert browser.open("/logout", {}).status == 403
    assert browser.cookie == kept
    assert browser.open("/").user == "alice"
