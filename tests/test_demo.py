"""The demo application in-process (the subprocess run is in test_cli.py)."""

from __future__ import annotations

import io
import re
import urllib.parse

import pytest
import webtest

from tests.conftest import SECRET, Clock
from wsgisession.demo import MAX_BODY, MAX_FIELDS, make_demo

TOKEN_RE = re.compile(r'<input type="hidden" name="csrf_token" value="([A-Za-z0-9_-]{43})">')


def client() -> webtest.TestApp:
    return webtest.TestApp(make_demo([SECRET], clock=Clock()))


def views(response) -> int:
    return int(re.search(r"<span id=views>(\d+)</span>", response.text).group(1))


def token(response) -> str:
    """The CSRF token in the (one) form of a page."""
    [found] = TOKEN_RE.findall(response.text)
    return found


def post_form(app: webtest.TestApp, path: str, **fields: str) -> webtest.TestResponse:
    """What a browser does: GET the form, then POST it with its hidden token."""
    fields.setdefault("csrf_token", token(app.get(path)))
    return app.post(path, fields)


def log_in(app: webtest.TestApp, user: str) -> webtest.TestResponse:
    return post_form(app, "/login", user=user)


def test_counter_persists_and_restarts_without_the_cookie():
    app = client()
    assert [views(app.get("/")) for _ in range(3)] == [1, 2, 3]
    app.reset()
    assert views(app.get("/")) == 1


def test_login_regenerates_and_flashes_once():
    app = client()
    app.get("/")
    form = app.get("/login")
    assert 'name="user"' in form.text
    before = app.cookies["session"]
    response = app.post("/login", {"user": "alice", "csrf_token": token(form)})
    assert response.status_int == 303
    assert app.cookies["session"] != before
    page = app.get("/")
    assert "<b id=user>alice</b>" in page.text
    assert "Welcome, alice!" in page.text
    assert "Welcome, alice!" not in app.get("/").text


def test_login_without_a_name_is_guest_and_names_are_escaped():
    app = client()
    log_in(app, "")
    assert "<b id=user>guest</b>" in app.get("/").text
    log_in(app, "<script>")
    assert "&lt;script&gt;" in app.get("/").text


def test_flash_survives_the_redirect():
    app = client()
    form = app.get("/flash", {"msg": "hi there"})
    assert 'value="hi there"' in form.text  # the query only fills in the form
    assert "hi there" not in app.get("/").text
    assert post_form(app, "/flash", msg="hi there").status_int == 303
    assert "hi there" in app.get("/").text
    assert "hi there" not in app.get("/").text


def test_logout_clears_the_cookie():
    app = client()
    log_in(app, "bob")
    response = post_form(app, "/logout")
    assert response.status_int == 200
    [cookie] = response.headers.getall("Set-Cookie")
    assert cookie.startswith("session=; Max-Age=0;")
    assert "Not logged in." in app.get("/").text


def test_get_logout_only_shows_a_form():
    app = client()
    log_in(app, "bob")
    page = app.get("/logout")
    assert page.status_int == 200
    assert '<form method="post" action="/logout">' in page.text
    assert '<button id="logout">Log out</button>' in page.text
    assert "Logged out" not in page.text
    assert page.headers.getall("Set-Cookie") == []  # the token was already there
    assert "<b id=user>bob</b>" in app.get("/").text


@pytest.mark.parametrize("path", ["/login", "/logout", "/flash"])
@pytest.mark.parametrize("sent", [None, "", "wrong", "other-session"])
def test_a_missing_or_wrong_csrf_token_is_403_and_changes_nothing(path, sent):
    app = client()
    log_in(app, "alice")
    app.get("/")
    token(app.get(path))  # this session has a token...
    cookie = app.cookies["session"]
    fields = {"user": "mallory", "msg": "pwned"}
    if sent == "other-session":  # ...but a real token of another session is sent
        fields["csrf_token"] = token(client().get(path))
    elif sent is not None:
        fields["csrf_token"] = sent
    response = app.post(path, fields, status=403)
    assert "id=forbidden" in response.text
    assert response.headers.getall("Set-Cookie") == []
    assert app.cookies["session"] == cookie
    home = app.get("/")
    assert "<b id=user>alice</b>" in home.text
    assert "pwned" not in home.text and "Welcome" not in home.text


def test_a_post_without_any_session_is_403_and_sets_no_cookie():
    app = client()
    response = app.post("/login", {"user": "mallory", "csrf_token": "x" * 43}, status=403)
    assert response.headers.getall("Set-Cookie") == []
    assert not app.cookies


def test_login_rotates_the_csrf_token():
    app = client()
    before = token(app.get("/login"))
    assert token(app.get("/flash")) == before  # one token per session, on every form
    app.post("/login", {"user": "alice", "csrf_token": before})
    after = token(app.get("/logout"))
    assert after != before
    app.post("/logout", {"csrf_token": before}, status=403)  # the old one is dead
    assert "<b id=user>alice</b>" in app.get("/").text
    assert app.post("/logout", {"csrf_token": after}).status_int == 200


@pytest.mark.parametrize("path", ["/login", "/flash"])
def test_redirects_are_relative_whatever_the_host_header(path):
    app = client()
    form = app.get(path, headers={"Host": "evil.example"})
    response = app.post(
        path, {"csrf_token": token(form)}, headers={"Host": "evil.example:666"}, status=303
    )
    assert response.headers.getall("Location") == ["/"]
    assert response.body == b""


# -- bad input is a 400 that changes nothing ------------------------------------------------


def assert_400(response) -> None:
    assert response.status_int == 400, response.text
    assert "id=bad-request" in response.text
    assert response.headers.getall("Set-Cookie") == []


def visited() -> webtest.TestApp:
    """A client whose session holds two views."""
    app = client()
    assert [views(app.get("/")) for _ in range(2)] == [1, 2]
    return app


def assert_intact(app: webtest.TestApp) -> None:
    """The session of :func:`visited` is as it was: two views, no user, no flash."""
    home = app.get("/")
    assert views(home) == 3
    assert "Not logged in." in home.text
    assert 'class="flash"' not in home.text


# The bodies below are refused before the CSRF token is looked at: a stand-in does.
STAND_IN = "not-checked"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("msg=%FF%FE", id="percent-escaped"),
        pytest.param("msg=\xff\xfe", id="raw-bytes"),  # PEP 3333: bytes as latin-1
        pytest.param("msg=caf%C3", id="truncated-sequence"),
        pytest.param("%ED%A0%80=x", id="surrogate"),
        pytest.param("&".join(f"f{i}=x" for i in range(MAX_FIELDS + 1)), id="too-many-fields"),
        pytest.param("msg=" + "x" * 3000, id="too-long"),
    ],
)
@pytest.mark.parametrize("path", ["/", "/flash", "/login"])
def test_a_bad_query_string_is_400(path, query):
    app = visited()
    assert_400(app.get(f"{path}?{query}", expect_errors=True))
    assert_intact(app)


def test_a_bad_query_string_on_a_post_is_400():
    app = visited()
    csrf = token(app.get("/login"))
    response = app.post("/login?x=%FF", {"user": "mallory", "csrf_token": csrf}, expect_errors=True)
    assert_400(response)
    assert_intact(app)


def test_a_file_instead_of_a_form_field_is_400():
    app = visited()
    response = app.post(
        "/login",
        {"csrf_token": STAND_IN},
        upload_files=[("user", "mallory.txt", b"mallory\n")],
        expect_errors=True,
    )
    assert response.request.content_type == "multipart/form-data"
    assert_400(response)
    assert_intact(app)


@pytest.mark.parametrize("size", [MAX_BODY + 1, 1024 * 1024])
def test_a_large_form_body_is_400(size):
    app = visited()
    body = f"csrf_token={STAND_IN}&user=mallory&pad=".encode()
    body += b"x" * (size - len(body))
    response = app.post(
        "/login",
        body,
        content_type="application/x-www-form-urlencoded",
        expect_errors=True,
    )
    assert response.request.content_length == size
    assert_400(response)
    assert_intact(app)


def test_a_form_of_exactly_the_limit_is_read():
    app = visited()
    csrf = token(app.get("/login"))
    body = f"csrf_token={csrf}&user=bob&pad=".encode()
    body += b"x" * (MAX_BODY - len(body))
    response = app.post("/login", body, content_type="application/x-www-form-urlencoded")
    assert response.status_int == 303
    assert "<b id=user>bob</b>" in app.get("/").text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"user=\xff&csrf_token=", "application/x-www-form-urlencoded", id="raw"),
        pytest.param(b"user=%C3%28&csrf_token=", "application/x-www-form-urlencoded", id="pct"),
        pytest.param(b'{"user": "mallory"}', "application/json", id="json"),
        pytest.param(b"user=mallory", "text/plain", id="text"),
        pytest.param(
            "&".join(f"f{i}=x" for i in range(MAX_FIELDS + 1)).encode() + b"&csrf_token=",
            "application/x-www-form-urlencoded",
            id="too-many-fields",
        ),
    ],
)
def test_a_bad_form_body_is_400(body, content_type):
    app = visited()
    body = body.replace(b"csrf_token=", f"csrf_token={STAND_IN}".encode())
    response = app.post("/login", body, content_type=content_type, expect_errors=True)
    assert_400(response)
    assert_intact(app)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/login", "m" * 101),
        ("/login", "mal\nlory"),
        ("/flash", "x" * 101),
        ("/flash", "\x1b[31mred"),
    ],
)
def test_a_name_or_message_too_long_or_unprintable_is_400(path, value):
    app = visited()
    form = {"csrf_token": token(app.get(path)), "user": value, "msg": value}
    assert_400(app.post(path, form, expect_errors=True))
    assert_intact(app)


def test_only_the_last_flash_messages_are_kept():
    app = client()
    for n in range(12):
        post_form(app, "/flash", msg=f"note {n}")
    notes = re.findall(r'<p class="flash">([^<]*)</p>', app.get("/").text)
    assert notes == [f"note {n}" for n in range(7, 12)]


class CountingInput(io.BytesIO):
    """A ``wsgi.input`` that remembers how many bytes the application read."""

    consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.consumed += len(data)
        return data


def call(app, environ: dict) -> tuple[str, dict[str, str], bytes]:
    replies = []

    def start_response(status, headers, exc_info=None):
        replies.append((status, dict(headers)))

    body = b"".join(app(environ, start_response))
    status, headers = replies[-1]
    return status, headers, body


def environ_for(body: bytes, **extra: str) -> dict:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/login",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "wsgi.url_scheme": "http",
        "wsgi.input": CountingInput(body),
        "wsgi.errors": io.StringIO(),
    }
    environ.update(extra)
    return environ


@pytest.mark.parametrize(
    "length",
    [
        pytest.param("1048576", id="1MB"),
        pytest.param(str(MAX_BODY + 1), id="limit+1"),
        pytest.param("", id="missing"),
        pytest.param("-1", id="negative"),
        pytest.param("12abc", id="not-a-number"),
    ],
)
def test_the_content_length_is_checked_before_reading(length):
    body = b"user=mallory&pad=" + b"x" * (1024 * 1024)
    environ = environ_for(body, CONTENT_LENGTH=length)
    status, _, page = call(make_demo([SECRET]), environ)
    assert status == "400 Bad Request"
    assert b"id=bad-request" in page
    assert environ["wsgi.input"].consumed == 0


def test_a_body_shorter_than_its_content_length_is_400():
    environ = environ_for(b"user=mallory", CONTENT_LENGTH="100")
    status, _, _ = call(make_demo([SECRET]), environ)
    assert status == "400 Bad Request"


def test_the_body_is_read_up_to_its_content_length_only():
    form = urllib.parse.urlencode({"user": "x", "csrf_token": "y"}).encode()
    environ = environ_for(form + b"&trailing=garbage", CONTENT_LENGTH=str(len(form)))
    status, _, _ = call(make_demo([SECRET]), environ)
    assert status == "403 Forbidden"  # parsed, then refused: no session, no token
    assert environ["wsgi.input"].consumed == len(form)


def test_other_methods_are_405_and_head_has_no_body():
    app = client()
    response = app.put("/login", "x", status=405)
    assert response.headers["Allow"] == "GET, HEAD, POST"
    head = app.head("/logout")
    assert head.status_int == 200 and head.body == b""
    assert int(head.headers["Content-Length"]) > 0


# -- the other pages ---------------------------------------------------------------------


def test_session_page_shows_metadata_and_attributes():
    app = client()
    app.get("/")
    text = app.get("/session").text
    for label in ("is_new", "created_at", "expires_at", "HttpOnly", "SameSite", "Lax"):
        assert label in text
    assert "views" in text


def test_too_big_is_an_error_page_without_a_cookie():
    app = client()
    app.get("/")
    response = app.get("/big", expect_errors=True)
    assert response.status_int == 500
    assert "Session too large" in response.text
    assert response.headers.getall("Set-Cookie") == []
    assert views(app.get("/")) == 2  # the old session is intact


def test_unknown_page_is_404():
    assert client().get("/nope", expect_errors=True).status_int == 404


def test_store_mode_demo_keeps_large_sessions_and_logs_out():
    from wsgisession import MemoryStore

    store = MemoryStore()
    app = webtest.TestApp(make_demo([SECRET], clock=Clock(), store=store))
    assert [views(app.get("/")) for _ in range(2)] == [1, 2]
    assert "Stored 6000 characters" in app.get("/big").text
    assert "store (MemoryStore)" in app.get("/session").text
    log_in(app, "carol")
    assert "<b id=user>carol</b>" in app.get("/").text
    assert len(store) == 1
    app.get("/logout")
    assert len(store) == 1  # GET only shows the form
    post_form(app, "/logout")
    assert len(store) == 0
