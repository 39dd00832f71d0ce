"""The default JSONSerializer: exact round trips, tags, and strict rejection (DESIGN §9)."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import itertools
import json
import math
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsgisession import JSONSerializer, SerializationError, WSGISessionError

S = JSONSerializer()
HYPO = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- helpers --------------------------------------------------------------------------


def assert_same(got, want, where="x"):
    """Equal AND of exactly the same type, recursively (tuple stays tuple, bool stays bool)."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if type(want) is dict:
        assert set(got) == set(want), where
        for key in want:
            assert type(key) is str
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    elif type(want) in (list, tuple):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif type(want) is float:
        # repr equality is exact: keeps -0.0 and every bit of the mantissa.
        assert repr(got) == repr(want), where
    elif type(want) is decimal.Decimal:
        # str equality is exact: keeps the exponent / trailing zeros and -0.
        assert str(got) == str(want), where
    elif type(want) is datetime.datetime:
        assert got == want, where
        assert (got.tzinfo is None) == (want.tzinfo is None), where
        assert got.utcoffset() == want.utcoffset(), where
        assert got.microsecond == want.microsecond, where
    else:
        assert got == want, where


def _no_adjacent_pair(text: str) -> bool:
    """True when no high surrogate is directly followed by a low one (see the dedicated test)."""
    return not any(
        "\ud800" <= a <= "\udbff" and "\udc00" <= b <= "\udfff" for a, b in itertools.pairwise(text)
    )


_chars = st.characters(exclude_categories=())  # everything, lone surrogates included
_text = st.one_of(
    st.text(),
    st.text(alphabet=_chars, max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=5),
).filter(_no_adjacent_pair)
_keys = st.one_of(
    _text,
    st.sampled_from(["$t", "$", "$dt", "$d", "$b", "$u", "$n", "$x", "$$", "a", "_user"]),
)
_offsets = st.integers(min_value=-(24 * 3600 - 1), max_value=24 * 3600 - 1).map(
    lambda s: datetime.timezone(datetime.timedelta(seconds=s))
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
    st.binary(max_size=40),
    st.datetimes(),
    st.datetimes(timezones=_offsets),
    st.dates(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(_keys, children, max_size=4),
    ),
    max_leaves=25,
)


# -- round trips ---------------------------------------------------------------------


@HYPO
@given(values)
def test_round_trip_is_exact_and_type_preserving(value):
    blob = S.dumps(value)
    assert isinstance(blob, bytes)
    back = S.loads(blob)
    assert back == value
    assert_same(back, value)


@HYPO
@given(st.dictionaries(_keys, values, max_size=5))
def test_round_trip_of_session_like_mappings(data):
    assert_same(S.loads(S.dumps(data)), data)


@pytest.mark.parametrize(
    "value",
    [
        (1, 2, (3, [4, (5,)])),
        b"\x00\xff binary",
        b"",
        datetime.datetime(2024, 2, 29, 23, 59, 59, 999999),
        datetime.datetime(
            2024, 2, 29, 23, 59, 59, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-7))
        ),
        datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        datetime.date(1, 1, 1),
        datetime.date(9999, 12, 31),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        decimal.Decimal("1.10"),
        decimal.Decimal("-0"),
        decimal.Decimal("1E+30"),
        decimal.Decimal("0.1000000000000000000000000000000001"),
        10**200,
        -(2**64),
        -0.0,
        5e-324,
        1.7976931348623157e308,
        "\ud800",
        "a\udfffb",
        "\udc00\ud800",  # low then high: not a pair
        "héllo wörld ✓ 😀",
    ],
    ids=repr,
)
def test_explicit_round_trips(value):
    assert_same(S.loads(S.dumps({"v": value})), {"v": value})
    assert_same(S.loads(S.dumps(value)), value)


def test_aware_datetime_keeps_its_utc_offset():
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    value = datetime.datetime(2030, 6, 1, 12, 0, 0, 123456, tzinfo=tz)
    back = S.loads(S.dumps(value))
    assert back.utcoffset() == datetime.timedelta(hours=5, minutes=30)
    assert back.isoformat() == value.isoformat()


def test_adjacent_high_low_surrogates_round_trip_as_two_code_points():
    # Two separate lone surrogates that happen to form a UTF-16 pair must not be merged
    # into one astral character: DESIGN §9 promises an exact round trip.
    value = "\ud83d\ude00"
    assert len(value) == 2
    back = S.loads(S.dumps({"k": value, value: 1}))
    assert back == {"k": value, value: 1}
    assert len(back["k"]) == 2


@pytest.mark.parametrize(
    "value",
    [
        {"$t": [1]},
        {"$": 1},
        {"$dt": "x"},
        {"$d": "2020-01-01"},
        {"$b": "AAAA"},
        {"$u": "12345678123456781234567812345678"},
        {"$n": "NaN"},
        {"$x": None},
        {"$": [["a", 1]]},
        {"$": [["$t", [1]]]},
        {"$t": {"$t": (1, {"$": b"x"})}},
        [{"$dt": "2020-01-01T00:00:00"}],
    ],
    ids=repr,
)
def test_user_dict_that_looks_like_a_tag_round_trips_as_itself(value):
    assert_same(S.loads(S.dumps(value)), value)
    assert_same(S.loads(S.dumps({"outer": value})), {"outer": value})


def test_output_is_ascii_compact_json():
    blob = S.dumps({"a": [1, 2, {"b": None}], "é": "ü✓\ud800", "t": True})
    assert blob.isascii()
    text = blob.decode("ascii")
    assert ", " not in text and ": " not in text and "\n" not in text
    assert text.startswith('{"a":[1,2,{"b":null}],"\\u00e9":"\\u00fc\\u2713\\ud800"')
    assert json.loads(text) == {"a": [1, 2, {"b": None}], "é": "ü✓\ud800", "t": True}
    assert S.dumps({"a": [1, 2]}) == b'{"a":[1,2]}'
    assert S.dumps({}) == b"{}"


def test_tags_are_plain_json_objects():
    raw = json.loads(S.dumps({"t": (1,), "b": b"\x01", "u": uuid.UUID(int=1)}))
    assert raw == {
        "t": {"$t": [1]},
        "b": {"$b": "AQ=="},
        "u": {"$u": "00000000000000000000000000000001"},
    }


# -- rejection on write --------------------------------------------------------------


def _serialization_error(value) -> SerializationError:
    with pytest.raises(SerializationError) as info:
        S.dumps(value)
    err = info.value
    assert isinstance(err, TypeError)
    assert isinstance(err, WSGISessionError)
    return err


@pytest.mark.parametrize(
    "bad",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        decimal.Decimal("NaN"),
        decimal.Decimal("sNaN"),
        decimal.Decimal("Infinity"),
        decimal.Decimal("-Infinity"),
    ],
    ids=repr,
)
def test_non_finite_numbers_are_rejected_naming_the_path(bad):
    err = _serialization_error({"cart": [1, {"price": bad}]})
    assert "['cart'][1]['price']" in str(err)
    assert err.path == "['cart'][1]['price']"


@pytest.mark.parametrize("key", [1, None, (1, 2), 1.5, b"k", True], ids=repr)
def test_non_str_keys_are_rejected_with_the_path(key):
    err = _serialization_error({"outer": {"inner": {key: "x"}}})
    assert "['outer']['inner']" in str(err)
    assert repr(key) in str(err)
    top = _serialization_error({key: "x"})
    assert repr(key) in str(top)
    assert "top level" in str(top)


class Widget:
    pass


def _func():
    return 1


@pytest.mark.parametrize(
    "bad",
    [
        {1, 2},
        frozenset({1}),
        Widget(),
        _func,
        lambda: 1,
        bytearray(b"x"),
        object(),
        complex(1, 2),
        Widget,
    ],
    ids=lambda v: type(v).__name__,
)
def test_unsupported_values_are_rejected_naming_the_path(bad):
    err = _serialization_error({"cart": ["a", "b", bad]})
    assert "['cart'][2]" in str(err)
    assert err.path == "['cart'][2]"
    err = _serialization_error({"cart": ("a", bad)})
    assert "['cart'][1]" in str(err)


def test_set_is_never_silently_converted():
    err = _serialization_error({"tags": {"a"}})
    assert "set" in str(err)


def test_huge_int_raises_serialization_error_not_value_error():
    _serialization_error({"n": 10**5000})


# -- subclasses ----------------------------------------------------------------------


class MyDict(dict):
    pass


class MyList(list):
    pass


class MyStr(str):
    pass


class MyInt(int):
    pass


class MyFloat(float):
    pass


class Level(enum.IntEnum):
    HIGH = 3


def test_subclasses_come_back_as_the_base_type():
    value = {
        "d": MyDict(a=MyList([MyInt(1), MyFloat(2.5), MyStr("s")])),
        "o": collections.OrderedDict([("x", 1)]),
        "dd": collections.defaultdict(list, {"y": [1]}),
        "level": Level.HIGH,
        MyStr("k"): 1,
    }
    back = S.loads(S.dumps(value))
    expected = {"d": {"a": [1, 2.5, "s"]}, "o": {"x": 1}, "dd": {"y": [1]}, "level": 3, "k": 1}
    assert_same(back, expected)


def test_subclass_rejects_nan_like_float():
    _serialization_error({"f": MyFloat("nan")})


class Color(str, enum.Enum):  # noqa: UP042 (deliberately not StrEnum: its __str__ differs)
    RED = "red"


def test_str_enum_comes_back_as_its_str_value():
    # A str subclass must come back as the base str *value* (what json itself does),
    # not as whatever its __str__ returns ("Color.RED").
    assert json.loads(json.dumps({"c": Color.RED})) == {"c": "red"}
    back = S.loads(S.dumps({"c": Color.RED, Color.RED: 1}))
    assert_same(back, {"c": "red", "red": 1})


# -- rejection on read ---------------------------------------------------------------


@pytest.mark.parametrize(
    "blob",
    [
        b"NaN",
        b'{"x":NaN}',
        b'{"x":Infinity}',
        b'{"x":-Infinity}',
        b'{"$t":[NaN]}',
        b"[1,NaN]",
    ],
)
def test_loads_rejects_non_finite_constants(blob):
    with pytest.raises(ValueError):
        S.loads(blob)


@pytest.mark.parametrize(
    "blob",
    [
        b'{"$x":1}',
        b'{"$zz":"a"}',
        b'{"$T":[1]}',
        b'{"$t":"abc"}',
        b'{"$t":{"a":1}}',
        b'{"$dt":5}',
        b'{"$dt":"not a date"}',
        b'{"$d":"2020-13-01"}',
        b'{"$d":null}',
        b'{"$b":"!!!!"}',
        b'{"$b":"QUJ"}',
        b'{"$b":1}',
        b'{"$u":"xyz"}',
        b'{"$u":[1]}',
        b'{"$n":"NaN"}',
        b'{"$n":"Infinity"}',
        b'{"$n":"sNaN"}',
        b'{"$n":"abc"}',
        b'{"$n":1.5}',
        b'{"$":1}',
        b'{"$":[]}',
        b'{"$":[["a"]]}',
        b'{"$":[[1,2]]}',
        b'{"$":[["a",1],["b",2]]}',
        b'{"$":[["a",1,2]]}',
        b'{"$":"a"}',
        b'{"k":{"$x":1}}',
    ],
)
def test_loads_rejects_unknown_or_malformed_tags(blob):
    with pytest.raises(Exception) as info:
        S.loads(blob)
    assert not isinstance(info.value, RecursionError)


@pytest.mark.parametrize(
    "blob",
    [
        '{"k":"é"}'.encode(),
        b'{"k":"\xff"}',
        b"\xef\xbb\xbf{}",  # UTF-8 BOM
        "{}".encode("utf-16"),
    ],
)
def test_loads_rejects_non_ascii_bytes(blob):
    with pytest.raises(ValueError):
        S.loads(blob)


@pytest.mark.parametrize("blob", [b"[" * 200000, b'{"a":' * 200000, b'[{"$t":' * 100000])
def test_loads_deep_nesting_raises_an_ordinary_exception(blob):
    # The middleware catches Exception (not BaseException): RecursionError qualifies.
    with pytest.raises(Exception) as info:
        S.loads(blob)
    assert isinstance(info.value, Exception)


def test_loads_rejects_5000_digit_ints():
    with pytest.raises(ValueError):
        S.loads(b'{"n":' + b"9" * 5000 + b"}")
    with pytest.raises(ValueError):
        S.loads(b'{"$t":[' + b"1" * 5000 + b"]}")


@pytest.mark.parametrize("blob", [b"", b"{", b'{"a":1', b"not json", b"{'a':1}", b'{"a":1}x'])
def test_loads_rejects_invalid_json(blob):
    with pytest.raises(ValueError):
        S.loads(blob)


def test_loads_is_the_inverse_of_dumps_for_plain_json():
    data = {"a": [1, 2.5, "x", None, True, {"b": []}]}
    assert_same(S.loads(S.dumps(data)), data)
    assert S.loads(b'{"a":[1,2.5,"x",null,true,{"b":[]}]}') == data


def test_float_round_trip_is_bit_exact():
    for f in [0.1, 1 / 3, math.pi, 2.0**-1074, -1e-300, 123456789.123456789]:
        back = S.loads(S.dumps([f]))[0]
        assert back.hex() == f.hex()
