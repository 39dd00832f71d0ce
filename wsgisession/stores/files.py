"""``FileStore``: one file per session record in a local directory, shared by the
worker processes of one host (gunicorn ``-w 4``).

POSIX only (``fcntl.flock``), on a local filesystem (ext4, xfs, btrfs, tmpfs; not NFS
or another network filesystem, whose ``flock`` is emulated or absent).

* A record lives in ``r-<sha256hex(key)>``, an index in ``i-<sha256hex(index)>``: a
  file name never comes from the key itself, so ``../``, NUL or a 10 kB key are just
  text. Files are created mode 0600; the directory 0700 when this creates it. The
  format is in :mod:`wsgisession.stores._fileio` (each file carries its expiry, its
  own key and a CRC-32).
* Every write goes to a temporary file in the same directory, then ``os.replace``
  (``os.link`` for a new record: create-if-absent, ``O_EXCL`` semantics), so a reader
  sees the old file or the new one, never a torn one. Reads take no lock.
* Writers first take the key's lock, an exclusive ``flock`` on ``<file>.lock``, which
  works across processes and threads; several locks are always taken in sorted order
  (index before records), so they cannot deadlock.
* Expiry is enforced on read: an expired record reads as absent, and the next write
  of that key, or :meth:`FileStore.sweep`, removes it. A damaged record (a machine
  crash without ``fsync``, a stray file) also reads as absent, with a warning. A
  damaged *index* raises :class:`~wsgisession.errors.StoreError` instead: an index that
  silently forgot members would let "log out everywhere" miss sessions.

Every ``OSError`` becomes :class:`~wsgisession.errors.StoreError` naming the operation,
the exception class, the errno and the directory (never a file's contents).
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator

from ..errors import ConfigurationError, StoreError
from ..events import logger
from ._fileio import (
    INDEX,
    LOCK,
    NAME,
    RECORD,
    TEMP,
    Damaged,
    LockTimeout,
    Members,
    acquire,
    describe,
    encode,
    file_name,
    pack,
    pack_members,
    probe,
    read_file,
    release,
    remove_file,
    sync_directory,
    unpack,
    unpack_members,
    write_file,
)

__all__ = ["FileStore", "DEFAULT_MAX_BYTES", "LOCK_TIMEOUT", "STALE_TEMP_SECONDS"]

#: Default bound on one file (a record with its key, or an index): 1 MiB.
DEFAULT_MAX_BYTES = 1024 * 1024
#: Default bound, in seconds, on the wait for a key's lock.
LOCK_TIMEOUT = 5.0
#: A temporary file older than this (by its mtime) was left by a killed process.
STALE_TEMP_SECONDS = 300.0
#: index_revoke() holds at most this many record locks at once.
REVOKE_BATCH = 256
_MAX_FILE = 2**31 - 1


class FileStore:
    """Session records as files in ``directory`` (see the module docstring).

    :param directory: where the files live; created (mode 0700) if missing. It must
        belong to this process's user and not be writable by group or others. Give
        the store a directory of its own, on a filesystem where a full disk hurts
        nothing else (docs/stores/files.md, "Bounded disk use").
    :param max_bytes: the largest file: a record (value, key and 24 bytes of framing)
        or an index; 1 MiB by default. A larger write raises
        :class:`~wsgisession.errors.StoreError`; it is never dropped silently.
    :param lock_timeout: seconds to wait for a key's lock before ``StoreError``
        (default 5; a lock is held only while one file is written).
    :param fsync: flush each file, and the directory after each rename or removal,
        before returning. Without it (the default) a machine crash — not a process
        crash — can lose the last seconds of writes, logouts included. Index files
        (written at login and logout only) are always flushed.
    :param clock: seconds for expiry (default :func:`time.time`: every process that
        shares the directory must use the same clock, and a reboot must not reset it).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        lock_timeout: float = LOCK_TIMEOUT,
        fsync: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            path = os.fspath(directory)
        except TypeError:
            raise ConfigurationError("directory must be a path", "directory") from None
        if not isinstance(path, str) or not path or "\0" in path:
            raise ConfigurationError("directory must be a non-empty str path", "directory")
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool):
            raise ConfigurationError("max_bytes must be an int", "max_bytes")
        if not 64 <= max_bytes <= _MAX_FILE:
            raise ConfigurationError(f"max_bytes must be from 64 to {_MAX_FILE}", "max_bytes")
        if (
            not isinstance(lock_timeout, int | float)
            or isinstance(lock_timeout, bool)
            or not 0 < lock_timeout < math.inf
        ):
            raise ConfigurationError("lock_timeout must be a positive number", "lock_timeout")
        if not isinstance(fsync, bool):
            raise ConfigurationError("fsync must be True or False", "fsync")
        if not callable(clock):
            raise ConfigurationError("clock must be callable", "clock")
        #: The directory, as an absolute path.
        self.directory = os.path.abspath(path)
        self.max_bytes = max_bytes
        self.lock_timeout = float(lock_timeout)
        self.fsync = fsync
        self._clock = clock
        self._prepare_directory()

    def _prepare_directory(self) -> None:
        where = self.directory
        try:
            try:
                os.makedirs(where, mode=0o700)
                os.chmod(where, 0o700)
            except FileExistsError:
                pass
            info = os.stat(where)
        except OSError as exc:
            raise ConfigurationError(
                f"directory {where!r} cannot be used: {describe(exc)}", "directory"
            ) from None
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigurationError(f"{where!r} is not a directory", "directory")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ConfigurationError(
                f"directory {where!r} is writable by other users: chmod 700 it", "directory"
            )
        if info.st_uid != os.geteuid():
            # Files made by another user (a sweep run as root, say) would be 0600 and
            # out of the application's reach.
            raise ConfigurationError(
                f"directory {where!r} belongs to uid {info.st_uid}, not to this "
                f"process's uid {os.geteuid()}: run as the application's user",
                "directory",
            )

    def __repr__(self) -> str:
        return f"<FileStore directory={self.directory!r} max_bytes={self.max_bytes}>"

    # -- plumbing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self, op: str) -> Iterator[None]:
        """Turn any OSError inside into a StoreError naming ``op``."""
        try:
            yield
        except OSError as exc:
            raise StoreError(
                f"file store {op} failed: {describe(exc)} ({self.directory})", exc
            ) from exc

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _deadline(self, ttl: int | None) -> float:
        return math.inf if ttl is None else self._clock() + ttl

    def _checked(self, op: str, data: bytes) -> bytes:
        if len(data) > self.max_bytes:
            raise StoreError(
                f"file store {op} refused: a file of {len(data)} bytes is larger than "
                f"max_bytes={self.max_bytes}"
            )
        return data

    def _record(self, op: str, key: str, value: bytes, ttl: int | None) -> tuple[str, bytes]:
        """(file name, packed bytes) of a record; StoreError if over ``max_bytes``."""
        raw = encode(key)
        data = pack(RECORD, raw, self._deadline(ttl), bytes(value))
        return file_name("r", raw), self._checked(op, data)

    def _read(self, name: str) -> tuple[float, bytes] | None:
        """(expiry, value) of a live record; None if absent, expired or damaged."""
        data = read_file(self._path(name), self.max_bytes + 1)
        if data is None:
            return None
        try:
            deadline, _, value = unpack(RECORD, name, data)
        except Damaged:
            logger.warning("file store: ignoring damaged file %s in %s", name, self.directory)
            return None
        return None if deadline <= self._clock() else (deadline, value)

    def _live(self, name: str) -> tuple[float, bytes] | None:
        """Like :meth:`_read`, under the record's lock; a dead file is removed."""
        found = self._read(name)
        if found is None:
            remove_file(self._path(name))
        return found

    def _write(self, name: str, data: bytes, *, new: bool = False, sync: bool = False) -> bool:
        return write_file(self.directory, name, data, new=new, sync=sync or self.fsync)

    def _unlink(self, name: str) -> bool:
        """Remove file ``name`` (True if there was one)."""
        if not remove_file(self._path(name)):
            return False
        if self.fsync:
            sync_directory(self.directory)
        return True

    @contextlib.contextmanager
    def _locked(self, op: str, names: Iterable[str]) -> Iterator[None]:
        """Hold the locks of the files ``names``, taken in sorted order."""
        with contextlib.ExitStack() as stack:
            for name in sorted(set(names)):
                lock = self._path(name + LOCK)
                try:
                    fd = acquire(lock, self.lock_timeout)
                except LockTimeout:
                    raise StoreError(
                        f"file store {op} failed: no lock within {self.lock_timeout:g} s "
                        f"({self.directory})"
                    ) from None
                stack.callback(release, lock, fd)
            yield

    # -- records ----------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        with self._guard("get"):
            found = self._read(file_name("r", key))
            if found is None:
                os.stat(self.directory)  # a vanished directory is an error, not a miss
        return None if found is None else found[1]

    def ttl(self, key: str) -> float | None:
        """Seconds left for ``key`` (``None``: no expiry); ``KeyError`` if absent."""
        with self._guard("ttl"):
            found = self._read(file_name("r", key))
        if found is None:
            raise KeyError(key)
        return None if found[0] == math.inf else found[0] - self._clock()

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        name, data = self._record("set", key, value, ttl)
        with self._guard("set"), self._locked("set", [name]):
            self._write(name, data)

    def create(self, key: str, value: bytes, ttl: int | None) -> bool:
        name, data = self._record("create", key, value, ttl)
        with self._guard("create"), self._locked("create", [name]):
            if self._live(name) is not None:
                return False
            return self._write(name, data, new=True)

    def update(self, key: str, value: bytes, ttl: int | None) -> bool:
        name, data = self._record("update", key, value, ttl)
        with self._guard("update"), self._locked("update", [name]):
            if self._live(name) is None:
                return False
            return self._write(name, data)

    def touch(self, key: str, ttl: int | None) -> bool:
        raw = encode(key)
        name = file_name("r", raw)
        with self._guard("touch"), self._locked("touch", [name]):
            found = self._live(name)
            if found is None:
                return False
            data = pack(RECORD, raw, self._deadline(ttl), found[1])
            return self._write(name, self._checked("touch", data))

    def move(self, old: str, new: str, value: bytes, ttl: int | None) -> bool:
        """Write ``new`` (absent) and remove ``old``, only while ``old`` exists; both
        locks are held throughout."""
        old_name = file_name("r", old)
        new_name, data = self._record("move", new, value, ttl)
        with self._guard("move"), self._locked("move", [old_name, new_name]):
            if self._live(old_name) is None or self._live(new_name) is not None:
                return False
            if not self._write(new_name, data, new=True):
                return False
            try:
                self._unlink(old_name)
            except OSError:
                remove_file(self._path(new_name))  # never leave both behind
                raise
            return True

    def delete(self, key: str) -> None:
        name = file_name("r", key)
        with self._guard("delete"), self._locked("delete", [name]):
            self._unlink(name)

    # -- indexes ----------------------------------------------------------------------

    def _index(self, op: str, name: str) -> tuple[bytes, Members] | None:
        """(key, every member) of index file ``name``; None if there is none;
        StoreError if it is damaged."""
        data = read_file(self._path(name), self.max_bytes + 1)
        if data is None:
            return None
        try:
            _, key, body = unpack(INDEX, name, data)
            return key, unpack_members(body)
        except Damaged:
            raise StoreError(
                f"file store {op} failed: the index file {name} is damaged; remove it "
                f"({self.directory})"
            ) from None

    def _members(self, op: str, name: str) -> Members:
        """The live members of index file ``name`` ({} if there is none)."""
        found = self._index(op, name)
        now = self._clock()
        return {} if found is None else {m: v for m, v in found[1].items() if v[0] > now}

    def _save_index(self, op: str, index: bytes, name: str, members: Members) -> None:
        if not members:
            self._unlink(name)
            return
        deadline = max(deadline for deadline, _ in members.values())
        data = self._checked(op, pack(INDEX, index, deadline, pack_members(members)))
        self._write(name, data, sync=True)

    def index_put(self, index: str, member: str, entry: bytes, ttl: int | None) -> None:
        raw = encode(index)
        name = file_name("i", raw)
        with self._guard("index_put"), self._locked("index_put", [name]):
            members = self._members("index_put", name)
            members.pop(member, None)
            members[member] = (self._deadline(ttl), bytes(entry))
            self._save_index("index_put", raw, name, members)

    def index_get(self, index: str) -> dict[str, bytes]:
        with self._guard("index_get"):
            members = self._members("index_get", file_name("i", index))
            if not members:
                os.stat(self.directory)
        return {member: entry for member, (_, entry) in members.items()}

    def index_revoke(self, index: str, members: Iterable[str]) -> None:
        """Delete the records of ``members`` and drop them from the index. The index's
        lock is held throughout, the records' locks (sorted, ``REVOKE_BATCH`` at a time)
        while they are deleted; records go first, so a failure half-way leaves them
        listed for a retry (never a live record missing from its index)."""
        raw = encode(index)
        name = file_name("i", raw)
        wanted = set(members)
        records = sorted({file_name("r", member) for member in wanted})
        with self._guard("index_revoke"), self._locked("index_revoke", [name]):
            for start in range(0, len(records), REVOKE_BATCH):
                batch = records[start : start + REVOKE_BATCH]
                with self._locked("index_revoke", batch):
                    for record in batch:
                        self._unlink(record)
            found = self._index("index_revoke", name)
            if found is not None:
                now = self._clock()
                kept = {m: v for m, v in found[1].items() if m not in wanted and v[0] > now}
                if kept != found[1]:
                    self._save_index("index_revoke", raw, name, kept)

    # -- housekeeping -----------------------------------------------------------------

    def ping(self) -> None:
        """Check that the directory takes a file (a probe, removed at once).

        :raises StoreError: naming the cause when it does not.
        """
        with self._guard("ping"):
            probe(self.directory)

    def sweep(self) -> int:
        """Remove expired and damaged records, expired index members (and indexes left
        empty), temporary files older than ``STALE_TEMP_SECONDS`` and lock files nobody
        holds. Safe while the store is in use; reads every record once.

        :returns: how many records and index members it removed.
        """
        removed = 0
        with self._guard("sweep"), os.scandir(self.directory) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(TEMP):
                    self._sweep_temp(entry)
                elif name.endswith(LOCK) and NAME.fullmatch(name[: -len(LOCK)]):
                    fd = acquire(entry.path, self.lock_timeout, wait=False)
                    if fd >= 0:  # left by a killed process (one in use is skipped)
                        release(entry.path, fd)
                elif NAME.fullmatch(name) and name[0] == "r":
                    removed += self._sweep_record(name)
                elif NAME.fullmatch(name):
                    removed += self._sweep_index(name)
        return removed

    def _sweep_temp(self, entry: os.DirEntry[str]) -> None:
        try:
            age = time.time() - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            return
        if age > STALE_TEMP_SECONDS:
            remove_file(entry.path)

    def _sweep_record(self, name: str) -> int:
        if self._read(name) is not None:
            return 0
        with self._locked("sweep", [name]):
            if self._read(name) is not None:
                return 0  # written again meanwhile
            return int(self._unlink(name))

    def _sweep_index(self, name: str) -> int:
        """Drop an index's expired members (the file, once none is left). A damaged
        index is left alone, with a warning: removing it would forget sessions."""
        with self._locked("sweep", [name]):
            try:
                found = self._index("sweep", name)
            except StoreError:
                logger.warning("file store: damaged index file %s in %s", name, self.directory)
                return 0
            if found is None:
                return 0
            now = self._clock()
            live = {m: v for m, v in found[1].items() if v[0] > now}
            if len(live) != len(found[1]):
                self._save_index("sweep", found[0], name, live)
            return len(found[1]) - len(live)
