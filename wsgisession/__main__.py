"""Command line: ``python -m wsgisession {genkey,inspect,demo}``.

Exit codes: 0 success; 1 malformed or tampered cookie; 2 expired; 3 unknown key;
64 usage error; 69 unavailable (the demo cannot listen on its address, or its store
is unreachable or needs redis-py, which is not installed).

Bad input never ends in a traceback: it is one line on stderr and an exit code.
Secrets are passed to the library as the bytes given on the command line (or in
the environment), so a secret that is not UTF-8 works as well.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from typing import Any

from .cookies import find_cookie
from .errors import ConfigurationError, InvalidToken
from .payload import UNSET

EXIT_INVALID = 1
EXIT_EXPIRED = 2
EXIT_UNKNOWN_KEY = 3
EXIT_USAGE = 64
EXIT_UNAVAILABLE = 69
MAX_PORT = 65535


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _genkey(args: argparse.Namespace) -> int:
    print(secrets.token_urlsafe(args.bytes))
    return 0


#: The environment variable the CLI (and the examples) read the secret from.
SECRET_ENV = "WSGISESSION_SECRET_KEY"  # noqa: S105 - a variable name, not a secret


def _secrets(given: list[str] | None) -> list[bytes]:
    """The secrets as the bytes given: ``--secret-key`` values, ``-`` for standard input
    (one per line), else the environment variable (separated by whitespace)."""
    if not given:
        return [os.fsencode(s) for s in os.environ.get(SECRET_ENV, "").split()]
    out: list[bytes] = []
    for value in given:
        if value == "-":
            out += [line.strip() for line in sys.stdin.buffer.read().splitlines() if line.strip()]
        else:
            out.append(os.fsencode(value))
    return out


def _inspect(args: argparse.Namespace) -> int:
    # Imported here: the manager pulls in WebOb, which genkey does not need.
    from . import JSONSerializer, SessionManager

    value = args.cookie.strip()
    if "=" in value.rstrip("="):
        values, _ = find_cookie(value, args.cookie_name)
        value = values[0] if values else ""
    # argv arrives decoded with surrogate escapes: give the library the original bytes.
    secret_keys = _secrets(args.secret_key)
    if not secret_keys:
        print(
            f"error: no secret: pass --secret-key, set {SECRET_ENV}, or pipe the secrets "
            "in with --secret-key -",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        inspector = SessionManager(
            secret_keys=secret_keys,
            cookie_name=args.cookie_name,
            namespace=args.namespace,
            max_age=None,
        )
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        payload = inspector.decode(value, now=time.time())
    except InvalidToken as exc:
        print(f"invalid cookie: {_REASONS.get(exc.reason, exc.reason)}", file=sys.stderr)
        if exc.event == "expired":
            return EXIT_EXPIRED
        if exc.event == "unknown_key":
            return EXIT_UNKNOWN_KEY
        return EXIT_INVALID
    report: dict[str, Any] = {
        # The tagged JSON form (tuples, bytes, datetimes... as the cookie holds them).
        "data": json.loads(JSONSerializer().dumps(payload.data)),
        "created": payload.created,
        "expires": payload.expires,
        "absolute_expires": payload.absolute,
        "max_age": "default" if payload.max_age is UNSET else payload.max_age,
        "key_id": payload.kid.hex(),
        "purpose": "data",
        "would_rekey": payload.kid != inspector.codec.primary_kid,
    }
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


_REASONS = {
    "too_long": "the cookie is longer than 4096 characters",
    "malformed": "the cookie is not base64url (malformed)",
    "short": "the cookie is too short to be a token (malformed)",
    "version": "unknown token format version (malformed)",
    "tampered": "the cookie failed authentication: tampered, or sealed for another "
    "cookie name or namespace",
    "unknown_kid": "the cookie was sealed with a key not in --secret-key",
    "decode": "the payload is not valid for the serializer",
    "schema": "the payload does not have the session schema",
    "future": "the cookie claims to be created in the future",
    "idle": "the session has expired",
    "absolute": "the session passed its absolute lifetime",
}


class _Exit(Exception):
    """Stop the command with one line on stderr and an exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _shown(text: str) -> str:
    """``text`` as is when it is plain printable ASCII, else its ``ascii()`` form."""
    return text if text.isascii() and text.isprintable() else ascii(text)


def _demo_store(spec: str) -> dict[str, Any]:
    """The middleware options for ``--store``."""
    from . import MemoryStore

    if spec == "cookie":
        return {}
    if spec == "memory":
        return {"store": MemoryStore()}
    if not spec.startswith(("redis://", "rediss://", "unix://")):
        raise _Exit(EXIT_USAGE, "--store must be cookie, memory or a redis:// URL")
    try:
        from .stores.redis import RedisStore
    except ImportError:
        raise _Exit(
            EXIT_UNAVAILABLE,
            "--store needs redis-py, which is not installed: pip install 'wsgisession[redis]'",
        ) from None
    if not spec.isprintable():  # control characters, or bytes that are not UTF-8
        raise _Exit(EXIT_USAGE, "--store must be a printable UTF-8 redis:// URL")
    try:
        store = RedisStore(url=spec)
    except ConfigurationError:
        raise
    except ValueError as exc:  # redis-py's URL parser; never echoes a password
        raise _Exit(EXIT_USAGE, f"--store is not a valid Redis URL ({exc})") from None
    return {"store": store}


def _probe(store: Any) -> None:
    """Fail at start, not on every request, when the store cannot be reached."""
    from . import StoreError

    ping = getattr(store, "ping", None)
    if ping is None:  # MemoryStore: nothing to reach
        return
    try:
        ping()
    except StoreError as exc:  # names the command, error class and host:port, no password
        raise _Exit(EXIT_UNAVAILABLE, f"the --store Redis is unreachable: {exc}") from None
    except ValueError:  # a host name that cannot be encoded (IDNA), e.g. "a..b"
        raise _Exit(EXIT_USAGE, "--store is not a valid Redis URL (bad host name)") from None


def _demo_server(args: argparse.Namespace, app: Any) -> Any:
    from wsgiref.simple_server import make_server

    where = f"{_shown(args.host)}:{args.port}"
    try:
        return make_server(args.host, args.port, app)
    except OSError as exc:  # in use, not ours, no such host...
        reason = exc.strerror or type(exc).__name__
        raise _Exit(EXIT_UNAVAILABLE, f"cannot listen on {where}: {reason}") from None
    except (TypeError, ValueError):  # a host name that cannot be encoded
        raise _Exit(EXIT_USAGE, f"--host {_shown(args.host)} is not a host name") from None


def _demo(args: argparse.Namespace) -> int:
    from .demo import make_demo

    # argv and the environment arrive decoded with surrogate escapes: give the library
    # the original bytes.
    secret = args.secret_key or os.environ.get(SECRET_ENV)
    if not secret:
        secret = secrets.token_urlsafe(32)
        print(
            "warning: no --secret-key or WSGISESSION_SECRET_KEY; using a random secret for "
            "this run (sessions end when the demo stops)",
            file=sys.stderr,
        )
    try:
        if not 0 <= args.port <= MAX_PORT:
            raise _Exit(EXIT_USAGE, f"--port must be from 0 to {MAX_PORT}, not {args.port}")
        app = make_demo([os.fsencode(secret)], **_demo_store(args.store or "cookie"))
        if app.store is not None:
            _probe(app.store)
        server = _demo_server(args, app)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _Exit as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    with server:
        print(
            f"wsgisession demo on http://{_shown(args.host)}:{server.server_port}/ "
            "(Ctrl-C to stop)",
            flush=True,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from . import StoreError
    from .settings import store_from_url

    try:
        store = store_from_url(args.url)
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except ValueError as exc:  # ConfigurationError too; never echoes a password
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sweep = getattr(store, "sweep", None)
    if sweep is None:
        print(
            f"error: {type(store).__name__} has no sweep(): it expires entries itself",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        removed = sweep()
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)  # names the operation and the cause
        return EXIT_UNAVAILABLE
    print(f"removed {removed} expired {'entry' if removed == 1 else 'entries'}")
    return 0


def _version() -> str:
    from . import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wsgisession",
        description="Encrypted WSGI sessions: make keys, inspect cookies, run a demo.",
        epilog="exit codes: 0 ok, 1 malformed/tampered, 2 expired, 3 unknown key, 64 usage, "
        "69 unavailable (demo: address in use, store unreachable or redis-py missing; "
        "sweep: store unreachable)",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=_Parser,
        help="what to do (wsgisession COMMAND --help for its options)",
    )
    gen = sub.add_parser("genkey", help="print a fresh random secret (one line)")
    gen.add_argument(
        "--bytes",
        type=int,
        default=32,
        choices=range(32, 129),
        metavar="N",
        help="random bytes in the secret (32-128, default 32)",
    )
    gen.set_defaults(func=_genkey)
    ins = sub.add_parser("inspect", help="decrypt a session cookie and print it as JSON")
    ins.add_argument("cookie", help="the cookie value, or name=value")
    ins.add_argument(
        "--secret-key",
        action="append",
        help="a secret (repeat for old keys; first = current); '-' reads them from standard "
        f"input, one per line; without it, ${SECRET_ENV} (secrets separated by spaces) — "
        "both keep secrets out of your shell history",
    )
    ins.add_argument(
        "--cookie-name",
        default="session",
        help="the cookie name the token was sealed for (default: session)",
    )
    ins.add_argument(
        "--namespace",
        default="default",
        help="the application namespace the token was sealed for (default: default)",
    )
    ins.set_defaults(func=_inspect)
    demo = sub.add_parser("demo", help="serve the demo app with the stdlib server")
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    demo.add_argument(
        "--port",
        type=int,
        default=8000,
        metavar="PORT",
        help="port to listen on, 0-65535 (default: 8000; 0 picks a free one)",
    )
    demo.add_argument(
        "--secret-key",
        help="secret (default: $WSGISESSION_SECRET_KEY, else a random one for this run)",
    )
    demo.add_argument(
        "--store",
        default="cookie",
        help="cookie (default: data in the encrypted cookie), memory, or a redis:// URL",
    )
    demo.set_defaults(func=_demo)
    swp = sub.add_parser("sweep", help="remove expired sessions from a store (cron, timer)")
    swp.add_argument("url", help="the store: file:///dir (FileStore), or another store URL")
    swp.set_defaults(func=_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
