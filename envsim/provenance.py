"""Where artifacts come from and how they reach the disk: checksums, seeds, JSON values, atomic writes.

Every layer uses these (the render job, pairs, training runs, benchmark reports), so they live at the bottom:

- :func:`file_sha256`: the checksum recorded for every input and output file.
- :func:`derive_rng`: a generator seeded from a dataset seed and string keys (a purpose, a scene name), so
  per-scene randomness depends on (seed, scene) and on nothing else.
- :func:`to_jsonable`: dataclasses, enums, tuples, numpy values as plain JSON values; ``finite=True``
  also turns NaN and infinity into None (strict JSON).
- :func:`atomic_write`: write a file under a temporary name next to it and rename it into place
  (:func:`durable_replace`: the file is flushed to the disk before the rename and the folder after it, so
  a power cut leaves the old file or the new one, never an empty one), so a reader never sees half a file; a
  failure leaves neither the file nor the temporary behind and says, in one line, why (:func:`write_error`).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import secrets
import shutil
import zlib
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def derive_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator seeded from the dataset seed and string keys (e.g. a purpose and a scene name)."""
    spawn_key = tuple(zlib.crc32(k.encode("utf-8")) for k in keys)
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=spawn_key))


def to_jsonable(obj: Any, *, finite: bool = False) -> Any:
    """Dataclasses, enums, tuples and numpy values as plain JSON values (dict keys as strings).

    Args:
        obj: any nesting of dicts, lists, tuples, dataclasses, enums, numpy arrays and scalars.
        finite: replace NaN and infinite floats by None, so that ``json.dumps(..., allow_nan=False)`` works.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name), finite=finite) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, finite=finite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, finite=finite) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), finite=finite)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if finite and isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_error(path: str | os.PathLike, exc: OSError) -> OSError:
    """A one-line ``OSError`` (same errno, so the same subclass) saying why writing ``path`` failed: for a
    full disk ``disk full while writing <path>: <N> bytes free`` (counted after the partial file is gone),
    else ``cannot write <path>: <reason>``.
    """
    path = Path(path)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = f"{shutil.disk_usage(path.parent).free:,} bytes free"
        except OSError:
            free = "free space unknown"
        text = f"disk full while writing {path}: {free}"
    elif code == errno.EFBIG:
        text = f"file size limit reached while writing {path} (ulimit -f or the file system's largest file)"
    else:
        lines = (exc.strerror or str(exc)).strip().splitlines()
        text = f"cannot write {path}: {lines[0] if lines else type(exc).__name__}"
    return OSError(code, text) if code is not None else OSError(text)


def temporary_path(path: str | os.PathLike, *, unique: bool = False) -> Path:
    """The temporary name :func:`atomic_write` uses for ``path``: ``<name>.partial`` next to it, or, with
    ``unique`` (several processes may write the same file), ``.<name>.<pid>.<random>.partial``."""
    path = Path(path)
    if unique:
        return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    return path.with_name(path.name + ".partial")


def durable_replace(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename the finished file ``tmp`` onto ``path`` durably: ``fsync`` the file, rename it, ``fsync`` the folder.

    Raises:
        OSError: as ``os.replace`` (the caller names the file).
    """
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    try:
        dir_fd = os.open(Path(path).parent, os.O_RDONLY)
    except OSError:  # a folder that cannot be opened (some platforms): the rename itself stands
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # file systems that cannot sync a directory (some network mounts)
    finally:
        os.close(dir_fd)


def atomic_write(path: str | os.PathLike, content: bytes | str | Callable[[Path], None], *, unique: bool = False) -> None:
    """Write ``path`` through a temporary file in the same folder, renamed into place only when complete.

    Args:
        path: the file to write.
        content: bytes, text (UTF-8), or a function that writes the temporary file it is given (e.g. with
            ``torch.save``, ``np.savez`` or ``h5py``).
        unique: a temporary name of its own (see :func:`temporary_path`) for files that several processes
            may write at once (the last rename wins, each file whole).

    Raises:
        OSError: one line naming ``path`` (:func:`write_error`); ``path`` is unchanged and no temporary file is
            left. Any other exception of ``content`` also leaves nothing behind.
    """
    path = Path(path)
    tmp = temporary_path(path, unique=unique)
    try:
        if callable(content):
            content(tmp)
        else:
            with open(tmp, "xb" if unique else "wb") as f:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
        durable_replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # e.g. the folder is not writable: then the temporary file was never created
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON (sorted keys, 2-space indent, newline-terminated) atomically (:func:`atomic_write`)."""
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
