from tests.conftest import Harness, cookie_value, set_cookies


def test_round_trip_counter():
    def handler(environ, session):
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    h = Harness(handler)
    first = h.client.get("/")
    assert first.text == "1"
    assert cookie_value(first)
    second = h.client.get("/")
    assert second.text == "2"
    assert h.events.names() == ["created"]


def test_untouched_adds_nothing():
    h = Harness(lambda environ, session: "ok")
    response = h.client.get("/")
    assert set_cookies(response) == []
    assert "Vary" not in response.headers
