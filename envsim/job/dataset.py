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
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envsim.camera import check_unit_quaternions, pose_matrix
from envsim.nav.grid import NavConfig, NavGrid, build_navgrid
from envsim.nav.trajectory import TrajectoryConfig, sample_trajectories
from envsim.provenance import derive_rng, file_sha256, to_jsonable, write_json_atomic
from envsim.render.renderer import RenderConfig, Renderer, SemanticMode
from envsim.scenes.habitat import Stage, is_scene_dataset, load_stage, looks_like_habitat, read_scene_dataset
from envsim.scenes.procedural import ProceduralConfig, generate_house, write_house
from envsim.scenes.rooms import ROOM_NAMES
from envsim.scenes.scene import MESH_SUFFIXES, Scene, SceneError, UpAxis, load_scene, sidecar_path
from envsim.store.shards import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    Compression,
    ShardLayout,
    ShardWriter,
    shard_name,
)
from envsim.version import code_version

log = logging.getLogger(__name__)

PROCEDURAL_PREFIX = "procedural:"
MAX_PROCEDURAL = 10_000


class DatasetError(ValueError):
    """A render job that cannot run as asked (bad input, a folder holding another dataset)."""


@dataclass(frozen=True)
class SceneSource:
    """One scene to render.

    Attributes:
        name: unique scene name within the dataset.
        path: mesh file, or '' for a procedural house not generated yet.
        up: the asset's up axis.
        procedural: index of the procedural house, -1 for files.
        stage: the Habitat stage (frame, navmesh, annotations) when the scene comes from a Habitat
            scene dataset; ``up`` is then unused.
    """

    name: str
    path: str = ""
    up: UpAxis = UpAxis.Y
    procedural: int = -1
    stage: Stage | None = None


@dataclass(frozen=True)
class DatasetConfig:
    """Everything that decides a dataset's bytes (besides the scenes and poses).

    Attributes:
        seed: dataset seed; per-scene seeds derive from (seed, scene name).
        shard_size: views per shard file.
        depth_dtype: ``float32`` or ``float16``.
        compression: image compression in the shards.
        render: renderer settings.
        navigation: navigable-space settings.
        trajectory: agent settings (``views`` per scene).
        procedural: procedural house settings.
        light_variants: render every pose this many times under different lights (consecutive views,
            same pose, ``render.lighting.jitter`` required): extra positives for the ESS lighting
            augmentation.
    """

    seed: int = 0
    shard_size: int = 1000
    depth_dtype: str = "float32"
    compression: Compression = Compression.LZF
    render: RenderConfig = field(default_factory=RenderConfig)
    navigation: NavConfig = field(default_factory=NavConfig)
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    procedural: ProceduralConfig = field(default_factory=ProceduralConfig)
    light_variants: int = 1

    def __post_init__(self) -> None:
        if self.light_variants < 1:
            raise ValueError(f"--light-variants must be >= 1, got {self.light_variants}")
        if self.light_variants > 1 and not self.render.lighting.jitter:
            raise ValueError("--light-variants > 1 needs per-view lighting (--light-jitter)")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {self.seed}")
        if self.shard_size < 1:
            raise ValueError(f"--shard-size must be >= 1, got {self.shard_size}")
        if self.depth_dtype not in ("float32", "float16"):
            raise ValueError(f"depth dtype must be float32 or float16, got {self.depth_dtype!r}")


def resolve_sources(specs: Sequence[str], *, up: UpAxis = UpAxis.Y) -> list[SceneSource]:
    """Turn command-line scene arguments into named sources.

    Args:
        specs: mesh files, folders of mesh files (searched recursively), Habitat scene datasets (a
            ``*.scene_dataset_config.json`` or a folder in one of the Habitat download layouts, see
            :mod:`envsim.scenes.habitat`), or ``procedural:N``.
        up: up axis of the mesh files (Habitat scenes take theirs from the dataset).

    Raises:
        DatasetError: a spec names nothing usable.
    """
    sources: list[SceneSource] = []
    for spec in specs:
        if spec.startswith(PROCEDURAL_PREFIX):
            count = spec[len(PROCEDURAL_PREFIX) :]
            if not count.isdigit() or not 1 <= int(count) <= MAX_PROCEDURAL:
                raise DatasetError(f"{spec!r}: write procedural:N with N between 1 and {MAX_PROCEDURAL}")
            start = sum(1 for s in sources if s.procedural >= 0)
            sources += [SceneSource(name=f"house-{i:04d}", procedural=i) for i in range(start, start + int(count))]
            continue
        path = Path(spec)
        if is_scene_dataset(path) or (path.is_dir() and looks_like_habitat(path)):
            sources += [SceneSource(name=s.name, path=s.render_asset, stage=s) for s in read_scene_dataset(path)]
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file())
            if not files:
                raise DatasetError(f"folder {spec} holds no mesh files ({', '.join(MESH_SUFFIXES)})")
            sources += [SceneSource(name=p.stem, path=str(p), up=up) for p in files]
        elif path.is_file():
            if path.suffix.lower() not in MESH_SUFFIXES:
                raise DatasetError(f"{spec}: unsupported scene file; use {', '.join(MESH_SUFFIXES)} or procedural:N")
            sources.append(SceneSource(name=path.stem, path=str(path), up=up))
        else:
            raise DatasetError(f"scene not found: {spec}")
    if not sources:
        raise DatasetError("no scenes given")
    seen: dict[str, int] = {}
    unique = []
    for s in sources:  # keep names unique: a second 'mesh' becomes 'mesh-1'
        n = seen.get(s.name, 0)
        seen[s.name] = n + 1
        unique.append(s if n == 0 else dataclasses.replace(s, name=f"{s.name}-{n}"))
    return unique


@dataclass(frozen=True)
class PoseList:
    """Camera poses given by the user (``--poses``), rendered in every scene.

    Attributes:
        position: float64 (N, 3) camera centres, Y-up world, metres.
        rotation: float64 (N, 4) unit quaternions (w, x, y, z), camera-to-world.
        sha256: digest of the source file.
    """

    position: np.ndarray
    rotation: np.ndarray
    sha256: str


def load_poses(path: str | Path) -> PoseList:
    """Read ``[{"position": [x, y, z], "rotation": [w, x, y, z]}, ...]`` (camera-to-world, Y-up world).

    Raises:
        DatasetError: missing file, bad JSON, missing keys, non-finite values or non-unit quaternions.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"poses file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path.name} is not valid JSON: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise DatasetError(f"{path.name} must hold a non-empty JSON list of poses")
    pos, rot = [], []
    for i, item in enumerate(data):
        try:
            p = np.asarray(item["position"], dtype=np.float64)
            q = np.asarray(item["rotation"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(
                f"{path.name}: pose {i} needs \"position\": [x, y, z] and \"rotation\": [w, x, y, z]"
            ) from exc
        if p.shape != (3,) or q.shape != (4,) or not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
            raise DatasetError(f"{path.name}: pose {i} needs 3 finite position and 4 finite rotation values")
        pos.append(p)
        rot.append(q)
    rotation = np.stack(rot)
    try:
        check_unit_quaternions(rotation)
    except ValueError as exc:
        raise DatasetError(f"{path.name}: {exc}") from exc
    rotation /= np.linalg.norm(rotation, axis=1, keepdims=True)
    return PoseList(position=np.stack(pos), rotation=rotation, sha256=file_sha256(path))


@dataclass
class _SceneViews:
    """A loaded scene, its renderer and its camera path."""

    index: int
    scene: Scene
    renderer: Renderer
    position: np.ndarray
    rotation: np.ndarray
    trajectory: np.ndarray
    step: np.ndarray
    light_seed: np.ndarray


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
    _prepare_folder(out)  # refuse a folder holding something else before writing into it
    with _render_lock(out):
        created = _prepare_folder(out)  # again, now that no other run can write here
        if created:
            _clear_job_files(out)  # what a killed fresh run left (no manifest yet): start afresh
        try:
            return _render(
                list(sources), config=config, out=out, poses=poses, splits=splits, progress=progress,
                executor=executor, repair=repair,
            )
        except BaseException:
            _clear_partials(out)  # the workers are gone; their unfinished files too
            if created and not any(out.glob("shard-*.h5")):
                shutil.rmtree(out, ignore_errors=True)  # a failed fresh run leaves nothing behind
            raise


def _prepare_folder(out: Path) -> bool:
    """Check that ``out`` can take the job and create it; True when it holds no dataset yet (a fresh run).

    A folder without a manifest is accepted when empty, or when it holds only what a killed render
    leaves before its manifest exists (the lock file, generated scenes, navigation grids, partial files).
    """
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} exists and is not a folder")
    fresh = not (out / MANIFEST_NAME).is_file()
    if fresh and out.is_dir():
        entries = list(out.iterdir())
        ours = (out / LOCK_NAME).exists() and all(_is_job_file(p) for p in entries)
        if entries and not ours:
            raise DatasetError(f"--out {out} is not empty and holds no {MANIFEST_NAME}; choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    return fresh


def _render(sources, *, config, out, poses, splits, progress, executor=None, repair=False) -> dict[str, Any]:
    import functools

    from envsim.job.executor import Executor, gpus_per_task, in_process, run_tasks

    _clear_partials(out)  # unfinished files of a killed run (we hold the lock: nobody else writes here)
    scenes_dir = out / "scenes"
    resolved = []
    for src in sources:  # procedural houses go through the same loader as scans: GLB + sidecar
        if src.procedural >= 0:  # generated here, before dispatch: every worker reads the same files
            glb = scenes_dir / f"{src.name}.glb"
            if not (glb.is_file() and sidecar_path(glb).is_file()):  # a kill can fall between the two files
                scenes_dir.mkdir(exist_ok=True)
                house = generate_house(rng=derive_rng(config.seed, "procedural", src.name), config=config.procedural)
                write_house(house, glb)
            src = dataclasses.replace(src, path=str(glb))
        resolved.append(src)
    inputs = [_input_record(s, out) for s in resolved]
    per_scene = len(poses.position) if poses is not None else config.trajectory.views
    counts = [per_scene * config.light_variants for _ in resolved]
    total = int(sum(counts))
    n_shards = -(-total // config.shard_size)
    intr = config.render.intrinsics
    job = {
        "config": to_jsonable(config),
        "seed": config.seed,
        "inputs": inputs,
        "poses_sha256": poses.sha256 if poses is not None else None,
        "splits": {k: list(v) for k, v in (splits or {}).items()},
    }
    fingerprint = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()
    manifest_path = out / MANIFEST_NAME
    done: dict[str, dict] = {}
    old = None
    if manifest_path.is_file():
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
            _delete_bad_shards(out)
        for entry in old.get("shards", []):
            path = out / entry["file"]
            if path.is_file() and file_sha256(path) == entry["sha256"]:
                done[entry["file"]] = entry
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
    gpus = gpus_per_task(config.render)
    if executor is not None and executor.kind is Executor.LOCAL and executor.workers is None:
        views = [shard_job.shard_views(k) for k in missing]
        executor = dataclasses.replace(executor, workers=_auto_workers(config, shard_views=views, gpus=gpus))
    here = in_process(executor, len(missing))
    if here:  # per-batch progress, and one scene cache across shards
        task = functools.partial(render_shard, progress=progress, cache=[])
    else:
        task = render_shard

    def shard_done(k: int, entry: dict[str, Any]) -> None:  # in any order; the manifest lists shards by index
        entries[k] = entry
        manifest["shards"] = [entries[i] for i in sorted(entries)]
        write_json_atomic(manifest_path, manifest)
        if progress is not None and not here:
            progress(entry["samples"])

    run_tasks(task, shard_job, missing, config=executor, on_done=shard_done, gpus=gpus)
    manifest["complete"] = True
    write_json_atomic(manifest_path, manifest)
    return manifest


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
    return record


def _write_shard(path, lo, hi, starts, sources, config, poses, attrs, current, out, progress) -> None:
    """Render global views [lo, hi) into one shard; HDF5 writing overlaps the next batch's rendering."""
    from concurrent.futures import ThreadPoolExecutor

    cfg = config.render
    with_semantic = cfg.semantic is not SemanticMode.NONE
    writer = None
    pending = None
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer") as pool:
            for s_idx in range(len(sources)):
                a, b = max(lo, starts[s_idx]), min(hi, starts[s_idx + 1])
                if a >= b:
                    continue
                views = _scene_views(s_idx, sources[s_idx], config, poses, current, out)
                for v0 in range(a - starts[s_idx], b - starts[s_idx], cfg.batch_views):
                    v1 = min(v0 + cfg.batch_views, b - starts[s_idx])
                    sl = slice(v0, v1)
                    batch = views.renderer.render(views.position[sl], views.rotation[sl], views.light_seed[sl])
                    if writer is None:
                        layout = ShardLayout(
                            samples=hi - lo, height=cfg.height, width=cfg.width, depth_dtype=config.depth_dtype,
                            semantic_dtype=batch.semantic.dtype.name if with_semantic else None,
                            compression=config.compression,
                        )
                        writer = ShardWriter(path, layout=layout, attrs=dict(attrs, first_view=lo))
                    n = v1 - v0
                    arrays = dict(
                        rgb=batch.rgb,
                        depth=batch.depth.astype(config.depth_dtype, copy=False),
                        pose=pose_matrix(views.position[sl], views.rotation[sl]).astype(np.float32),
                        position=views.position[sl].astype(np.float32),
                        rotation=views.rotation[sl].astype(np.float32),
                        light=batch.light,
                        scene=np.full(n, views.index, np.int32),
                        trajectory=views.trajectory[sl],
                        step=views.step[sl],
                        room=batch.room,
                    )
                    if with_semantic:
                        arrays["semantic"] = batch.semantic
                    if pending is not None:
                        pending.result()  # at most one batch in flight: bounded memory, errors surface early
                    pending = pool.submit(writer.write, **arrays)
                    if progress is not None:
                        progress(n)
            if pending is not None:
                pending.result()
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


def _scene_views(index, src, config, poses, current, out) -> _SceneViews:
    if current and current[0].index == index:
        return current[0]
    current.clear()
    scene = load_stage(src.stage) if src.stage is not None else load_scene(src.path, up=src.up, name=src.name)
    log.info("scene %s: %d triangles, %d rooms", scene.name, scene.n_triangles, len(scene.rooms))
    if poses is not None:
        position, rotation = poses.position, poses.rotation
        trajectory = np.zeros(len(position), np.int32)
        step = np.arange(len(position), dtype=np.int32)
    else:
        try:
            if src.stage is not None and src.stage.navmesh:  # the dataset's own navmesh, as Habitat uses it
                from envsim.nav.navmesh import navmesh_to_grid, read_navmesh

                nav = navmesh_to_grid(read_navmesh(src.stage.navmesh), cell_size=config.navigation.cell_size)
            else:
                nav = build_navgrid(scene.vertices, scene.faces, config=config.navigation)
        except ValueError as exc:
            raise DatasetError(f"scene {scene.name}: {exc}") from exc
        nav_dir = out / "nav"
        nav_dir.mkdir(exist_ok=True)
        nav_path = nav_dir / f"{safe_name(scene.name)}.npz"
        if not nav_path.is_file():
            nav.save(nav_path)
        traj = sample_trajectories(nav, config=config.trajectory, rng=derive_rng(config.seed, "trajectory", scene.name),
                                   regions=room_regions(scene, nav))
        position, rotation = traj.position, traj.rotation
        trajectory, step = traj.trajectory.astype(np.int32), traj.step.astype(np.int32)
    if config.light_variants > 1:  # each pose rendered under several lights, consecutively
        k = config.light_variants
        position, rotation = np.repeat(position, k, axis=0), np.repeat(rotation, k, axis=0)
        trajectory, step = np.repeat(trajectory, k), np.repeat(step, k)
    light_seed = derive_rng(config.seed, "light", scene.name).integers(0, 2**62, size=len(position))
    views = _SceneViews(
        index=index, scene=scene, renderer=Renderer(scene, config.render),
        position=np.asarray(position, np.float64), rotation=np.asarray(rotation, np.float64),
        trajectory=trajectory, step=step, light_seed=light_seed,
    )
    current.append(views)
    return views


def room_regions(scene, nav: NavGrid) -> np.ndarray | None:
    """The room polygon (index into ``scene.rooms``) of every navigable cell, -1 where none; None without rooms."""
    if not scene.rooms:
        return None
    rows, cols = np.nonzero(nav.walkable)
    regions = np.full(nav.walkable.shape, -1, np.int64)
    regions[rows, cols] = scene.room_polygon_at(nav.to_world(rows, cols))
    return regions


def safe_name(name: str) -> str:
    """``name`` with every run of characters other than letters, digits, ``._-`` replaced by ``_`` (a file name)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def nav_path(folder: str | Path, scene_name: str) -> Path:
    """Where the render job saved a scene's navigable grid."""
    return Path(folder) / "nav" / f"{safe_name(scene_name)}.npz"


def load_nav(folder: str | Path, scene_name: str) -> NavGrid | None:
    """The saved navigable grid of a scene, or None (e.g. a ``--poses`` job)."""
    p = nav_path(folder, scene_name)
    return NavGrid.load(p) if p.is_file() else None


__all__ = [
    "DatasetConfig",
    "DatasetError",
    "PoseList",
    "SceneError",
    "SceneSource",
    "derive_rng",
    "load_nav",
    "load_poses",
    "render_dataset",
    "resolve_sources",
]


# ------------------------------------------------------------------------ shards as tasks, and the lock

LOCK_NAME = ".ess-render.lock"
_PARTIAL_GLOBS = ("shard-*.h5.partial", MANIFEST_NAME + ".partial", "nav/.*.partial", "scenes/.*.partial")


@dataclass(frozen=True)
class ShardJob:
    """What a worker needs to render any shard of a dataset (small: pickled with every task).

    Attributes:
        sources: the scenes in order, each with its file (procedural houses already generated).
        config: the job's settings.
        poses: the ``--poses`` list, or None to walk trajectories.
        attrs: file attributes of every shard (``first_view`` is added per shard).
        out: the output folder; with Ray, on a filesystem every node sees at the same path.
        starts: (S + 1,) first global view of each scene, then the total number of views.
        fingerprint: the manifest's job fingerprint (keys a worker's scene cache).
    """

    sources: tuple[SceneSource, ...]
    config: DatasetConfig
    poses: PoseList | None
    attrs: dict[str, Any]
    out: str
    starts: tuple[int, ...]
    fingerprint: str

    def shard_views(self, k: int) -> tuple[int, int]:
        """Global views [lo, hi) of shard ``k``: fixed by the inputs, whoever renders it."""
        size = self.config.shard_size
        return k * size, min(self.starts[-1], (k + 1) * size)


def render_shard(
    job: ShardJob, k: int, *, progress: Callable[[int], None] | None = None, cache: list | None = None
) -> dict[str, Any]:
    """Render shard ``k`` of ``job`` into ``job.out`` (written under a temporary name, renamed when whole).

    Args:
        job: the job.
        k: shard index.
        progress: called with the number of views finished after each batch.
        cache: the loaded scene carried from one shard to the next; None = this process's own cache.

    Returns:
        The shard's manifest entry: file, samples, first_view, sha256.
    """
    lo, hi = job.shard_views(k)
    out = Path(job.out)
    name = shard_name(k)
    if cache is None:
        cache = _process_cache(job.fingerprint)
    _write_shard(out / name, lo, hi, job.starts, list(job.sources), job.config, job.poses, job.attrs, cache, out, progress)
    return {"file": name, "samples": hi - lo, "first_view": lo, "sha256": file_sha256(out / name)}


_WORKER_SCENE: dict[str, list] = {}  # per worker process: job fingerprint -> the last scene it loaded


def _process_cache(fingerprint: str) -> list:
    if fingerprint not in _WORKER_SCENE:
        _WORKER_SCENE.clear()  # one job at a time: drop another job's scene
        _WORKER_SCENE[fingerprint] = []
    return _WORKER_SCENE[fingerprint]


class _render_lock:  # noqa: N801 - used like a function: ``with _render_lock(out):``
    """Hold ``out/.ess-render.lock`` (``flock``, released by the OS however the process ends) for a job.

    The file says which process holds it; a finished job removes it.

    Raises:
        DatasetError: another process holds it.
    """

    def __init__(self, out: Path):
        self.out = out
        self.path = out / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> "_render_lock":
        import fcntl
        import os
        import socket

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
                raise DatasetError(
                    f"another ess render ({who}) is writing into {self.out}; wait for it or choose another --out"
                ) from None
            except OSError as exc:  # a filesystem without locks (some NFS mounts): run unguarded, say so
                log.warning("cannot lock %s (%s); make sure no other ess render writes into %s", self.path, exc, self.out)
                break
            if _same_file(fd, self.path):
                break
            os.close(fd)  # a run that just finished removed the file we locked: lock the new one
        self.fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        return self

    def __exit__(self, *exc) -> None:
        import os

        if self.fd is None:
            return
        try:
            if _same_file(self.fd, self.path):
                self.path.unlink(missing_ok=True)  # a finished dataset holds no lock file
        finally:
            os.close(self.fd)
            self.fd = None


def _same_file(fd: int, path: Path) -> bool:
    import os

    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _is_job_file(p: Path) -> bool:
    """Whether a folder entry is one a render job writes before its manifest exists."""
    return p.name in (LOCK_NAME, "scenes", "nav", MANIFEST_NAME + ".partial") or (
        p.name.startswith("shard-") and p.name.endswith(".h5.partial")
    )


def _clear_job_files(out: Path) -> None:
    """Remove what a render killed before writing its manifest left in ``out`` (not the lock)."""
    for p in out.iterdir():
        if p.name == LOCK_NAME or not _is_job_file(p):
            continue
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def _clear_partials(out: Path) -> None:
    """Remove unfinished files (of a killed run, or of workers just stopped)."""
    for pattern in _PARTIAL_GLOBS:
        for p in out.glob(pattern):
            p.unlink(missing_ok=True)


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


def _delete_bad_shards(out: Path) -> dict[str, list[str]]:
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
