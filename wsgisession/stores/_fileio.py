"""The file format, atomic writes and cross-process locks of
:class:`~wsgisession.stores.files.FileStore` (POSIX only).

A file is ``magic | expiry | key length | body length | key | body | CRC-32`` (big
endian; expiry is a time of the store's clock, ``inf`` for none). A record's body is
its value; an index's body is its members, each ``expiry | member length | entry
length | member | entry``. A file is only used if every check passes, its key
included: it must hash to the file's name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import math
import os
import re
import secrets
import struct
import time
import zlib

try:
    import fcntl
except ImportError as exc:  # pragma: no cover - Windows
    raise ImportError("FileStore needs a POSIX system (fcntl.flock)") from exc

RECORD, INDEX = b"WSR1", b"WSI1"
HEAD = struct.Struct(">4sdII")
CRC = struct.Struct(">I")
MEMBER = struct.Struct(">dII")
#: The names of records (``r-``) and indexes (``i-``).
NAME = re.compile(r"[ri]-[0-9a-f]{64}")
TEMP = ".tmp-"
LOCK = ".lock"
OPEN_FLAGS = os.O_CLOEXEC | os.O_NOFOLLOW

Members = dict[str, tuple[float, bytes]]


class LockTimeout(Exception):
    """A lock was not free within the timeout."""


class Damaged(ValueError):
    """A file failed its checks."""


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def file_name(kind: str, key: str | bytes) -> str:
    """``r-``/``i-`` and the SHA-256 of the key: never a path from the key itself."""
    raw = encode(key) if isinstance(key, str) else key
    return f"{kind}-{hashlib.sha256(raw).hexdigest()}"


def pack(magic: bytes, key: bytes, deadline: float, body: bytes) -> bytes:
    head = HEAD.pack(magic, deadline, len(key), len(body))
    crc = zlib.crc32(body, zlib.crc32(key, zlib.crc32(head)))
    return b"".join((head, key, body, CRC.pack(crc)))


def unpack(magic: bytes, name: str, data: bytes) -> tuple[float, bytes, bytes]:
    """(expiry, key, body) of file ``name``'s bytes; :class:`Damaged` unless the magic,
    the lengths, the CRC and the key (it hashes to ``name``) all check out."""
    if len(data) < HEAD.size + CRC.size:
        raise Damaged("short")
    found, deadline, key_len, body_len = HEAD.unpack_from(data)
    end = HEAD.size + key_len + body_len
    if found != magic or len(data) != end + CRC.size or math.isnan(deadline):
        raise Damaged("framing")
    if zlib.crc32(data[:end]) != CRC.unpack_from(data, end)[0]:
        raise Damaged("crc")
    key = data[HEAD.size : HEAD.size + key_len]
    if file_name(name[0], key) != name:
        raise Damaged("key")
    return deadline, key, data[HEAD.size + key_len : end]


def pack_members(members: Members) -> bytes:
    parts = []
    for member, (deadline, entry) in members.items():
        raw = encode(member)
        parts += [MEMBER.pack(deadline, len(raw), len(entry)), raw, entry]
    return b"".join(parts)


def unpack_members(body: bytes) -> Members:
    members: Members = {}
    offset = 0
    try:
        while offset < len(body):
            deadline, member_len, entry_len = MEMBER.unpack_from(body, offset)
            offset += MEMBER.size
            member = body[offset : offset + member_len].decode("utf-8", "surrogatepass")
            offset += member_len
            members[member] = (deadline, body[offset : offset + entry_len])
            offset += entry_len
    except (struct.error, UnicodeDecodeError):
        raise Damaged("members") from None
    if offset != len(body):
        raise Damaged("members")
    return members


def describe(exc: OSError) -> str:
    """``PermissionError EACCES``: the class and the errno's name, nothing else."""
    code = errno.errorcode.get(exc.errno or 0)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


def remove_file(path: str) -> bool:
    """Unlink ``path``; False if it was not there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def read_file(path: str, limit: int) -> bytes | None:
    """At most ``limit`` bytes of the file (not through a symlink); None if absent."""
    try:
        fd = os.open(path, os.O_RDONLY | OPEN_FLAGS)
    except FileNotFoundError:
        return None
    with open(fd, "rb") as fh:
        return fh.read(limit)


def sync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(directory: str, name: str, data: bytes, *, new: bool, sync: bool) -> bool:
    """Put ``data`` in ``directory/name`` atomically: a temporary file (0600) in the
    same directory, then ``os.replace`` — or, with ``new``, ``os.link``, which refuses
    an existing file (False) like ``O_EXCL``."""
    target = os.path.join(directory, name)
    temp = os.path.join(directory, f"{TEMP}{name}-{secrets.token_hex(6)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | OPEN_FLAGS, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # exactly, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            try:
                os.link(temp, target)
            except FileExistsError:
                return False
        else:
            os.replace(temp, target)
            temp = ""
    finally:
        if temp:
            remove_file(temp)
    if sync:
        sync_directory(directory)
    return True


def probe(directory: str) -> None:
    """Create, write and remove a temporary file (OSError if the directory cannot)."""
    path = os.path.join(directory, f"{TEMP}ping-{secrets.token_hex(6)}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | OPEN_FLAGS, 0o600)
    try:
        os.write(fd, b"ping")
    finally:
        os.close(fd)
        remove_file(path)


def acquire(path: str, timeout: float, *, wait: bool = True) -> int:
    """An fd holding an exclusive ``flock`` on the lock file ``path`` (created 0600);
    -1 if it is busy and not ``wait``; :class:`LockTimeout` after ``timeout`` seconds.

    The holder removes the lock file when it is done (:func:`release`), so a lock
    taken on a file that is no longer the one at ``path`` is dropped and retried.
    """
    deadline = time.monotonic() + timeout
    delay = 0.0002
    while True:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | OPEN_FLAGS, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not wait:
                        os.close(fd)
                        return -1
                    if time.monotonic() >= deadline:
                        raise LockTimeout from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.005)
            held = os.fstat(fd)
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (
            held.st_dev,
            held.st_ino,
        ):
            return fd
        os.close(fd)


def release(path: str, fd: int) -> None:
    """Remove the lock file (still the one at ``path``: it is held) and unlock; its
    waiters notice and retry. Lock files exist only while in use."""
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    finally:
        os.close(fd)
