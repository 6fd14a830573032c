"""Pair building: KD-tree spatial positives + ESS-MW weights vs O(N^2) brute force, and covisibility.

For each size N, synthetic views (scenes of ``--views-per-scene`` views in 12 x 12 m houses; each scene a
random walk with 0.25 m steps and a slowly turning heading, camera 1.5 m above the floor, random yaw) go
through the pairing pipeline:

1. :func:`pairing.index.radius_pairs` (radius 1 m, same scene only);
2. :func:`pairing.similarity.pair_geometry` (distance, viewing angle);
3. :func:`pairing.similarity.weighted_similarity` (ESS-MW, Gaussian).

The O(N^2) brute force (all pairs, blockwise numpy) runs where it is feasible (N <= ``--brute-max``);
nothing is extrapolated. It must find exactly the KD-tree's pairs and weights (checked, not assumed).
The scaling exponent is the slope of a least-squares line through (log N, log time).

A last line times the covisibility kernel (:func:`pairing.covisibility.covisibility_pairs`) on
128 x 128 depth maps of an empty 12 x 12 x 3 m room (computed analytically) at stride 4, over the
radius pairs of 2,048 views, after checking it against the numpy reference on some of them.

Memory (the suite's pairs section): ``ess pair`` with its defaults (covisibility on) runs in a child process on
synthetic datasets written without rendering (:func:`write_dataset`: the same random walks, 16 x 16 depth of an
empty room, grey RGB), and the kernel's count of the child's peak resident memory (``os.wait4``) is compared
with the size of the pairs file's datasets held at once; a sample of the file's per-view CSR is checked.

Usage::

    ess bench-perf --table pairs [--sizes 10000 100000 1000000] [--out benchmarks/results]
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import machine_info

logger = logging.getLogger(__name__)

HOUSE = 12.0  # metres, side of a square house
MARGIN = 0.2  # metres kept from the walls
STEP = 0.25  # metres per random-walk step
CAMERA_HEIGHT = 1.5  # metres above the floor (Habitat's default)
HOUSE_HEIGHT = 3.0  # metres, for the covisibility room


def synthetic_views(n: int, *, views_per_scene: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Random-walk camera poses in square houses, ``views_per_scene`` per scene (the last may have fewer).

    Returns:
        position float64 (n, 3) metres, rotation float64 (n, 4) quaternions (w, x, y, z), scene int32 (n,).
    """
    from envsim.camera import quat_from_yaw_pitch_roll

    scene = (np.arange(n) // views_per_scene).astype(np.int32)  # (n,)
    n_scenes = int(scene[-1]) + 1 if n else 0
    start = rng.uniform(MARGIN, HOUSE - MARGIN, (n_scenes, 2))  # (S, 2)
    heading = rng.uniform(-np.pi, np.pi) + np.cumsum(rng.normal(0.0, 0.4, n))  # (n,) turning slowly
    step = STEP * np.stack([np.cos(heading), np.sin(heading)], axis=1)  # (n, 2)
    first = np.r_[0, np.flatnonzero(np.diff(scene)) + 1]  # (S,) first view of every scene
    step[first] = 0.0  # each scene starts at its start point
    walk = np.cumsum(step, axis=0)  # (n, 2)
    walk = walk - walk[first][scene] + start[scene]  # per-scene walks from their starts
    # Reflect at the walls: fold the free walk into [MARGIN, HOUSE - MARGIN].
    span = HOUSE - 2 * MARGIN
    folded = np.mod(walk - MARGIN, 2 * span)
    xz = MARGIN + np.where(folded > span, 2 * span - folded, folded)  # (n, 2)
    position = np.stack([xz[:, 0], np.full(n, CAMERA_HEIGHT), xz[:, 1]], axis=1)  # (n, 3)
    rotation = quat_from_yaw_pitch_roll(rng.uniform(-np.pi, np.pi, n), 0.0, 0.0)  # (n, 4)
    return position, rotation, scene


def brute_force(position: np.ndarray, rotation: np.ndarray, scene: np.ndarray, config, *, block: int = 512):
    """O(N^2) reference, written apart from :mod:`pairing`: every pair (i < j) of the same scene within the
    radius, and its ESS-MW weight in closed form from the distance and the angle between viewing directions
    (``arccos`` of their dot product; pairing uses a KD-tree and ``atan2``)."""
    from envsim.camera import quat_to_matrix

    n = position.shape[0]
    r2 = config.radius**2
    found = []
    for s in range(0, n, block):
        e = min(s + block, n)
        d2 = ((position[s:e, None, :] - position[None, :, :]) ** 2).sum(-1)  # (B, N)
        ok = (d2 <= r2) & (scene[s:e, None] == scene[None, :]) & (np.arange(n)[None, :] > np.arange(s, e)[:, None])
        i, j = np.nonzero(ok)
        found.append(np.stack([i + s, j], axis=1))
    pairs = np.concatenate(found).astype(np.int64)  # (P, 2), row-major: lexicographic
    forward = -quat_to_matrix(rotation)[:, :, 2]  # (N, 3) the camera's -Z axis in the world
    distance = np.linalg.norm(position[pairs[:, 0]] - position[pairs[:, 1]], axis=1)  # (P,)
    angle = np.arccos(np.clip((forward[pairs[:, 0]] * forward[pairs[:, 1]]).sum(1), -1.0, 1.0))  # (P,)
    gate = (distance <= config.radius) & (angle <= config.max_angle)
    if config.falloff.value == "gaussian":
        weight = np.exp(-(distance**2) / (2 * config.sigma_position**2) - angle**2 / (2 * config.sigma_angle**2))
    else:
        weight = np.clip(1 - distance / config.radius, 0, None) * np.clip(1 - angle / config.max_angle, 0, None)
    return pairs, weight * gate


def pairs_agree(pairs: np.ndarray, weight: np.ndarray, ref_pairs: np.ndarray, ref_weight: np.ndarray) -> tuple[bool, str]:
    """Whether the fast path's pairs equal the reference's exactly and the weights within 1e-6 (the two
    angle formulas round differently); and, when not, why."""
    if pairs.shape != ref_pairs.shape or not np.array_equal(pairs, ref_pairs):
        return False, f"{len(pairs)} pairs vs {len(ref_pairs)} in the brute force"
    err = float(np.abs(weight - ref_weight).max()) if len(weight) else 0.0
    return err <= 1e-6, f"largest weight difference {err:.2g}"


def _timed(fn, repeats: int):
    """(best seconds, last result) over ``repeats`` runs."""
    best, out = math.inf, None
    for _ in range(repeats):
        out = None  # free the previous result before the next run
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def measure_pairs(*, sizes: list[int], views_per_scene: int, brute_max: int, seed: int) -> list[dict]:
    from pairing.index import radius_pairs
    from pairing.similarity import SimilarityConfig, pair_geometry, weighted_similarity

    config = SimilarityConfig()
    rows = []
    for n in sizes:
        rng = np.random.default_rng([seed, n])
        position, rotation, scene = synthetic_views(n, views_per_scene=views_per_scene, rng=rng)
        repeats = 3 if n <= 100_000 else 1
        t_index, pairs = _timed(lambda: radius_pairs(position, scene, radius=config.radius), repeats)
        t_geom, (distance, angle) = _timed(lambda: pair_geometry(position, rotation, pairs), repeats)
        t_weight, weight = _timed(lambda: weighted_similarity(distance, angle, config), repeats)
        total = t_index + t_geom + t_weight
        row = {
            "views": n,
            "scenes": int(scene.max()) + 1,
            "pairs": int(pairs.shape[0]),
            "positives_per_view": 2 * pairs.shape[0] / n,
            "repeats": repeats,
            "index_s": t_index,
            "geometry_s": t_geom,
            "weights_s": t_weight,
            "total_s": total,
            "pairs_per_s": pairs.shape[0] / total,
            "mean_weight": float(weight.mean()) if weight.size else 0.0,
        }
        if n <= brute_max:
            t_brute, (bp, bw) = _timed(lambda: brute_force(position, rotation, scene, config), 1)
            matches, why = pairs_agree(pairs, weight, bp, bw)
            row.update(brute_s=t_brute, speedup_vs_brute=t_brute / total, brute_matches=matches, brute_check=why)
        logger.info("N=%d: %d pairs in %.2f s", n, pairs.shape[0], total)
        rows.append(row)
        del pairs, distance, angle, weight
    return rows


def box_room_depth(position: np.ndarray, rotation: np.ndarray, *, size: int) -> tuple[np.ndarray, np.ndarray]:
    """z-depth (B, size, size) float32 of views inside an empty HOUSE x HOUSE_HEIGHT x HOUSE room, hfov 90,
    by exact ray-box exit distances; and K."""
    from envsim.camera import camera_rays, make_intrinsics, quat_to_matrix

    intr = make_intrinsics(width=size, height=size, hfov_deg=90.0)
    dirs = camera_rays(intr).reshape(-1, 3).astype(np.float64)  # (HW, 3) z = -1: t is z-depth
    lo = np.array([0.0, 0.0, 0.0])
    hi = np.array([HOUSE, HOUSE_HEIGHT, HOUSE])
    depth = np.empty((position.shape[0], size, size), np.float32)
    for b in range(position.shape[0]):
        d = dirs @ quat_to_matrix(rotation[b]).T  # (HW, 3) world
        with np.errstate(divide="ignore"):
            t = np.where(d > 0, (hi - position[b]) / d, (lo - position[b]) / d)  # (HW, 3) exit per axis
        t[d == 0] = np.inf
        depth[b] = t.min(axis=1).reshape(size, size)
    return depth, intr.K


def reference_covisibility(depth: np.ndarray, pose: np.ndarray, K: np.ndarray, pairs: np.ndarray, config) -> np.ndarray:
    """Covisibility of every pair in both directions, written apart from :mod:`pairing.covisibility`: each
    sampled pixel of A is back-projected along its OpenGL camera ray (x right, y up, looking down -Z) to the
    world and re-projected into B's OpenGL frame, then checked for being in front, inside and not occluded.

    Args:
        depth: (N, H, W) z-depth in metres; pose: (N, 4, 4) camera-to-world; K: (3, 3); pairs: (P, 2).

    Returns:
        float64 (P, 2): covisibility of a in b, and of b in a.
    """
    n, h, w = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    v, u = np.mgrid[0:h : config.stride, 0:w : config.stride]
    u, v = u.ravel().astype(np.float64), v.ravel().astype(np.float64)  # (S,) sampled pixels
    ray = np.stack([(u - cx) / fx, -(v - cy) / fy, -np.ones_like(u)], axis=1)  # (S, 3) at z-depth 1
    out = np.zeros((len(pairs), 2))
    for col, (src, dst) in enumerate(((0, 1), (1, 0))):
        for start in range(0, len(pairs), 256):
            a, b = pairs[start : start + 256, src], pairs[start : start + 256, dst]  # (B,)
            z = depth[a][:, v.astype(np.int64), u.astype(np.int64)].astype(np.float64)  # (B, S)
            valid = np.isfinite(z) & (z > 0)
            world = np.einsum("bij,sj->bsi", pose[a, :3, :3], ray) * z[..., None] + pose[a, None, :3, 3]  # (B, S, 3)
            local = np.einsum("bji,bsj->bsi", pose[b, :3, :3], world - pose[b, None, :3, 3])  # (B, S, 3) in B
            zb = -local[..., 2]  # (B, S) depth in front of B
            with np.errstate(divide="ignore", invalid="ignore"):
                col_b = np.floor(fx * local[..., 0] / zb + cx + 0.5)
                row_b = np.floor(-fy * local[..., 1] / zb + cy + 0.5)
            inside = valid & (zb > 0) & (col_b >= 0) & (col_b <= w - 1) & (row_b >= 0) & (row_b <= h - 1)
            seen_depth = np.zeros(zb.shape)
            bi, si = np.nonzero(inside)
            seen_depth[bi, si] = depth[b[bi], row_b[bi, si].astype(np.int64), col_b[bi, si].astype(np.int64)]
            seen = inside & (seen_depth > 0) & (seen_depth >= zb * (1 - config.rel_tolerance) - config.abs_tolerance)
            counts = valid.sum(1)
            out[start : start + 256, col] = np.where(counts > 0, seen.sum(1) / np.maximum(counts, 1), 0.0)
    return out


def measure_covisibility(*, views: int, size: int, stride: int, seed: int) -> dict:
    from envsim.camera import pose_matrix
    from pairing.covisibility import CovisibilityConfig, covisibility_pairs
    from pairing.index import radius_pairs

    rng = np.random.default_rng([seed, 1])
    position, rotation, scene = synthetic_views(views, views_per_scene=views, rng=rng)
    depth, K = box_room_depth(position, rotation, size=size)
    pose = pose_matrix(position, rotation)
    pairs = radius_pairs(position, scene, radius=1.0)
    config = CovisibilityConfig(stride=stride)
    covisibility_pairs(depth, pose, K, pairs[:2], config=config)  # compiles the kernel
    t, covis = _timed(lambda: covisibility_pairs(depth, pose, K, pairs, config=config), 3)
    t_ref, ref = _timed(lambda: reference_covisibility(depth, pose, K, pairs, config), 1)
    err = float(np.abs(covis - ref).max()) if len(pairs) else 0.0
    samples = math.ceil(size / stride) ** 2
    return {
        "views": views,
        "size": f"{size}x{size}",
        "stride": stride,
        "pairs": int(len(pairs)),
        "seconds": t,
        "pairs_per_s": len(pairs) / t,
        "samples_per_s": 2 * samples * len(pairs) / t,
        "reference_pairs_per_s": 2 * len(pairs) / t_ref,  # directed pairs
        "mean_covisibility": float(covis.mean()),
        "reference_matches": err <= 1e-6,
        "reference_check": f"every pair, both directions: largest difference {err:.2g}",
    }


# --- memory: `ess pair` and the pairs file at scale ----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]  # the checkout: children run this code, not an installed copy
MEMORY_IMAGE = 16  # pixels, side of the synthetic views' images: depth for covisibility, little else
SHARD_VIEWS = 100_000  # views per shard of the synthetic datasets
GB = 1e9


def write_dataset(folder: Path, n: int, *, views_per_scene: int, size: int = MEMORY_IMAGE, seed: int = 0) -> dict:
    """A dataset folder ``ess pair`` reads (shards + manifest), without rendering: the random-walk poses of
    :func:`synthetic_views`, the depth of the empty room around them (:func:`box_room_depth`), grey RGB.

    Returns:
        views, scenes, shards and seconds taken.
    """
    from envsim.camera import pose_matrix
    from envsim.provenance import file_sha256, write_json_atomic
    from envsim.store.shards import MANIFEST_FORMAT, MANIFEST_NAME, ShardLayout, ShardWriter, shard_name

    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    position, rotation, scene = synthetic_views(n, views_per_scene=views_per_scene, rng=np.random.default_rng([seed, n]))
    entries, K = [], None
    for k, lo in enumerate(range(0, n, SHARD_VIEWS)):
        hi = min(lo + SHARD_VIEWS, n)
        layout = ShardLayout(samples=hi - lo, height=size, width=size)
        with ShardWriter(folder / shard_name(k), layout=layout, attrs={"first_view": lo}) as writer:
            for a in range(lo, hi, 4096):
                b = min(a + 4096, hi)
                depth, K = box_room_depth(position[a:b], rotation[a:b], size=size)
                writer.write(
                    rgb=np.full((b - a, size, size, 3), 128, np.uint8), depth=depth,
                    pose=pose_matrix(position[a:b], rotation[a:b]).astype(np.float32),
                    position=position[a:b].astype(np.float32), rotation=rotation[a:b].astype(np.float32),
                    light=np.zeros((b - a, 5), np.float32), scene=scene[a:b], trajectory=scene[a:b],
                    step=np.arange(a, b, dtype=np.int32), room=np.full(b - a, -1, np.int32),
                )
        entries.append({"file": shard_name(k), "samples": hi - lo, "first_view": lo,
                        "sha256": file_sha256(folder / shard_name(k))})
    scenes = int(scene.max()) + 1 if n else 0
    write_json_atomic(folder / MANIFEST_NAME, {
        "format": MANIFEST_FORMAT, "complete": True, "total_samples": n, "shards": entries,
        "K": np.asarray(K).tolist(), "width": size, "height": size, "room_names": [],
        "scene_names": [f"synthetic-{i}" for i in range(scenes)], "seed": seed,
    })
    return {"views": n, "scenes": scenes, "shards": len(entries), "seconds": time.perf_counter() - t0}


PEAK_MARK = "@peak_rss_kb"
_REPORT_PEAK = f"""import atexit, sys
def _report_peak():
    try:  # the high-water mark of this process's own memory map (not of the process it was forked from)
        kb = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
    except (OSError, IndexError, ValueError):
        import resource
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
    sys.stderr.write("\\n{PEAK_MARK} %d\\n" % kb)
atexit.register(_report_peak)
"""


def peak_rss_run(code: str, args: list[str]) -> dict:
    """Run Python ``code`` (``sys.argv[1:]`` = ``args``) in a child process with this checkout on its path:
    exit code, stdout, the tail of stderr, seconds, and the child's peak resident memory in bytes, which the
    child reads from its own ``VmHWM`` as it exits. (``ru_maxrss`` would not do: Linux carries the parent's
    peak over ``fork`` and ``exec``.)"""
    import os
    import subprocess
    import sys
    import tempfile

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _REPORT_PEAK + code, *args], stdout=out, stderr=err, env=env,
                              cwd=ROOT, check=False)
        seconds = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    marks = [line.split()[1] for line in stderr.splitlines() if line.startswith(PEAK_MARK)]
    return {"returncode": done.returncode, "stdout": stdout, "stderr": stderr[-2000:], "seconds": seconds,
            "peak_rss_bytes": int(marks[-1]) * 1024 if marks else 0}


def file_arrays(path: Path) -> dict:
    """Pairs, and bytes of all the pairs file's datasets held in memory at once (what ``read_pairs`` returns)."""
    from pairing.store import PairRows

    rows = PairRows(path)
    keys = rows.keys()
    total = sum(int(np.prod(rows.info(k)[0])) * rows.info(k)[1].itemsize for k in keys)
    pairs = rows.info("pair")[0][0]
    rows.close()
    return {"pairs": pairs, "arrays_bytes": total, "arrays_bytes_per_pair": total / max(pairs, 1),
            "file_bytes": path.stat().st_size}


def check_csr(path: Path, *, sample: int, seed: int) -> tuple[bool, str]:
    """Whether the file's per-view CSR is whole: its offsets count two entries per pair, and the rows it lists
    for ``sample`` random views each hold that view, as many as the pair column has (read on demand)."""
    from pairing.store import PairColumn, PairRows

    rows = PairRows(path)
    offsets = np.asarray(PairColumn(rows, "view_offsets"))  # (N+1,)
    pair, listed = PairColumn(rows, "pair"), PairColumn(rows, "view_pairs")
    n_pairs = len(pair)
    if offsets[-1] != 2 * n_pairs:
        return False, f"offsets end at {offsets[-1]}, not 2 x {n_pairs} pairs"
    views = np.random.default_rng(seed).choice(len(offsets) - 1, size=min(sample, len(offsets) - 1), replace=False)
    bad = [v for v in views.tolist() if not np.all((pair[listed[offsets[v] : offsets[v + 1]]] == v).sum(axis=1) == 1)]
    rows.close()
    if bad:
        return False, f"view {bad[0]}: a listed pair does not hold it"
    return True, f"{len(views)} random views: every listed pair holds its view; offsets end at 2 x {n_pairs:,} pairs"


def measure_build_memory(views: int, *, views_per_scene: int, folder: Path, seed: int) -> dict:
    """Peak resident memory of ``ess pair`` (defaults: covisibility on) on :func:`write_dataset` views, in a
    child process; the dataset and its pairs stay in ``folder``.

    Raises:
        RuntimeError: ``ess pair`` failed.
    """
    data = write_dataset(folder, views, views_per_scene=views_per_scene, seed=seed)
    run = peak_rss_run("import sys\nfrom ess.main import main\nsys.exit(main(sys.argv[1:]))",
                       ["pair", str(folder), "--no-progress"])
    if run["returncode"] or not run["peak_rss_bytes"]:
        raise RuntimeError(f"ess pair failed on {views:,} synthetic views: {run['stderr'][-500:]}")
    arrays = file_arrays(folder / "pairs.h5")
    matches, why = check_csr(folder / "pairs.h5", sample=1000, seed=seed)
    logger.info("ess pair, %d views: peak RSS %.2f GB in %.0f s", views, run["peak_rss_bytes"] / GB, run["seconds"])
    return {"views": views, "scenes": data["scenes"], "image": f"{MEMORY_IMAGE}x{MEMORY_IMAGE}", **arrays,
            "dataset_s": data["seconds"], "seconds": run["seconds"], "peak_rss_bytes": run["peak_rss_bytes"],
            "csr_matches": matches, "csr_check": why}


def measure_build_memory_rows(sizes: list[int], *, views_per_scene: int, seed: int, keep: Path | None = None) -> list[dict]:
    """:func:`measure_build_memory` at each view count of :func:`memory_sizes`, each in a temporary folder, or in
    :func:`memory_folder` of ``keep``, left there (the loader's memory rows open the same datasets)."""
    import shutil
    import tempfile

    rows = []
    for n in memory_sizes(sizes):
        folder = memory_folder(keep, n) if keep is not None else Path(tempfile.mkdtemp(prefix="ess-bench-pair-memory-"))
        try:
            rows.append(measure_build_memory(n, views_per_scene=views_per_scene, folder=folder / "data", seed=seed))
        finally:
            if keep is None:
                shutil.rmtree(folder, ignore_errors=True)
    return rows


def memory_folder(keep: Path, views: int) -> Path:
    """Where a suite run keeps the synthetic dataset of ``views`` views (and its pairs) for the memory rows of
    both the pairs and the loader sections: ``keep/memory-<views>`` (created)."""
    folder = Path(keep) / f"memory-{views}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def memory_figures(rows: list[dict]) -> list[dict]:
    """Keyword arguments of the suite's figures (:func:`benchmarks.perf.suite.figure`) for the memory rows:
    peak resident memory of ``ess pair`` against the pairs file's datasets held at once (what building held
    before it wrote dataset by dataset); DESIGN's cap, 8 GB, from 1M views up."""
    out = []
    for r in rows:
        at_scale = r["views"] >= 1_000_000
        peak, whole = r["peak_rss_bytes"] / GB, r["arrays_bytes"] / GB
        out.append({
            "section": "pairs", "name": f"`ess pair` peak memory, {r['views']:,} views", "value": peak, "unit": "GB",
            "reference": "the pairs file's datasets all in memory (their size)", "reference_value": whole,
            "ratio": whole / peak, "target": "<= 8 GB" if at_scale else None, "passed": peak <= 8.0 if at_scale else None,
            "setup": f"child process, synthetic {r['image']} views, {r['scenes']} scenes, {r['pairs']:,} pairs, "
            f"covisibility on, {r['seconds']:.0f} s; pairs file {r['file_bytes'] / GB:.2f} GB",
        })
    return out


def memory_sizes(sizes: list[int]) -> list[int]:
    """The view counts of the memory rows: those of ``sizes`` from 100k up, else the largest."""
    return [n for n in sizes if n >= 100_000] or [max(sizes)]


def scaling_exponent(rows: list[dict]) -> float | None:
    """Slope of log(total seconds) against log(N): ~1 for O(N log N) at these sizes, 2 for brute force."""
    if len(rows) < 2:
        return None
    return float(np.polyfit(np.log([r["views"] for r in rows]), np.log([r["total_s"] for r in rows]), 1)[0])


def measure(*, sizes: list[int], views_per_scene: int, brute_max: int, seed: int) -> dict:
    rows = measure_pairs(sizes=sizes, views_per_scene=views_per_scene, brute_max=brute_max, seed=seed)
    return {
        "benchmark": "pairs",
        "data": {
            "kind": "synthetic random walks",
            "house_m": HOUSE,
            "step_m": STEP,
            "camera_height_m": CAMERA_HEIGHT,
            "views_per_scene": views_per_scene,
        },
        "similarity": {"radius_m": 1.0, "max_angle_deg": 45.0, "falloff": "gaussian"},
        "seed": seed,
        "target": "1M views in under a minute on 2 cores, O(n log n) (DESIGN.md)",
        "machine": machine_info(),
        "results": rows,
        "scaling_exponent": scaling_exponent(rows),
        "covisibility": measure_covisibility(views=2048, size=128, stride=4, seed=seed),
    }


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Pair building (radius 1 m, ESS-MW Gaussian), {report['data']['views_per_scene']:,} views per "
        f"{report['data']['house_m']:.0f} x {report['data']['house_m']:.0f} m house, "
        f"{m['cores']} cores ({m['cpu']}), seed {report['seed']}:",
        "",
        "| views | scenes | pairs | positives/view | index s | geometry s | weights s | total s | pairs/s "
        "| brute force s (speed-up) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        brute = f"{r['brute_s']:.2f} ({r['speedup_vs_brute']:.0f}x)" if "brute_s" in r else "not run"
        lines.append(
            f"| {r['views']:,} | {r['scenes']} | {r['pairs']:,} | {r['positives_per_view']:.0f} | {r['index_s']:.2f} "
            f"| {r['geometry_s']:.2f} | {r['weights_s']:.2f} | {r['total_s']:.2f} | {r['pairs_per_s']:,.0f} | {brute} |"
        )
    if report["scaling_exponent"] is not None:
        lines += ["", f"Scaling exponent (log-log fit of total time vs views): {report['scaling_exponent']:.2f}."]
    for r in report.get("memory", []):
        lines += ["", (f"`ess pair` on {r['views']:,} synthetic views ({r['pairs']:,} pairs): peak memory "
                       f"{r['peak_rss_bytes'] / GB:.2f} GB in {r['seconds']:.0f} s (the file's datasets: "
                       f"{r['arrays_bytes'] / GB:.2f} GB, {r['arrays_bytes_per_pair']:.0f} bytes a pair).")]
    c = report["covisibility"]
    lines += [
        "",
        f"Covisibility kernel, {c['size']} depth, stride {c['stride']}, {c['pairs']:,} radius pairs of "
        f"{c['views']} views "
        f"(both directions per pair): {c['pairs_per_s']:,.0f} pairs/s ({c['samples_per_s'] / 1e6:.0f} M samples/s); "
        f"numpy reference {c['reference_pairs_per_s']:,.0f} directed pairs/s.",
    ]
    return "\n".join(lines) + "\n"
