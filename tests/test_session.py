"""The Session object, exercised through the middleware (DESIGN §2, §8, §9)."""

from __future__ import annotations

import datetime
import json
import logging
import re

import pytest

from tests.conftest import T0, Harness, cookie_value, set_cookies
from wsgisession import ConfigurationError, Session, WSGISessionError
from wsgisession.codec import TokenCodec

SEED = {"a": 1, "cart": [1, 2], "prefs": {"theme": "light"}, "t": ([1],)}


# -- helpers --------------------------------------------------------------------------


class Status(tuple):
    """``Status(("500 Internal Server Error", None))`` from a Rig handler sets the status."""


class Rig(Harness):
    """A harness whose handler is chosen per request."""

    def __init__(self, **options):
        self._fn = None
        super().__init__(self._dispatch, **options)

    def _dispatch(self, environ, session):
        result = self._fn(environ, session)
        # Handlers here return values only for convenience; a (status, body) tuple is
        # honoured only when it is explicitly a Status.
        return result if isinstance(result, Status) else None

    def run(self, fn, cookie: str | None = "", path: str = "/", **kw):
        """One request with ``fn(environ, session)``; ``cookie`` is a session token value."""
        self._fn = fn
        if cookie:
            header = f"session={cookie}"
        else:
            header = ""  # an explicit empty header keeps the client's jar out of it
        return self.get(path, cookie=header, **kw)

    def token(self, data: dict, **meta) -> str:
        """A token built by the middleware itself (a real save) holding ``data``."""

        def fill(environ, session):
            session.update(data)
            for key, value in meta.items():
                setattr(session, key, value)

        value = cookie_value(self.run(fill))
        assert value
        self.events.clear()
        return value

    def open(self, value: str) -> dict:
        plaintext, _ = self.mw.codec.open(value, "data", self.mw.cookie_name)
        return self.mw.options.serializer.loads(plaintext)


def outcome(response) -> str:
    value = cookie_value(response)
    if value is None:
        return "none"
    return "delete" if value == "" else "write"


def max_age_of(response) -> int | None:
    (header,) = [h for h in set_cookies(response) if h.startswith("session=")]
    match = re.search(r"Max-Age=(\d+)", header)
    return int(match.group(1)) if match else None


@pytest.fixture
def rig():
    return Rig()


@pytest.fixture
def open_spy(monkeypatch, rig):
    """Records every cookie the rig's middleware opens, as ``(purpose, binding)``."""
    calls = []
    original = TokenCodec.opener

    def opener(self, purpose, binding):
        open_token = original(self, purpose, binding)

        def spy(token):
            calls.append((purpose, binding))
            return open_token(token)

        return spy

    monkeypatch.setattr(TokenCodec, "opener", opener)
    rig.__init__()  # a middleware built now binds the spying opener
    return calls


# -- the dict API and its save behaviour ---------------------------------------------


def _raises(exc, fn):
    def run(s):
        with pytest.raises(exc):
            fn(s)
        return "raised"

    return run


def _update_empty(s):
    s.update({})


DICT_API = [
    # (name, action, expected result, outcome, expected data after a write)
    ("getitem", lambda s: s["a"], 1, "none", None),
    ("getitem-missing", _raises(KeyError, lambda s: s["zz"]), "raised", "none", None),
    ("get", lambda s: s.get("a"), 1, "none", None),
    ("get-missing", lambda s: s.get("zz", 7), 7, "none", None),
    ("get-missing-none", lambda s: s.get("zz"), None, "none", None),
    ("setdefault-existing", lambda s: s.setdefault("a", 5), 1, "none", None),
    ("setdefault-new", lambda s: s.setdefault("b", 5), 5, "write", {**SEED, "b": 5}),
    ("pop", lambda s: s.pop("a"), 1, "write", {k: v for k, v in SEED.items() if k != "a"}),
    ("pop-default", lambda s: s.pop("zz", 9), 9, "none", None),
    ("pop-default-none", lambda s: s.pop("zz", None), None, "none", None),
    ("pop-missing", _raises(KeyError, lambda s: s.pop("zz")), "raised", "none", None),
    ("popitem", lambda s: len(s.popitem()), 2, "write", "one-less"),
    ("update-kw", lambda s: s.update(b=2), None, "write", {**SEED, "b": 2}),
    ("update-map", lambda s: s.update({"a": 3}), None, "write", {**SEED, "a": 3}),
    ("update-pairs", lambda s: s.update([("c", "x")]), None, "write", {**SEED, "c": "x"}),
    ("update-empty", _update_empty, None, "none", None),
    ("setitem", lambda s: s.__setitem__("n", [1]), None, "write", {**SEED, "n": [1]}),
    (
        "delitem",
        lambda s: s.__delitem__("a"),
        None,
        "write",
        {k: v for k, v in SEED.items() if k != "a"},
    ),
    ("delitem-missing", _raises(KeyError, lambda s: s.__delitem__("zz")), "raised", "none", None),
    ("clear", lambda s: s.clear(), None, "delete", None),
    ("contains", lambda s: ("a" in s, "zz" in s), (True, False), "none", None),
    ("len", lambda s: len(s), 4, "none", None),
    ("iter", lambda s: sorted(s), sorted(SEED), "none", None),
    ("keys", lambda s: sorted(s.keys()), sorted(SEED), "none", None),
    ("values", lambda s: len(list(s.values())), 4, "none", None),
    ("items", lambda s: dict(s.items()), SEED, "none", None),
    ("copy", lambda s: s.copy(), SEED, "none", None),
    ("eq", lambda s: (s == SEED, s == {"a": 1}, s != {}), (True, False, True), "none", None),
    ("dict", lambda s: dict(s), SEED, "none", None),
]


@pytest.mark.parametrize(
    ("action", "result", "expect", "after"),
    [pytest.param(*row[1:], id=row[0]) for row in DICT_API],
)
def test_dict_api_and_save_behaviour(rig, action, result, expect, after):
    cookie = rig.token(SEED)
    seen = {}

    def handler(environ, session):
        seen["result"] = action(session)

    response = rig.run(handler, cookie)
    assert seen["result"] == result
    assert outcome(response) == expect
    if action is not _update_empty:  # update({}) neither reads nor writes
        assert response.headers["Vary"] == "Cookie"
    if expect == "write":
        data = rig.open(cookie_value(response))["d"]
        if after == "one-less":
            assert len(data) == len(SEED) - 1
            assert all(SEED[k] == v for k, v in data.items())
        else:
            assert data == after
    if expect == "delete":
        assert rig.events.names() == ["destroyed"]


def test_copy_is_a_plain_shallow_dict(rig):
    cookie = rig.token(SEED)

    def handler(environ, session):
        c = session.copy()
        assert type(c) is dict
        c["new"] = 1  # a new key in the copy is not the session's
        del c["a"]
        assert "new" not in session and "a" in session

    assert outcome(rig.run(handler, cookie)) == "none"


def test_session_is_a_mutable_mapping_of_the_right_class(rig):
    def handler(environ, session):
        assert isinstance(session, Session)
        assert environ["session"] is session

    rig.run(handler)


def test_clear_and_emptying_a_new_session_writes_nothing(rig):
    def handler(environ, session):
        session["x"] = 1
        session.clear()

    response = rig.run(handler)
    assert outcome(response) == "none"
    assert "destroyed" not in rig.events.names()
    assert outcome(rig.run(lambda e, s: s.clear())) == "none"


def test_popping_the_last_key_destroys(rig):
    cookie = rig.token({"only": 1})
    response = rig.run(lambda e, s: s.pop("only"), cookie)
    assert outcome(response) == "delete"
    assert rig.events.reasons("destroyed") == ["emptied"]


def test_forced_save_still_writes_an_emptied_session(rig):
    cookie = rig.token({"only": 1})

    def handler(environ, session):
        session.clear()
        session.save()

    response = rig.run(handler, cookie)
    assert outcome(response) == "write"
    assert rig.open(cookie_value(response))["d"] == {}


def test_keys_starting_with_underscore_are_persisted(rig):
    cookie = rig.token({"_user_id": 42, "_fresh": True, "__x": [1]})
    seen = {}
    rig.run(lambda e, s: seen.update(s), cookie)
    assert seen == {"_user_id": 42, "_fresh": True, "__x": [1]}


def test_write_then_read_in_next_request(rig):
    cookie = rig.token({"n": 1})
    response = rig.run(lambda e, s: s.__setitem__("n", s["n"] + 1), cookie)
    seen = {}
    rig.run(lambda e, s: seen.update(s), cookie_value(response))
    assert seen == {"n": 2}


# -- laziness and touches -----------------------------------------------------------


def test_untouched_session_never_opens_the_cookie(rig, open_spy):
    cookie = rig.token({"a": 1})
    open_spy.clear()

    def handler(environ, session):
        assert session.accessed is False
        assert session.changed is False
        assert "not loaded" in repr(session)

    response = rig.run(handler, cookie)
    assert open_spy == []
    assert "Vary" not in response.headers
    assert set_cookies(response) == []
    assert rig.events.names() == []


@pytest.mark.parametrize("attr", ["id", "is_new", "created_at", "expires_at", "max_age"])
def test_reading_metadata_loads_and_counts_as_a_touch(rig, open_spy, attr):
    cookie = rig.token({"a": 1})
    open_spy.clear()
    seen = {}

    def handler(environ, session):
        assert session.accessed is False
        getattr(session, attr)
        seen["accessed"] = session.accessed

    response = rig.run(handler, cookie)
    assert seen["accessed"] is True
    assert open_spy == [("data", "session")]
    assert response.headers["Vary"] == "Cookie"
    assert set_cookies(response) == []


def test_reading_data_loads_once(rig, open_spy):
    cookie = rig.token({"a": 1})
    open_spy.clear()

    def handler(environ, session):
        session.get("a")
        session.get("a")
        _ = session.id, session.is_new, len(session)

    rig.run(handler, cookie)
    assert len(open_spy) == 1


def test_accessed_and_changed_without_cookie(rig):
    seen = {}

    def handler(environ, session):
        seen["before"] = (session.accessed, session.changed)
        session["x"] = 1
        seen["after"] = (session.accessed, session.changed)

    rig.run(handler)
    assert seen == {"before": (False, False), "after": (True, True)}


# -- nested change detection --------------------------------------------------------


def _mut_values(s):
    for v in s.values():
        if isinstance(v, list):
            v.append(9)


def _mut_items(s):
    for k, v in s.items():
        if k == "prefs":
            v["theme"] = "dark"


NESTED = [
    ("append", lambda s: s["cart"].append(3), ("cart", [1, 2, 3])),
    (
        "nested-dict",
        lambda s: s["prefs"].__setitem__("theme", "dark"),
        ("prefs", {"theme": "dark"}),
    ),
    ("get", lambda s: s.get("cart").append(3), ("cart", [1, 2, 3])),
    ("setdefault", lambda s: s.setdefault("cart", []).append(3), ("cart", [1, 2, 3])),
    ("values", _mut_values, ("cart", [1, 2, 9])),
    ("items", _mut_items, ("prefs", {"theme": "dark"})),
    ("copy", lambda s: s.copy()["cart"].append(3), ("cart", [1, 2, 3])),
    ("in-tuple", lambda s: s["t"][0].append(2), ("t", ([1, 2],))),
    ("clear-list", lambda s: s["cart"].clear(), ("cart", [])),
]


def run_noting_changed(rig, action, cookie):
    """One request running ``action(session)``; returns the response and
    ``session.changed`` as it stood right after the action."""
    seen = {}

    def handler(environ, session):
        action(session)
        seen["changed"] = session.changed

    response = rig.run(handler, cookie)
    return response, seen["changed"]


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(*row[1:], id=row[0]) for row in NESTED]
)
def test_nested_changes_are_saved_without_a_flag(rig, mutate, expected):
    cookie = rig.token(SEED)
    response, changed = run_noting_changed(rig, mutate, cookie)
    assert changed is True
    assert outcome(response) == "write"
    key, value = expected
    assert rig.open(cookie_value(response))["d"][key] == value


def test_nested_change_in_new_session_value_is_saved(rig):
    def handler(environ, session):
        session["cart"] = []

    cookie = cookie_value(rig.run(handler))
    response = rig.run(lambda e, s: s["cart"].append("x"), cookie)
    assert rig.open(cookie_value(response))["d"] == {"cart": ["x"]}


@pytest.mark.parametrize(
    "read",
    [
        lambda s: s["cart"],
        lambda s: s["prefs"]["theme"],
        lambda s: list(s.values()),
        lambda s: list(s.items()),
        lambda s: s.copy(),
        lambda s: s.get("cart")[:],
        lambda s: s["t"][0][0],
    ],
)
def test_reading_a_mutable_value_without_changing_it_writes_nothing(rig, read):
    cookie = rig.token(SEED)
    response, changed = run_noting_changed(rig, read, cookie)
    assert changed is False
    assert outcome(response) == "none"


def test_mutation_undone_before_commit_writes_nothing(rig):
    cookie = rig.token(SEED)

    def handler(environ, session):
        cart = session["cart"]
        cart.append(3)
        cart.pop()

    assert outcome(rig.run(handler, cookie)) == "none"


# -- metadata ----------------------------------------------------------------------


def test_is_new(rig):
    seen = []
    cookie = cookie_value(rig.run(lambda e, s: (seen.append(s.is_new), s.update(a=1))))
    rig.run(lambda e, s: seen.append(s.is_new), cookie)
    rig.run(lambda e, s: seen.append(s.is_new), "garbage-token-value")
    assert seen == [True, False, True]


def test_id_is_stable_across_requests_and_changes_on_regenerate(rig):
    ids = []
    first = cookie_value(rig.run(lambda e, s: (ids.append(s.id), s.update(a=1))))
    second = cookie_value(rig.run(lambda e, s: (ids.append(s.id), s.update(b=2)), first))
    rig.run(lambda e, s: ids.append(s.id), second)
    assert ids[0] == ids[1] == ids[2]
    assert isinstance(ids[0], str) and ids[0]
    assert rig.open(second)["s"] == ids[0]

    def regen(environ, session):
        before = session.id
        session.regenerate()
        ids.append((before, session.id))

    third = cookie_value(rig.run(regen, second))
    before, after = ids[-1]
    assert before == ids[0] and after != before
    rig.run(lambda e, s: ids.append(s.id), third)
    assert ids[-1] == after


def test_new_session_has_an_id_before_any_save(rig):
    seen = {}
    response = rig.run(lambda e, s: seen.update(id=s.id))
    assert seen["id"]
    assert outcome(response) == "none"


def test_created_at_stays_the_same_across_saves(rig):
    seen = []
    cookie = cookie_value(rig.run(lambda e, s: (seen.append(s.created_at), s.update(n=0))))
    for i in range(3):
        rig.clock.advance(1000)

        def handler(environ, session, i=i):
            seen.append(session.created_at)
            session["n"] = i

        cookie = cookie_value(rig.run(handler, cookie))
        assert rig.open(cookie)["c"] == T0
    assert seen == [T0] * 4


def test_expires_at_is_now_plus_max_age_after_a_save():
    seen = {}

    def app(environ, start_response):
        session = environ["session"]
        if environ["PATH_INFO"] == "/write":
            session["a"] = 1
            seen["before_save"] = session.expires_at  # projected
        start_response("200 OK", [("Content-Type", "text/plain")])
        seen[environ["PATH_INFO"]] = session.expires_at  # reading after commit is allowed
        return [b""]

    h = Harness(app=app, max_age=600)
    h.clock.now = T0 + 50
    response = h.get("/write", cookie="")
    assert seen["before_save"] == T0 + 650
    assert seen["/write"] == T0 + 650
    token = cookie_value(response)
    plaintext, _ = h.mw.codec.open(token, "data", "session")
    assert json.loads(plaintext)["e"] == T0 + 650
    assert max_age_of(response) == 600
    # A later request that does not save reports the saved expiry, not a new one.
    h.clock.advance(100)
    h.get("/read", cookie=f"session={token}")
    assert seen["/read"] == T0 + 650
    # A later save moves it to the new now + max_age.
    h.clock.advance(100)
    response = h.get("/write", cookie=f"session={token}")
    assert seen["/write"] == T0 + 250 + 600


def test_expires_at_is_none_for_browser_session_without_absolute():
    rig = Rig(max_age=None)
    seen = []
    cookie = cookie_value(rig.run(lambda e, s: (s.update(a=1), seen.append(s.expires_at))))
    rig.run(lambda e, s: seen.append(s.expires_at), cookie)
    assert seen == [None, None]
    assert "e" not in rig.open(cookie)
    assert max_age_of(rig.run(lambda e, s: s.update(b=1), cookie)) is None


def test_expires_at_with_absolute_max_age_and_browser_cookie():
    rig = Rig(max_age=None, absolute_max_age=5000)
    seen = []
    cookie = cookie_value(rig.run(lambda e, s: s.update(a=1)))
    rig.clock.advance(10)
    rig.run(lambda e, s: seen.append(s.expires_at), cookie)
    assert seen == [T0 + 5000]


# -- max_age ---------------------------------------------------------------------


def test_max_age_getter_defaults_to_the_option():
    seen = []
    Rig(max_age=1234).run(lambda e, s: seen.append(s.max_age))
    Rig(max_age=None).run(lambda e, s: seen.append(s.max_age))
    Rig(max_age=datetime.timedelta(hours=2)).run(lambda e, s: seen.append(s.max_age))
    assert seen == [1234, None, 7200]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (100, 100),
        (1.5, 2),
        (59.0, 59),
        (datetime.timedelta(minutes=5), 300),
        (datetime.timedelta(seconds=0.2), 1),
        (None, None),
    ],
)
def test_setting_max_age_forces_a_save_even_of_an_empty_session(rig, value, expected):
    seen = {}

    def handler(environ, session):
        session.max_age = value
        seen["getter"] = session.max_age

    response = rig.run(handler)
    assert seen["getter"] == expected
    assert outcome(response) == "write"
    assert max_age_of(response) == expected
    header = set_cookies(response)[0]
    assert ("expires=" in header) == (expected is not None)
    meta = rig.open(cookie_value(response))
    assert meta["d"] == {}
    assert meta["m"] == expected
    if expected is None:
        assert "e" not in meta
    else:
        assert meta["e"] == T0 + expected
    assert rig.events.names() == ["created"]


def test_per_session_max_age_survives_later_requests(rig):
    def handler(environ, session):
        session["a"] = 1
        session.max_age = 120

    first = rig.run(handler)
    assert max_age_of(first) == 120
    rig.clock.advance(30)
    seen = {}

    def second_handler(environ, session):
        seen["max_age"] = session.max_age
        session["a"] = 2

    second = rig.run(second_handler, cookie_value(first))
    assert seen["max_age"] == 120
    assert max_age_of(second) == 120  # not the 86400 default
    meta = rig.open(cookie_value(second))
    assert meta["m"] == 120 and meta["e"] == T0 + 30 + 120
    rig.clock.advance(30)
    third = rig.run(lambda e, s: s.update(a=3), cookie_value(second))
    assert max_age_of(third) == 120


def test_per_session_browser_cookie_survives_later_requests(rig):
    first = rig.run(lambda e, s: (s.update(a=1), setattr(s, "max_age", None)))
    second = rig.run(lambda e, s: s.update(a=2), cookie_value(first))
    assert max_age_of(second) is None
    meta = rig.open(cookie_value(second))
    assert meta["m"] is None and "e" not in meta


def test_other_sessions_keep_the_default_max_age(rig):
    rig.run(lambda e, s: (s.update(a=1), setattr(s, "max_age", 60)))
    other = rig.run(lambda e, s: s.update(a=1))
    assert max_age_of(other) == 86400
    assert "m" not in rig.open(cookie_value(other))


@pytest.mark.parametrize(
    "bad",
    [
        0,
        -1,
        -0.5,
        float("nan"),
        float("inf"),
        True,
        "60",
        [60],
        datetime.timedelta(0),
        datetime.timedelta(seconds=-5),
    ],
    ids=repr,
)
def test_bad_max_age_values_raise_configuration_error(rig, bad):
    seen = {}

    def handler(environ, session):
        with pytest.raises(ConfigurationError) as info:
            session.max_age = bad
        seen["err"] = info.value
        seen["max_age"] = session.max_age

    response = rig.run(handler)
    assert isinstance(seen["err"], ValueError)
    assert "max_age" in str(seen["err"])
    assert seen["max_age"] == 86400
    assert outcome(response) == "none"


# -- save / commit / auto_commit ----------------------------------------------------


def test_save_forces_a_write_of_an_unchanged_session(rig):
    cookie = rig.token({"a": 1})
    response = rig.run(lambda e, s: s.save(), cookie)
    assert outcome(response) == "write"
    assert cookie_value(response) != cookie
    assert rig.open(cookie_value(response))["d"] == {"a": 1}


def test_save_forces_a_write_of_an_empty_new_session(rig):
    response = rig.run(lambda e, s: s.save())
    assert outcome(response) == "write"
    assert rig.open(cookie_value(response))["d"] == {}
    assert rig.events.names() == ["created"]
    seen = {}
    rig.run(lambda e, s: seen.update(new=s.is_new, data=dict(s)), cookie_value(response))
    assert seen == {"new": False, "data": {}}


def test_new_empty_session_is_not_written(rig):
    response = rig.run(lambda e, s: s.get("x"))
    assert outcome(response) == "none"
    assert response.headers["Vary"] == "Cookie"


def test_auto_commit_false_writes_only_on_commit_or_save():
    rig = Rig(auto_commit=False)
    assert outcome(rig.run(lambda e, s: s.update(a=1))) == "none"
    response = rig.run(lambda e, s: (s.update(a=1), s.commit()))
    assert outcome(response) == "write"
    cookie = cookie_value(response)
    assert outcome(rig.run(lambda e, s: s.commit(), cookie)) == "none"  # unchanged
    assert outcome(rig.run(lambda e, s: s["a"], cookie)) == "none"
    assert outcome(rig.run(lambda e, s: s.save(), cookie)) == "write"
    assert outcome(rig.run(lambda e, s: s.regenerate(), cookie)) == "write"
    nested = rig.run(lambda e, s: (s.__setitem__("l", []), s.commit()), cookie)
    response = rig.run(lambda e, s: (s["l"].append(1), s.commit()), cookie_value(nested))
    assert rig.open(cookie_value(response))["d"] == {"a": 1, "l": [1]}


def test_explicit_save_marks_the_session_clean():
    seen = {}

    def app(environ, start_response):
        session = environ["session"]
        session["a"] = 1
        session.save()
        start_response("200 OK", [])
        seen["changed"] = session.changed
        return [b""]

    h = Harness(app=app)
    assert outcome(h.get("/", cookie="")) == "write"
    assert seen["changed"] is False


# -- regenerate / invalidate --------------------------------------------------------


def test_regenerate_new_id_same_data_and_event(rig):
    cookie = rig.token({"user": "alice", "cart": [1]})
    old_id = rig.open(cookie)["s"]
    response = rig.run(lambda e, s: s.regenerate(), cookie)
    assert outcome(response) == "write"
    meta = rig.open(cookie_value(response))
    assert meta["s"] != old_id
    assert meta["d"] == {"user": "alice", "cart": [1]}
    assert meta["c"] == T0
    assert rig.events.names() == ["regenerated"]
    assert rig.events[0].session_id_hash is not None


def test_old_cookie_still_opens_after_regenerate_in_cookie_mode(rig):
    # Documented limitation: cookie sessions have no server-side revocation list.
    cookie = rig.token({"user": "alice"})
    old_id = rig.open(cookie)["s"]
    rig.run(lambda e, s: s.regenerate(), cookie)
    seen = {}
    rig.run(lambda e, s: seen.update(data=dict(s), id=s.id, new=s.is_new), cookie)
    assert seen == {"data": {"user": "alice"}, "id": old_id, "new": False}


def test_invalidate_sends_a_deletion_cookie(rig):
    cookie = rig.token({"user": "alice"})
    seen = {}

    def handler(environ, session):
        session.invalidate()
        seen.update(data=dict(session), new=session.is_new)

    response = rig.run(handler, cookie)
    assert outcome(response) == "delete"
    assert seen == {"data": {}, "new": True}
    assert rig.events.names() == ["destroyed"]
    assert rig.events.reasons() == ["invalidate"]


def test_invalidate_without_incoming_cookie_still_deletes(rig):
    response = rig.run(lambda e, s: s.invalidate())
    assert outcome(response) == "delete"
    assert rig.events.names() == ["destroyed"]


def test_write_after_invalidate_starts_a_new_session(rig):
    cookie = rig.token({"user": "alice", "secret": 1})
    old_id = rig.open(cookie)["s"]
    rig.clock.advance(100)
    seen = {}

    def handler(environ, session):
        session.invalidate()
        seen["id_after_invalidate"] = session.id
        session["flash"] = "bye"

    response = rig.run(handler, cookie)
    assert outcome(response) == "write"
    meta = rig.open(cookie_value(response))
    assert meta["d"] == {"flash": "bye"}
    assert meta["s"] != old_id
    assert meta["s"] == seen["id_after_invalidate"]
    assert meta["c"] == T0 + 100
    assert "created" in rig.events.names()


def test_assigning_none_destroys_even_when_untouched(rig):
    cookie = rig.token({"user": "alice"})

    def handler(environ, session):
        environ["session"] = None

    response = rig.run(handler, cookie)
    assert outcome(response) == "delete"
    assert rig.events.names() == ["destroyed"]
    assert rig.events.reasons() == ["assigned_none"]
    assert "Cookie" in response.headers["Vary"]


def test_assigning_none_without_a_cookie_sends_deletion(rig):
    response = rig.run(lambda e, s: e.__setitem__("session", None))
    assert outcome(response) == "delete"


# -- replacing --------------------------------------------------------------------


def test_replacing_with_a_dict_writes_its_contents(rig):
    cookie = rig.token({"a": 1, "b": 2})
    seen = {}

    def handler(environ, session):
        new = {"x": [1]}
        environ["session"] = new
        new["x"].append(2)  # the rest of the request works on the app's dict
        new["y"] = "z"
        seen["same"] = environ["session"] is new

    response = rig.run(handler, cookie)
    assert seen["same"] is True
    assert outcome(response) == "write"
    assert rig.open(cookie_value(response))["d"] == {"x": [1, 2], "y": "z"}


def test_replacing_with_identical_content_writes_nothing(rig):
    cookie = rig.token({"a": 1, "l": [1, 2]})
    response = rig.run(lambda e, s: e.__setitem__("session", {"a": 1, "l": [1, 2]}), cookie)
    assert outcome(response) == "none"
    assert response.headers["Vary"] == "Cookie"


def test_replacing_with_identical_content_in_another_key_order_writes_nothing(rig):
    # Identical content (equal dicts) counts as unchanged; insertion order is not content.
    cookie = rig.token({"a": 1, "l": [1, 2]})
    response = rig.run(lambda e, s: e.__setitem__("session", {"l": [1, 2], "a": 1}), cookie)
    assert outcome(response) == "none"


def test_replacing_after_a_nested_change_back_to_the_original_writes_nothing(rig):
    cookie = rig.token({"l": [1]})

    def handler(environ, session):
        session["l"].append(2)
        environ["session"] = {"l": [1]}

    assert outcome(rig.run(handler, cookie)) == "none"


def test_replacing_a_new_session(rig):
    response = rig.run(lambda e, s: e.__setitem__("session", {"k": "v"}))
    assert outcome(response) == "write"
    assert rig.open(cookie_value(response))["d"] == {"k": "v"}
    assert rig.events.names() == ["created"]


def test_replacing_with_an_empty_dict_destroys_a_loaded_session(rig):
    cookie = rig.token({"a": 1})
    response = rig.run(lambda e, s: e.__setitem__("session", {}), cookie)
    assert outcome(response) == "delete"


@pytest.mark.parametrize("bad", ["x", 1, [("a", 1)], (), set(), object()], ids=repr)
def test_replacing_with_anything_else_is_a_type_error(rig, bad):
    with pytest.raises(TypeError):
        rig.run(lambda e, s: e.__setitem__("session", bad))


# -- after start_response -------------------------------------------------------


AFTER_HEADERS = {
    "save": lambda s: s.save(),
    "commit": lambda s: s.commit(),
    "regenerate": lambda s: s.regenerate(),
    "invalidate": lambda s: s.invalidate(),
    "max_age": lambda s: setattr(s, "max_age", 60),
}


@pytest.mark.parametrize("touch_first", [True, False], ids=["loaded", "untouched"])
@pytest.mark.parametrize("op", list(AFTER_HEADERS))
def test_lifecycle_calls_after_start_response_raise(op, touch_first):
    seen = {}

    def app(environ, start_response):
        session = environ["session"]
        if touch_first:
            session.get("a")
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            AFTER_HEADERS[op](session)
        except WSGISessionError as exc:
            seen["err"] = exc
        return [b"ok"]

    h = Harness(app=app)
    response = h.get("/", cookie="")
    assert type(seen.get("err")) is WSGISessionError
    assert "headers already sent" in str(seen["err"])
    assert set_cookies(response) == []
    assert "regenerated" not in h.events.names()


def test_direct_write_after_start_response_is_a_late_write():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"a"
        environ["session"]["late"] = 1
        yield b"b"

    h = Harness(app=app)
    response = h.get("/", cookie="")
    assert h.events.names() == ["late_write"]
    assert h.events.reasons() == ["after_headers"]
    assert set_cookies(response) == []


def test_direct_write_after_start_response_from_plain_app_iterable():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            environ["session"]["late"] = 1
            yield b"b"

        return body()

    h = Harness(app=app)
    h.get("/", cookie="")
    assert h.events.names() == ["late_write"]


def test_late_write_is_reported_once():
    def app(environ, start_response):
        environ["session"].get("x")
        start_response("200 OK", [])
        environ["session"]["a"] = 1
        environ["session"]["b"] = 2
        return [b""]

    h = Harness(app=app)
    h.get("/", cookie="")
    assert h.events.names() == ["late_write"]


@pytest.fixture
def cart_cookie():
    return Rig().token({"cart": [1]})


def test_nested_mutation_after_start_response_in_a_generator_app(cart_cookie):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        cart = environ["session"]["cart"]
        yield b"a"
        cart.append(2)
        yield b"b"

    h = Harness(app=app)
    response = h.get("/", cookie=f"session={cart_cookie}")
    assert h.events.names() == ["late_write"]
    assert set_cookies(response) == []


def test_nested_mutation_after_start_response_when_loaded_before(cart_cookie):
    def app(environ, start_response):
        session = environ["session"]
        session.get("other")
        start_response("200 OK", [("Content-Type", "text/plain")])
        session["cart"].append(2)
        return [b"ok"]

    h = Harness(app=app)
    h.get("/", cookie=f"session={cart_cookie}")
    assert h.events.names() == ["late_write"]


def test_nested_mutation_in_body_of_plain_app_untouched_before_headers(cart_cookie):
    # The session is first touched while the body is iterated: the app returned a
    # generator object (not a generator function), so the change happens after
    # start_response and must still be reported as late_write.
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            environ["session"]["cart"].append(2)
            yield b"x"

        return body()

    h = Harness(app=app)
    h.get("/", cookie=f"session={cart_cookie}")
    assert h.events.names() == ["late_write"]


def test_reading_after_start_response_without_change_is_not_a_late_write(cart_cookie):
    def app(environ, start_response):
        start_response("200 OK", [])
        yield repr(environ["session"]["cart"]).encode()

    h = Harness(app=app)
    assert h.get("/", cookie=f"session={cart_cookie}").text == "[1]"
    assert h.events.names() == []


# -- hooks ---------------------------------------------------------------------


def test_valid_hook_false_gives_a_fresh_session():
    calls = []

    def valid(environ, session):
        calls.append(dict(session))
        return False

    rig = Rig(valid=valid)
    cookie = Rig().token({"user": "mallory"})
    rig.events.clear()
    seen = {}
    response = rig.run(lambda e, s: seen.update(data=dict(s), new=s.is_new), cookie)
    assert calls == [{"user": "mallory"}]
    assert seen == {"data": {}, "new": True}
    assert rig.events.names() == ["invalid"]
    assert rig.events.reasons() == ["valid"]
    assert set_cookies(response) == []


def test_valid_hook_receives_loaded_data_and_metadata():
    rig = Rig()
    cookie = rig.token({"user": "alice", "gen": 3})
    meta = rig.open(cookie)
    seen = {}

    def valid(environ, session):
        seen.update(
            data=dict(session),
            id=session.id,
            new=session.is_new,
            created=session.created_at,
            expires=session.expires_at,
            environ_ok=environ["PATH_INFO"] == "/p",
        )
        return True

    checked = Harness(lambda e, s: s["user"], valid=valid, clock=rig.clock)
    response = checked.get("/p", cookie=f"session={cookie}")
    assert response.text == "alice"
    assert seen == {
        "data": {"user": "alice", "gen": 3},
        "id": meta["s"],
        "new": False,
        "created": T0,
        "expires": meta["e"],
        "environ_ok": True,
    }
    assert checked.events.names() == []
    assert set_cookies(response) == []


def test_valid_hook_reading_mutables_does_not_cause_a_write():
    rig = Rig(valid=lambda e, s: s["cart"] == [1])
    cookie = Rig().token({"cart": [1]})
    response = rig.run(lambda e, s: s["cart"], cookie)
    assert outcome(response) == "none"
    assert rig.events.names() == []


def test_valid_hook_raising_is_treated_as_invalid_and_logged(caplog):
    def valid(environ, session):
        raise RuntimeError("hook exploded")

    rig = Rig(valid=valid)
    cookie = Rig().token({"user": "alice"})
    seen = {}
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        rig.run(lambda e, s: seen.update(data=dict(s), new=s.is_new), cookie)
    assert seen == {"data": {}, "new": True}
    assert rig.events.names() == ["invalid"]
    assert rig.events.reasons() == ["valid"]
    logged = [r for r in caplog.records if r.name == "wsgisession" and r.exc_info]
    assert logged and logged[0].exc_info[0] is RuntimeError


def test_valid_hook_not_called_without_a_cookie():
    calls = []
    rig = Rig(valid=lambda e, s: calls.append(1) or True)
    rig.run(lambda e, s: s.get("a"))
    assert calls == []


def test_before_save_is_called_before_each_save_only():
    calls = []

    def before_save(environ, session):
        calls.append(dict(session))
        session["saved_by_hook"] = True

    rig = Rig(before_save=before_save)
    first = rig.run(lambda e, s: s.update(a=1))
    assert calls == [{"a": 1}]
    assert rig.open(cookie_value(first))["d"] == {"a": 1, "saved_by_hook": True}
    cookie = cookie_value(first)
    rig.run(lambda e, s: s["a"], cookie)  # read only: no save
    rig.run(lambda e, s: None, cookie)  # untouched
    rig.run(lambda e, s: s.get("zz"))  # empty new session: no save
    assert len(calls) == 1
    rig.run(lambda e, s: s.invalidate(), cookie)  # destroy is not a save
    rig.run(lambda e, s: e.__setitem__("session", None), cookie)
    assert len(calls) == 1
    rig.run(lambda e, s: s.save(), cookie)
    rig.run(lambda e, s: s.regenerate(), cookie)
    rig.run(lambda e, s: setattr(s, "max_age", 5), cookie)
    assert len(calls) == 4


def test_before_save_not_called_on_5xx():
    calls = []
    rig = Rig(before_save=lambda e, s: calls.append(1))
    response = rig.run(
        lambda e, s: Status(("500 Internal Server Error", s.update(a=1))), status=500
    )
    assert outcome(response) == "none"
    assert calls == []


def test_custom_genid_is_used():
    counter = iter(range(1, 100))
    seen = []

    def genid(environ):
        seen.append(environ["PATH_INFO"])
        return f"custom-{next(counter)}"

    rig = Rig(genid=genid)
    ids = []
    response = rig.run(lambda e, s: (ids.append(s.id), s.update(a=1)), path="/login")
    assert ids == ["custom-1"]
    assert seen == ["/login"]
    assert rig.open(cookie_value(response))["s"] == "custom-1"
    regenerated = rig.run(lambda e, s: s.regenerate(), cookie_value(response))
    assert rig.open(cookie_value(regenerated))["s"] == "custom-2"


@pytest.mark.parametrize("bad", [None, 123, b"bytes-id", "", "x" * 257], ids=repr)
def test_genid_returning_a_bad_value_raises(bad):
    rig = Rig(genid=lambda environ: bad)
    with pytest.raises(WSGISessionError) as info:
        rig.run(lambda e, s: s.get("a"))
    assert "genid" in str(info.value)


# -- repr -----------------------------------------------------------------------


def test_repr_shows_no_data_and_no_id(rig):
    cookie = rig.token({"password": "hunter2-secret", "card": 4111111111111111})
    seen = {}

    def handler(environ, session):
        seen["before"] = repr(session)
        seen["id"] = session.id
        seen["after"] = repr(session)
        session["more"] = "also-secret-value"
        seen["changed"] = repr(session)

    rig.run(handler, cookie)
    assert seen["before"] == "<Session (not loaded)>"
    for text in (seen["after"], seen["changed"]):
        for secret in ("hunter2", "4111111111111111", "password", "also-secret", seen["id"]):
            assert secret not in text
        assert text.startswith("<Session ")
    assert "keys=2" in seen["after"]


def test_session_metadata_is_json_in_the_token(rig):
    # The token plaintext is the documented compact JSON object (c, e, s, d).
    cookie = rig.token({"a": 1})
    plaintext, _ = rig.mw.codec.open(cookie, "data", "session")
    assert json.loads(plaintext) == {
        "c": T0,
        "e": T0 + 86400,
        "s": rig.open(cookie)["s"],
        "d": {"a": 1},
    }
