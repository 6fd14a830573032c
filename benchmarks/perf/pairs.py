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

Usage::

    ess bench-perf --table pairs [--sizes 10000 100000 1000000] [--out benchmarks/results]
"""

from __future__ import annotations

import logging
import math
import time

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
    """O(N^2) reference: every pair (i < j) of the same scene within the radius, and its ESS-MW weight."""
    from pairing.similarity import pair_geometry, weighted_similarity

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
    return pairs, weighted_similarity(*pair_geometry(position, rotation, pairs), config)


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
            if not (np.array_equal(bp, pairs) and np.array_equal(bw, weight)):
                raise AssertionError(f"KD-tree and brute force disagree at N={n}: {len(bp)} vs {len(pairs)} pairs")
            row.update(brute_s=t_brute, speedup_vs_brute=t_brute / total, brute_matches=True)
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


def measure_covisibility(*, views: int, size: int, stride: int, seed: int) -> dict:
    from envsim.camera import pose_matrix
    from pairing.covisibility import CovisibilityConfig, covisibility, covisibility_pairs
    from pairing.index import radius_pairs

    rng = np.random.default_rng([seed, 1])
    position, rotation, scene = synthetic_views(views, views_per_scene=views, rng=rng)
    depth, K = box_room_depth(position, rotation, size=size)
    pose = pose_matrix(position, rotation)
    pairs = radius_pairs(position, scene, radius=1.0)
    config = CovisibilityConfig(stride=stride)
    check = pairs[rng.choice(len(pairs), size=min(20, len(pairs)), replace=False)]
    fast = covisibility_pairs(depth, pose, K, check, config=config)  # also compiles the kernel

    def reference(a: int, b: int) -> float:
        return covisibility(depth[a], pose[a], depth[b], pose[b], K, config=config)

    ref = np.array([[reference(a, b), reference(b, a)] for a, b in check])
    if not np.allclose(fast, ref, atol=1e-6):
        raise AssertionError("covisibility kernel disagrees with the numpy reference")
    t, covis = _timed(lambda: covisibility_pairs(depth, pose, K, pairs, config=config), 3)
    t_ref, _ = _timed(lambda: [reference(a, b) for a, b in check], 1)
    samples = math.ceil(size / stride) ** 2
    return {
        "views": views,
        "size": f"{size}x{size}",
        "stride": stride,
        "pairs": int(len(pairs)),
        "seconds": t,
        "pairs_per_s": len(pairs) / t,
        "samples_per_s": 2 * samples * len(pairs) / t,
        "reference_pairs_per_s": len(check) / t_ref,  # one direction per call
        "mean_covisibility": float(covis.mean()),
        "reference_matches": True,
    }


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
    c = report["covisibility"]
    lines += [
        "",
        f"Covisibility kernel, {c['size']} depth, stride {c['stride']}, {c['pairs']:,} radius pairs of "
        f"{c['views']} views "
        f"(both directions per pair): {c['pairs_per_s']:,.0f} pairs/s ({c['samples_per_s'] / 1e6:.0f} M samples/s); "
        f"numpy reference {c['reference_pairs_per_s']:,.0f} directed pairs/s.",
    ]
    return "\n".join(lines) + "\n"
