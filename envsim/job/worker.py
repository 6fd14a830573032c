"""Rendering one shard: load its scenes, walk or read their camera poses, render batches and write them,
HDF5 writing overlapping the next batch. :class:`ShardJob` is all a worker process or Ray task needs."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envsim.camera import pose_matrix
from envsim.job.config import DatasetConfig, DatasetError, PoseList, SceneSource
from envsim.nav.build import build_navgrid
from envsim.nav.grid import NavGrid
from envsim.nav.trajectory import sample_trajectories
from envsim.provenance import derive_rng, file_sha256
from envsim.render.raycast import make_ray_caster
from envsim.render.renderer import Renderer, SemanticMode
from envsim.scenes.load import load_scene
from envsim.scenes.scene import Scene
from envsim.scenes.stage import load_stage
from envsim.store.shards import ShardLayout, ShardWriter, shard_name

log = logging.getLogger(__name__)


@dataclass
class SceneViews:
    """A loaded scene, its renderer and its camera path."""

    index: int
    scene: Scene
    renderer: Renderer
    position: np.ndarray
    rotation: np.ndarray
    trajectory: np.ndarray
    step: np.ndarray
    light_seed: np.ndarray


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
    write_shard(out / name, lo, hi, job.starts, list(job.sources), job.config, job.poses, job.attrs, cache, out, progress)
    return {"file": name, "samples": hi - lo, "first_view": lo, "sha256": file_sha256(out / name)}


_WORKER_SCENE: dict[str, list] = {}  # per worker process: job fingerprint -> the last scene it loaded


def _process_cache(fingerprint: str) -> list:
    if fingerprint not in _WORKER_SCENE:
        _WORKER_SCENE.clear()  # one job at a time: drop another job's scene
        _WORKER_SCENE[fingerprint] = []
    return _WORKER_SCENE[fingerprint]


def write_shard(path, lo, hi, starts, sources, config, poses, attrs, current, out, progress) -> None:
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
                views = scene_views(s_idx, sources[s_idx], config, poses, current, out)
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


def scene_views(index, src, config, poses, current, out) -> SceneViews:
    if current and current[0].index == index:
        return current[0]
    current.clear()
    scene = load_stage(src.stage) if src.stage is not None else load_scene(src.path, up=src.up, name=src.name)
    log.info("scene %s: %d triangles, %d rooms", scene.name, scene.n_triangles, len(scene.rooms))
    # One BVH for navigation and rendering: with --backend mitsuba the floors are cast without Open3D.
    caster = make_ray_caster(config.render.backend.value, scene.vertices, scene.faces)
    if poses is not None:
        position, rotation = poses.position, poses.rotation
        trajectory = np.zeros(len(position), np.int32)
        step = np.arange(len(position), dtype=np.int32)
    else:
        navmesh = None
        try:
            if src.stage is not None and src.stage.navmesh:  # the dataset's own navmesh, as Habitat uses it
                from envsim.nav.navmesh import navmesh_to_grid, read_navmesh

                navmesh = read_navmesh(src.stage.navmesh)
                nav = navmesh_to_grid(navmesh, cell_size=config.navigation.cell_size)
            else:
                nav = build_navgrid(scene.vertices, scene.faces, config=config.navigation, caster=caster)
        except ValueError as exc:
            raise DatasetError(f"scene {scene.name}: {exc}") from exc
        nav_dir = out / "nav"
        nav_dir.mkdir(exist_ok=True)
        nav_path = nav_dir / f"{safe_name(scene.name)}.npz"
        if not nav_path.is_file():
            nav.save(nav_path)
        traj = sample_trajectories(nav, config=config.trajectory, rng=derive_rng(config.seed, "trajectory", scene.name),
                                   regions=room_regions(scene, nav), navmesh=navmesh)
        position, rotation = traj.position, traj.rotation
        trajectory, step = traj.trajectory.astype(np.int32), traj.step.astype(np.int32)
    if config.light_variants > 1:  # each pose rendered under several lights, consecutively
        k = config.light_variants
        position, rotation = np.repeat(position, k, axis=0), np.repeat(rotation, k, axis=0)
        trajectory, step = np.repeat(trajectory, k), np.repeat(step, k)
    light_seed = derive_rng(config.seed, "light", scene.name).integers(0, 2**62, size=len(position))
    views = SceneViews(
        index=index, scene=scene, renderer=Renderer(scene, config.render, caster),
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
