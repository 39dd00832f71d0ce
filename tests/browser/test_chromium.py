"""The demo app end to end in headless Chromium, driven by Selenium.

Real HTTP on loopback, no mocks: the demo (cookie mode) runs under
``wsgiref.simple_server`` in a thread on ``127.0.0.1``; a second tiny server plays a
cross-site "attacker" page, reached as ``http://localhost:PORT`` -- ``localhost`` and
``127.0.0.1`` are different *sites* to Chromium (an IP address is its own site), which
each SameSite test checks through the ``Sec-Fetch-Site`` header the demo received.

Every request the demo gets is recorded at the server (method, path, Cookie header,
Sec-Fetch-* headers, the status and Set-Cookie headers it answered with, and the
session events it caused), so the tests assert what really crossed the wire, not
only what the page shows.

Needs Debian's ``chromium`` and ``chromium-driver`` packages (``/usr/bin/chromium``,
``/usr/bin/chromedriver``) and ``pip install selenium``; nothing is downloaded
(the driver path is given, so Selenium Manager never runs; ``SE_OFFLINE=1`` as well).
Without them the tests skip with a message that says how to install them; with
``WSGISESSION_REQUIRE_BROWSER=1`` (CI sets it) a missing browser, driver or Selenium
is a failure instead. A screenshot of every test lands in ``tests/artifacts/``
(git-ignored).
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from tests.conftest import SECRET
from wsgisession import SessionEvent
from wsgisession.demo import make_demo

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as exc:  # reported as a failure by the ``driver`` fixture
    _SELENIUM_IMPORT_ERROR: ImportError | None = exc
else:
    _SELENIUM_IMPORT_ERROR = None

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = (
    "the browser tests need Debian's Chromium and ChromeDriver and Selenium: "
    "`apt-get install -y chromium chromium-driver` (gives /usr/bin/chromium and "
    "/usr/bin/chromedriver) and `pip install selenium`; .ci/run installs them"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,700",
]
PAGE_LOAD_TIMEOUT = 10  # seconds, for every navigation
WAIT = 5  # seconds, for an element or URL to appear
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
DEMO_HOST = "127.0.0.1"
ATTACKER_HOST = "localhost"  # another site than 127.0.0.1, served by the same loopback


# -- the servers ----------------------------------------------------------------------


@dataclass
class Hit:
    """One request the demo received, and what it answered."""

    method: str
    path: str
    cookie_header: str
    fetch_site: str | None
    fetch_mode: str | None
    status: str = ""
    set_cookies: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def cookies(self) -> dict[str, str]:
        pairs = (part.strip().partition("=") for part in self.cookie_header.split(";"))
        return {name: value for name, _, value in pairs if name}


class Recorder:
    """WSGI wrapper around the demo that records every request as a :class:`Hit`."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.app = make_demo([SECRET], on_event=self._on_event)

    def _on_event(self, event: SessionEvent) -> None:
        hit = event.environ.get("browsertest.hit")
        if hit is not None:
            hit.events.append(f"{event.name}:{event.reason}")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        hit = Hit(
            method=environ["REQUEST_METHOD"],
            path=environ.get("PATH_INFO", ""),
            cookie_header=environ.get("HTTP_COOKIE", ""),
            fetch_site=environ.get("HTTP_SEC_FETCH_SITE"),
            fetch_mode=environ.get("HTTP_SEC_FETCH_MODE"),
        )
        environ["browsertest.hit"] = hit
        with self.lock:
            self.hits.append(hit)

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            hit.status = status
            hit.set_cookies = [v for k, v in headers if k.lower() == "set-cookie"]
            return start_response(status, headers, exc_info)

        return self.app(environ, recording_start_response)

    def clear(self) -> None:
        with self.lock:
            self.hits.clear()

    def requests(self, path: str, method: str | None = None) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path and method in (None, h.method)]

    def one(self, path: str, method: str | None = None) -> Hit:
        found = self.requests(path, method)
        assert len(found) == 1, f"expected one {method or ''} {path}, got {found}"
        return found[0]


def attacker_token(demo_origin: str) -> str:
    """A genuine CSRF token, of the attacker's own session: what an attacker gets by
    loading the demo's login form himself (server-side, with his own cookie jar)."""
    with urlopen(f"{demo_origin}/login", timeout=5) as response:
        page = response.read().decode("utf-8")
    match = re.search(r'name="csrf_token" value="([A-Za-z0-9_-]+)"', page)
    assert match, page
    return match.group(1)


def attacker_app(demo_origin: str) -> Callable[..., Any]:
    """The cross-site pages: an auto-submitting login form (with the attacker's own,
    genuine CSRF token, fetched when the page is served) and a plain link."""
    login = html.escape(f"{demo_origin}/login", quote=True)
    home = html.escape(f"{demo_origin}/", quote=True)

    def post_page() -> str:
        token = html.escape(attacker_token(demo_origin), quote=True)
        return (
            "<!doctype html><title>attacker</title><p>cross-site form post</p>"
            f'<form id=csrf method=post action="{login}">'
            '<input name=user value="mallory">'
            f'<input type=hidden name=csrf_token value="{token}"></form>'
            "<script>document.getElementById('csrf').submit()</script>"
        )

    pages: dict[str, Callable[[], str]] = {
        "/post": post_page,
        "/link": lambda: (
            "<!doctype html><title>attacker</title>"
            f'<p><a id=go href="{home}">a cross-site link to the demo</a></p>'
        ),
    }

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        page = pages.get(environ.get("PATH_INFO", ""))
        if page is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        body = page().encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body]

    return app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    # Chromium may open several connections (and keep a spare one) at once.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(app: Callable[..., Any]) -> Iterator[int]:
    """Serve ``app`` on 127.0.0.1 on a free port in a thread; yield the port."""
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Servers:
    recorder: Recorder
    demo: str  # http://127.0.0.1:PORT
    attacker: str  # http://localhost:PORT


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    recorder = Recorder()
    with serve(recorder) as demo_port:
        demo = f"http://{DEMO_HOST}:{demo_port}"
        with serve(attacker_app(demo)) as attacker_port:
            yield Servers(recorder, demo, f"http://{ATTACKER_HOST}:{attacker_port}")


# -- the browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """One headless Chromium for the module, with a fresh profile; always quit."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    problem = None
    if missing:
        problem = f"{', '.join(missing)} not found: {INSTALL_HINT}"
    elif _SELENIUM_IMPORT_ERROR is not None:
        problem = f"{_SELENIUM_IMPORT_ERROR}: {INSTALL_HINT}"
    if problem is not None:
        if os.environ.get("WSGISESSION_REQUIRE_BROWSER") == "1":
            pytest.fail(problem, pytrace=False)
        pytest.skip(f"{problem} (set WSGISESSION_REQUIRE_BROWSER=1 to make this an error)")
    profile = tempfile.mkdtemp(prefix="wsgisession-chromium-")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "1")  # belt and braces: Selenium Manager must not fetch
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        service = Service(CHROMEDRIVER)  # a given path: Selenium Manager is not run
        browser = None
        try:
            browser = webdriver.Chrome(service=service, options=options)
            browser.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
            browser.set_script_timeout(PAGE_LOAD_TIMEOUT)
            yield browser
        finally:
            if browser is not None:
                browser.quit()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(driver: Any, servers: Servers, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """A clean start for each test (no cookies, no recorded requests); a screenshot
    of the last page at the end, pass or fail."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    servers.recorder.clear()
    b = Browser(driver, servers, request.node.name)
    try:
        yield b
    finally:
        b.screenshot()


class Browser:
    """Small helpers over the Selenium driver for the demo's pages."""

    def __init__(self, driver: Any, servers: Servers, test_name: str) -> None:
        self.driver = driver
        self.servers = servers
        self.recorder = servers.recorder
        self.test_name = test_name

    def screenshot(self, label: str = "") -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.test_name}{'-' + label if label else ''}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot written to {path}"
        return path

    def get(self, path: str) -> None:
        self.driver.get(self.servers.demo + path)

    def wait_for(self, css: str) -> Any:
        return WebDriverWait(self.driver, WAIT).until(
            lambda d: d.find_element(By.CSS_SELECTOR, css),
            message=f"{css} did not appear on {self.driver.current_url}",
        )

    def wait_for_url(self, url: str) -> None:
        WebDriverWait(self.driver, WAIT).until(
            lambda d: (
                d.current_url == url
                and d.execute_script("return document.readyState") == "complete"
            ),
            message=f"never reached {url}; at {self.driver.current_url}",
        )

    def text(self, css: str) -> str:
        return str(self.wait_for(css).text)

    def views(self) -> int:
        return int(self.text("#views"))

    def flashes(self) -> list[str]:
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, "p.flash")]

    def user(self) -> str | None:
        found = self.driver.find_elements(By.CSS_SELECTOR, "#user")
        return found[0].text if found else None

    def cookie(self, name: str = "session") -> dict[str, Any] | None:
        """The browser's own view of a cookie for the current page (``None``: none)."""
        found = [c for c in self.driver.get_cookies() if c["name"] == name]
        assert len(found) <= 1, found
        return found[0] if found else None

    def log_in(self, user: str) -> None:
        self.get("/login")
        field_ = self.wait_for("#user-field")
        field_.clear()
        field_.send_keys(user)
        self.driver.find_element(By.CSS_SELECTOR, "#login").click()
        self.wait_for_url(self.servers.demo + "/")
        assert self.text("#user") == user


def set_cookie_named(hit: Hit, name: str = "session") -> str | None:
    """The Set-Cookie header for ``name`` in a recorded response (``None``: none)."""
    found = [c for c in hit.set_cookies if c.partition("=")[0] == name]
    assert len(found) <= 1, found
    return found[0] if found else None


# -- the tests ------------------------------------------------------------------------


def test_log_in_through_the_form(browser: Browser) -> None:
    browser.get("/")
    browser.get("/")
    assert browser.views() == 2
    before = browser.cookie()
    assert before is not None

    browser.log_in("alice")

    # Showing the form stored its CSRF token in the session (a new cookie, same id);
    # the same-site POST carried that cookie and the token, and login regenerated the
    # session: the counter's data came along (2 -> 3) under a new id, and the welcome
    # flash shows.
    assert browser.views() == 3
    assert browser.flashes() == ["Welcome, alice!"]
    form = browser.recorder.one("/login", "GET")
    assert form.cookies.get("session") == before["value"]
    issued = set_cookie_named(form)
    assert issued is not None
    post = browser.recorder.one("/login", "POST")
    assert post.fetch_site == "same-origin"
    assert post.cookies.get("session") == issued.split(";", 1)[0].partition("=")[2]
    assert post.status.startswith("303")
    assert "regenerated:regenerate" in post.events
    assert "created:new" not in post.events
    after = browser.cookie()
    assert after is not None
    assert after["value"] != before["value"]
    browser.screenshot("welcome")


def test_counter_persists_across_page_loads(browser: Browser) -> None:
    browser.get("/")
    assert browser.views() == 1
    browser.driver.refresh()
    assert browser.views() == 2
    browser.get("/")
    assert browser.views() == 3
    browser.get("/session")
    browser.driver.find_element(By.LINK_TEXT, "home").click()
    browser.wait_for_url(browser.servers.demo + "/")
    assert browser.views() == 4
    assert browser.user() is None

    homes = browser.recorder.requests("/")
    assert [h.status[:3] for h in homes] == ["200"] * 4
    assert "session" not in homes[0].cookies  # a fresh browser...
    assert all("session" in h.cookies for h in homes[1:])  # ...then always our cookie


def test_flash_survives_the_redirect_and_shows_once(browser: Browser) -> None:
    browser.get("/flash?msg=Hello%2C+browser%21")  # a GET only fills in the form
    assert browser.wait_for("#msg-field").get_attribute("value") == "Hello, browser!"
    assert browser.recorder.one("/flash", "GET").status.startswith("200")
    browser.driver.find_element(By.CSS_SELECTOR, "#flash").click()
    browser.wait_for_url(browser.servers.demo + "/")
    assert browser.flashes() == ["Hello, browser!"]
    post = browser.recorder.one("/flash", "POST")
    assert post.status.startswith("303") and post.fetch_site == "same-origin"
    browser.screenshot("flash")

    browser.driver.refresh()
    assert browser.views() == 2
    assert browser.flashes() == []


def test_log_out_clears_the_cookie(browser: Browser) -> None:
    browser.log_in("bob")
    bob = browser.cookie()
    assert bob is not None

    # GET /logout only shows a form: the session is untouched until it is posted.
    browser.get("/logout")
    button = browser.wait_for("#logout")
    assert button.text == "Log out"
    assert set_cookie_named(browser.recorder.one("/logout", "GET")) is None
    assert browser.cookie() == bob
    button.click()
    assert "Logged out" in browser.text("#logged-out")
    deletion = set_cookie_named(browser.recorder.one("/logout", "POST"))
    assert deletion is not None and deletion.startswith("session=; Max-Age=0;")
    assert browser.cookie() is None
    assert "session" not in {c["name"] for c in browser.driver.get_cookies()}

    browser.get("/")
    assert browser.views() == 1
    assert browser.user() is None
    assert "Not logged in." in browser.text("main")


def test_httponly_cookie_is_invisible_to_javascript(browser: Browser) -> None:
    browser.log_in("carol")
    # A script-set cookie shows that document.cookie works on this page at all.
    browser.driver.execute_script("document.cookie = 'probe=visible; path=/'")
    seen_by_js = browser.driver.execute_script("return document.cookie")
    assert "probe=visible" in seen_by_js
    assert "session" not in seen_by_js

    cookie = browser.cookie()
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain http on loopback
    assert cookie["path"] == "/"
    assert cookie["domain"] == DEMO_HOST  # host-only
    assert cookie["value"] not in seen_by_js
    probe = browser.cookie("probe")
    assert probe is not None and probe["httpOnly"] is False

    header = set_cookie_named(browser.recorder.one("/login", "POST"))
    assert header is not None
    assert "; HttpOnly" in header and "; SameSite=Lax" in header


def test_too_large_session_is_an_error_page_and_the_old_cookie_stays(
    browser: Browser,
) -> None:
    browser.get("/")
    browser.get("/")
    assert browser.views() == 2
    before = browser.cookie()
    assert before is not None

    browser.get("/big")
    assert browser.text("#too-large") == "Session too large"
    big = browser.recorder.one("/big")
    assert big.status == "500 Internal Server Error"
    assert big.set_cookies == []  # nothing sent, so nothing the browser could drop
    assert "too_large:cookie_size" in big.events
    browser.screenshot("error-page")

    after = browser.cookie()
    assert after is not None
    assert after["value"] == before["value"]
    browser.get("/")
    assert browser.views() == 3  # the previous, still-valid session continues


def test_samesite_lax_on_cross_site_requests(browser: Browser) -> None:
    demo, attacker = browser.servers.demo, browser.servers.attacker
    browser.log_in("alice")
    assert browser.views() == 1
    alice = browser.cookie()
    assert alice is not None

    # A top-level cross-site GET navigation (a link on another site) carries it.
    browser.recorder.clear()
    browser.driver.get(attacker + "/link")
    browser.driver.find_element(By.CSS_SELECTOR, "#go").click()
    browser.wait_for_url(demo + "/")
    get = browser.recorder.one("/", "GET")
    assert get.fetch_site == "cross-site", "localhost -> 127.0.0.1 must be cross-site"
    assert get.fetch_mode == "navigate"
    assert get.cookies.get("session") == alice["value"]
    assert browser.user() == "alice"
    assert browser.views() == 2
    alice = browser.cookie()  # the visit counted: a new cookie for the same session
    assert alice is not None

    # A cross-site form POST (auto-submitted by the other site, with a genuine token
    # of the attacker's own session) does not carry it.
    browser.recorder.clear()
    browser.driver.get(attacker + "/post")
    browser.wait_for("#forbidden")
    assert browser.driver.current_url == demo + "/login"
    post = browser.recorder.one("/login", "POST")
    assert urlsplit(attacker).hostname != urlsplit(demo).hostname
    assert post.fetch_site == "cross-site"
    assert post.fetch_mode == "navigate"
    assert "session" not in post.cookies, "SameSite=Lax cookie sent on a cross-site POST"
    # SameSite=Lax alone does not stop *login* CSRF: the server saw no session, and a
    # login would have made a fresh one for mallory whose cookie, set by the response
    # to this top-level navigation, would replace alice's. The demo's login form
    # needs the CSRF token of the session it is posted with: here there is no
    # session, so no token matches (not even the attacker's real one) and the POST
    # is a 403 that creates and sends nothing.
    assert post.status == "403 Forbidden"
    assert post.set_cookies == []
    assert post.events == []
    browser.screenshot("after-cross-site-post")
    kept = browser.cookie()
    assert kept is not None and kept["value"] == alice["value"]
    browser.get("/")
    assert browser.user() == "alice"
    assert browser.views() == 3
