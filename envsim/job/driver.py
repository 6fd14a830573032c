"""The render job: scenes -> navigable space -> trajectories -> RGB-D views -> shards + manifest.

Shard ``k`` holds global views ``[k * shard_size, (k + 1) * shard_size)`` of the scenes in order, so the
assignment of views to shards is fixed by the inputs alone. A shard is written under a temporary name and
renamed when complete, and the manifest is rewritten after every shard: rerunning an interrupted job
renders the missing shards only and gives the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envsim.job.config import DatasetConfig, DatasetError, PoseList, SceneSource
from envsim.job.folder import RenderLock, clear_job_files, clear_partials, delete_bad_shards, prepare_folder
from envsim.job.worker import ShardJob, render_shard
from envsim.provenance import derive_rng, file_sha256, to_jsonable, write_json_atomic
from envsim.scenes.compose import manifest_record
from envsim.scenes.load import sidecar_path
from envsim.scenes.procedural import generate_house, write_house
from envsim.scenes.rooms import ROOM_NAMES
from envsim.store.shards import MANIFEST_FORMAT, MANIFEST_NAME, shard_name
from envsim.version import code_version

log = logging.getLogger(__name__)


def render_dataset(
    sources: Sequence[SceneSource],
    *,
    config: DatasetConfig,
    out: str | Path,
    poses: PoseList | None = None,
    splits: dict[str, Sequence[str]] | None = None,
    progress: Callable[[int], None] | None = None,
    executor: Any = None,
    repair: bool = False,
) -> dict[str, Any]:
    """Render a dataset into ``out`` (shards + manifest); resume when ``out`` holds the same job.

    Args:
        sources: scenes to render, in order (see :func:`resolve_sources`).
        config: the job's settings.
        out: output folder (created when missing).
        poses: render exactly these poses in every scene instead of walking trajectories.
        splits: optional split name -> scene names (from a recipe), recorded in the manifest.
        progress: called with the number of views finished after each batch (each shard with worker
            processes or Ray), and once with the number already on disk when resuming.
        executor: an :class:`envsim.job.executor.ExecutorConfig` saying where shards render (worker processes,
            Ray); None = in this process. The bytes written do not depend on it, on the number of workers
            or on the order shards finish in.
        repair: check the shards of the dataset in ``out`` as ``ess verify`` does, delete the bad ones and
            render only those again.

    Returns:
        The final manifest.

    Raises:
        DatasetError: bad input, ``out`` holds something else, another render is writing into ``out``, or
            ``repair`` without a dataset in ``out``; no partial shard is left behind.
        envsim.job.executor.ExecutorError: Ray is missing or unreachable, or a worker process died.
    """
    out = Path(out)
    if repair and not (out / MANIFEST_NAME).is_file():
        raise DatasetError(f"--repair: {out} holds no {MANIFEST_NAME}; there is no dataset to repair (render without --repair)")
    prepare_folder(out)  # refuse a folder holding something else before writing into it
    with RenderLock(out):
        created = prepare_folder(out)  # again, now that no other run can write here
        if created:
            clear_job_files(out)  # what a killed fresh run left (no manifest yet): start afresh
        try:
            return _render(
                list(sources), config=config, out=out, poses=poses, splits=splits, progress=progress,
                executor=executor, repair=repair,
            )
        except BaseException:
            clear_partials(out)  # the workers are gone; their unfinished files too
            if created and not any(out.glob("shard-*.h5")):
                shutil.rmtree(out, ignore_errors=True)  # a failed fresh run leaves nothing behind
            raise


def _render(sources, *, config, out, poses, splits, progress, executor=None, repair=False) -> dict[str, Any]:
    """The job under the lock: generate houses, resume or start the manifest, render the missing shards."""
    clear_partials(out)  # unfinished files of a killed run (we hold the lock: nobody else writes here)
    resolved = _generated(sources, config, out)
    inputs = [_input_record(s, out) for s in resolved]
    per_scene = len(poses.position) if poses is not None else config.trajectory.views
    counts = [per_scene * config.light_variants for _ in resolved]
    job = {
        "config": to_jsonable(config),
        "seed": config.seed,
        "inputs": inputs,
        "poses_sha256": poses.sha256 if poses is not None else None,
        "splits": {k: list(v) for k, v in (splits or {}).items()},
    }
    fingerprint = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()
    old, done = _resume(out, job, fingerprint, repair)
    total = int(sum(counts))
    n_shards = -(-total // config.shard_size)
    intr = config.render.intrinsics
    entries = {k: done[shard_name(k)] for k in range(n_shards) if shard_name(k) in done}
    manifest = {
        "format": MANIFEST_FORMAT,
        "fingerprint": fingerprint,
        "code_version": code_version(),
        **job,
        "K": intr.K.tolist(),
        "width": intr.width,
        "height": intr.height,
        "room_names": list(ROOM_NAMES),
        "scene_names": [s.name for s in resolved],
        "scenes": [dict(inp, views=c) for inp, c in zip(inputs, counts)],
        "total_samples": total,
        "shards": [entries[k] for k in sorted(entries)],
        "complete": False,
    }
    missing = [k for k in range(n_shards) if k not in entries]
    finished = sum(e["samples"] for e in entries.values())
    if progress is not None and finished:
        progress(finished)
    manifest_path = out / MANIFEST_NAME
    if not missing:  # nothing to render: leave a finished manifest untouched
        manifest["complete"] = True
        if old is None or json.loads(json.dumps(manifest)) != old:
            write_json_atomic(manifest_path, manifest)
        return manifest
    write_json_atomic(manifest_path, manifest)
    attrs = {
        "K": intr.K,
        "room_names": list(ROOM_NAMES),
        "scene_names": [s.name for s in resolved],
        "seed": config.seed,
        "code_version": code_version(),
        "config": json.dumps(job, sort_keys=True),
        "semantic_kind": config.render.semantic.value,
    }
    shard_job = ShardJob(
        sources=tuple(resolved), config=config, poses=poses, attrs=attrs, out=str(out),
        starts=tuple(int(x) for x in np.concatenate([[0], np.cumsum(counts)])), fingerprint=fingerprint,
    )
    _dispatch(shard_job, missing, manifest, entries, out=out, executor=executor, progress=progress)
    manifest["complete"] = True
    write_json_atomic(manifest_path, manifest)
    return manifest


def _generated(sources: Sequence[SceneSource], config: DatasetConfig, out: Path) -> list[SceneSource]:
    """The sources with every procedural house generated into ``out/scenes`` (GLB + sidecar, read back
    through the same loader as a scan), before dispatch: every worker reads the same files."""
    scenes_dir = out / "scenes"
    resolved = []
    for src in sources:
        if src.procedural >= 0:
            glb = scenes_dir / f"{src.name}.glb"
            if not (glb.is_file() and sidecar_path(glb).is_file()):  # a kill can fall between the two files
                scenes_dir.mkdir(exist_ok=True)
                house = generate_house(rng=derive_rng(config.seed, "procedural", src.name), config=config.procedural)
                write_house(house, glb)
            src = dataclasses.replace(src, path=str(glb))
        resolved.append(src)
    return resolved


def _resume(out: Path, job: dict[str, Any], fingerprint: str, repair: bool) -> tuple[dict | None, dict[str, dict]]:
    """The manifest already in ``out`` (None for a fresh job) and its shards that are whole (file -> entry).

    Raises:
        DatasetError: the manifest is unreadable or describes another job.
    """
    manifest_path = out / MANIFEST_NAME
    if not manifest_path.is_file():
        return None, {}
    try:
        old = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"--out {out}: {MANIFEST_NAME} is unreadable ({exc}); choose another folder") from exc
    if old.get("format") != MANIFEST_FORMAT or old.get("fingerprint") != fingerprint:
        diff = [k for k in ("config", "inputs", "poses_sha256", "splits") if old.get(k) != job[k]]
        raise DatasetError(
            f"--out {out} holds a different dataset ({', '.join(diff) or 'format'} differ); "
            "choose another folder or delete it"
        )
    if old.get("code_version") != code_version():
        log.warning("resuming a dataset started by code version %s with %s", old.get("code_version"), code_version())
    if repair:
        delete_bad_shards(out)
    done = {}
    for entry in old.get("shards", []):
        path = out / entry["file"]
        if path.is_file() and file_sha256(path) == entry["sha256"]:
            done[entry["file"]] = entry
    return old, done


def _dispatch(shard_job: ShardJob, missing: list[int], manifest: dict[str, Any], entries: dict[int, dict], *,
              out: Path, executor: Any, progress: Callable[[int], None] | None) -> None:
    """Render the ``missing`` shards here, in worker processes or on Ray; the manifest is rewritten as each
    finishes (in any order: it lists shards by index)."""
    import functools

    from envsim.job.executor import Executor, gpus_per_task, in_process, run_tasks

    config = shard_job.config
    gpus = gpus_per_task(config.render)
    if executor is not None and executor.kind is Executor.LOCAL and executor.workers is None:
        views = [shard_job.shard_views(k) for k in missing]
        executor = dataclasses.replace(executor, workers=_auto_workers(config, shard_views=views, gpus=gpus))
    here = in_process(executor, len(missing))
    if here:  # per-batch progress, and one scene cache across shards
        task = functools.partial(render_shard, progress=progress, cache=[])
    else:
        task = render_shard

    def shard_done(k: int, entry: dict[str, Any]) -> None:
        entries[k] = entry
        manifest["shards"] = [entries[i] for i in sorted(entries)]
        write_json_atomic(out / MANIFEST_NAME, manifest)
        if progress is not None and not here:
            progress(entry["samples"])

    run_tasks(task, shard_job, missing, config=executor, on_done=shard_done, gpus=gpus)


def _input_record(src: SceneSource, out: Path) -> dict[str, Any]:
    path = Path(src.path)
    try:
        shown = str(path.relative_to(out))
    except ValueError:
        shown = str(path)
    record = {
        "name": src.name,
        "source": shown,
        "procedural": src.procedural,
        "up": src.up.value,
        "sha256": file_sha256(path),
    }
    if src.stage is not None:  # the frame and every annotation file decide the bytes too
        st = src.stage
        record["up"] = "stage"
        record["stage"] = {
            "family": st.family, "up": list(st.up), "front": list(st.front), "scale": list(st.scale),
            "files": {
                role: {"path": f, "sha256": file_sha256(f)}
                for role, f in (("semantic_asset", st.semantic_asset), ("navmesh", st.navmesh), ("descriptor", st.descriptor))
                if f
            },
        }
        if st.shader_type:
            record["stage"]["shader_type"] = st.shader_type
        if st.composition is not None:  # composed objects: their semantic ids' categories and files' checksum
            record["stage"]["objects"] = manifest_record(st.composition)
    return record


# Starting a worker process costs seconds (importing Open3D, loading and walking a scene), and one process
# already keeps every core busy while ray casting: give each worker at least this many rays to cast.
RAYS_PER_WORKER = 50_000_000


def _auto_workers(config: DatasetConfig, *, shard_views: list[tuple[int, int]], gpus: float) -> int:
    """Local worker processes when none are asked for: one per core, at most one per missing shard and per
    ``RAYS_PER_WORKER`` rays to cast, and one (this process) for a GPU backend."""
    import os

    if gpus:
        return 1
    rays = sum(hi - lo for lo, hi in shard_views) * config.render.width * config.render.height
    return max(1, min(os.cpu_count() or 1, len(shard_views), rays // RAYS_PER_WORKER))
