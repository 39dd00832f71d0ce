"""Reading the session token(s) a request carries: :class:`TokenReader`.

A request names its session with our cookie (or the ``external_key`` header). The
reader finds the candidates (at most four copies of our cookie, DESIGN §9), opens
each one (strict base64url → version → key id → AES-256-GCM-SIV → payload schema and
expiry, :func:`~wsgisession.payload.load_token`) and picks the session: exactly one
that authenticates wins, several of the same id give the first, several ids give
none (``duplicate``/``ambiguous``). Every rejection is one event; nothing raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .cookies import find_cookie
from .errors import InvalidToken
from .events import Emitter
from .payload import Payload, load_token

__all__ = ["TokenReader"]


class TokenReader:
    """Opens the tokens of one configuration (purpose, binding, serializer, lifetime)."""

    __slots__ = ("_open_token", "_serializer", "_absolute_max_age", "_with_data", "_name", "_key")

    def __init__(
        self,
        open_token: Callable[[str], tuple[bytes, bytes]],
        *,
        serializer: Any,
        absolute_max_age: int | None,
        with_data: bool,
        cookie_name: str,
        external_key: Any,
    ) -> None:
        self._open_token = open_token
        self._serializer = serializer
        self._absolute_max_age = absolute_max_age
        self._with_data = with_data
        self._name = cookie_name
        self._key = external_key

    def candidates(self, environ: dict[str, Any]) -> tuple[list[str], int]:
        """The token values the request carries for us, and how many there were."""
        if self._key is not None:
            value = self._key.get(environ)
            return ([value], 1) if value else ([], 0)
        header = environ.get("HTTP_COOKIE")
        if not header:
            return [], 0
        return find_cookie(header, self._name)

    def open(self, value: str, now: float) -> Payload:
        """Open one token value, with ``kid`` set; raise InvalidToken."""
        plaintext, kid = self._open_token(value)
        payload = load_token(
            self._serializer, plaintext, now, self._absolute_max_age, with_data=self._with_data
        )
        payload.kid = kid
        return payload

    def pick_duplicate(
        self, environ: dict[str, Any], values: list[str], now: float, emitter: Emitter
    ) -> Payload | None:
        """The session several copies of our token name, or None; one ``duplicate``
        event either way."""
        opened = []
        for value in values:
            try:
                opened.append(self.open(value, now))
            except InvalidToken:
                continue
        ids = {payload.sid for payload in opened}
        if len(ids) > 1:
            emitter.emit("duplicate", environ, None, "ambiguous")
            return None
        if not opened:
            emitter.emit("duplicate", environ, None, "none_valid")
            return None
        emitter.emit("duplicate", environ, opened[0].sid, "multiple")
        return opened[0]

    def authenticated_ids(self, values: list[str], now: float) -> list[str]:
        """The id of every value that authenticates, expired ones included (a destroy
        deletes all their records)."""
        ids = []
        for value in values:
            try:
                ids.append(self.open(value, now).sid)
            except InvalidToken as exc:
                if exc.session_id is not None:  # authenticated, then failed (expiry)
                    ids.append(exc.session_id)
        return ids
