"""GPU render throughput: raw Mitsuba ray casting vs the torch render path vs the whole job to shards, and
the job's disk throughput vs plain sequential writes to the same disk.

One procedural house, subdivided until it has at least ``triangles_min`` triangles (an indoor-like >1M
triangle scene), and the same camera poses (a random walk through the house), measured at each size on the
available device: CUDA (Mitsuba ``cuda_ad_rgb``, torch on the GPU) when there is one, else the CPU
(``llvm_ad_rgb``, torch on the CPU; use small sizes there):

1. **raw**: :meth:`envsim.render.raycast.MitsubaRayCaster.cast_torch` of pre-made device rays, ``batch`` views per
   call, until the hits are on the device (the reference: DESIGN.md's 30,000 views/s at 128x128 on an H100);
2. **render**: :meth:`envsim.render.renderer.Renderer.render` on the torch path, ``batch`` views per call: rays made,
   cast and shaded on the device, finished uint8 RGB + float32 depth in host memory (ratio render / raw);
3. **to shards**: :func:`envsim.job.driver.render_dataset` with ``backend=mitsuba``, the same poses as a
   :class:`~envsim.job.config.PoseList`, ``batch`` views per render call (fewer when that would leave less than
   four calls), float16 depth, no compression (scene loading, BVH build, rendering, HDF5 writing, checksums,
   manifest). Reported whole and in steady state (from the end of the first batch to the end of the job,
   which leaves out loading the scene);
4. **sequential write**: the same number of bytes as the shards, written to the same folder in 64 MiB
   blocks and fsync'ed (the reference of the to-disk target: steady-state shard bytes/s over this).

The shard writer fsyncs each shard before renaming it into place, as the reference does; the report also
gives the write rate without fsync. Each figure is the best of ``repeats`` runs after a warm-up (Dr.Jit compiles its kernels on
first use). The report checks its own invariants: every shard sample written, most pixels hit a surface,
and the job's first view equal (up to float rounding) to the in-memory render of the same pose.

Usage::

    ess bench-perf --table gpu-render [--views 4096] [--sizes 128 256] [--batch 1024] [--out benchmarks/results]
    ess bench-perf --only gpu_render      (part of the suite when CUDA and Mitsuba are there)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine_info
from benchmarks.perf.render import best_time

TARGET_VIEWS_PER_S = 20_000
"""DESIGN.md: GPU rendering (H100), RGB-D 128x128, >1M triangles."""
TARGET_DISK_RATIO = 0.8
"""DESIGN.md: to disk >= 0.8 of raw sequential write."""
WRITE_BLOCK = 64 << 20


def _device() -> tuple[str, str, str]:
    """``(torch device, device name, Mitsuba variant)`` of the measurement: CUDA when torch and Mitsuba both
    have it, else the CPU."""
    import torch

    from envsim.render.raycast import mitsuba_variant

    variant = mitsuba_variant()
    if variant.startswith("cuda_") and torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name(0), variant
    return "cpu", machine_info()["cpu"], "llvm_ad_rgb"


def _scene(folder: Path, *, triangles_min: int, seed: int) -> tuple[Path, Path, int]:
    from benchmarks.perf.render import scan_sized_house

    return scan_sized_house(folder, triangles_min=triangles_min, seed=seed)


def _poses(plain: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The CPU render benchmark's random walk, on a navigable grid cast by Mitsuba (the GPU has no Open3D)."""
    from envsim.nav.build import build_navgrid
    from envsim.nav.trajectory import TrajectoryConfig, sample_trajectories
    from envsim.render.raycast import MitsubaRayCaster
    from envsim.scenes.load import load_scene

    scene = load_scene(plain)
    nav = build_navgrid(scene.vertices, scene.faces, caster=MitsubaRayCaster(scene.vertices, scene.faces))
    traj = sample_trajectories(nav, config=TrajectoryConfig(views=n), rng=np.random.default_rng(seed))
    return traj.position, traj.rotation




def sequential_write(folder: Path, nbytes: int, *, fsync: bool = True) -> float:
    """Seconds to write ``nbytes`` of incompressible bytes to a new file in ``folder`` in 64 MiB blocks
    (then fsync when asked); the file is removed afterwards."""
    block = np.random.default_rng(0).integers(0, 256, min(WRITE_BLOCK, max(nbytes, 1)), dtype=np.uint8).tobytes()
    path = folder / "sequential-write.bin"
    try:
        t0 = time.perf_counter()
        with open(path, "wb", buffering=0) as f:
            left = nbytes
            while left > 0:
                left -= f.write(block[: min(left, len(block))])
            if fsync:
                os.fsync(f.fileno())
        return time.perf_counter() - t0
    finally:
        path.unlink(missing_ok=True)


def _to_shards(source: Path, cfg, poses, out: Path) -> dict[str, Any]:
    """One dataset job; its wall time, its steady-state time (first batch done -> end) and its shard bytes."""
    from envsim.job import DatasetConfig, render_dataset, resolve_sources
    from envsim.store.shards import Compression

    marks: list[tuple[float, int]] = []
    done = 0

    def progress(k: int) -> None:
        nonlocal done
        done += k
        marks.append((time.perf_counter(), done))

    config = DatasetConfig(render=cfg, shard_size=4 * cfg.batch_views, depth_dtype="float16",
                           compression=Compression.NONE)
    t0 = time.perf_counter()
    manifest = render_dataset(resolve_sources([str(source)]), config=config, out=out, poses=poses, progress=progress)
    t_end = time.perf_counter()
    views = int(manifest["total_samples"])
    shard_bytes = sum((out / s["file"]).stat().st_size for s in manifest["shards"])
    first_t, first_n = marks[0]
    steady_views = views - first_n
    return {
        "seconds": t_end - t0,
        "steady_seconds": t_end - first_t,
        "steady_views": steady_views,
        "views": views,
        "samples": sum(s["samples"] for s in manifest["shards"]),
        "shard_bytes": shard_bytes,
        "first_shard": out / manifest["shards"][0]["file"],
    }


def measure(
    *,
    views: int,
    sizes: list[int],
    repeats: int = 3,
    batch: int = 1024,
    triangles_min: int = 1_000_000,
    out_dir: str | Path | None = None,
    chunk_rays: int | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """Measure GPU (or, without CUDA, CPU) rendering as the module docstring describes.

    Args:
        views: camera poses per measurement.
        sizes: square image sides in pixels.
        repeats: best of this many timed runs per figure.
        batch: views per ray-casting / render call.
        triangles_min: the scene is subdivided until it has at least this many triangles.
        out_dir: folder for the scene files, the shards and the sequential-write file (the disk measured);
            a temporary folder when None. What the benchmark writes there is removed at the end.
        chunk_rays: rays per cast-and-shade step of the render path (the renderer's default when None).
        seed: seed of the house and of the camera walk.

    Returns:
        The report: machine, device, scene, per-size ``results`` and the suite's ``figures``.

    Raises:
        RuntimeError: an invariant broke (missing samples, an empty image, job != in-memory render).
    """
    from envsim.job import PoseList
    from envsim.render.renderer import Backend, RenderConfig
    from envsim.scenes.load import load_scene

    if views < 1 or batch < 1 or repeats < 1 or not sizes or min(sizes) < 1:
        raise ValueError("views, batch, repeats and every size must be >= 1")
    device, device_name, variant = _device()
    base = Path(out_dir) if out_dir is not None else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gpu-render-", dir=base))
    results = []
    try:
        plain, dense, levels = _scene(tmp, triangles_min=triangles_min, seed=seed)
        scene = load_scene(dense)
        position, rotation = _poses(plain, views, seed=0)
        poses = PoseList(position=position, rotation=rotation, sha256="benchmark")
        batches = [slice(i, min(i + batch, views)) for i in range(0, views, batch)]
        job_batch = min(batch, max(1, views // 4))  # >= 4 batches: a steady state after the first one
        for size in sizes:
            cfg = RenderConfig(width=size, height=size, batch_views=batch, backend=Backend.MITSUBA)
            results.append(_measure_size(scene, dense, cfg, poses, tmp, views=views, batches=batches,
                                         job_batch=job_batch, device=device, chunk_rays=chunk_rays, repeats=repeats))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = {
        "benchmark": "gpu_render",
        "device": {"kind": device, "name": device_name, "mitsuba_variant": variant},
        "scene": {"kind": f"procedural house (seed {seed}), subdivided x{4 ** levels}", "triangles": scene.n_triangles},
        "views": views,
        "batch_views": batch,
        "chunk_rays": chunk_rays,
        "repeats": repeats,
        "shards": {"depth_dtype": "float16", "compression": "none", "batch_views": job_batch,
                   "shard_size": 4 * job_batch},
        "target": f">= {TARGET_VIEWS_PER_S:,} RGB-D views/s at 128x128 on an H100 with >1M triangles; "
        f"to disk >= {TARGET_DISK_RATIO} of raw sequential write (DESIGN.md)",
        "machine": machine_info(),
        "results": results,
    }
    report["figures"] = _figures(report)
    return report


def _measure_size(
    scene: Any,
    dense: Path,
    cfg: Any,
    poses: Any,
    tmp: Path,
    *,
    views: int,
    batches: list[slice],
    job_batch: int,
    device: str,
    chunk_rays: int | None,
    repeats: int,
) -> dict[str, Any]:
    """Measure one size: in memory, to shards and the sequential write of as many bytes; check the invariants.

    Args:
        scene: the loaded (dense) scene.
        dense: its GLB file.
        cfg: the :class:`~envsim.render.renderer.RenderConfig` of this size.
        poses: the camera poses, a :class:`~envsim.job.config.PoseList`.
        tmp: the benchmark's scratch folder (the disk measured).
        views: number of poses.
        batches: the views of each in-memory render call.
        job_batch: views per render call of the dataset job.
        device: torch device, "cuda" or "cpu".
        chunk_rays: rays per cast-and-shade step of the render path (the renderer's default when None).
        repeats: best of this many timed runs per figure.

    Returns:
        The size's row of the report's ``results``.

    Raises:
        RuntimeError: an invariant broke.
    """
    import torch

    size = cfg.width
    times = _render_times(scene, cfg, poses.position, poses.rotation, batches, device=device, chunk_rays=chunk_rays,
                          repeats=repeats)
    if device == "cuda":  # the renderers are gone with _render_times
        torch.cuda.empty_cache()
    job, shard_rgb, shard_depth = _shard_job(dense, dataclasses.replace(cfg, batch_views=job_batch), poses, tmp,
                                             size=size, repeats=repeats)
    nbytes = job["shard_bytes"]
    t_write = min(sequential_write(tmp, nbytes) for _ in range(repeats))
    t_write_cached = min(sequential_write(tmp, nbytes, fsync=False) for _ in range(repeats))
    _check_invariants(job, times, views=views, shard_rgb=shard_rgb, shard_depth=shard_depth)
    return _size_result(size, views, times, job, t_write=t_write, t_write_cached=t_write_cached)


@dataclasses.dataclass(frozen=True)
class _RenderTimes:
    """One size's in-memory measurements: best wall times in seconds (every view) and what the checks need.

    Attributes:
        raw: raw Mitsuba ray casting (``cast_torch``) of pre-made device rays.
        render: the torch render path, to host memory.
        compiled: the render path with its shading fused by torch.compile (None: on the CPU, or compiling failed).
        numba: the numba render path on the same caster (None on CUDA).
        hit: fraction of the first batch's rays that hit a surface, in [0, 1].
        first: the in-memory render of the first pose (uint8 RGB (1, H, W, 3), float32 depth (1, H, W)).
    """

    raw: float
    render: float
    compiled: float | None
    numba: float | None
    hit: float
    first: Any


def _render_times(
    scene: Any,
    cfg: Any,
    position: np.ndarray,
    rotation: np.ndarray,
    batches: list[slice],
    *,
    device: str,
    chunk_rays: int | None,
    repeats: int,
) -> _RenderTimes:
    """Time raw ray casting and the render paths of one size, best of ``repeats`` after a warm-up.

    Args:
        scene: the loaded (dense) scene.
        cfg: the :class:`~envsim.render.renderer.RenderConfig` of this size.
        position: float (N, 3) camera centres, in metres.
        rotation: float (N, 4) camera orientations (quaternions).
        batches: the views of each call.
        device: torch device, "cuda" or "cpu".
        chunk_rays: rays per cast-and-shade step of the render path (the renderer's default when None).
        repeats: best of this many timed runs.

    The renderers are freed on return; the caller empties the CUDA cache.
    """
    import torch

    from envsim.render.renderer import Renderer

    cuda = device == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    renderer = Renderer(scene, cfg, device=device, chunk_rays=chunk_rays)
    path = renderer.device_path
    caster = renderer.caster
    rays = [path.rays(position[s], rotation[s]) for s in batches]
    sync()  # rays were made on the render path's stream; the casts below run on their own
    # Like the render path, cast from a torch stream of our own (not the legacy default stream).
    stream = torch.cuda.Stream() if cuda else None
    with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
        caster.cast_torch(rays[0][: cfg.width * cfg.height])  # compile outside the timings
    first = renderer.render(position[:1], rotation[:1])
    renderer.render(position[batches[0]], rotation[batches[0]])  # page-locked host buffers, allocated once

    def raw():
        with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
            for r in rays:
                caster.cast_torch(r)
        sync()

    def render():
        for s in batches:
            renderer.render(position[s], rotation[s])

    t_raw = best_time(raw, repeats)
    hit = float((caster.cast_torch(rays[0])[1] >= 0).float().mean())
    rays.clear()  # free the rays before timing the render path
    t_render = best_time(render, repeats)
    t_compiled = None
    if cuda:  # the same path with the shading fused by torch.compile
        fused = Renderer(scene, cfg, caster=caster, device=device, chunk_rays=chunk_rays, compile_shading=True)
        fused.render(position[batches[0]], rotation[batches[0]])  # compile outside the timings
        if fused.device_path.compile:  # else compiling failed (logged) and it would measure eager again
            t_compiled = best_time(lambda: [fused.render(position[s], rotation[s]) for s in batches], repeats)
        del fused
    t_numba = None
    if not cuda:  # informational on the CPU: the numba path on the same caster
        cpu = Renderer(scene, cfg, caster=caster)
        cpu.render(position[:1], rotation[:1])
        t_numba = best_time(lambda: [cpu.render(position[s], rotation[s]) for s in batches], repeats)
    return _RenderTimes(raw=t_raw, render=t_render, compiled=t_compiled, numba=t_numba, hit=hit, first=first)


def _shard_job(
    dense: Path, cfg: Any, poses: Any, tmp: Path, *, size: int, repeats: int
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The fastest (steady state) of ``repeats`` dataset jobs after a warm-up one, with the warm-up's first view.

    Returns:
        The job (see :func:`_to_shards`), and the first shard's first view: uint8 RGB (H, W, 3) and its
        depth as float32 (H, W), in metres.
    """
    import h5py

    jobs = []
    for k in range(repeats + 1):  # the first run warms the process (imports, kernel compilation)
        out = tmp / f"shards-{size}-{k}"
        job = _to_shards(dense, cfg, poses, out)
        if k == 0:
            with h5py.File(job["first_shard"], "r") as f:
                shard_rgb, shard_depth = f["rgb"][0], f["depth"][0].astype(np.float32)
        else:
            jobs.append(job)
        shutil.rmtree(out)
    job = min(jobs, key=lambda j: j["steady_seconds"] / max(j["steady_views"], 1))
    return job, shard_rgb, shard_depth


def _check_invariants(
    job: dict[str, Any], times: _RenderTimes, *, views: int, shard_rgb: np.ndarray, shard_depth: np.ndarray
) -> None:
    """Every sample written, the camera sees the house, the job renders what render() does.

    Raises:
        RuntimeError: one of them does not hold.
    """
    if job["samples"] != views:
        raise RuntimeError(f"the dataset job wrote {job['samples']} samples, expected {views}")
    if times.hit < 0.5:
        raise RuntimeError(f"only {times.hit:.0%} of the rays hit the scene: the poses are outside the house")
    first = times.first
    rgb_diff = np.abs(shard_rgb.astype(np.int16) - first.rgb[0].astype(np.int16)).max()
    depth_diff = np.abs(shard_depth - first.depth[0].astype(np.float16).astype(np.float32)).max()
    if rgb_diff > 2 or depth_diff > 0.01:
        raise RuntimeError(
            f"the job's first view differs from render(): rgb {rgb_diff} levels, depth {depth_diff} m")


def _size_result(
    size: int, views: int, times: _RenderTimes, job: dict[str, Any], *, t_write: float, t_write_cached: float
) -> dict[str, Any]:
    """One size's row of the report's ``results`` (rates in views/s, Mrays/s and bytes/s).

    Args:
        size: square image side, in pixels.
        views: views rendered per measurement.
        times: the in-memory measurements.
        job: the fastest dataset job.
        t_write: seconds of the sequential write (with fsync) of the job's shard bytes.
        t_write_cached: the same without fsync.
    """
    nbytes = job["shard_bytes"]
    t_raw, t_render = times.raw, times.render
    compiled = views / times.compiled if times.compiled is not None else None
    numba = views / times.numba if times.numba is not None else None
    steady = job["steady_views"] / job["steady_seconds"] if job["steady_views"] else None  # views/s
    steady_bps = nbytes / views * steady if steady else float("nan")
    write_bps = nbytes / t_write
    return {
        "size": f"{size}x{size}",
        "views": views,
        "hit_fraction": times.hit,
        "raw_views_per_s": views / t_raw,
        "raw_mrays_per_s": views * size * size / t_raw / 1e6,
        "render_views_per_s": views / t_render,
        "render_ratio_to_raw": t_raw / t_render,
        "render_compiled_views_per_s": compiled,
        "render_compiled_ratio_to_raw": compiled / (views / t_raw) if compiled else None,
        "render_numba_views_per_s": numba,
        "to_shards_views_per_s": views / job["seconds"],
        "to_shards_steady_views_per_s": steady,
        "shard_bytes": nbytes,
        "to_shards_steady_bytes_per_s": steady_bps,
        "sequential_write_bytes_per_s": write_bps,
        "sequential_write_no_fsync_bytes_per_s": nbytes / t_write_cached,
        "to_shards_ratio_to_write": steady_bps / write_bps,
    }


def _figure(name: str, value: float, unit: str, *, reference: str, reference_value: float, ratio: float,
            setup: str, target: str | None = None, passed: bool | None = None) -> dict[str, Any]:
    """One row in the schema of :func:`benchmarks.perf.suite.figure` (the suite adds the section)."""
    return {"section": "gpu_render", "figure": name, "value": float(value), "unit": unit, "reference": reference,
            "reference_value": float(reference_value), "ratio": float(ratio), "target": target, "pass": passed,
            "setup": setup}


def _figures(report: dict[str, Any]) -> list[dict[str, Any]]:
    dev = report["device"]
    where = "GPU" if dev["kind"] == "cuda" else "CPU"
    scene = f"{report['scene']['kind']}, {report['scene']['triangles']:,} triangles"
    big = report["scene"]["triangles"] >= 1_000_000
    out = []
    for r in report["results"]:
        setup = (f"{dev['name']} ({dev['mitsuba_variant']}), {scene}, {r['views']} views at {r['size']}, "
                 f"{report['batch_views']} per call, best of {report['repeats']}")
        applies = dev["kind"] == "cuda" and r["size"] == "128x128" and big  # DESIGN.md's GPU target
        target = f">= {TARGET_VIEWS_PER_S:,} views/s (H100)" if applies else None
        raw = "raw Mitsuba ray casting (cast_torch) of the same rays"
        out.append(_figure(f"{where} render RGB-D to host memory, {r['size']}", r["render_views_per_s"], "views/s",
                           reference=raw, reference_value=r["raw_views_per_s"], ratio=r["render_ratio_to_raw"],
                           setup=setup, target=target,
                           passed=r["render_views_per_s"] >= TARGET_VIEWS_PER_S if applies else None))
        if r.get("render_compiled_views_per_s"):
            value = r["render_compiled_views_per_s"]
            out.append(_figure(f"{where} render RGB-D to host memory, torch.compile shading, {r['size']}", value,
                               "views/s", reference=raw, reference_value=r["raw_views_per_s"],
                               ratio=r["render_compiled_ratio_to_raw"], setup=setup, target=target,
                               passed=value >= TARGET_VIEWS_PER_S if applies else None))
        ratio = r["to_shards_ratio_to_write"]
        disk = dev["kind"] == "cuda"
        out.append(_figure(f"{where} render to shards (steady state), {r['size']}",
                           r["to_shards_steady_bytes_per_s"] / 1e6, "MB/s",
                           reference="sequential write + fsync of the same bytes to the same disk",
                           reference_value=r["sequential_write_bytes_per_s"] / 1e6, ratio=ratio,
                           setup=setup + ", float16 depth, no compression",
                           target=f">= {TARGET_DISK_RATIO}" if disk else None,
                           passed=bool(ratio >= TARGET_DISK_RATIO) if disk else None))
    return out


def to_markdown(report: dict[str, Any]) -> str:
    dev = report["device"]
    lines = [
        f"{'GPU' if dev['kind'] == 'cuda' else 'CPU'} rendering on {dev['name']} ({dev['mitsuba_variant']}), "
        f"{report['scene']['kind']} ({report['scene']['triangles']:,} triangles), {report['batch_views']} views per "
        f"call, best of {report['repeats']}:",
        "",
        "| size | raw cast views/s | render views/s (ratio) | render, compiled shading | to shards views/s, steady "
        "(whole job) | shards MB/s vs sequential write MB/s (ratio) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        steady = r["to_shards_steady_views_per_s"]
        fused = r.get("render_compiled_views_per_s")
        fused = f"{fused:,.0f} ({r['render_compiled_ratio_to_raw']:.2f})" if fused else "-"
        lines.append(
            f"| {r['size']} | {r['raw_views_per_s']:,.0f} "
            f"| {r['render_views_per_s']:,.0f} ({r['render_ratio_to_raw']:.2f}) "
            f"| {fused} "
            f"| {steady or float('nan'):,.0f} ({r['to_shards_views_per_s']:,.0f}) "
            f"| {r['to_shards_steady_bytes_per_s'] / 1e6:,.0f} vs {r['sequential_write_bytes_per_s'] / 1e6:,.0f} "
            f"({r['to_shards_ratio_to_write']:.2f}) |"
        )
    lines += ["", f"Target: {report['target']}."]
    return "\n".join(lines) + "\n"
