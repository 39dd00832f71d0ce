"""Command line: ``python -m wsgisession {genkey,inspect,demo}``.

Exit codes: 0 success; 1 malformed or tampered cookie; 2 expired; 3 unknown key;
64 usage error.
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

from .codec import TokenCodec
from .cookies import find_cookie
from .errors import ConfigurationError, InvalidToken

EXIT_INVALID = 1
EXIT_EXPIRED = 2
EXIT_UNKNOWN_KEY = 3
EXIT_USAGE = 64


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _genkey(args: argparse.Namespace) -> int:
    print(secrets.token_urlsafe(args.bytes))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    # Imported here: the middleware pulls in WebOb, which genkey does not need.
    from .middleware import SessionMiddleware

    value = args.cookie.strip()
    if "=" in value.rstrip("="):
        values, _ = find_cookie(value, args.cookie_name)
        value = values[0] if values else ""
    try:
        codec = TokenCodec(args.secret_key, args.namespace)
        inspector = SessionMiddleware(
            lambda e, s: [],
            secret_keys=args.secret_key,
            cookie_name=args.cookie_name,
            namespace=args.namespace,
            max_age=None,
        )
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    now = time.time()
    try:
        data, meta, kid = inspector._open(value, now)
    except InvalidToken as exc:
        messages = {
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
        print(f"invalid cookie: {messages.get(exc.reason, exc.reason)}", file=sys.stderr)
        if exc.event == "expired":
            return EXIT_EXPIRED
        if exc.event == "unknown_key":
            return EXIT_UNKNOWN_KEY
        return EXIT_INVALID
    from .serializers import _pack

    report: dict[str, Any] = {
        "data": _pack(data, ()),
        "created": meta["c"],
        "expires": meta.get("e"),
        "absolute_expires": meta.get("a"),
        "max_age": meta.get("m", "default"),
        "key_id": kid.hex(),
        "purpose": "data",
        "would_rekey": kid != codec.primary_kid,
    }
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from wsgiref.simple_server import make_server

    from .demo import make_demo

    secret = args.secret_key or os.environ.get("WSGISESSION_SECRET_KEY")
    if not secret:
        secret = secrets.token_urlsafe(32)
        print(
            "warning: no --secret-key or WSGISESSION_SECRET_KEY; using a random secret for "
            "this run (sessions end when the demo stops)",
            file=sys.stderr,
        )
    options: dict[str, Any] = {}
    store_url = args.store or "cookie"
    try:
        if store_url == "memory":
            from .stores import MemoryStore

            options["store"] = MemoryStore()
        elif store_url.startswith(("redis://", "rediss://", "unix://")):
            from .stores.redis import RedisStore

            options["store"] = RedisStore(url=store_url)
        elif store_url != "cookie":
            print("error: --store must be cookie, memory or a redis:// URL", file=sys.stderr)
            return EXIT_USAGE
        app = make_demo([secret], **options)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with make_server(args.host, args.port, app) as server:
        print(
            f"wsgisession demo on http://{args.host}:{server.server_port}/ (Ctrl-C to stop)",
            flush=True,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wsgisession",
        description="Encrypted WSGI sessions: make keys, inspect cookies, run a demo.",
        epilog="exit codes: 0 ok, 1 malformed/tampered, 2 expired, 3 unknown key, 64 usage",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
        required=True,
        help="a secret (repeat for old keys; first = current)",
    )
    ins.add_argument("--cookie-name", default="session")
    ins.add_argument("--namespace", default="default")
    ins.set_defaults(func=_inspect)
    demo = sub.add_parser("demo", help="serve the demo app with the stdlib server")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--secret-key", help="secret (default: $WSGISESSION_SECRET_KEY)")
    demo.add_argument(
        "--store",
        default="cookie",
        help="cookie (default: data in the encrypted cookie), memory, or a redis:// URL",
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
