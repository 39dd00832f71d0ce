"""The plaintext inside a token or a store record, both ways, and the expiry arithmetic.

Every cookie token, header token and store record holds one serialized mapping with
integer Unix seconds (DESIGN §3)::

    c  created                                   always
    e  expiry of this token (last save + lifetime)   tokens only; absent = browser session
    a  absolute expiry (c + absolute_max_age)    when set
    m  the session's own max age                 when set by ``session.max_age = …``
                                                 (``null`` = browser session)
    s  the session id                            always
    u  the user id the session is bound to       after ``session.bind_user(...)``
    g  that user's revocation generation         with ``revocation_store``
    d  the session data                          cookie mode tokens and store records

The keys are written in that order (tokens without ``u``/``g`` are byte for byte
what format v1 has always written). :func:`dump_payload` writes them (a direct
formatter for the default serializer, the serializer itself otherwise; the two are
byte-identical for JSON); :func:`load_token` and :func:`load_record` read and check
them and raise :class:`~wsgisession.errors.InvalidToken` with the event and reason
the middleware reports.
"""

from __future__ import annotations

import datetime
import math
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any

from .errors import ConfigurationError, InvalidToken, SerializationError
from .serializers import encode_text

__all__ = [
    "UNSET",
    "Payload",
    "coerce_lifetime",
    "dump_payload",
    "load_token",
    "load_record",
    "lifetime_of",
    "absolute_of",
    "expiry_of",
    "cookie_age",
    "record_ttl",
    "renew_due",
    "MAX_COOKIE_AGE",
    "STORE_TTL_BROWSER_SESSION",
    "CLOCK_SKEW",
    "MAX_ID_CHARS",
]

#: Browsers cap cookie lifetimes at 400 days (RFC 6265bis); so do we.
MAX_COOKIE_AGE = 400 * 24 * 3600
#: Record lifetime in store mode when neither max_age nor absolute_max_age applies.
STORE_TTL_BROWSER_SESSION = 24 * 3600
#: A token created this far in the future is refused as invalid.
CLOCK_SKEW = 60
#: Longest session id accepted (ours are 43 characters).
MAX_ID_CHARS = 256


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


#: "No per-session max age": the configured ``max_age`` applies.
UNSET: Any = _Unset()


class Payload:
    """What a token or record holds, checked. ``max_age`` is :data:`UNSET` when the
    session has no lifetime of its own; ``data`` is ``None`` in a store-mode token."""

    __slots__ = (
        "sid",
        "created",
        "expires",
        "absolute",
        "max_age",
        "data",
        "kid",
        "user",
        "generation",
    )

    def __init__(
        self,
        sid: str,
        created: int,
        expires: int | None,
        absolute: int | None,
        max_age: Any,
        data: dict[str, Any] | None,
        kid: bytes = b"",
        user: str | None = None,
        generation: int | None = None,
    ) -> None:
        self.sid = sid
        self.created = created
        self.expires = expires
        self.absolute = absolute
        self.max_age = max_age
        self.data = data
        #: The key id that sealed it (set by the caller that opened it).
        self.kid = kid
        self.user = user
        self.generation = generation

    def __repr__(self) -> str:
        return "<Payload>"  # holds an id and data: never shown


# -- writing -------------------------------------------------------------------------------


def dump_payload(
    serializer: Any,
    fast_json: bool,
    *,
    created: int,
    sid: str,
    expires: int | None,
    absolute: int | None,
    max_age: Any,
    data: dict[str, Any] | None,
    user: str | None = None,
    generation: int | None = None,
) -> bytes:
    """Serialize one payload; ``data=None`` leaves ``d`` out (store-mode tokens), and
    ``expires=None`` leaves ``e`` out (browser sessions and store records).

    ``fast_json``: the serializer is exactly :class:`~wsgisession.JSONSerializer`, so
    the metadata (ints and one str) are formatted directly.

    :raises SerializationError: naming where the offending value sits.
    """
    try:
        if fast_json:
            e = "" if expires is None else f',"e":{expires}'
            a = "" if absolute is None else f',"a":{absolute}'
            if max_age is not UNSET:
                a += ',"m":null' if max_age is None else f',"m":{max_age}'
            head = f'{{"c":{created}{e}{a},"s":{_json_str(sid)}'
            if user is not None:
                head += f',"u":{_json_str(user)}'
                if generation is not None:
                    head += f',"g":{generation}'
            if data is None:
                return f"{head}}}".encode("ascii")
            return f'{head},"d":{encode_text(data)}}}'.encode("ascii")
        meta: dict[str, Any] = {"c": created}
        if expires is not None:
            meta["e"] = expires
        if absolute is not None:
            meta["a"] = absolute
        if max_age is not UNSET:
            meta["m"] = max_age
        meta["s"] = sid
        if user is not None:
            meta["u"] = user
            if generation is not None:
                meta["g"] = generation
        if data is not None:
            meta["d"] = data
        plaintext: bytes = serializer.dumps(meta)
        return plaintext
    except SerializationError as exc:
        path = exc.path
        message = str(exc)
        if path:
            message = message.replace(f"at {path}", f"at session{path}", 1)
        raise SerializationError(message, path) from None
    except Exception as exc:
        # Only the type in our message; the custom serializer's own exception (the
        # application's code) stays chained for debugging.
        raise SerializationError(f"the session serializer failed: {type(exc).__name__}") from exc


# -- reading -------------------------------------------------------------------------------


def _decode(serializer: Any, plaintext: bytes) -> dict[str, Any]:
    try:
        meta = serializer.loads(plaintext)
    except Exception:
        raise InvalidToken("decode") from None
    if type(meta) is not dict:
        raise InvalidToken("schema")
    return meta


def _per_session(meta: dict[str, Any]) -> Any:
    """``m``: absent (UNSET), ``None`` (browser session) or a positive int."""
    if "m" not in meta:
        return UNSET
    value = meta["m"]
    if value is None or (type(value) is int and value > 0):
        return value
    raise InvalidToken("schema")


def _binding(meta: dict[str, Any]) -> tuple[str | None, int | None]:
    """``u`` (a str of 1 to 256 characters) and ``g`` (an int >= 0, only with ``u``)."""
    user, generation = meta.get("u"), meta.get("g")
    if user is None and generation is None:
        return None, None
    if type(user) is not str or not 0 < len(user) <= MAX_ID_CHARS:
        raise InvalidToken("schema")
    if generation is not None and (type(generation) is not int or generation < 0):
        raise InvalidToken("schema")
    return user, generation


def _absolute(meta: dict[str, Any], created: int, absolute_max_age: int | None) -> int | None:
    absolute = meta.get("a")
    if absolute is None:
        return None if absolute_max_age is None else created + absolute_max_age
    if type(absolute) is not int:
        raise InvalidToken("schema")
    return absolute


def load_token(
    serializer: Any,
    plaintext: bytes,
    now: float,
    absolute_max_age: int | None,
    *,
    with_data: bool,
) -> Payload:
    """Check a cookie or header token's plaintext (``with_data``: cookie mode, ``d``
    required; else ``d`` must be absent) and its expiry at ``now``.

    :raises InvalidToken: ``decode``/``schema``/``future`` (event ``invalid``) or
        ``idle``/``absolute`` (event ``expired``, with the session id).
    """
    meta = _decode(serializer, plaintext)
    created = meta.get("c")
    sid = meta.get("s")
    data = meta.get("d")
    expires = meta.get("e")
    if (
        type(created) is not int
        or type(sid) is not str
        or not 0 < len(sid) <= MAX_ID_CHARS
        or type(data) is not (dict if with_data else type(None))
        or (expires is not None and type(expires) is not int)
    ):
        raise InvalidToken("schema")
    absolute = _absolute(meta, created, absolute_max_age)
    max_age = _per_session(meta)
    user, generation = _binding(meta) if "u" in meta or "g" in meta else (None, None)
    if created > now + CLOCK_SKEW:
        raise InvalidToken("future")
    if absolute is not None and not now < absolute:
        raise InvalidToken("absolute", "expired", session_id=sid)
    if expires is not None and not now < expires:
        raise InvalidToken("idle", "expired", session_id=sid)
    return Payload(sid, created, expires, absolute, max_age, data, b"", user, generation)


def load_record(
    serializer: Any,
    plaintext: bytes,
    now: float,
    absolute_max_age: int | None,
    sid: str,
) -> Payload:
    """Check a store record's plaintext: it must belong to ``sid``, hold data, and be
    within its absolute lifetime (its idle expiry is the token's and the record's TTL).

    :raises InvalidToken: ``decode``/``schema`` (event ``invalid``) or ``absolute``
        (event ``expired``).
    """
    meta = _decode(serializer, plaintext)
    created = meta.get("c")
    data = meta.get("d")
    if type(data) is not dict or meta.get("s") != sid or type(created) is not int:
        raise InvalidToken("schema")
    absolute = _absolute(meta, created, absolute_max_age)
    max_age = _per_session(meta)
    user, generation = _binding(meta) if "u" in meta or "g" in meta else (None, None)
    if absolute is not None and not now < absolute:
        raise InvalidToken("absolute", "expired", session_id=sid)
    return Payload(sid, created, None, absolute, max_age, data, b"", user, generation)


# -- expiry arithmetic ---------------------------------------------------------------------


def coerce_lifetime(value: Any, option: str = "max_age") -> int | None:
    """A lifetime (seconds as int/float, or a timedelta; ``None``) as whole seconds,
    rounded up. :raises ConfigurationError: naming ``option`` for anything else."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigurationError(
            f"{option} must be seconds (int/float), a timedelta or None, not "
            f"{type(value).__name__}",
            option,
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(f"{option} must be greater than 0 (or None)", option)
    return math.ceil(seconds)


def lifetime_of(default: int | None, per_session: Any) -> int | None:
    """The lifetime that applies: the session's own (``max_age = …``) or the default."""
    return default if per_session is UNSET else per_session


def absolute_of(created: int, absolute: int | None, absolute_max_age: int | None) -> int | None:
    """The absolute expiry: the session's, else ``created + absolute_max_age``."""
    if absolute is not None:
        return absolute
    return None if absolute_max_age is None else created + absolute_max_age


def expiry_of(now: int, lifetime: int | None, absolute: int | None) -> int | None:
    """The ``e`` of a token saved at ``now``: ``now + lifetime``, never after
    ``absolute``; ``None`` for a browser session (``lifetime=None``), whose token has
    no idle expiry (its absolute one, if any, is ``a``)."""
    if lifetime is None:
        return None
    expires = now + lifetime
    return expires if absolute is None or expires < absolute else absolute


def cookie_age(expires: int, now: int) -> int:
    """``Max-Age`` for a token expiring at ``expires``: whole seconds, 0 to 400 days."""
    age = expires - now
    return MAX_COOKIE_AGE if age > MAX_COOKIE_AGE else 0 if age < 0 else age


def record_ttl(expires: int | None, absolute: int | None, now: int) -> int:
    """Seconds a store record lives: until the earlier expiry (at least 1), else a day."""
    if expires is None:
        if absolute is None:
            return STORE_TTL_BROWSER_SESSION
        end = absolute
    else:
        end = expires if absolute is None or expires < absolute else absolute
    return max(1, end - now)


def renew_due(expires: int, now: float, lifetime: int | None, absolute: int | None) -> bool:
    """``renew``: less than half the lifetime left, and not capped by ``absolute``."""
    return (
        lifetime is not None
        and (absolute is None or expires < absolute)
        and expires - now < lifetime / 2
    )
