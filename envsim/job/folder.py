"""The job's folder: the lock that keeps one render per folder, what a killed run leaves behind, checks
before writing, and deleting the shards ``--repair`` renders again."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from envsim.job.config import DatasetError
from envsim.lock import FolderLock, LockedError
from envsim.store.shards import MANIFEST_NAME

log = logging.getLogger(__name__)

LOCK_NAME = ".ess-render.lock"
PARTIAL_GLOBS = ("shard-*.h5.partial", MANIFEST_NAME + ".partial", "nav/.*.partial", "scenes/.*.partial")


class RenderLock(FolderLock):
    """Hold ``out/.ess-render.lock`` for a render job (:class:`envsim.lock.FolderLock`).

    Raises:
        DatasetError: another process holds it.
    """

    def __init__(self, out: Path):
        super().__init__(out, LOCK_NAME, what="ess render", advice="wait for it or choose another --out")

    def __enter__(self) -> "RenderLock":
        try:
            return super().__enter__()
        except LockedError as exc:
            raise DatasetError(str(exc)) from None


def is_job_file(p: Path) -> bool:
    """Whether a folder entry is one a render job writes before its manifest exists."""
    return p.name in (LOCK_NAME, "scenes", "nav", MANIFEST_NAME + ".partial") or (
        p.name.startswith("shard-") and p.name.endswith(".h5.partial")
    )


def clear_job_files(out: Path) -> None:
    """Remove what a render killed before writing its manifest left in ``out`` (not the lock)."""
    for p in out.iterdir():
        if p.name == LOCK_NAME or not is_job_file(p):
            continue
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def clear_partials(out: Path) -> None:
    """Remove unfinished files (of a killed run, or of workers just stopped)."""
    for pattern in PARTIAL_GLOBS:
        for p in out.glob(pattern):
            p.unlink(missing_ok=True)


def prepare_folder(out: Path) -> bool:
    """Check that ``out`` can take the job and create it; True when it holds no dataset yet (a fresh run).

    A folder without a manifest is accepted when empty, or when it holds only what a killed render
    leaves before its manifest exists (the lock file, generated scenes, navigation grids, partial files).
    """
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} exists and is not a folder")
    fresh = not (out / MANIFEST_NAME).is_file()
    if fresh and out.is_dir():
        entries = list(out.iterdir())
        ours = (out / LOCK_NAME).exists() and all(is_job_file(p) for p in entries)
        if entries and not ours:
            raise DatasetError(f"--out {out} is not empty and holds no {MANIFEST_NAME}; choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    return fresh


def delete_bad_shards(out: Path) -> dict[str, list[str]]:
    """Delete the shards of ``out`` that ``ess verify`` finds bad (they render again); bad file -> problems."""
    from envsim.store.verify import verify_dataset

    try:
        bad = {name: problems for name, problems in verify_dataset(out).items() if name}
    except ValueError as exc:
        raise DatasetError(f"--repair: {exc}") from exc
    for name, problems in sorted(bad.items()):
        log.warning("repair: %s: %s; rendering it again", name, "; ".join(problems))
        if Path(name).name == name:
            (out / name).unlink(missing_ok=True)
    if not bad:
        log.info("repair: every finished shard passed verification")
    return bad
