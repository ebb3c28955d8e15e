"""One process per run folder: an advisory lock held by the main process for the life of the run.

After ``kill -9`` of an ``accelerate launch`` process its workers can keep training and writing
checkpoints. A second run resuming the same folder meanwhile would interleave its checkpoints and
metrics with theirs; the lock makes it stop at once with the folder and the holder's pid named.
``fcntl.flock`` locks belong to the open file, so the kernel releases the lock when the holder
exits, however it exits: a lock file left behind by a killed run never blocks the next one.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCK_NAME = ".lock"
_HELD: dict[Path, "RunLock"] = {}  # the locks this process holds, by lock file


class RunFolderLocked(RuntimeError):
    """Another live process holds the run folder."""


class RunLock:
    """Hold ``<folder>/.lock`` (exclusive, non-blocking) until :meth:`release` or process exit."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the lock is advisory, run unlocked
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        earlier = _HELD.get(self.path.resolve())
        if earlier is not None:  # runs in one process are sequential: an earlier one that failed left it held
            earlier.release()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderLocked(
                f"run folder {str(self.path.parent)!r} is in use by process {holder} (it holds {str(self.path)!r}). "
                "Wait for it to finish or stop it (after killing an `accelerate launch`, its worker processes may "
                "still run), or pass --name to start another run."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        _HELD[self.path.resolve()] = self
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the flock
            self._fd = None
            if _HELD.get(self.path.resolve()) is self:
                del _HELD[self.path.resolve()]


__all__ = ["LOCK_NAME", "RunFolderLocked", "RunLock"]
