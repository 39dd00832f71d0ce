"""Options from strings, for ``SessionMiddleware.from_settings`` and the PasteDeploy
filter (``wsgisession.middleware.filter_app_factory``).

One table maps each option to a converter of its string form; the values then go
through :class:`~wsgisession.options.Options` like any others. Keys outside the prefix
are ignored; an unknown key inside it, or a value its converter refuses, raises
:class:`~wsgisession.errors.ConfigurationError` naming the key.

.. code-block:: ini

    [filter:session]
    use = egg:wsgisession-aead#session
    secret_keys =
        Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8
        b2xkLXNlY3JldC1zdGlsbC1hY2NlcHRlZC1kdXJpbmctcm90YXRpb24
    max_age = 3600
    secure = true
    store = redis://127.0.0.1:6379/0

Spellings: booleans ``true/false/yes/no/on/off/1/0``; ``none`` for ``None`` (lifetimes,
``secure``); lists split on whitespace and newlines; ``samesite`` is ``lax``,
``strict``, ``none`` (the attribute value) or empty (no attribute); ``store`` is
``memory``, ``file:///dir`` or a ``redis://``/``rediss://``/``unix://`` URL
(:func:`store_from_url`); ``external_key`` is a header
name; callables (``valid``, ``before_save``, ``genid``, ``on_event``, ``clock``,
``serializer``) are dotted ``package.module:name``.
"""

from __future__ import annotations

import importlib
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigurationError
from .options import OPTION_NAMES

__all__ = ["asbool", "parse_settings", "store_from_url", "CONVERTERS"]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def asbool(value: str) -> bool:
    """``true/yes/on/1`` → True, ``false/no/off/0`` → False (any case); else ValueError."""
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("expected true/false, yes/no, on/off or 1/0")


def _as_int(value: str) -> int:
    return int(value.strip())


def _as_lifetime(value: str) -> int | None:
    word = value.strip()
    return None if word.lower() == "none" else int(word)


def _as_optional_bool(value: str) -> bool | None:
    return None if value.strip().lower() == "none" else asbool(value)


def _as_list(value: str) -> list[str]:
    items = value.split()
    if not items:
        raise ValueError("expected at least one value")
    return items


def _as_str(value: str) -> str:
    return value.strip()


def _as_optional_str(value: str) -> str | None:
    word = value.strip()
    return word or None


def _as_samesite(value: str) -> str | None:
    """``lax``/``strict``/``none`` in any case (Options checks and spells them); an
    empty value omits the attribute."""
    return value.strip() or None


def _as_object(value: str) -> Any:
    """``package.module:name`` (or ``package.module.name``) → the object."""
    spec = value.strip()
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ValueError("expected package.module:name")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _as_instance(value: str) -> Any:
    """Like :func:`_as_object`, but a class is instantiated (``serializer``)."""
    obj = _as_object(value)
    return obj() if isinstance(obj, type) else obj


def store_from_url(url: str) -> Any:
    """A store from its URL: ``memory``, ``file:///absolute/directory`` (FileStore), a
    ``redis://``, ``rediss://`` or ``unix://`` URL (RedisStore), ``memcached://host:port``
    (MemcachedStore, several servers comma-separated), or an SQLAlchemy URL
    (``sqlite:///path``, ``postgresql://...``: SQLStore). One line per scheme.

    :raises ConfigurationError: (option ``store``) for an unknown scheme or a bad URL;
        the message names the scheme, never the rest of the URL (it may hold a password).
    :raises ImportError: when the store needs a package that is not installed.
    """
    word = url.strip()
    scheme = word.partition(":")[0].lower() if ":" in word else word.lower()
    if scheme == "memory":
        from .stores.memory import MemoryStore

        return MemoryStore()
    if scheme in ("redis", "rediss", "unix"):
        from .stores.redis import RedisStore

        return RedisStore(url=word)
    if scheme == "file":
        from .stores.files import FileStore

        return FileStore(_file_url_path(word))
    if scheme == "memcached":
        from .stores.memcached import MemcachedStore

        return MemcachedStore.from_url(word)
    if scheme.partition("+")[0] in ("sqlite", "postgresql", "postgres"):
        from .stores.sql import SQLStore

        return SQLStore(word)
    raise ConfigurationError(
        f"unknown store URL scheme {scheme[:20]!r}: expected memory, file:///dir, "
        "redis://, rediss://, unix://, memcached://, sqlite:/// or postgresql://",
        "store",
    )


def _file_url_path(url: str) -> str:
    """The directory of ``file:///dir`` (or ``file://localhost/dir``), percent-decoded."""
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path, errors="strict")
    if parts.netloc not in ("", "localhost") or not path.startswith("/"):
        raise ConfigurationError("a file store URL is file:///absolute/directory", "store")
    if parts.query or parts.fragment:
        raise ConfigurationError("a file store URL takes no ?query or #fragment", "store")
    return path


def _as_store(value: str) -> Any:
    word = value.strip()
    if word.lower() in ("", "none", "cookie"):
        return None
    return store_from_url(word)


def _as_header_key(value: str) -> Any:
    from .external import HeaderKey

    word = value.strip()
    return HeaderKey(word) if word else None


#: option name → converter of its string form.
CONVERTERS: dict[str, Callable[[str], Any]] = {
    "secret_keys": _as_list,
    "cookie_name": _as_str,
    "max_age": _as_lifetime,
    "absolute_max_age": _as_lifetime,
    "auto_commit": asbool,
    "overwrite": asbool,
    "httponly": asbool,
    "secure": _as_optional_bool,
    "samesite": _as_samesite,
    "path": _as_str,
    "domain": _as_optional_str,
    "partitioned": asbool,
    "rolling": asbool,
    "renew": asbool,
    "serializer": _as_instance,
    "store": _as_store,
    "revocation_store": _as_store,
    "external_key": _as_header_key,
    "genid": _as_object,
    "prefix": _as_str,
    "on_store_error": _as_str,
    "valid": _as_object,
    "before_save": _as_object,
    "on_event": _as_object,
    "environ_key": _as_str,
    "namespace": _as_str,
    "commit_on_error": asbool,
    "cache_control": asbool,
    "max_cookie_size": _as_int,
    "clock": _as_object,
}


def parse_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Convert the ``prefix``-ed string settings into middleware options.

    Values that are not strings are passed through unchanged (settings built in code).

    :raises ConfigurationError: for an unknown key under ``prefix`` or a bad value; the
        message and ``.option`` name the key as written.
    """
    options: dict[str, Any] = {}
    for key, value in settings.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        converter = CONVERTERS.get(name)
        if converter is None:
            raise ConfigurationError(f"unknown session setting {key!r}", key)
        if not isinstance(value, str):
            options[name] = value
            continue
        try:
            options[name] = converter(value)
        except ConfigurationError as exc:
            raise ConfigurationError(f"bad value for {key!r}: {exc}", key) from None
        except (ValueError, ImportError, AttributeError) as exc:
            raise ConfigurationError(
                f"bad value for {key!r}: {exc or type(exc).__name__}", key
            ) from None
    return options


assert set(CONVERTERS) == set(OPTION_NAMES), "every option has a string spelling"
