"""The default serializer: compact, strict JSON with a few tagged Python types.

``JSONSerializer`` turns the token's plaintext mapping (metadata and session data)
into ASCII JSON bytes and back. Beyond plain JSON it round-trips, exactly:

* ``tuple``                       → ``{"$t": [...]}``
* ``bytes``                       → ``{"$b": "<base64>"}``
* ``datetime.datetime``           → ``{"$dt": "<isoformat>"}`` (naive or aware, microseconds kept)
* ``datetime.date``               → ``{"$d": "<isoformat>"}``
* ``uuid.UUID``                   → ``{"$u": "<hex>"}``
* ``decimal.Decimal``             → ``{"$n": "<str>"}``
* a ``str`` holding a lone high surrogate followed by a lone low one
                                  → ``{"$s": "<base64 of UTF-16-LE>"}`` (JSON would join the
  escaped pair into one character); a dict with such a key → ``{"$k": [[key, value], ...]}``
* a user dict with exactly one key starting with ``$`` → ``{"$": [[key, value]]}``,
  so such a dict comes back as itself and never as a tagged value.

Subclasses of ``dict``, ``list``, ``str``, ``int`` and ``float`` are accepted and come
back as the base type (what :mod:`json` itself does). Anything else — sets, custom
objects, non-``str`` keys, NaN and infinities — raises
:class:`~wsgisession.errors.SerializationError` naming where the value sits.
Pickle is never used.

A custom serializer is any object with ``dumps(obj) -> bytes`` and
``loads(bytes) -> obj``.
"""

from __future__ import annotations

import _json
import base64
import binascii
import datetime
import json
import math
import re
import uuid
from decimal import Decimal
from typing import Any, Protocol, cast

from .errors import SerializationError

__all__ = ["Serializer", "JSONSerializer", "same_content"]


class Serializer(Protocol):
    """What the ``serializer`` option accepts."""

    def dumps(self, obj: Any) -> bytes: ...  # pragma: no cover - protocol

    def loads(self, data: bytes) -> Any: ...  # pragma: no cover - protocol


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in session payload")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_decode = _decoder.decode


# The C accelerators, called directly: no encoder is built per call, and no Python-level
# decode()/raw_decode() wrapper runs per call.
def _no_default(obj: Any) -> Any:  # pragma: no cover - _pack leaves nothing unknown
    raise TypeError(f"unexpected {type(obj).__name__}")


# make_encoder(markers, default, encoder, indent, key_sep, item_sep, sort_keys, skipkeys,
# allow_nan): compact, ASCII, NaN refused.
_c_encode: Any = _json.make_encoder(
    None, _no_default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
)
_c_scan: Any = _json.make_scanner(cast(Any, _decoder))

_SURROGATE_PAIR_RE = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _where(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p!r}]" for p in path)


def _pack(obj: Any, path: tuple[Any, ...]) -> Any:
    """Return a JSON-ready copy of ``obj`` with tagged types, or raise."""
    t = type(obj)
    if t is str:
        if obj.isascii() or _SURROGATE_PAIR_RE.search(obj) is None:
            return obj
        # JSON would merge an escaped high+low surrogate pair into one character.
        return {"$s": base64.b64encode(obj.encode("utf-16-le", "surrogatepass")).decode()}
    if t is int or t is bool or obj is None:
        return obj
    if t is float:
        if math.isfinite(obj):
            return obj
        raise SerializationError(
            f"session value at {_where(path)} is a non-finite float, which cannot be stored",
            _where(path),
        )
    if t is dict:
        return _pack_dict(obj, path)
    if t is list:
        return _pack_list(obj, path)
    return _pack_other(obj, t, path)


def _pack_list(obj: list[Any], path: tuple[Any, ...]) -> list[Any]:
    out = []
    for i, v in enumerate(obj):
        t = type(v)
        # Inline the common scalars: no call, no path tuple.
        if t is int or t is bool or v is None or (t is str and v.isascii()):
            out.append(v)
        else:
            out.append(_pack(v, (*path, i)))
    return out


def _pack_dict(obj: dict[Any, Any], path: tuple[Any, ...]) -> Any:
    out = {}
    for k, v in obj.items():
        if type(k) is not str:
            if isinstance(k, str):
                k = str.__str__(k)
            else:
                raise SerializationError(
                    f"session key {k!r:.40} at {_where(path) or 'top level'} is a "
                    f"{type(k).__name__}; keys must be str",
                    _where(path),
                )
        if not k.isascii() and _SURROGATE_PAIR_RE.search(k) is not None:
            return _pack_pairs(obj, path)
        t = type(v)
        if t is int or t is bool or v is None or (t is str and v.isascii()):
            out[k] = v
        else:
            out[k] = _pack(v, (*path, k))
    if len(out) == 1:
        (key,) = out
        if key.startswith("$"):
            return {"$": [[key, out[key]]]}
    return out


def _pack_pairs(obj: dict[Any, Any], path: tuple[Any, ...]) -> Any:
    """A dict with a key JSON would alter, as a list of ``[key, value]`` pairs."""
    return {"$k": [[_pack(str.__str__(k), path), _pack(v, (*path, k))] for k, v in obj.items()]}


def _pack_other(obj: Any, t: type, path: tuple[Any, ...]) -> Any:
    if t is tuple:
        return {"$t": [_pack(v, (*path, i)) for i, v in enumerate(obj)]}
    if isinstance(obj, datetime.datetime):
        return {"$dt": obj.isoformat()}
    if isinstance(obj, datetime.date):
        return {"$d": obj.isoformat()}
    if t is bytes:
        return {"$b": base64.b64encode(obj).decode("ascii")}
    if t is uuid.UUID:
        return {"$u": obj.hex}
    if t is Decimal:
        if obj.is_finite():
            return {"$n": str(obj)}
        raise SerializationError(
            f"session value at {_where(path)} is a non-finite Decimal, which cannot be stored",
            _where(path),
        )
    # Subclasses of the JSON types come back as their base type, as with json.
    if isinstance(obj, bool):  # pragma: no cover - bool cannot be subclassed
        return bool(obj)
    if isinstance(obj, str):
        return _pack(str.__str__(obj), path)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _pack(float(obj), path)
    if isinstance(obj, dict):
        return _pack_dict(dict(obj), path)
    if isinstance(obj, list):
        return _pack_list(list(obj), path)
    raise SerializationError(
        f"session value at {_where(path)} has type {t.__name__!r}, which the JSON "
        "serializer cannot store (use str, int, float, bool, None, list, dict, tuple, "
        "bytes, datetime, date, UUID or Decimal)",
        _where(path),
    )


def encode_text(obj: Any) -> str:
    """What :meth:`JSONSerializer.dumps` returns, as ``str`` (pure ASCII)."""
    try:
        packed = _pack_dict(obj, ()) if type(obj) is dict else _pack(obj, ())
        return "".join(_c_encode(packed, 0))
    except (ValueError, RecursionError) as exc:  # an int over 4300 digits, deep nesting
        raise SerializationError(
            f"session data cannot be serialized ({type(exc).__name__})"
        ) from None


def _unpack(obj: dict[str, Any]) -> Any:
    """``object_hook``: turn a tagged single-key dict back into its Python value."""
    if len(obj) != 1:
        return obj
    ((tag, value),) = obj.items()
    if not tag.startswith("$"):
        return obj
    if tag == "$t" and type(value) is list:
        return tuple(value)
    if tag == "$dt" and type(value) is str:
        return datetime.datetime.fromisoformat(value)
    if tag == "$d" and type(value) is str:
        return datetime.date.fromisoformat(value)
    if tag == "$b" and type(value) is str:
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError("bad $b value") from exc
    if tag == "$u" and type(value) is str:
        return uuid.UUID(hex=value)
    if tag == "$s" and type(value) is str:
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError("bad $s value") from exc
        if len(raw) % 2:
            raise ValueError("bad $s value")
        # Code unit by code unit: a UTF-16 decoder would join the pair again.
        return "".join(chr(int.from_bytes(raw[i : i + 2], "little")) for i in range(0, len(raw), 2))
    if tag == "$n" and type(value) is str:
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError("non-finite Decimal")
        return number
    if tag == "$k" and type(value) is list:
        if all(type(p) is list and len(p) == 2 and type(p[0]) is str for p in value):
            return {p[0]: p[1] for p in value}
    if tag == "$" and type(value) is list and len(value) == 1:
        pair = value[0]
        if type(pair) is list and len(pair) == 2 and type(pair[0]) is str:
            return {pair[0]: pair[1]}
    raise ValueError("unknown or malformed tag in session payload")


class JSONSerializer:
    """Strict compact JSON with tagged types; see the module docstring."""

    def dumps(self, obj: Any) -> bytes:
        """Serialize ``obj`` to ASCII JSON bytes.

        :raises SerializationError: for a value or key JSON cannot hold exactly.
        """
        return encode_text(obj).encode("ascii")

    def loads(self, data: bytes) -> Any:
        """Parse bytes written by :meth:`dumps`. Raises ``ValueError`` on anything else."""
        text = data.decode("ascii")
        if '"$' not in text:
            try:
                obj, end = _c_scan(text, 0)
            except StopIteration:
                raise ValueError("not JSON") from None
            if end == len(text):
                return obj
            return _decode(text)  # raises "Extra data" (or skips trailing whitespace)
        return json.loads(text, parse_constant=_reject_constant, object_hook=_unpack)

    def __repr__(self) -> str:
        return "JSONSerializer()"


def same_content(serializer: Serializer, before: bytes, after: bytes) -> bool:
    """Whether two serialized forms hold the same data, key order aside, for any
    serializer: equal bytes, or decoded values equal *and of the same types* all the
    way down (``1``, ``1.0`` and ``True`` differ; so do a ``tuple`` and a ``list``)."""
    if before == after:
        return True
    try:
        return _strictly_equal(serializer.loads(before), serializer.loads(after))
    except Exception:
        return False


def _strictly_equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_strictly_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_strictly_equal, a, b))
    return bool(a == b)
