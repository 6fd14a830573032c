"""One writer per folder: an advisory ``flock`` on a lock file, released by the OS however the process ends.

``ess render`` and ``ess pair`` hold one while they write into a dataset folder, so a second command started
on the same folder is refused in one line instead of colliding on the same temporary files.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from pathlib import Path

log = logging.getLogger(__name__)


class LockedError(ValueError):
    """Another process holds the lock (a user error: wait for it or use another folder)."""


class FolderLock:
    """Hold ``folder/<name>`` for the duration of a ``with`` block.

    The file says which process holds it (pid and host); leaving the block removes it. On a filesystem without
    locks (some NFS mounts) the work runs unguarded with a warning.

    Args:
        folder: the folder written into (must exist).
        name: the lock file's name, e.g. ``.ess-render.lock``.
        what: the command, for the refusal (``"ess render"``).
        advice: the end of the refusal (how to proceed).

    Raises:
        LockedError: another process holds it (on entering).
    """

    def __init__(self, folder: str | os.PathLike, name: str, *, what: str, advice: str) -> None:
        self.folder, self.path = Path(folder), Path(folder) / name
        self.what, self.advice = what, advice
        self.fd: int | None = None

    def __enter__(self) -> "FolderLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    holder = json.loads(os.read(fd, 4096) or b"{}")
                    who = f"pid {holder['pid']} on {holder['host']}"
                except (ValueError, KeyError, TypeError):
                    who = "starting up"
                os.close(fd)
                raise LockedError(f"another {self.what} ({who}) is writing into {self.folder}; {self.advice}") from None
            except OSError as exc:  # a filesystem without locks: run unguarded, say so
                log.warning("cannot lock %s (%s); make sure no other %s writes into %s", self.path, exc, self.what,
                            self.folder)
                break
            if same_file(fd, self.path):
                break
            os.close(fd)  # a run that just finished removed the file we locked: lock the new one
        self.fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        try:
            if same_file(self.fd, self.path):
                self.path.unlink(missing_ok=True)  # a finished job leaves no lock file
        finally:
            os.close(self.fd)
            self.fd = None


def same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path`` (not removed or replaced)."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
