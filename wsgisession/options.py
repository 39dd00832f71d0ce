"""Every option, checked once: :class:`Options`.

One table maps each option to its default and a converter that checks the value and
returns what the library uses (``max_age=timedelta(hours=1)`` becomes ``3600``,
``samesite="lax"`` becomes ``"Lax"``). Rules between options come after the table;
the values derived from several options (``always_secure``, the token's purpose and
binding, ...) are computed once here too. Nothing else validates options:
:class:`~wsgisession.SessionMiddleware`, :class:`~wsgisession.SessionManager`,
``from_settings``/PasteDeploy (through :mod:`wsgisession.settings`, which turns strings
into values first), the framework adapters and the command line all build an
:class:`Options`.

An :class:`Options` is read-only. :meth:`Options.replace` makes a changed copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from .codec import check_namespace, check_secrets
from .cookies import valid_cookie_name, valid_domain, valid_path
from .errors import ConfigurationError
from .payload import coerce_lifetime
from .serializers import JSONSerializer

__all__ = ["Options", "OptionViews", "OPTION_NAMES"]

_T = TypeVar("_T")

_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_STORE_METHODS = ("get", "set", "delete")


# -- converters: (option name, value) -> value, or ConfigurationError ---------------------


def _required(name: str, value: Any) -> Any:
    if value is None:
        raise ConfigurationError(f"{name} is required", name)
    return value


def _secret_keys(name: str, value: Any) -> tuple[str | bytes, ...]:
    check_secrets(_required(name, value))
    return tuple(value)


def _lifetime(name: str, value: Any) -> int | None:
    return coerce_lifetime(value, name)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, not {value!r:.40}", name)
    return value


def _optional_bool(name: str, value: Any) -> bool | None:
    return None if value is None else _bool(name, value)


def _callable(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise ConfigurationError(f"{name} must be callable, not {type(value).__name__}", name)
    return value


def _cookie_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not valid_cookie_name(value):
        raise ConfigurationError(
            "cookie_name must be a non-empty RFC 9110 token (no spaces, ';', ',', '=' "
            "or control characters), not start with '$' and not be an attribute name",
            name,
        )
    if len(value) > 256:
        raise ConfigurationError("cookie_name is longer than 256 characters", name)
    return value


def _samesite(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in _SAMESITE:
        raise ConfigurationError('samesite must be "Lax", "Strict", "None" or None', name)
    return _SAMESITE[value.lower()]


def _path(name: str, value: Any) -> str:
    if not isinstance(value, str) or not valid_path(value):
        raise ConfigurationError(
            "path must start with '/' and hold only visible ASCII without ';'", name
        )
    return value


def _domain(name: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    if not isinstance(value, str) or not valid_domain(value):
        raise ConfigurationError(
            "domain must be a host name (letters, digits, '-', '.'), a callable or None", name
        )
    return value


def _serializer(name: str, value: Any) -> Any:
    if value is None:
        return JSONSerializer()
    if not (callable(getattr(value, "dumps", None)) and callable(getattr(value, "loads", None))):
        raise ConfigurationError(
            "serializer must have dumps(obj) -> bytes and loads(bytes) -> obj", name
        )
    return value


def _store(name: str, value: Any) -> Any:
    if value is not None:
        missing = [m for m in _STORE_METHODS if not callable(getattr(value, m, None))]
        if missing:
            raise ConfigurationError(
                f"{name} must have get(), set() and delete() methods (missing {missing[0]})",
                name,
            )
    return value


def _external_key(name: str, value: Any) -> Any:
    if value is not None and not (
        isinstance(getattr(value, "name", None), str)
        and callable(getattr(value, "get", None))
        and callable(getattr(value, "set", None))
    ):
        raise ConfigurationError(
            "external_key must be a HeaderKey (or have name, get(environ) and set(headers, value))",
            name,
        )
    return value


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a str", name)
    return value


def _non_empty_str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty str", name)
    return value


def _on_store_error(name: str, value: Any) -> str:
    if value not in ("raise", "ignore"):
        raise ConfigurationError('on_store_error must be "raise" or "ignore"', name)
    return str(value)


def _namespace(name: str, value: Any) -> str:
    return check_namespace(value)


def _max_cookie_size(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 512 <= value <= 8192:
        raise ConfigurationError("max_cookie_size must be an int between 512 and 8192", name)
    return value


def _clock(name: str, value: Any) -> Callable[[], float]:
    if not callable(value):
        raise ConfigurationError(f"{name} must be callable, not {type(value).__name__}", name)
    clock: Callable[[], float] = value
    return clock


#: option → (default, converter). The order is the order of the checks.
_TABLE: dict[str, tuple[Any, Callable[[str, Any], Any]]] = {
    "secret_keys": (None, _secret_keys),
    "cookie_name": ("session", _cookie_name),
    "max_age": (86400, _lifetime),
    "absolute_max_age": (None, _lifetime),
    "auto_commit": (True, _bool),
    "overwrite": (True, _bool),
    "httponly": (True, _bool),
    "partitioned": (False, _bool),
    "rolling": (False, _bool),
    "renew": (False, _bool),
    "commit_on_error": (False, _bool),
    "cache_control": (True, _bool),
    "secure": (None, _optional_bool),
    "samesite": ("Lax", _samesite),
    "path": ("/", _path),
    "domain": (None, _domain),
    "serializer": (None, _serializer),
    "store": (None, _store),
    "revocation_store": (None, _store),
    "external_key": (None, _external_key),
    "genid": (None, _callable),
    "prefix": ("session:", _str),
    "on_store_error": ("raise", _on_store_error),
    "valid": (None, _callable),
    "before_save": (None, _callable),
    "on_event": (None, _callable),
    "environ_key": ("session", _non_empty_str),
    "namespace": ("default", _namespace),
    "max_cookie_size": (4096, _max_cookie_size),
    "clock": (time.time, _clock),
}

#: Every option name, in table order.
OPTION_NAMES = tuple(_TABLE)


class Options:
    """The checked options (the configuration reference of the docs gives each one's meaning).

    :raises ConfigurationError: for an unknown option, a bad value or a bad
        combination; ``.option`` names the option.
    """

    secret_keys: tuple[str | bytes, ...]
    cookie_name: str
    max_age: int | None
    absolute_max_age: int | None
    auto_commit: bool
    overwrite: bool
    httponly: bool
    partitioned: bool
    rolling: bool
    renew: bool
    commit_on_error: bool
    cache_control: bool
    secure: bool | None
    samesite: str | None
    path: str
    domain: str | Callable[[dict[str, Any]], str | None] | None
    serializer: Any
    store: Any
    revocation_store: Any
    external_key: Any
    genid: Callable[[dict[str, Any]], str] | None
    prefix: str
    on_store_error: str
    valid: Callable[[dict[str, Any], Any], bool] | None
    before_save: Callable[[dict[str, Any], Any], None] | None
    on_event: Callable[[Any], None] | None
    environ_key: str
    namespace: str
    max_cookie_size: int
    clock: Callable[[], float]

    _given: frozenset[str]

    # Derived once from the options above.
    #: Every cookie is marked Secure, whatever the request's scheme.
    always_secure: bool
    #: The token's purpose: ``data`` (cookie mode), ``sid`` (store mode, cookie) or
    #: ``header`` (store mode, ``external_key``).
    purpose: str
    #: What the token is bound to: the cookie name, or the lower-cased header name.
    binding: str
    #: The request header the response varies on (``Cookie`` or the header's name).
    vary: str
    #: The serializer is exactly :class:`~wsgisession.JSONSerializer` (fast paths).
    fast_json: bool
    #: No hook receives the environ once the request is over, so the session may let
    #: go of it then (no reference cycle).
    detachable: bool

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(_TABLE))
        if unknown:
            raise ConfigurationError(f"unknown option {unknown[0]!r}", unknown[0])
        self.__dict__["_given"] = frozenset(options)
        for name, (default, convert) in _TABLE.items():
            self.__dict__[name] = convert(name, options.get(name, default))
        self._check_combinations()
        self._derive()

    def _check_combinations(self) -> None:
        if self.external_key is not None and self.store is None:
            raise ConfigurationError(
                "external_key needs a server-side store (store=...)", "external_key"
            )
        needs_secure = []
        if self.cookie_name.startswith("__Host-"):
            needs_secure.append("a __Host- cookie_name")
            if self.domain is not None:
                raise ConfigurationError("a __Host- cookie_name forbids domain", "domain")
            if self.path != "/":
                raise ConfigurationError('a __Host- cookie_name requires path="/"', "path")
        if self.cookie_name.startswith("__Secure-"):
            needs_secure.append("a __Secure- cookie_name")
        if self.samesite == "None":
            needs_secure.append('samesite="None"')
        if self.partitioned:
            needs_secure.append("partitioned=True")
        if needs_secure and self.secure is False:
            raise ConfigurationError(
                f"{needs_secure[0]} requires Secure; secure=False is not allowed", "secure"
            )
        self.__dict__["always_secure"] = self.secure is True or bool(needs_secure)

    def _derive(self) -> None:
        key = self.external_key
        derived = self.__dict__
        # A header token is sealed for its transport: it never opens as a cookie.
        derived["purpose"] = "data" if self.store is None else "sid" if key is None else "header"
        derived["binding"] = (
            self.cookie_name if key is None else getattr(key, "binding", key.name.lower())
        )
        derived["vary"] = "Cookie" if key is None else key.name
        derived["fast_json"] = type(self.serializer) is JSONSerializer
        derived["detachable"] = (
            key is None
            and self.genid is None
            and self.valid is None
            and self.before_save is None
            and self.on_event is None
            and not callable(self.domain)
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Options are read-only; use replace(**changes)")

    def replace(self, **changes: Any) -> Options:
        """A copy with ``changes`` applied (checked like new options)."""
        given = {name: self.__dict__[name] for name in self._given}
        return Options(**{**given, **changes})

    def given(self) -> dict[str, Any]:
        """The options as they were passed (converted), without the defaults."""
        return {name: self.__dict__[name] for name in _TABLE if name in self._given}

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={self.__dict__[name]!r}"
            for name in ("cookie_name", "namespace", "max_age", "store")
            if name != "store" or self.store is not None
        )
        return f"<Options {shown}>"  # never the secrets


class _Option(Generic[_T]):
    """One option, read on the manager (``manager.cookie_name``): a view of
    ``manager.options``, which owns the value."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> _Option[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> _T: ...

    def __get__(self, instance: object, owner: type) -> Any:
        if instance is None:
            return self
        return getattr(instance.options, self.name)  # type: ignore[attr-defined]


class OptionViews:
    """The options readable as attributes (``manager.cookie_name``) of anything that
    has ``options``, which owns them."""

    options: Options

    # environ_key, read on every request, is a plain attribute of the manager.
    cookie_name: _Option[str] = _Option()
    max_age: _Option[int | None] = _Option()
    absolute_max_age: _Option[int | None] = _Option()
    auto_commit: _Option[bool] = _Option()
    overwrite: _Option[bool] = _Option()
    httponly: _Option[bool] = _Option()
    partitioned: _Option[bool] = _Option()
    rolling: _Option[bool] = _Option()
    renew: _Option[bool] = _Option()
    commit_on_error: _Option[bool] = _Option()
    cache_control: _Option[bool] = _Option()
    secure: _Option[bool | None] = _Option()
    samesite: _Option[str | None] = _Option()
    path: _Option[str] = _Option()
    domain: _Option[Any] = _Option()
    serializer: _Option[Any] = _Option()
    store: _Option[Any] = _Option()
    revocation_store: _Option[Any] = _Option()
    external_key: _Option[Any] = _Option()
    genid: _Option[Any] = _Option()
    prefix: _Option[str] = _Option()
    on_store_error: _Option[str] = _Option()
    valid: _Option[Any] = _Option()
    before_save: _Option[Any] = _Option()
    on_event: _Option[Any] = _Option()
    namespace: _Option[str] = _Option()
    max_cookie_size: _Option[int] = _Option()
    clock: _Option[Any] = _Option()
    always_secure: _Option[bool] = _Option()
