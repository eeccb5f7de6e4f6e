"""Per-slide lock files, so two scans of the same output folder never write the same slide.

A lock is a small JSON file (owner pid, host, run id, time, and the pids of the
owner's worker processes) created with ``O_CREAT | O_EXCL``, which is atomic on
local disks and on NFS v3+. The owner touches its locks every :data:`HEARTBEAT_S`; a
lock is stale, and is taken over, when its owner and all its workers are dead
processes on this host (a worker outlives a killed coordinator by a moment, and must
not be writing while another run starts the slide afresh), or when it has not been
touched for ``stale_after`` seconds (an owner on another node that died). Taking
over is itself guarded by a second exclusive file, so two runs never both break the
same lock.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

#: Seconds between touches of the locks a run holds.
HEARTBEAT_S = 30.0
#: A lock untouched this long belongs to a run that is gone.
STALE_AFTER_S = 600.0
#: A take-over guard older than this was left by a run killed mid take-over.
_GUARD_STALE_S = 30.0


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock, as written in the lock file."""

    pid: int
    host: str
    run: str
    since: float
    workers: tuple[int, ...] = ()

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        workers = f" (workers {', '.join(map(str, self.workers))})" if self.workers else ""
        return f"pid {self.pid}{workers} on {self.host} since {when}"


def pid_alive(pid: int) -> bool:
    """Return True while a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def read_owner(path: Path) -> LockOwner | None:
    """Return the owner written in a lock file, or None when it is gone or unreadable."""
    try:
        data = json.loads(path.read_text())
        return LockOwner(int(data["pid"]), str(data["host"]), str(data["run"]), float(data["since"]),
                         tuple(int(p) for p in data.get("workers", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class LockManager:
    """Take, hold (heartbeat) and release the lock files of one run in ``folder``."""

    def __init__(self, folder: str | os.PathLike, *, stale_after: float = STALE_AFTER_S,
                 heartbeat: float = HEARTBEAT_S) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stale_after = stale_after
        self.owner = LockOwner(os.getpid(), socket.gethostname(), uuid.uuid4().hex[:12], time.time())
        self.workers: tuple[int, ...] = ()
        self._held: dict[str, Path] = {}
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, args=(heartbeat,), name="scan-lock-heartbeat",
                                      daemon=True)
        self._beat.start()

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.lock"

    def acquire(self, key: str) -> LockOwner | None:
        """Take the lock ``key``; return None on success, else the live owner that holds it."""
        path = self.path(key)
        for _ in range(3):
            if self._create(path):
                with self._mutex:
                    self._held[key] = path
                return None
            owner = read_owner(path)
            if not self.is_stale(path, owner):
                return owner or LockOwner(-1, "?", "?", time.time())
            self._break(path, owner)
        return read_owner(path) or LockOwner(-1, "?", "?", time.time())

    def _create(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(self._body(time.time()))
        return True

    def _body(self, since: float) -> str:
        return json.dumps({"pid": self.owner.pid, "host": self.owner.host, "run": self.owner.run,
                           "since": since, "workers": list(self.workers)})

    def set_workers(self, pids: list[int]) -> None:
        """Record the pids of this run's worker processes in every lock, now and from now on."""
        self.workers = tuple(pids)
        with self._mutex:
            held = list(self._held.values())
        for path in held:
            owner = read_owner(path)
            if owner is not None and owner.run == self.owner.run:
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(self._body(owner.since))
                os.replace(tmp, path)

    def is_stale(self, path: Path, owner: LockOwner | None) -> bool:
        """Whether a lock's owner is gone: a dead pid on this host, or no heartbeat for too long."""
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return True
        if owner is None:  # being written right now, or garbage: judge by age alone
            return age > self.stale_after
        if owner.host == self.owner.host and not any(map(pid_alive, (owner.pid, *owner.workers))):
            return True
        return age > self.stale_after

    def _break(self, path: Path, seen: LockOwner | None) -> None:
        """Remove a stale lock, unless another run broke and re-took it meanwhile."""
        guard = path.with_name(path.name + ".break")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                if time.time() - guard.stat().st_mtime > _GUARD_STALE_S:
                    guard.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            time.sleep(0.05)
            return
        os.close(fd)
        try:
            if read_owner(path) == seen and self.is_stale(path, seen):
                path.unlink(missing_ok=True)
        finally:
            guard.unlink(missing_ok=True)

    def release(self, key: str) -> None:
        """Give the lock ``key`` back (only if this run still owns it)."""
        with self._mutex:
            path = self._held.pop(key, None)
        if path is not None:
            owner = read_owner(path)
            if owner is not None and owner.run == self.owner.run:
                path.unlink(missing_ok=True)

    def wait_acquire(self, key: str, poll: float = 0.05) -> None:
        """Take the lock ``key``, waiting while another run holds it (for short critical sections)."""
        while self.acquire(key) is not None:
            time.sleep(poll)

    def held(self) -> list[str]:
        with self._mutex:
            return list(self._held)

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._mutex:
                paths = list(self._held.values())
            for p in paths:
                try:
                    os.utime(p)
                except FileNotFoundError:
                    pass

    def close(self) -> None:
        """Release every lock still held and stop the heartbeat."""
        self._stop.set()
        for key in self.held():
            self.release(key)
