"""CPU render throughput: raw Open3D ray casting vs the renderer vs the whole job to shards.

Each size is measured three ways on the same scene and the same camera poses:

1. **raw**: Open3D ``RaycastingScene.cast_rays`` on the pre-generated rays (the reference);
2. **render**: :class:`envsim.render.renderer.Renderer` (ray generation, cast, z-depth, texture lookup, lighting,
   room labels), in memory;
3. **to shards**: :func:`envsim.job.driver.render_dataset` with the same poses (scene loading, rendering,
   HDF5 writing, checksums, manifest).

Usage::

    ess bench-perf --table render [--views 512] [--sizes 128 256] [--dense] [--out benchmarks/results]
"""

from __future__ import annotations

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


def best_time(fn, repeats: int) -> float:
    """The shortest wall time in seconds of ``repeats`` calls of ``fn()``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(*, views: int, sizes: list[int], dense: bool, batch: int, repeats: int) -> dict:
    from envsim.job import DatasetConfig, PoseList, render_dataset, resolve_sources
    from envsim.render.renderer import RenderConfig, Renderer
    from envsim.scenes.load import load_scene

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = house_file(tmp, seed=1, subdivide=2 if dense else 0)
        scene = load_scene(path)
        position, rotation = walk_poses(scene, views, seed=0)
        poses = PoseList(position=position, rotation=rotation, sha256="benchmark")
        for size in sizes:
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

            def to_shards():
                out = tmp / f"out-{size}-{next(runs)}"
                render_dataset(
                    resolve_sources([str(path)]),
                    config=DatasetConfig(render=cfg, shard_size=1000),
                    out=out,
                    poses=poses,
                )

            t_raw, t_render, t_job = best_time(raw, repeats), best_time(render, repeats), best_time(to_shards, repeats)
            results.append(
                {
                    "size": f"{size}x{size}",
                    "views": views,
                    "raw_views_per_s": views / t_raw,
                    "render_views_per_s": views / t_render,
                    "to_shards_views_per_s": views / t_job,
                    "render_ratio_to_raw": t_raw / t_render,
                    "to_shards_ratio_to_raw": t_raw / t_job,
                    "raw_mrays_per_s": views * size * size / t_raw / 1e6,
                }
            )
    return {
        "benchmark": "cpu_render",
        "scene": {"kind": "procedural house" + (", subdivided x16" if dense else ""), "triangles": scene.n_triangles},
        "batch_views": batch,
        "repeats": repeats,
        "target": "to_shards_ratio_to_raw >= 0.75 (DESIGN.md)",
        "machine": machine_info(),
        "results": results,
    }


def to_markdown(report: dict) -> str:
    lines = [
        f"CPU rendering, {report['scene']['kind']} ({report['scene']['triangles']:,} triangles), "
        f"{report['machine']['cores']} cores ({report['machine']['cpu']}), best of {report['repeats']}:",
        "",
        "| size | raw Open3D views/s | render views/s (ratio) | to shards views/s (ratio) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['size']} | {r['raw_views_per_s']:.0f} | {r['render_views_per_s']:.0f} ({r['render_ratio_to_raw']:.2f}) "
            f"| {r['to_shards_views_per_s']:.0f} ({r['to_shards_ratio_to_raw']:.2f}) |"
        )
    return "\n".join(lines) + "\n"
