"""``SessionManager``: open a session from a request's token, commit it into a cookie.

The seam every integration stands on (``docs/architecture.md`` shows it in use): the
WSGI :class:`~wsgisession.SessionMiddleware` is a manager around an application, and a
framework's own extension point (a Django session engine, a Flask ``SessionInterface``,
a Pyramid session factory) uses one directly. Policy points: :meth:`cookie_max_age`,
``del session.max_age``, :meth:`decode`, ``save_session(..., final=False)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .codec import TokenCodec, b64encode
from .cookies import CookiePolicy, CookieUpdate, find_cookie
from .errors import (
    ConfigurationError,
    InvalidToken,
    SerializationError,
    SessionTooLarge,
    StoreError,
    WSGISessionError,
)
from .events import LEVELS, Emitter, logger
from .headers import add_session_headers
from .options import Options, OptionViews
from .payload import (
    MAX_ID_CHARS,
    Payload,
    absolute_of,
    cookie_age,
    dump_payload,
    expiry_of,
    lifetime_of,
    record_ttl,
    renew_due,
)
from .revocation import Revocations, SessionInfo
from .session import Session
from .storage import StoreBackend
from .tokens import TokenReader

__all__ = ["SessionManager", "CookieUpdate"]

_urandom = os.urandom
_DEBUG = LEVELS["created"]


class SessionManager(OptionViews):
    """Sessions for one configuration: tokens, cookies, commit rules and the store.

    :param secret_keys: the secrets (first = current).
    :param options: every other option, keyword-only, as for
        :class:`~wsgisession.SessionMiddleware`; or ``options=`` an
        :class:`~wsgisession.options.Options` already built.
    :raises ConfigurationError: for a bad option, naming it.

    The options are :attr:`options`; each one can also be read as an attribute
    (``manager.cookie_name``).
    """

    def __init__(
        self,
        secret_keys: Sequence[str | bytes] | None = None,
        *,
        options: Options | None = None,
        **kwargs: Any,
    ) -> None:
        if options is None:
            options = Options(secret_keys=secret_keys, **kwargs)
        elif secret_keys is not None or kwargs:
            raise ConfigurationError(
                "pass options=Options(...) or keyword options, not both", "options"
            )
        self.options = options
        #: The token codec (keys derived once, here).
        self.codec = TokenCodec(options.secret_keys, options.namespace)
        self.emitter = Emitter(options.on_event)
        #: Read on every request: ``options.environ_key``.
        self.environ_key = options.environ_key
        self.late_saves = options.store is not None
        self.cookies = CookiePolicy(
            options.cookie_name,
            path=options.path,
            domain=options.domain,
            secure=options.secure,
            always_secure=options.always_secure,
            httponly=options.httponly,
            samesite=options.samesite,
            partitioned=options.partitioned,
        )
        self._seal_token = self.codec.sealer(options.purpose, options.binding)
        self._reader = TokenReader(
            self.codec.opener(options.purpose, options.binding),
            serializer=options.serializer,
            absolute_max_age=options.absolute_max_age,
            with_data=options.store is None,
            cookie_name=options.cookie_name,
            external_key=options.external_key,
        )
        self._primary_kid = self.codec.primary_kid
        self._vary_header = ("Vary", options.vary)
        self._insecure_warned = False
        self._revocations = Revocations(options, self.codec, self.emitter)
        self._backend: StoreBackend | None = None
        if options.store is not None:
            self._backend = StoreBackend(options, self.codec, self.emitter)

    def __repr__(self) -> str:
        options = self.options
        return (
            f"<{type(self).__name__} cookie_name={options.cookie_name!r} "
            f"namespace={options.namespace!r} key_ids={self.codec.key_ids!r}>"
        )

    # -- the seam -------------------------------------------------------------------

    def open_session(
        self, environ: dict[str, Any] | None = None, *, value: str | Sequence[str] | None = None
    ) -> Session:
        """A lazy session for one request, opened on first touch: from ``value`` (the
        cookie's value, or several copies in header order) or else from ``environ``'s
        ``Cookie`` (or ``external_key``) header. Hooks receive ``environ`` (``{}`` if None).
        """
        tokens = None if value is None else [value] if isinstance(value, str) else list(value)
        return Session._bind(self, {} if environ is None else environ, tokens)

    def save_session(
        self,
        session: Session,
        *,
        failed: bool = False,
        destroy: bool = False,
        final: bool = True,
    ) -> CookieUpdate | None:
        """Commit ``session`` (the commit rules of the docs' "Sessions" page) and say
        what the response must carry.

        Writes the store first in store mode. ``failed``: the response is an error
        (no write unless ``commit_on_error``; a destroy still clears the cookie).
        ``destroy``: the request dropped the session (WSGI: ``environ[key] = None``).
        Called again for the same session (a WSGI retry with ``exc_info``), it sends
        the same cookie again if the response may still commit. ``final=False``: the
        session stays open for more changes and saves in the same request (a
        framework's ``session.save()``; a Django session engine), each call deciding
        afresh.

        :raises SessionTooLarge: when the ``Set-Cookie`` would exceed ``max_cookie_size``.
        :raises StoreError: when the store write fails (``on_store_error="raise"``).
        """
        options = self.options
        failed = failed and not options.commit_on_error
        session._begin_commit(failed)
        previous = session._sent
        update = None
        try:
            if destroy:
                deleted = previous is not None and previous.deletion
                update = previous if deleted else self._destroy(session, "assigned_none")
            elif previous is not None:
                update = previous if previous.deletion or not failed else None
            elif session._data is not None:
                update = self._decide(session, failed)
        finally:
            session._end_commit(update, final)
        return update

    def cookie_max_age(self, session: Session, seconds: int | None) -> int | None:
        """The ``Max-Age`` of a session cookie about to be written: by default
        ``seconds`` (the token's remaining lifetime; ``None`` for a browser session).
        Override it to return ``None`` for a browser-session cookie whose token still
        carries its expiry, enforced by the server (Flask's ``permanent=False``)."""
        return seconds

    def decode(self, value: str, *, now: float | None = None) -> Payload:
        """Open one token as this manager would (for inspection): its payload, ``kid``
        the key id that sealed it. :raises InvalidToken: with the event and reason."""
        return self._reader.open(value, self.options.clock() if now is None else now)

    def new_id(self, environ: dict[str, Any]) -> str:
        """A new session id: ``genid(environ)``, or 256 random bits (43 characters)."""
        genid = self.options.genid
        if genid is None:
            return b64encode(_urandom(32))  # what secrets.token_urlsafe(32) returns
        sid = genid(environ)
        if not isinstance(sid, str) or not sid or len(sid) > MAX_ID_CHARS:
            raise WSGISessionError(
                f"genid must return a non-empty str of at most {MAX_ID_CHARS} characters"
            )
        return sid

    def store_key(self, session_id: str) -> str:
        """Where a store-mode session's record lives: ``prefix + sha256hex(id)``."""
        if self._backend is None:
            raise WSGISessionError("store_key: this manager has no store (cookie mode)")
        return self._backend.key_for(session_id)

    # -- a user's sessions (revocation.py) ------------------------------------------

    def sessions_of(self, user_id: str) -> list[SessionInfo]:
        """The live sessions bound to ``user_id`` (store mode, a store with index
        methods): handles and times only, most recently seen first."""
        return self._revocations.sessions_of(user_id)

    def handle_of(self, session: Session) -> str | None:
        """The handle :meth:`sessions_of` gives ``session`` ("this device"), once saved."""
        key = session._store_key
        return None if key is None else self._revocations.handle(key)

    def revoke(self, user_id: str, handle: str) -> bool:
        """Log one of the user's sessions out (by its handle); False if none matched."""
        return self._revocations.revoke(user_id, handle)

    def revoke_all(self, user_id: str, *, keep: Session | None = None) -> None:
        """Log the user out everywhere (but ``keep``, the request's own session, which
        is re-saved under the new generation): every listed session's record goes, and
        with ``revocation_store`` every token saved before stops working."""
        generation = self._revocations.revoke_all(
            user_id, None if keep is None else keep._store_key
        )
        if keep is not None and generation is not None and keep.user_id == user_id:
            keep._bind_generation(generation)
            keep.save()

    def session_headers(
        self,
        session: Session,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> list[tuple[str, str]]:
        """Commit ``session`` for a WSGI response and return the headers to send: a copy
        of ``headers`` with ``Vary``, ``Set-Cookie`` (or the external key's header) and
        ``Cache-Control: private`` merged in."""
        environ = session._environ
        key = self.environ_key
        current = environ.get(key, session)
        destroy = current is None
        if not destroy and current is not session:
            if not isinstance(current, dict):
                # A TypeError (DESIGN §2) that is also a WSGISessionError.
                raise SerializationError(
                    f"environ[{key!r}] can only be set to None or a dict, "
                    f"not {type(current).__name__}"
                )
            session._replace(current)
        failed = exc_info is not None or status[:1] == "5"
        update = self.save_session(session, failed=failed, destroy=destroy)
        options = self.options
        out, reasons = add_session_headers(
            headers,
            self._vary_header,
            None if update is None else update.header,
            external_key=options.external_key,
            is_ours=self.cookies.is_ours if options.overwrite else None,
            cache_control=options.cache_control,
        )
        for reason in reasons:
            sid = session._id if session._data is not None else None
            self.emitter.emit("cache_control_overridden", environ, sid, reason)
        return out

    # -- loading (Session._load calls this on first touch) -------------------------

    def _load(self, session: Session) -> dict[str, Any]:
        environ = session._environ
        options = self.options
        now = options.clock()
        values = session._tokens
        if values is not None:
            count = len(values)
        elif options.external_key is None:  # self._reader.candidates(environ), inline
            header = environ.get("HTTP_COOKIE")
            values, count = find_cookie(header, options.cookie_name) if header else ([], 0)
        else:
            values, count = self._reader.candidates(environ)
        payload = None
        if count == 1:
            try:
                payload = self._reader.open(values[0], now)
            except InvalidToken as exc:
                self.emitter.emit(exc.event, environ, exc.session_id, exc.reason)
        elif count > 1:
            payload = self._reader.pick_duplicate(environ, values, now, self.emitter)
        if payload is None:
            return session._start_fresh(now)
        rekey = payload.kid != self._primary_kid
        if self._backend is None:
            data = session._adopt(payload, payload.expires, rekey, False)
        else:
            record = self._backend.load(session, payload.sid, now)
            if record is None:
                return session._reset(now)
            data = session._adopt(record, payload.expires, rekey, record.kid != self._primary_kid)
        if session._user is not None:
            refused = self._revocations.load_refused(session, environ)
            if refused is not False:
                data = session._reset(now)
                if refused is None:
                    session._record_read("", found=False, failed=True)
                return data
        valid = options.valid
        if valid is not None:
            try:
                ok = bool(valid(environ, session))
            except Exception:
                logger.exception("the valid() hook raised; treating the session as invalid")
                ok = False
            if not ok:
                self.emitter.emit("invalid", environ, session._id, "valid")
                return session._reset(now)
            session._pristine()
        if session._rekey or session._record_rekey:
            self.emitter.emit("rotated", environ, session._id, "old_key")
        return data

    def _authenticated_ids(self, session: Session) -> list[str]:
        values = session._tokens
        if values is None:
            values, _ = self._reader.candidates(session._environ)
        return self._reader.authenticated_ids(values, self.options.clock())

    # -- committing ----------------------------------------------------------------

    def _decide(self, session: Session, failed: bool) -> CookieUpdate | None:
        """The commit rules (DESIGN §4) for a loaded session."""
        if session._invalidated:
            return self._after_invalidate(session, failed)
        options = self.options
        if not session._data and not session._force:
            if session._incoming and session.changed:
                if not options.auto_commit and not session._commit_requested:
                    return None
                return self._destroy(session, "emptied")
            return None
        if failed:
            return None
        if not options.auto_commit and not session._commit_requested and not session._force:
            return None
        return self._save_if_due(session)

    def _after_invalidate(self, session: Session, failed: bool) -> CookieUpdate:
        """A logout always sticks (DESIGN §10): the records go and the cookie is cleared,
        on error pages and without a commit too; what the request wrote after
        ``invalidate()`` belongs to a new session, saved only when a save is due."""
        if self._backend is not None:
            self._backend.destroy(session, self._authenticated_ids(session))
        options = self.options
        due = (
            (session._data or session._force)
            and not failed
            and (options.auto_commit or session._commit_requested or session._force)
        )
        update = self._save_if_due(session) if due else None
        return self._deletion(session, "invalidate") if update is None else update

    def _save_if_due(self, session: Session) -> CookieUpdate | None:
        """Write when the data changed, a save was forced, or re-keying, rolling or
        renewal is due; else None."""
        if (
            session._force
            or session._modified  # session.changed without a property call (~0.7K
            or (session._snapshot is not None and session.changed)  # instructions)
            or session._record_rekey
        ):
            return self._write(session)
        options = self.options
        if session._rekey or options.rolling:
            return self._write(session, touch=True)
        expires = session._expires
        if options.renew and expires is not None:
            lifetime = lifetime_of(options.max_age, session._max_age)
            absolute = absolute_of(session._created, session._absolute, options.absolute_max_age)
            if renew_due(expires, options.clock(), lifetime, absolute):
                return self._write(session, touch=True)
        return None

    def _write(self, session: Session, *, touch: bool = False) -> CookieUpdate | None:
        """Save the session; what the response must carry, or None (not saved).

        ``touch``: only the expiry moves (rolling, renew, re-keying the cookie); store
        mode then refreshes the record's TTL instead of rewriting it.
        """
        options = self.options
        environ = session._environ
        if options.before_save is not None:
            options.before_save(environ, session)
        now = int(options.clock())
        absolute = absolute_of(session._created, session._absolute, options.absolute_max_age)
        expires = expiry_of(now, lifetime_of(options.max_age, session._max_age), absolute)
        backend = self._backend
        if session._user is not None or session._unavailable:
            if not self._may_write(session):
                return None
        if backend is not None:
            old, ttl = session._moved_from or session._store_key, record_ttl(expires, absolute, now)
            if not backend.write(session, absolute, ttl, touch=touch):
                return None
            if session._user is not None:
                self._revocations.after_write(session, old, expires, ttl)
        token = self._seal_token(
            dump_payload(
                options.serializer,
                options.fast_json,
                created=session._created,
                sid=session._id,
                expires=expires,
                absolute=absolute,
                max_age=session._max_age,
                data=session._data if backend is None else None,
                user=None if backend is not None else session._user,
                generation=None if backend is not None else session._generation,
            )
        )
        age = self.cookie_max_age(session, None if expires is None else cookie_age(expires, now))
        if options.external_key is not None:
            header = token
        else:
            writer = self.cookies.writer_for(environ)
            header = writer.render(token, age, now)
            if len(header) > options.max_cookie_size:
                self.emitter.emit("too_large", environ, session._id, "cookie_size")
                raise SessionTooLarge(len(header), options.max_cookie_size)
            if (
                writer.secure
                and not self._insecure_warned
                and environ.get("wsgi.url_scheme") != "https"
            ):
                self._insecure_warned = True
                self.emitter.emit("insecure_transport", environ, None, "http_scheme")
        if session._is_new:
            # emit()'s own "anyone listening?" test, inline: ~1.4K instructions per new
            # session when events are off (the default).
            if self.emitter.on_event is not None or logger.isEnabledFor(_DEBUG):
                self.emitter.emit("created", environ, session._id, "new")
        session._mark_saved(expires, absolute)
        return CookieUpdate(token, age, None if age is None else now + age, header)

    def _may_write(self, session: Session) -> bool:
        """Before saving a bound or unreadable session: its user's generation, or a
        store failure (raised or, with ``on_store_error="ignore"``, reported)."""
        try:
            if session._unavailable and self._backend is None:
                raise StoreError("the revocation store could not be read for this request")
            self._revocations.before_write(session)
        except StoreError as exc:
            self.emitter.emit("store_error", session._environ, session._id, "write", exc)
            if self.options.on_store_error == "raise":
                raise
            return False
        return True

    def _destroy(self, session: Session, reason: str) -> CookieUpdate:
        if self._backend is not None:
            self._backend.destroy(session, self._authenticated_ids(session))
        return self._deletion(session, reason)

    def _deletion(self, session: Session, reason: str) -> CookieUpdate:
        """The deletion cookie (or empty header), with the ``destroyed`` event."""
        environ = session._environ
        self.emitter.emit(
            "destroyed", environ, session._id if session._data is not None else None, reason
        )
        if self.options.external_key is not None:
            return CookieUpdate("", 0, 0, "")
        return CookieUpdate("", 0, 0, self.cookies.writer_for(environ).render_deletion())

    # -- after the response ----------------------------------------------------------

    def _late_write(self, session: Session) -> None:
        """A change after the headers went out: an event in cookie mode (it cannot be
        saved); store mode saves it at close() (:meth:`_finish_late`)."""
        if self._backend is None:
            self.emitter.emit("late_write", session._environ, session._id, "after_headers")

    def _finish_late(self, session: Session) -> None:
        """At close(), store mode: apply what the application did after the headers
        went out."""
        backend = self._backend
        assert backend is not None
        environ = session._environ
        if session._destroy_late:
            # invalidate() after the headers went out: the records still go.
            backend.destroy(session, self._authenticated_ids(session))
        if not session._late:
            return
        if session._store_key is None or session._unavailable or session._failed:
            # A new session cannot be saved now: its cookie can no longer be sent.
            self.emitter.emit("late_write", environ, session._id, "after_headers")
            return
        try:
            self._write(session)
        except WSGISessionError:
            pass  # a StoreError was already reported as a store_error event
        except Exception:
            logger.exception("saving the session after the response failed")
