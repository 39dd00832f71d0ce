"""``SessionOwner``: what a :class:`~wsgisession.Session` asks of the manager that made
it, and nothing else (a :class:`~wsgisession.SessionManager` satisfies it). The session
is typed ``Any`` here so that this module never imports the session module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover - types only; options never imports owner
    from .events import Emitter
    from .options import Options

__all__ = ["SessionOwner"]


class SessionOwner(Protocol):
    """What a session asks of the manager that made it; nothing else."""

    options: Options
    emitter: Emitter
    environ_key: str  # options.environ_key, read on every request
    late_saves: bool  # store mode: changes after the headers are saved at close()

    def _load(self, session: Any) -> dict[str, Any]: ...  # first touch: open the token

    def new_id(self, environ: dict[str, Any]) -> str: ...

    def session_headers(
        self, session: Any, status: str, headers: list[tuple[str, str]], exc_info: Any
    ) -> list[tuple[str, str]]: ...  # commit, for a WSGI response

    def _late_write(self, session: Any) -> None: ...  # a change after the headers
