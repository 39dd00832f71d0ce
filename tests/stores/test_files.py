"""FileStore: the store contract over real files, and what only files have.

* ``TestFileStore`` runs the whole ``StoreContract`` (store, index and middleware
  halves) over a FileStore in a temporary directory, sharing the middleware's clock.
* The file layer: atomic writes (readers racing a writer in another process never see
  a torn file; an update replaces the inode), modes 0600/0700 under any umask,
  hostile keys, expiry on read, damaged files, locks across processes, sweep (also
  ``python -m wsgisession sweep`` in a real subprocess), constructor checks.
* Faults: a full disk is a mock of ``os.replace``/``os.write`` raising ENOSPC (no
  small filesystem can be mounted here to fill for real); a read-only directory is
  ``chmod 0500``, or — as root, whom chmod does not stop — ``chattr +i``; only where
  neither works, a mock of ``os.open`` raising EROFS.
* Races: several real processes (``tests/stores/file_racers.py``)
  updating, regenerating and logging out the same sessions at once, a reader checking
  every file it sees; the same schedule on 32 threads; and two barrier-forced 32-thread
  races through the middleware (test_concurrency.py's style).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Harness, call_wsgi
from tests.stores.file_racers import parse, race_middleware, race_worker
from tests.stores.test_concurrency import (
    ORIGINAL,
    WAIT,
    is_deletion,
    record,
    run_threads,
    set_cookie,
    sid_of,
    token,
    wait,
)
from tests.stores.test_contract import StoreContract
from wsgisession import ConfigurationError, SessionMiddleware, StoreError
from wsgisession.__main__ import main
from wsgisession.stores import FileStore

ROOT = Path(__file__).resolve().parents[2]


# -- an independent reader of the file format ---------------------------------------------


def file_for(directory: str | Path, key: str, kind: str = "r") -> Path:
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return Path(directory) / f"{kind}-{digest}"


def raw_value(directory: str | Path, key: str, now: float) -> bytes | None:
    path = file_for(directory, key)
    if not path.exists():
        return None
    magic, deadline, stored_key, body = parse(path.read_bytes())
    assert magic == b"WSR1" and stored_key == key.encode("utf-8", "surrogatepass")
    return body if deadline > now else None


def names_in(store: FileStore) -> list[str]:
    return sorted(os.listdir(store.directory))


def records_in(store: FileStore) -> list[str]:
    return [name for name in names_in(store) if name.startswith("r-")]


class TestFileStore(StoreContract):
    """The contract over FileStore in a temporary directory, on the middleware's clock;
    raw reads parse the files themselves."""

    @pytest.fixture
    def store(self, clock, tmp_path):
        return FileStore(tmp_path / "sessions", clock=clock)

    def remaining(self, key):
        return self.store.ttl(key)

    def set_remaining(self, key, seconds):
        assert self.store.touch(key, seconds)

    def raw_get(self, key):
        return raw_value(self.store.directory, key, self.clock())

    def elapse(self, seconds):
        self.clock.advance(seconds)


# -- files, modes, keys ---------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, clock: Any) -> FileStore:
    return FileStore(tmp_path / "sessions", clock=clock)


def test_an_update_replaces_the_file_and_leaves_nothing_behind(store: FileStore) -> None:
    store.set("k", b"one", 100)
    path = file_for(store.directory, "k")
    first = path.stat().st_ino
    assert store.update("k", b"two", 100)
    assert path.stat().st_ino != first, "rewritten in place, not replaced"
    assert store.touch("k", 50) and store.move("k", "k2", b"three", 100)
    store.index_put("session:user:u", "k2", b"e", 100)
    assert names_in(store) == sorted(
        [file_for("", "k2").name, file_for("", "session:user:u", "i").name]
    )


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_files_are_0600_and_a_new_directory_0700_whatever_the_umask(tmp_path, umask) -> None:
    old = os.umask(umask)
    try:
        store = FileStore(tmp_path / "sessions")
        store.set("a", b"1", 100)
        assert store.create("b", b"2", 100)
        assert store.move("b", "c", b"3", 100)
        store.index_put("session:user:u", "a", b"e", 100)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    assert len(names_in(store)) == 3
    for name in names_in(store):
        assert stat.S_IMODE(os.stat(os.path.join(store.directory, name)).st_mode) == 0o600, name


def test_nested_directories_are_created(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "a" / "b" / "sessions")
    store.set("k", b"v", 10)
    assert store.get("k") == b"v"
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700


HOSTILE = [
    "../escape",
    "../../../../../tmp/wsgisession-escape",
    "/etc/passwd",
    "a/b/c",
    "\0",
    "nul\0inside",
    ".",
    "..",
    "",
    " ",
    "\udcff\ud800",  # lone surrogates
    "line\nbreak\r",
    "C:\\windows\\system32",
    "r-" + "0" * 64,
    ".tmp-r-" + "0" * 64,
    "x.lock",
    "%2e%2e%2f",
    "k" * 100_000,
]


def test_hostile_keys_are_only_text(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "sessions")
    for index, key in enumerate(HOSTILE):
        store.set(key, f"v{index}".encode(), 100)
        store.index_put(key, key, b"entry", 100)
    for index, key in enumerate(HOSTILE):
        assert store.get(key) == f"v{index}".encode(), repr(key[:20])
        assert store.index_get(key) == {key: b"entry"}
    assert sorted(os.listdir(tmp_path)) == ["sessions"]
    assert not os.path.exists("/tmp/wsgisession-escape")
    names = names_in(store)
    assert len(names) == 2 * len(HOSTILE)
    assert all(len(name) == 66 and name[:2] in ("r-", "i-") for name in names)
    for key in HOSTILE:
        store.delete(key)
        store.index_revoke(key, [key])
    assert names_in(store) == []


def test_a_key_that_makes_a_file_over_max_bytes_is_refused(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s", max_bytes=4096)
    store.set("k", b"v" * 4000, 10)
    for call in (
        lambda: store.set("k", b"v" * 4096, 10),
        lambda: store.create("big", b"v" * 5000, 10),
        lambda: store.update("k", b"v" * 5000, 10),
        lambda: store.move("k", "m", b"v" * 5000, 10),
        lambda: store.set("x" * 5000, b"", 10),
        lambda: store.index_put("i", "m" * 5000, b"", 10),
    ):
        with pytest.raises(StoreError, match="larger than max_bytes=4096"):
            call()
    assert store.get("k") == b"v" * 4000
    assert records_in(store) == [file_for("", "k").name]
    for i in range(30):  # an index grows to its bound, then refuses too
        store.index_put("i", f"member-{i}", b"e" * 80, 10)
    with pytest.raises(StoreError, match="larger than max_bytes"):
        for i in range(30, 60):
            store.index_put("i", f"member-{i}", b"e" * 80, 10)
    assert 30 <= len(store.index_get("i")) < 60


def test_expiry_is_enforced_on_read(store: FileStore, clock: Any) -> None:
    store.set("k", b"v", 10)
    store.index_put("idx", "k", b"e", 10)
    clock.advance(9.99)
    assert store.get("k") == b"v"
    clock.advance(0.01)  # exactly at the expiry: gone
    assert store.get("k") is None
    assert store.index_get("idx") == {}
    with pytest.raises(KeyError):
        store.ttl("k")
    assert file_for(store.directory, "k").exists(), "still on disk until a write or a sweep"
    assert store.update("k", b"again", 10) is False
    assert store.touch("k", 10) is False
    assert not file_for(store.directory, "k").exists(), "the failed update removed it"
    store.set("k", b"v", 10)
    clock.advance(20)
    assert store.create("k", b"new", 10) is True  # over an expired record
    assert store.get("k") == b"new"
    store.set("old", b"o", 1)
    clock.advance(2)
    assert store.move("old", "new", b"n", 10) is False


def test_damaged_records_read_as_absent_and_damaged_indexes_fail(store: FileStore, caplog) -> None:
    store.set("k", b"value", 100)
    path = file_for(store.directory, "k")
    data = path.read_bytes()
    for damaged in (data[:-1], data[:10], b"", data[:-4] + b"\0\0\0\0", b"WSI1" + data[4:]):
        path.write_bytes(damaged)
        assert store.get("k") is None
    assert "damaged file" in caplog.text and "value" not in caplog.text
    assert store.create("k", b"fresh", 100) is True  # replaces the damaged file
    # A file copied under another key's name fails the key check.
    shutil.copy(path, file_for(store.directory, "other"))
    assert store.get("other") is None and store.get("k") == b"fresh"
    store.index_put("idx", "k", b"entry", 100)
    index = file_for(store.directory, "idx", "i")
    index.write_bytes(index.read_bytes()[:-2])
    for call in (
        lambda: store.index_get("idx"),
        lambda: store.index_put("idx", "k2", b"e", 100),
        lambda: store.index_revoke("idx", ["k"]),
    ):
        with pytest.raises(StoreError, match=r"index file i-[0-9a-f]{64} is damaged"):
            call()
    assert store.get("k") is None, "index_revoke deleted the record before failing"


def test_a_missing_directory_is_a_store_error_not_an_empty_store(store: FileStore) -> None:
    store.set("k", b"v", 10)
    shutil.rmtree(store.directory)
    for op, call in (
        ("get", lambda: store.get("k")),
        ("set", lambda: store.set("k", b"v", 10)),
        ("ping", store.ping),
    ):
        with pytest.raises(StoreError, match=f"file store {op} failed: FileNotFoundError ENOENT"):
            call()


# -- constructor --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": True}, "max_bytes"),
        ({"max_bytes": "1024"}, "max_bytes"),
        ({"max_bytes": 2**40}, "max_bytes"),
        ({"lock_timeout": 0}, "lock_timeout"),
        ({"lock_timeout": -1}, "lock_timeout"),
        ({"lock_timeout": float("inf")}, "lock_timeout"),
        ({"lock_timeout": float("nan")}, "lock_timeout"),
        ({"lock_timeout": "5"}, "lock_timeout"),
        ({"fsync": "yes"}, "fsync"),
        ({"clock": 3}, "clock"),
    ],
)
def test_bad_arguments_are_configuration_errors(tmp_path, kwargs, option) -> None:
    with pytest.raises(ConfigurationError) as info:
        FileStore(tmp_path / "s", **kwargs)
    assert info.value.option == option


@pytest.mark.parametrize("directory", ["", "a\0b", 3, b"/tmp/x", None])
def test_bad_directories_are_configuration_errors(directory) -> None:
    with pytest.raises(ConfigurationError) as info:
        FileStore(directory)
    assert info.value.option == "directory"


def test_unusable_directories_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o770)
    world = tmp_path / "world"
    world.mkdir()
    world.chmod(0o1777)
    for where, match in (
        (tmp_path / "file", "not a directory"),
        (tmp_path / "file" / "below", "NotADirectoryError ENOTDIR"),
        (shared, "writable by other users"),
        (world, "writable by other users"),
    ):
        with pytest.raises(ConfigurationError, match=match) as info:
            FileStore(where)
        assert info.value.option == "directory"
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(foreign, 65534, 65534)
    else:
        foreign = Path("/")  # root's, and not this user's
    try:
        with pytest.raises(ConfigurationError, match="belongs to uid"):
            FileStore(foreign)
    finally:
        if os.geteuid() == 0:
            os.chown(tmp_path / "foreign", 0, 0)  # so that pytest can clean it up


def test_relative_directories_are_made_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = FileStore("rel")
    monkeypatch.chdir("/")
    store.set("k", b"v", 10)
    assert store.directory == str(tmp_path / "rel")
    assert store.get("k") == b"v" and repr(store).startswith("<FileStore directory=")


# -- faults ---------------------------------------------------------------------------------


def test_a_full_disk_on_rename_keeps_the_old_record(store: FileStore, monkeypatch) -> None:
    """ENOSPC from os.replace (a mock: no small filesystem can be mounted here)."""
    store.set("k", b"old", 100)
    store.index_put("idx", "k", b"e", 100)

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    for op, call in (
        ("update", lambda: store.update("k", b"SECRET-VALUE", 100)),
        ("set", lambda: store.set("k", b"SECRET-VALUE", 100)),
        ("touch", lambda: store.touch("k", 5)),
        ("index_put", lambda: store.index_put("idx", "k", b"SECRET-VALUE", 100)),
    ):
        with pytest.raises(StoreError) as info:
            call()
        message = str(info.value)
        assert message == f"file store {op} failed: OSError ENOSPC ({store.directory})"
        assert isinstance(info.value.original_error, OSError)
    monkeypatch.undo()
    assert store.get("k") == b"old" and store.index_get("idx") == {"k": b"e"}
    assert len(names_in(store)) == 2, "a temporary or lock file was left behind"


def test_a_full_disk_mid_write_keeps_the_old_record(store: FileStore, monkeypatch) -> None:
    """ENOSPC after a partial os.write into the store's directory (a mock, as above)."""
    store.set("k", b"old", 100)
    real_write = os.write

    def short_then_full(fd: int, data: Any) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(store.directory):
            real_write(fd, bytes(data[:5]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(StoreError, match="create failed: OSError ENOSPC"):
        store.create("new", b"x" * 1000, 100)
    with pytest.raises(StoreError, match="move failed: OSError ENOSPC"):
        store.move("k", "new", b"x" * 1000, 100)
    monkeypatch.undo()
    assert store.get("k") == b"old" and store.get("new") is None
    assert names_in(store) == [file_for("", "k").name]


def test_a_full_disk_through_the_middleware(tmp_path: Path, monkeypatch) -> None:
    """A save that hits ENOSPC: StoreError out of the request and a store_error event
    (or, with on_store_error="ignore", no cookie); never a cookie without a record."""
    store = FileStore(tmp_path / "s")

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", full)
    h = Harness(lambda environ, session: session.__setitem__("a", 1), store=store)
    with pytest.raises(StoreError, match="create failed: OSError ENOSPC"):
        call_wsgi(h.mw, "/")
    assert "store_error" in h.events.names()
    quiet = Harness(
        lambda environ, session: session.__setitem__("a", 1), store=store, on_store_error="ignore"
    )
    assert set_cookie(call_wsgi(quiet.mw, "/")) is None
    assert names_in(store) == []


def _can_create(directory: str) -> bool:
    try:
        fd = os.open(os.path.join(directory, "probe"), os.O_CREAT | os.O_WRONLY, 0o600)
    except OSError:
        return False
    os.close(fd)
    os.unlink(os.path.join(directory, "probe"))
    return True


@contextlib.contextmanager
def read_only(directory: str, monkeypatch: pytest.MonkeyPatch):
    """Make ``directory`` refuse new files and removals; yields how. chmod 0500 does not
    stop root: then ``chattr +i`` (immutable); where that is not possible either (tmpfs,
    overlayfs), a mock of os.open/os.unlink raising EROFS for the directory."""
    os.chmod(directory, 0o500)
    try:
        if not _can_create(directory):
            yield "chmod"
            return
    finally:
        os.chmod(directory, 0o700)
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", directory], capture_output=True).returncode == 0:
        try:
            if not _can_create(directory):
                yield "chattr"
                return
        finally:
            subprocess.run([chattr, "-i", directory], check=True)
    real_open, real_unlink = os.open, os.unlink

    def refuse(path: Any) -> None:
        if os.fspath(path).startswith(directory):
            raise OSError(errno.EROFS, "Read-only file system")

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def fake_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        refuse(path)
        real_unlink(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", fake_open)
        patch.setattr(os, "unlink", fake_unlink)
        yield "mock"


def test_a_read_only_directory(store: FileStore, monkeypatch, clock) -> None:
    """Reads go on; every write, ping and sweep is a StoreError naming the operation."""
    store.set("k", b"v", 100)
    store.index_put("idx", "k", b"e", 100)
    store.set("expired", b"x", 1)
    clock.advance(2)
    with read_only(store.directory, monkeypatch) as how:
        assert store.get("k") == b"v" and store.index_get("idx") == {"k": b"e"}
        for op, call in (
            ("set", lambda: store.set("k", b"w", 100)),
            ("create", lambda: store.create("n", b"w", 100)),
            ("update", lambda: store.update("k", b"w", 100)),
            ("touch", lambda: store.touch("k", 100)),
            ("move", lambda: store.move("k", "n", b"w", 100)),
            ("delete", lambda: store.delete("k")),
            ("index_put", lambda: store.index_put("idx", "n", b"e", 100)),
            ("index_revoke", lambda: store.index_revoke("idx", ["k"])),
            ("ping", store.ping),
            ("sweep", store.sweep),
        ):
            with pytest.raises(StoreError, match=f"file store {op} failed: \\w+Error E"):
                call()
        code = main(["sweep", Path(store.directory).as_uri()])
        assert code == 69, how
    assert store.get("k") == b"v"
    store.ping()


# -- locks across processes -----------------------------------------------------------------


def _child(mode: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.stores.file_racers", mode, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _start_together(
    children: list[subprocess.Popen[str]], start: Callable[[], str]
) -> list[tuple[str, str]]:
    """Wait until every child printed ``ready``, send each the line ``start()`` makes
    (then), collect (out, err)."""
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        line = start()
        for child in children:
            assert child.stdin is not None
            child.stdin.write(line + "\n")
            child.stdin.flush()
        return [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.communicate()


def test_a_lock_held_by_another_process_bounds_the_wait(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s", lock_timeout=0.3)
    store.set("k", b"v", 100)
    holder = _child("hold", str(file_for(store.directory, "k")) + ".lock")
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"file store update failed: no lock within 0.3 s"):
            store.update("k", b"w", 100)
        assert 0.3 <= time.monotonic() - started < 2
        assert store.get("k") == b"v", "reads take no lock"
    finally:
        holder.communicate("", timeout=WAIT)
    assert store.update("k", b"w", 100) and store.get("k") == b"w"
    assert names_in(store) == [file_for("", "k").name]


def test_processes_racing_to_create_one_key_make_exactly_one_winner(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s")
    keys = [f"session:{i}" for i in range(30)]
    children = [_child("create", store.directory, str(n), *keys) for n in range(6)]
    outputs = [json.loads(out) for out, _ in _start_together(children, lambda: "go")]
    assert all(child.returncode == 0 for child in children)
    for key in keys:
        winners = [n for n, won in enumerate(outputs) if key in won]
        assert len(winners) == 1, (key, winners)
        assert store.get(key) == f"by-{winners[0]}".encode()


def test_readers_never_see_a_torn_file(tmp_path: Path) -> None:
    """Another process rewrites one record (512 KiB, then 300 KiB) as fast as it can
    while this one reads it: every read is one whole value."""
    store = FileStore(tmp_path / "s")
    big, small = b"a" * 512 * 1024, b"b" * 300 * 1024
    store.set("k", big, 100)
    writer = _child("write", store.directory, "k", "1.0")
    seen = {big: 0, small: 0}
    try:
        while writer.poll() is None:
            seen[store.get("k")] += 1  # KeyError: a torn or mixed value
    finally:
        _, err = writer.communicate(timeout=WAIT)
    assert writer.returncode == 0, err
    assert seen[big] and seen[small], seen
    assert names_in(store) == [file_for("", "k").name]


# -- sweep --------------------------------------------------------------------------------


def test_sweep_removes_what_is_expired_damaged_or_stale(store: FileStore, clock) -> None:
    store.set("live", b"l", 100)
    store.set("forever", b"f", None)
    store.set("dead1", b"d", 10)
    store.set("dead2", b"d", 10)
    store.index_put("idx", "live", b"e", 100)
    store.index_put("idx", "dead1", b"e", 10)
    store.index_put("gone", "dead2", b"e", 10)
    file_for(store.directory, "damaged").write_bytes(b"WSR1 not a record")
    directory = Path(store.directory)
    old_temp, new_temp = directory / ".tmp-r-old-1", directory / ".tmp-r-new-2"
    old_temp.write_bytes(b"x")
    new_temp.write_bytes(b"x")
    os.utime(old_temp, (time.time() - 301, time.time() - 301))
    stale_lock = Path(str(file_for(directory, "crashed")) + ".lock")
    stale_lock.write_bytes(b"")
    held_lock = Path(str(file_for(directory, "busy")) + ".lock")
    (directory / "README").write_text("not ours")
    clock.advance(11)
    with open(held_lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        # dead1, dead2, damaged; dead1 in idx; dead2 in gone (and the index with it)
        assert store.sweep() == 5
        assert held_lock.exists(), "a lock in use is never removed"
    assert store.sweep() == 0
    assert sorted(os.listdir(directory)) == sorted(
        [
            file_for("", "live").name,
            file_for("", "forever").name,
            file_for("", "idx", "i").name,
            new_temp.name,
            "README",
        ]
    )
    assert store.index_get("idx") == {"live": b"e"}
    assert store.get("live") == b"l" and store.get("forever") == b"f"


def test_sweep_leaves_a_damaged_index_alone(store: FileStore, caplog) -> None:
    store.index_put("idx", "k", b"e", 10)
    index = file_for(store.directory, "idx", "i")
    index.write_bytes(index.read_bytes()[:-1])
    assert store.sweep() == 0
    assert index.exists() and "damaged index file" in caplog.text


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsgisession", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def test_the_sweep_command_in_a_subprocess(tmp_path: Path) -> None:
    directory = tmp_path / "sessions dir"
    past = FileStore(directory, clock=lambda: time.time() - 3600)
    past.set("old1", b"x", 60)
    past.set("old2", b"y", 60)
    past.index_put("session:user:u", "old1", b"e", 60)
    live = FileStore(directory)
    live.set("new", b"z", 3600)
    done = _run_cli("sweep", directory.as_uri())
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "removed 3 expired entries\n"
    assert live.get("new") == b"z"
    assert sorted(os.listdir(directory)) == [file_for("", "new").name]
    again = _run_cli("sweep", directory.as_uri())
    assert (again.returncode, again.stdout) == (0, "removed 0 expired entries\n")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memory", "MemoryStore has no sweep()"),
        ("redis://127.0.0.1:1/0", "RedisStore has no sweep()"),
        ("file://relative/dir", "file:///absolute/directory"),
        ("file:///dev/null/below", "cannot be used: NotADirectoryError"),
        ("file:///tmp/x?fsync=1", "no ?query"),
        ("mongodb://user:hunter2@host/db", "unknown store URL scheme 'mongodb'"),
    ],
)
def test_the_sweep_command_refuses_what_it_cannot_sweep(url: str, message: str) -> None:
    done = _run_cli("sweep", url)
    assert done.returncode == 64
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr
    assert "hunter2" not in done.stderr


def test_store_from_url_and_settings_build_a_file_store(tmp_path: Path) -> None:
    from tests.conftest import SECRET, session_app
    from wsgisession import MemoryStore
    from wsgisession.settings import store_from_url

    url = (tmp_path / "a dir").as_uri()  # percent-encoded
    store = store_from_url(url)
    assert isinstance(store, FileStore) and store.directory == str(tmp_path / "a dir")
    assert isinstance(store_from_url(" file://localhost" + str(tmp_path / "b") + " "), FileStore)
    assert isinstance(store_from_url("memory"), MemoryStore)
    for bad in ("file:relative", "file://host/dir", "file:///x#frag", "gopher://x", "nonsense"):
        with pytest.raises(ConfigurationError) as info:
            store_from_url(bad)
        assert info.value.option == "store"
    mw = SessionMiddleware.from_settings(
        session_app(), {"session.secret_keys": SECRET, "session.store": url}
    )
    assert isinstance(mw.store, FileStore) and mw.store.directory == store.directory


# -- races: real processes and 32 threads ---------------------------------------------------


def check_race(mw: SessionMiddleware, seeds: list[tuple[str, str]], log: list[dict]) -> dict:
    """The invariants, per round: no exception but StoreError, no store_error; at most
    one regenerate wins; once the session is gone (its logout, or the winning
    regenerate, finished) no request finds it; a lost save sends no cookie and says
    ``interrupted``; the old record is gone at the end, the regenerated one intact."""
    errors = [entry["error"] for entry in log if entry["error"]]
    assert set(errors) <= {"StoreError"}, errors
    stats = dict.fromkeys(["saved", "interrupted", "gone", "regenerated", "logout_first"], 0)
    stats["requests"] = len(log)
    survivors = set()
    for rnd, (cookie, sid) in enumerate(seeds):
        mine = [e for e in log if e["round"] == rnd and not e["error"]]
        assert not [ev for e in mine for ev in e["events"] if ev[0] == "store_error"]
        won = [e for e in mine if e["path"] == "/regen" and e["token"]]
        logouts = [e for e in mine if e["path"] == "/logout"]
        assert len(won) <= 1, f"round {rnd}: {len(won)} regenerations of one session won"
        assert logouts and all(e["token"] == "" and e["body"] == "bye" for e in logouts)
        gone_at = min(e["t1"] for e in logouts + won)
        stats["logout_first"] += not won or min(e["t1"] for e in logouts) < won[0]["t1"]
        for entry in mine:
            if entry["path"] == "/logout":
                continue
            if entry["t0"] > gone_at:
                assert entry["body"] == "gone", f"round {rnd}: resurrected: {entry}"
            if entry["body"] == "gone":
                assert entry["token"] is None
                stats["gone"] += 1
            elif entry["token"]:
                stats["saved"] += 1
            else:
                assert ["interrupted", "record_gone"] in entry["events"], entry
                stats["interrupted"] += 1
        assert record(mw, mw.store, sid) is None, f"round {rnd}: the logged-out session lives"
        for entry in won:
            new_sid = sid_of(mw, entry["token"])
            meta = record(mw, mw.store, new_sid)
            assert meta is not None and meta["d"]["regen"] == entry["who"]
            survivors.add(mw.store_key(new_sid))
            stats["regenerated"] += 1
    on_disk = set(os.listdir(mw.store.directory))
    assert on_disk == {file_for("", key).name for key in survivors}, "stray files"
    return stats


def _seed(mw: SessionMiddleware, rounds: int) -> list[tuple[str, str]]:
    seeds = []
    for _ in range(rounds):
        value = token(call_wsgi(mw, "/seed"))
        assert value
        seeds.append((value, sid_of(mw, value)))
    return seeds


ROLES = ["update"] * 4 + ["regen"] * 2 + ["logout", "read"]


def test_real_processes_racing_the_same_sessions(tmp_path: Path) -> None:
    """8 processes (4 updating, 2 regenerating, 1 logging out, 1 reading every file)
    on the same 12 sessions, one round each 80 ms: see :func:`check_race`."""
    directory = str(tmp_path / "s")
    mw = race_middleware(directory)
    seeds = _seed(mw, 12)
    cookies = json.dumps([cookie for cookie, _ in seeds])
    children = [_child("race", directory, role, f"p{i}", cookies) for i, role in enumerate(ROLES)]
    outputs = _start_together(children, lambda: str(time.monotonic() + 0.05))
    results = []
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        results.append(json.loads(out))
    stats = check_race(mw, seeds, [entry for result in results for entry in result["log"]])
    assert results[-1]["reads"] > 0
    # The races really happened: saves that won, saves that lost, requests too late.
    assert stats["saved"] and stats["interrupted"] and stats["gone"], stats


def test_32_threads_racing_the_same_sessions(tmp_path: Path) -> None:
    """The same schedule on 32 threads of one process sharing one middleware."""
    mw = race_middleware(str(tmp_path / "s"))
    seeds = _seed(mw, 8)
    cookies = [cookie for cookie, _ in seeds]
    roles = ["update"] * 20 + ["regen"] * 8 + ["logout"] * 2 + ["read"] * 2
    start = time.monotonic() + 0.05
    results = run_threads(32, lambda i: race_worker(mw, roles[i], f"t{i}", cookies, start, 0.08))
    stats = check_race(mw, seeds, [entry for result in results for entry in result["log"]])
    assert stats["saved"] and stats["interrupted"] and stats["gone"], stats


ACTIONS = ["setitem", "nested", "save", "regenerate"]


def _blocked_writers(writers: int, loaded: threading.Barrier, go: threading.Event):
    def handler(environ: dict[str, Any], session: Any) -> str | None:
        path = environ["PATH_INFO"]
        if path == "/seed":
            session.update(ORIGINAL)
        elif path == "/logout":
            environ["session"] = None
        elif path == "/login":
            session.regenerate()
            session["user"] = "bob"
        else:
            action = ACTIONS[int(path.rsplit("/", 1)[1]) % len(ACTIONS)]
            assert session["user"] == "alice"
            loaded.wait()
            wait(go)
            if action == "setitem":
                session["late"] = True
            elif action == "nested":
                session["cart"].append(4)
            elif action == "save":
                session.save()
            else:
                session.regenerate()
        return None

    return handler


@pytest.mark.parametrize("ender", ["logout", "login"])
def test_32_threads_never_resurrect_after_a_logout_or_regenerate(
    tmp_path: Path, ender: str
) -> None:
    """31 requests load the session and wait; the 32nd logs it out (or regenerates it,
    as a login does); then the 31 change it, save it or regenerate it. None of them
    brings the old session back: no cookie, ``interrupted`` each, and only the
    regenerated record (if any) on disk."""
    store = FileStore(tmp_path / "s")
    writers = 31
    loaded, go = threading.Barrier(writers + 1, timeout=WAIT), threading.Event()
    h = Harness(_blocked_writers(writers, loaded, go), store=store)
    cookie = token(call_wsgi(h.mw, "/seed"))
    assert cookie
    sid = sid_of(h.mw, cookie)

    def request(i: int) -> Any:
        if i < writers:
            return call_wsgi(h.mw, f"/w/{i}", cookie=f"session={cookie}")
        loaded.wait()
        try:
            return call_wsgi(h.mw, f"/{ender}", cookie=f"session={cookie}")
        finally:
            go.set()

    results = run_threads(writers + 1, request)
    for res in results[:writers]:
        assert res.status == "200 OK"
        assert set_cookie(res) is None, "a request that lost its record set a cookie"
    assert record(h.mw, store, sid) is None
    names = h.events.names()
    assert names.count("interrupted") == writers and "store_error" not in names
    if ender == "logout":
        assert is_deletion(results[-1])
        assert names_in(store) == []
    else:
        new_sid = sid_of(h.mw, token(results[-1]))
        meta = record(h.mw, store, new_sid)
        assert meta is not None and meta["d"] == {**ORIGINAL, "user": "bob"}
        assert names_in(store) == [file_for("", h.mw.store_key(new_sid)).name]
