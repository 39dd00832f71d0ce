"""The Django session engine's configuration: the options, and one manager per
distinct configuration (rebuilt after ``override_settings`` changes a setting)."""

from __future__ import annotations

from typing import Any

from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.signals import setting_changed  # type: ignore[import-untyped]

from ..errors import ConfigurationError
from ..manager import SessionManager

__all__ = ["DJANGO_DECIDES", "Engine", "engine", "improperly_configured", "manager_options"]

#: wsgisession options Django's own middleware decides, and the setting to use.
DJANGO_DECIDES = {
    "cookie_name": "SESSION_COOKIE_NAME",
    "path": "SESSION_COOKIE_PATH",
    "domain": "SESSION_COOKIE_DOMAIN",
    "secure": "SESSION_COOKIE_SECURE",
    "httponly": "SESSION_COOKIE_HTTPONLY",
    "samesite": "SESSION_COOKIE_SAMESITE",
    "rolling": "SESSION_SAVE_EVERY_REQUEST",
}
#: Options of the WSGI middleware that Django's middleware leaves no room for.
NOT_FOR_DJANGO = (
    "auto_commit",
    "cache_control",
    "commit_on_error",
    "environ_key",
    "external_key",
    "overwrite",
    "partitioned",
    "renew",
)


def manager_options(**overrides: Any) -> dict[str, Any]:
    """The :class:`~wsgisession.SessionManager` options of the current settings:
    Django's ``SESSION_COOKIE_*`` first, then ``settings.WSGISESSION``, then
    ``overrides``.

    :raises ImproperlyConfigured: without secret keys, or for an option that Django's
        middleware decides (naming the Django setting to use instead).
    """
    explicit = getattr(settings, "WSGISESSION", None)
    explicit = {} if explicit is None else explicit
    if not isinstance(explicit, dict):
        raise ImproperlyConfigured("settings.WSGISESSION must be a dict of wsgisession options")
    explicit = {**explicit, **overrides}
    for name, setting in DJANGO_DECIDES.items():
        if name in explicit:
            raise ImproperlyConfigured(
                f"WSGISESSION[{name!r}]: Django's session settings decide it; set {setting} instead"
            )
    for name in NOT_FOR_DJANGO:
        if name in explicit:
            raise ImproperlyConfigured(
                f"WSGISESSION[{name!r}] is an option of the plain WSGI middleware; with "
                f"Django, its SessionMiddleware decides when to save and what to send"
            )
    if not explicit.get("secret_keys"):
        raise ImproperlyConfigured(
            'wsgisession needs secret keys: set WSGISESSION = {"secret_keys": [...]} in '
            "settings (each at least 32 bytes; make one with `python -m wsgisession "
            "genkey`). SECRET_KEY is not used for sessions."
        )
    samesite = settings.SESSION_COOKIE_SAMESITE
    options: dict[str, Any] = {
        "cookie_name": settings.SESSION_COOKIE_NAME,  # the token is bound to it
        "path": settings.SESSION_COOKIE_PATH,
        "domain": settings.SESSION_COOKIE_DOMAIN or None,
        "secure": True if settings.SESSION_COOKIE_SECURE else None,
        "httponly": bool(settings.SESSION_COOKIE_HTTPONLY),
        "samesite": samesite if isinstance(samesite, str) else None,
        # SESSION_EXPIRE_AT_BROWSER_CLOSE gives a browser-session cookie; the token
        # still expires after SESSION_COOKIE_AGE, as Django's own sessions do.
        "max_age": settings.SESSION_COOKIE_AGE,
    }
    options.update(explicit)
    return options


def improperly_configured(exc: ConfigurationError) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"wsgisession option {exc.option!r} (settings.WSGISESSION or Django's "
        f"SESSION_COOKIE_*): {exc}"
    )


class Engine:
    """A manager and what a :class:`SessionStore` reads of it on every request."""

    __slots__ = ("manager", "https", "store", "raise_on_store_error")

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        options = manager.options
        #: The cookie is Secure: the hooks' stand-in environ says https.
        self.https = bool(options.always_secure)
        self.store = options.store
        self.raise_on_store_error = options.on_store_error == "raise"


_current: Engine | None = None
_built: dict[str, Engine] = {}  # by configuration: override_settings back and forth


def engine() -> Engine:
    """The engine of the current settings, built once per distinct configuration."""
    global _current
    current = _current
    if current is not None:
        return current
    options = manager_options()
    key = repr(sorted((name, _identity(value)) for name, value in options.items()))
    current = _built.get(key)
    if current is None:
        try:
            current = Engine(SessionManager(**options))
        except ConfigurationError as exc:
            raise improperly_configured(exc) from exc
        if len(_built) >= 8:
            _built.clear()
        _built[key] = current
    _current = current
    return current


def _identity(value: Any) -> Any:
    """What tells two configurations apart: the value for plain data, the object for
    anything else (two stores are two, whatever their repr; a cached manager keeps its
    objects alive, so an id is never reused while it is a key)."""
    if isinstance(value, list | tuple):
        return [_identity(item) for item in value]
    if value is None or isinstance(value, str | bytes | int | float):
        return repr(value)
    return (type(value).__qualname__, id(value))


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    global _current
    if setting == "WSGISESSION" or setting.startswith("SESSION_"):
        _current = None


setting_changed.connect(_settings_changed, dispatch_uid="wsgisession.adapters.django")
