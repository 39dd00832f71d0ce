"""``python -m wsgisession``: genkey, inspect and demo (DESIGN §7, §8 "CLI").

Exit codes: 0 ok, 1 malformed/tampered, 2 expired, 3 unknown key, 64 usage.
The CLI runs both in a real subprocess and in-process through ``main([...])``.
"""

from __future__ import annotations

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

from tests.conftest import OLD_SECRET, OTHER_SECRET, SECRET, Clock, Harness, cookie_value
from wsgisession.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 30
READY_TIMEOUT = 10
URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsgisession", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
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
        pytest.param(["inspect", "abc"], id="inspect-no-secret"),
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
    before_value = browser.cookie
    before_id = browser.session_id_hash()
    form = browser.open("/login")
    assert form.status == 200 and 'name="user"' in form.body

    login = browser.open("/login", {"user": "alice"})
    assert login.status == 303
    assert login.headers["Location"].endswith("/")
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
    redirect = browser.open("/flash?msg=hi")
    assert redirect.status == 303
    assert redirect.headers["Location"].endswith("/")
    home = browser.open("/")
    assert home.flashes == ["hi"]
    assert browser.open("/").flashes == []


def test_demo_logout_clears_the_session(demo):
    browser = Browser(demo.base)
    browser.open("/login", {"user": "alice"})
    assert browser.open("/").user == "alice"
    logout = browser.open("/logout")
    assert logout.status == 200
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
    assert rows["HttpOnly"] == "True"
    assert rows["SameSite"] == "Lax"
    assert rows["Path"] == "/"
    assert rows["Secure"] == "on https"
    assert rows["is_new"] == "True"


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
