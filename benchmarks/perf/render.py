"""CPU render throughput: raw Open3D ray casting vs the renderer vs the whole job to shards.

Two scenes: the headline is scan-sized, a procedural house subdivided until it has at least ``triangles_min``
triangles (500,000 by default: Matterport / HM3D / Gibson scans have 10^5 to 10^6); the house as generated
(about 6,000 triangles) is the second row. Both are rendered from the same camera poses (a random walk on
the house as generated). Each size is measured three ways per scene:

1. **raw**: Open3D ``RaycastingScene.cast_rays`` on the pre-generated rays (the reference);
2. **render**: :class:`envsim.render.renderer.Renderer` (ray generation, cast, z-depth, texture lookup, lighting,
   room labels), in memory;
3. **to shards**: :func:`envsim.job.driver.render_dataset` with the same poses (scene loading, BVH build,
   rendering, LZF compression, HDF5 writing and fsync, checksums, manifest), whole; and in steady state, from
   the end of the first batch to the end of the job (what a long job approaches: loading the scene and
   building its BVH are paid once per scene).

Where the time goes, from the process's CPU time (all threads, ``getrusage``) beside the wall time:

* the steady state's CPU seconds per view and how busy the cores were (``steady_core_use``: CPU time over wall
  time times cores);
* ``to_shards_steady_full_cores_ratio``: the ratio to raw casting that the steady state would reach if every
  core were busy all the time with the work it did (cores / CPU seconds per view, over raw views/s). Below a
  target, better overlap cannot meet it: the job must do less work;
* ``prepare_s``: loading the scene file, building the ray caster and its BVH (the first cast), which the
  whole job pays once and raw casting not at all; ``to_shards_full_cores_ratio`` adds it to the full-cores
  steady time (the most the whole job could reach at this number of views).

Usage::

    ess bench-perf --table render [--views 512] [--sizes 128 256] [--out benchmarks/results]
"""

from __future__ import annotations

import math
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import machine_info


def house_file(folder: Path, *, seed: int, subdivide: int) -> Path:
    """A procedural house written as GLB + sidecar, optionally subdivided (x4 triangles per level)."""
    import trimesh

    from envsim.scenes.procedural import generate_house, write_house

    house = generate_house(rng=np.random.default_rng(seed))
    if subdivide:
        for name, geom in list(house.scene.geometry.items()):
            mesh = geom
            for _ in range(subdivide):
                mesh = mesh.subdivide()
            house.scene.geometry[name] = mesh
    path = folder / f"house-{seed}.glb"
    write_house(house, path)
    trimesh.load(path, force="scene")  # warm trimesh's lazy imports outside the timings
    return path


def walk_poses(scene, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` camera poses of a random walk through ``scene``: positions (n, 3) m, quaternions (n, 4)."""
    from envsim.nav.build import build_navgrid
    from envsim.nav.trajectory import TrajectoryConfig, sample_trajectories

    nav = build_navgrid(scene.vertices, scene.faces)
    traj = sample_trajectories(nav, config=TrajectoryConfig(views=n), rng=np.random.default_rng(seed))
    return traj.position, traj.rotation


def scan_sized_house(folder: Path, *, triangles_min: int, seed: int) -> tuple[Path, Path, int]:
    """The house as GLB + sidecar twice: as generated (for navigation) and subdivided x4 per level until it
    has >= ``triangles_min`` triangles (midpoint subdivision: the same surfaces). Returns both paths and the
    number of levels."""
    from envsim.scenes.load import load_scene

    base = folder / "base"
    base.mkdir()
    plain = house_file(base, seed=seed, subdivide=0)
    n = load_scene(plain).n_triangles
    levels = max(0, math.ceil(math.log(max(triangles_min, 1) / n, 4))) if n < triangles_min else 0
    if levels == 0:
        return plain, plain, 0
    dense = folder / "dense"
    dense.mkdir()
    return plain, house_file(dense, seed=seed, subdivide=levels), levels


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all its threads."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def prepare_time(path: Path, repeats: int) -> float:
    """Seconds to load the scene file, build the Open3D ray caster and its BVH (the first cast builds it): the
    best of ``repeats``."""
    from envsim.render.raycast import Open3DRayCaster
    from envsim.scenes.load import load_scene

    def prepare():
        scene = load_scene(path)
        caster = Open3DRayCaster(scene.vertices, scene.faces)
        caster.cast(np.array([[0.0, 1.0, 0.0, 0.0, -1.0, 0.0]], np.float32))

    return best_time(prepare, repeats)


def best_time(fn, repeats: int) -> float:
    """The shortest wall time in seconds of ``repeats`` calls of ``fn()``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(*, views: int, sizes: list[int], batch: int, repeats: int, triangles_min: int = 500_000,
            seed: int = 1) -> dict:
    """Views/s of raw casting, the renderer and the job to shards, on the scan-sized and the small house.

    Args:
        views: camera poses per measurement.
        sizes: image sides in pixels.
        batch: views per ray-casting call.
        repeats: best of this many runs of each measurement.
        triangles_min: triangles of the scan-sized scene, at least (0: the small house only).
        seed: the house's seed.

    Returns:
        The report: per scene and size, views/s and the ratios to raw casting.
    """
    from envsim.scenes.load import load_scene

    results, scenes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plain, dense, levels = scan_sized_house(tmp, triangles_min=triangles_min, seed=seed)
        position, rotation = walk_poses(load_scene(plain), views, seed=0)
        for kind, path in ([("scan-sized", dense)] if levels else []) + [("small", plain)]:
            scene = load_scene(path)
            scenes.append({"kind": kind, "triangles": scene.n_triangles,
                           "subdivision_levels": levels if kind == "scan-sized" else 0})
            for size in sizes:
                row = _measure_size(scene, path, tmp / f"{kind}-{size}", position, rotation, size=size,
                                    batch=batch, repeats=repeats)
                results.append({"scene": kind, "triangles": scene.n_triangles, **row})
    return {
        "benchmark": "cpu_render",
        "scene": {"kind": f"procedural house, as generated and subdivided x4 per level to >= {triangles_min:,} "
                          "triangles", "scenes": scenes, "triangles": scenes[0]["triangles"]},
        "batch_views": batch,
        "repeats": repeats,
        "target": "to_shards_ratio_to_raw >= 0.75 (DESIGN.md)",
        "machine": machine_info(),
        "results": results,
    }


def _measure_size(scene, path: Path, out: Path, position: np.ndarray, rotation: np.ndarray, *, size: int,
                  batch: int, repeats: int) -> dict:
    """One scene at one size: raw casting, the renderer in memory and the job to shards (whole, steady state)."""
    from envsim.job import DatasetConfig, PoseList, render_dataset, resolve_sources
    from envsim.render.renderer import RenderConfig, Renderer

    views = len(position)
    poses = PoseList(position=position, rotation=rotation, sha256="benchmark")
    cfg = RenderConfig(width=size, height=size, batch_views=batch)
    renderer = Renderer(scene, cfg)
    batches = [slice(i, min(i + batch, views)) for i in range(0, views, batch)]
    rays = [renderer.rays(position[s], rotation[s]) for s in batches]
    renderer.render(position[:2], rotation[:2])  # compile the kernels outside the timings

    def raw():
        for r in rays:
            renderer.caster.cast(r)

    def render():
        for s in batches:
            renderer.render(position[s], rotation[s])

    runs = iter(range(repeats))
    steady: list[tuple[float, float]] = []  # (views/s, CPU seconds per view) after the first batch, per run

    def to_shards():
        marks: list[tuple[float, float, int]] = []
        done = [0]

        def progress(n: int) -> None:
            done[0] += n
            marks.append((time.perf_counter(), cpu_seconds(), done[0]))

        render_dataset(resolve_sources([str(path)]), config=DatasetConfig(render=cfg, shard_size=max(views, 1)),
                       out=out.with_name(f"{out.name}-{next(runs)}"), poses=poses, progress=progress)
        end, end_cpu = time.perf_counter(), cpu_seconds()
        if len(marks) > 1:  # views after the first batch over the time after it (job end included)
            n = views - marks[0][2]
            steady.append((n / (end - marks[0][0]), (end_cpu - marks[0][1]) / n))

    cpu0 = cpu_seconds()
    t_raw = best_time(raw, repeats)
    raw_cpu = (cpu_seconds() - cpu0) / (repeats * views)
    t_render, t_job = best_time(render, repeats), best_time(to_shards, repeats)
    t_prepare = prepare_time(path, repeats)
    cores = machine_info()["cores"]
    raw_rate = views / t_raw
    steady_rate, steady_cpu = max(steady) if steady else (float("nan"), float("nan"))
    full_cores = cores / steady_cpu  # views/s if every core did the steady state's work without a pause
    return {
        "size": f"{size}x{size}",
        "views": views,
        "raw_views_per_s": raw_rate,
        "render_views_per_s": views / t_render,
        "to_shards_views_per_s": views / t_job,
        "to_shards_steady_views_per_s": steady_rate,
        "render_ratio_to_raw": t_raw / t_render,
        "to_shards_ratio_to_raw": t_raw / t_job,
        "to_shards_steady_ratio_to_raw": steady_rate / raw_rate,
        "raw_mrays_per_s": views * size * size / t_raw / 1e6,
        "raw_cpu_s_per_view": raw_cpu,
        "raw_core_use": raw_cpu * raw_rate / cores,
        "steady_cpu_s_per_view": steady_cpu,
        "steady_core_use": steady_cpu * steady_rate / cores,
        "to_shards_steady_full_cores_ratio": full_cores / raw_rate,
        "prepare_s": t_prepare,
        "to_shards_full_cores_ratio": t_raw / (t_prepare + views / full_cores),
    }


def to_markdown(report: dict) -> str:
    lines = [
        f"CPU rendering, {report['scene']['kind']}, {report['machine']['cores']} cores ({report['machine']['cpu']}), "
        f"best of {report['repeats']}:",
        "",
        "| scene | triangles | size | raw Open3D views/s | render views/s (ratio) | to shards views/s (ratio) "
        "| to shards, steady state (ratio) | steady: cores busy | every core busy: ratio steady / whole "
        "| scene load + BVH s |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    nan = float("nan")
    for r in report["results"]:
        lines.append(
            f"| {r.get('scene', '-')} | {r.get('triangles', report['scene']['triangles']):,} | {r['size']} "
            f"| {r['raw_views_per_s']:.0f} | {r['render_views_per_s']:.0f} ({r['render_ratio_to_raw']:.2f}) "
            f"| {r['to_shards_views_per_s']:.0f} ({r['to_shards_ratio_to_raw']:.2f}) "
            f"| {r.get('to_shards_steady_views_per_s', nan):.0f} "
            f"({r.get('to_shards_steady_ratio_to_raw', nan):.2f}) "
            f"| {r.get('steady_core_use', nan):.0%} (raw: {r.get('raw_core_use', nan):.0%}) "
            f"| {r.get('to_shards_steady_full_cores_ratio', nan):.2f} / {r.get('to_shards_full_cores_ratio', nan):.2f} "
            f"| {r.get('prepare_s', nan):.2f} |"
        )
    lines += [
        "",
        "Steady state: after the first batch. Cores busy: CPU time (all threads) over wall time times cores. Every "
        "core busy: the ratio to raw casting the steady state would reach if the cores never paused, from its CPU "
        "time per view, and the whole job's with the scene load + BVH added; under a target, overlapping the work "
        "better cannot meet it.",
    ]
    return "\n".join(lines) + "\n"
