"""Loader throughput: pairs/s of :class:`pairing.loader.SpatialPairs` through ``torch.utils.data.DataLoader``
with 0, 2 and all worker processes, against raw h5py reads of the same samples, in the same run.

A small dataset is rendered (procedural houses, :func:`envsim.job.driver.render_dataset`) and paired
(:func:`pairing.build.build_pairs`, distance rule, covisibility off: the loader does not read it), then:

1. **loader**: exactly what ``ess train`` iterates: ``SpatialPairs`` with ESS-MB partner sampling and the
   trainer's uint8 CHW transform, batched by :class:`training.views.EpochBatches` (one epoch, the last
   incomplete batch dropped) through a fresh ``DataLoader`` (the trainer builds one per epoch, so worker
   start-up is part of the figure);
2. **reference**: a trivial loader in this process: the same anchors in the same order with the same
   partners (drawn beforehand, outside the timing), each image read with ``h5py`` ``ds[row]`` from files
   opened once, stacked per batch with numpy.

ratio = loader pairs/s / reference pairs/s (best of ``repeats`` epochs each). The reference is one process,
so workers can push the ratio above 1. One untimed epoch checks that the loader, with the most workers,
yields exactly the reference's images, batch by batch.

Memory: a child process opens ``SpatialPairs`` (uniform and weighted sampling) on synthetic datasets of the
suite's memory sizes (:func:`benchmarks.perf.pairs.write_dataset` + ``ess pair``); its peak resident memory
(``os.wait4``) and its tables' bytes per pair are compared with the pairs file's datasets held whole, and for
2,000 random views its positives and partner draws are checked against the file's own CSR read on demand.

Usage: part of the suite, ``ess bench-perf --only loader``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine_info


def make_dataset(folder: Path, *, houses: int, views: int, size: int, seed: int) -> dict[str, Any]:
    """Render ``houses`` procedural houses x ``views`` views at ``size`` x ``size`` and build their pairs."""
    from envsim.job import DatasetConfig, render_dataset, resolve_sources
    from envsim.nav.trajectory import TrajectoryConfig
    from envsim.render.renderer import RenderConfig
    from pairing.build import PairConfig, build_pairs

    config = DatasetConfig(
        seed=seed,
        render=RenderConfig(width=size, height=size),
        trajectory=TrajectoryConfig(views=views, views_per_trajectory=max(1, min(views, 50))),
    )
    t0 = time.perf_counter()
    manifest = render_dataset(resolve_sources([f"procedural:{houses}"]), config=config, out=folder)
    t1 = time.perf_counter()
    build_pairs(folder, config=PairConfig(compute_covisibility=False, seed=seed))
    t2 = time.perf_counter()
    return {
        "views": manifest["total_samples"], "shards": len(manifest["shards"]), "render_s": t1 - t0, "pair_s": t2 - t1
    }


def _loader(dataset, *, batch: int, seed: int, workers: int):
    import torch

    from training.views import EpochBatches

    sampler = EpochBatches(len(dataset), batch_size=batch, seed=seed, epoch=0)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers, persistent_workers=False)


def _reference_plan(dataset, *, batch: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per batch: (shard, row) of every anchor and of its partner, as the loader will draw them."""
    from training.views import EpochBatches

    index_map = dataset.index_map
    plan = []
    for items in EpochBatches(len(dataset), batch_size=batch, seed=seed, epoch=0):
        anchors = index_map[np.asarray(items, np.int64)]
        partners = np.array([dataset.partner(int(i))[0] for i in anchors], np.int64)
        plan.append(dataset.reader.locate(anchors) + dataset.reader.locate(partners))
    return plan


def _reference_epoch(folder: Path, files: list[str], plan) -> list[tuple[np.ndarray, np.ndarray]]:
    """The trivial loader: per-sample h5py reads of the planned rows, stacked per batch."""
    import h5py

    handles = [h5py.File(folder / name, "r") for name in files]
    try:
        rgb = [f["rgb"] for f in handles]
        out = []
        for sa, ra, sb, rb in plan:
            a = np.stack([rgb[s][r] for s, r in zip(sa.tolist(), ra.tolist())])  # (B, H, W, 3)
            b = np.stack([rgb[s][r] for s, r in zip(sb.tolist(), rb.tolist())])  # (B, H, W, 3)
            out.append((a, b))
        return out
    finally:
        for f in handles:
            f.close()


def _loader_epoch(dataset, *, batch: int, seed: int, workers: int, keep: bool) -> tuple[int, float, list]:
    """(pairs, seconds to the first batch, batches kept when ``keep``) of one epoch."""
    t0 = time.perf_counter()
    first, pairs, kept = None, 0, []
    for im_a, im_b, _weight, _meta in _loader(dataset, batch=batch, seed=seed, workers=workers):
        if first is None:
            first = time.perf_counter() - t0
        pairs += len(im_a)
        if keep:
            kept.append((im_a.permute(0, 2, 3, 1).numpy(), im_b.permute(0, 2, 3, 1).numpy()))
    return pairs, first or 0.0, kept


def check_images(
    dataset: Any, folder: Path, files: list[str], plan: list[tuple[np.ndarray, ...]], *, batch: int, seed: int,
    workers: int,
) -> tuple[bool, str]:
    """Not timed: whether the loader with ``workers`` workers yields exactly the reference's images, batch by
    batch, and what was compared (or how they differ).

    ``dataset`` is the :class:`~pairing.loader.SpatialPairs` measured, ``plan`` its reference plan (per batch:
    anchor shards, anchor rows, partner shards, partner rows, each int64 (B,)).
    """
    pairs = sum(len(p[0]) for p in plan)
    expected = _reference_epoch(folder, files, plan)
    n, _, got = _loader_epoch(dataset, batch=batch, seed=seed, workers=workers, keep=True)
    if n != pairs or len(got) != len(expected):
        return False, f"loader yielded {n} pairs in {len(got)} batches, the reference {pairs} in {len(expected)}"
    for k, ((a, b), (ra, rb)) in enumerate(zip(got, expected)):
        if not (np.array_equal(a, ra) and np.array_equal(b, rb)):
            return False, f"batch {k}: loader images differ from raw h5py reads of the same views"
    return True, f"{n} pairs in {len(got)} batches, every image equal"


def _best_times(
    dataset: Any, folder: Path, files: list[str], plan: list[tuple[np.ndarray, ...]], *, batch: int, seed: int,
    workers: list[int], repeats: int,
) -> tuple[float, dict[int, tuple[float, float]]]:
    """Best of ``repeats`` epochs of the reference and of the loader with each worker count (alternating order).

    Returns:
        The reference's best epoch in seconds, and per worker count (best epoch seconds, that epoch's seconds
        to the first batch).
    """
    best_ref = np.inf
    best = {w: (np.inf, 0.0) for w in workers}
    for r in range(repeats):
        order = workers if r % 2 == 0 else workers[::-1]
        t0 = time.perf_counter()
        _reference_epoch(folder, files, plan)
        best_ref = min(best_ref, time.perf_counter() - t0)
        for w in order:
            t0 = time.perf_counter()
            _, first, _ = _loader_epoch(dataset, batch=batch, seed=seed, workers=w, keep=False)
            seconds = time.perf_counter() - t0
            if seconds < best[w][0]:
                best[w] = (seconds, first)
    return best_ref, best


def _result_rows(pairs: int, ref_rate: float, best: dict[int, tuple[float, float]]) -> list[dict[str, Any]]:
    """The report's ``results``: one row per worker count, by worker count.

    Args:
        pairs: pairs per epoch.
        ref_rate: the reference's pairs/s.
        best: per worker count, (best epoch seconds, its seconds to the first batch).
    """
    return [
        {
            "workers": w,
            "pairs": pairs,
            "seconds": s,
            "first_batch_s": first,
            "pairs_per_s": pairs / s,
            "images_per_s": 2 * pairs / s,
            "reference_pairs_per_s": ref_rate,
            "ratio": (pairs / s) / ref_rate,
        }
        for w, (s, first) in sorted(best.items())
    ]


def measure(
    *,
    houses: int,
    views: int,
    size: int,
    batch: int,
    repeats: int,
    workers: list[int] | None = None,
    seed: int = 0,
) -> dict:
    """Pairs/s of the training loader with several worker counts against raw h5py reads (module docstring).

    Args:
        houses: procedural houses in the dataset.
        views: views per house.
        size: image width and height in pixels.
        batch: pairs per batch (the trainer's ``--batch-size``).
        repeats: best of this many epochs per setting.
        workers: DataLoader worker counts; default 0, 2 and ``os.cpu_count()`` (duplicates dropped).
        seed: dataset, pairing and epoch-order seed.

    Returns:
        A report: per worker count, pairs/s, its ratio to the reference, and the time to the first batch.
    """
    from pairing.loader import PartnerSampling, SpatialPairs
    from training.views import image_chw

    if houses < 1 or views < 2 or size < 1 or batch < 1 or repeats < 1:
        raise ValueError("houses, size, batch and repeats must be >= 1 and views >= 2")
    if houses * views < batch:
        raise ValueError(f"{houses} x {views} views make no batch of {batch}")
    workers = sorted(set(workers if workers is not None else [0, 2, os.cpu_count() or 1]))
    with tempfile.TemporaryDirectory(prefix="ess-bench-loader-") as tmp:
        folder = Path(tmp) / "data"
        built = make_dataset(folder, houses=houses, views=views, size=size, seed=seed)
        dataset = SpatialPairs(folder, sampling=PartnerSampling.UNIFORM, transform=image_chw, seed=seed)
        files = [s["file"] for s in dataset.reader.shards]
        plan = _reference_plan(dataset, batch=batch, seed=seed)
        pairs = sum(len(p[0]) for p in plan)

        images_match, images_check = check_images(dataset, folder, files, plan, batch=batch, seed=seed,
                                                  workers=max(workers))
        best_ref, best = _best_times(dataset, folder, files, plan, batch=batch, seed=seed, workers=workers,
                                     repeats=repeats)
        dataset.reader.close()
    ref_rate = pairs / best_ref
    rows = _result_rows(pairs, ref_rate, best)
    return {
        "benchmark": "loader",
        "data": {
            "kind": "procedural houses, random-walk trajectories",
            "houses": houses,
            "views": built["views"],
            "shards": built["shards"],
            "size": f"{size}x{size}",
            "render_s": built["render_s"],
            "pair_s": built["pair_s"],
            "seed": seed,
        },
        "loader": "SpatialPairs(sampling=uniform, transform=uint8 CHW) + EpochBatches + a fresh DataLoader per epoch",
        "reference": "raw h5py per-sample reads of the same anchors and partners, one process, numpy stacking",
        "batch": batch,
        "pairs_per_epoch": pairs,
        "repeats": repeats,
        "reference_pairs_per_s": ref_rate,
        "images_match": images_match,
        "images_check": images_check,
        "target": "loader faster than the GPU trainer consumes (DESIGN.md)",
        "machine": machine_info(),
        "results": rows,
    }


# --- memory: the pairs of 100k and 1M views -----------------------------------------------------------------


def check_partners(dataset: Any, *, sample: int, seed: int) -> tuple[bool, str]:
    """Whether the in-memory tables give, for ``sample`` random views, the positives and partner draws that the
    pairs file's own CSR gives (``view_offsets``, ``view_pairs``, ``pair``, ``positive`` and ``weight``, read
    on demand), with the draw rule of :meth:`pairing.loader.SpatialPairs.partner` written out here."""
    from pairing.loader import PartnerSampling

    n = len(dataset.offsets) - 1
    views = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    for v in views.tolist():
        rows = np.asarray(dataset.view_pairs[int(dataset.offsets[v]) : int(dataset.offsets[v + 1])], np.int64)
        pair = dataset.pairs[rows]  # (k, 2)
        partners = np.where(pair[:, 0] == v, pair[:, 1], pair[:, 0])
        keep = dataset.source.rows("positive", rows).astype(bool) & dataset.allowed[partners]
        partners, rows = partners[keep], rows[keep]
        got = dataset.positives_of(v)
        if not (np.array_equal(got[0], partners) and np.array_equal(got[1], rows)):
            return False, f"view {v}: positives differ from the file's CSR"
        want = (v, 1.0, -1)
        if len(rows):
            rng = np.random.default_rng((dataset.seed, dataset.epoch, v))
            if dataset.sampling is PartnerSampling.WEIGHTED:
                w = dataset.source.rows("weight", rows).astype(np.float64)
                k = int(rng.choice(len(rows), p=w / w.sum())) if w.sum() > 0 else int(rng.integers(len(rows)))
                want = (int(partners[k]), float(w[k]), int(rows[k]))
            else:
                k = int(rng.integers(len(rows)))
                want = (int(partners[k]), 1.0, int(rows[k]))
        if dataset.partner(v) != want:
            return False, f"view {v}: drew {dataset.partner(v)}, the file's CSR gives {want}"
    if dataset.partners(views.tolist()) != [dataset.partner(v) for v in views.tolist()]:
        return False, "partners drawn for many views at once differ from those drawn one by one"
    return True, f"{len(views)} random views: positives and partner draws equal the file's CSR"


def memory_child(argv: list[str] | None = None) -> None:
    """In a child process (:func:`measure_memory`): open ``SpatialPairs(FOLDER, sampling=SAMPLING)``, check its
    tables against the file (:func:`check_partners`), print a JSON line (the parent measures peak memory)."""
    import json
    import sys

    from pairing.loader import PartnerSampling, SpatialPairs

    folder, sampling = (argv if argv is not None else sys.argv[1:])[:2]
    t0 = time.perf_counter()
    dataset = SpatialPairs(folder, sampling=PartnerSampling(sampling))
    opened = time.perf_counter() - t0
    matches, why = check_partners(dataset, sample=2000, seed=0)
    line = json.dumps({"open_s": opened, "table_bytes": dataset.table.nbytes, "pairs": len(dataset.pairs),
                       "bytes_per_pair": dataset.table.bytes_per_pair(), "delta_dtype": dataset.table.up_delta.dtype.name,
                       "partners_match": matches, "partners_check": why})
    sys.stdout.write(line + "\n")  # the answer to the parent process, which reads this one line


def measure_memory(views: int, *, views_per_scene: int, folder: Path, seed: int,
                   samplings: tuple[str, ...] = ("uniform", "weighted")) -> list[dict]:
    """Peak resident memory of a process holding :class:`~pairing.loader.SpatialPairs` of ``views`` synthetic
    views (:func:`benchmarks.perf.pairs.write_dataset` + ``ess pair``, built here when ``folder`` has no pairs),
    one child process per sampling mode.

    Raises:
        RuntimeError: a child failed.
    """
    import json
    import shutil

    from benchmarks.perf import pairs as pair_bench

    if not (folder / "pairs.h5").is_file():  # not built, or left half-built by a failed pairs section
        shutil.rmtree(folder, ignore_errors=True)
        pair_bench.measure_build_memory(views, views_per_scene=views_per_scene, folder=folder, seed=seed)
    arrays = pair_bench.file_arrays(folder / "pairs.h5")
    rows = []
    for sampling in samplings:
        code = "from benchmarks.perf.loader import memory_child\nmemory_child()"
        run = pair_bench.peak_rss_run(code, [str(folder), sampling])
        if run["returncode"] or not run["peak_rss_bytes"]:
            raise RuntimeError(f"SpatialPairs ({sampling}) failed on {views:,} views: {run['stderr'][-500:]}")
        child = json.loads(run["stdout"].strip().splitlines()[-1])
        rows.append({"views": views, "sampling": sampling, **arrays, **child, "seconds": run["seconds"],
                     "peak_rss_bytes": run["peak_rss_bytes"]})
    return rows


def measure_memory_rows(sizes: list[int], *, views_per_scene: int, seed: int, keep: Path | None = None) -> list[dict]:
    """:func:`measure_memory` at each view count of :func:`benchmarks.perf.pairs.memory_sizes`, each on its own
    synthetic dataset in a temporary folder, or on the one the pairs section left in ``keep`` (built there when
    it is missing; see :func:`benchmarks.perf.pairs.memory_folder`)."""
    import shutil

    from benchmarks.perf.pairs import memory_folder, memory_sizes

    rows = []
    for n in memory_sizes(sizes):
        folder = memory_folder(keep, n) if keep is not None else Path(tempfile.mkdtemp(prefix="ess-bench-loader-memory-"))
        try:
            rows += measure_memory(n, views_per_scene=views_per_scene, folder=folder / "data", seed=seed)
        finally:
            if keep is None:
                shutil.rmtree(folder, ignore_errors=True)
    return rows


def memory_figures(rows: list[dict]) -> list[dict]:
    """Keyword arguments of the suite's figures for the memory rows: a process's peak resident memory holding
    the pairs (DESIGN's cap: 2 GB at 1M views) and the in-memory tables' bytes per pair (cap 12), each against
    the pairs file's datasets held whole (what :class:`~pairing.loader.SpatialPairs` held before)."""
    out = []
    for r in rows:
        at_scale, whole = r["views"] >= 1_000_000, r["arrays_bytes"] / 1e9
        setup = (f"child process, SpatialPairs(sampling={r['sampling']}) of {r['views']:,} synthetic views, "
                 f"{r['pairs']:,} pairs, opened in {r['open_s']:.1f} s; partner offsets {r['delta_dtype']}")
        peak = r["peak_rss_bytes"] / 1e9
        out.append({"section": "loader", "name": f"loader peak memory ({r['sampling']}), {r['views']:,} views",
                    "value": peak, "unit": "GB", "reference": "the pairs file's datasets all in memory (their size)",
                    "reference_value": whole, "ratio": whole / peak, "setup": setup,
                    "target": "<= 2 GB" if at_scale else None, "passed": peak <= 2.0 if at_scale else None})
        out.append({"section": "loader", "name": f"loader tables ({r['sampling']}), {r['views']:,} views",
                    "value": r["bytes_per_pair"], "unit": "bytes/pair",
                    "reference": "the pairs file's datasets, per pair", "reference_value": r["arrays_bytes_per_pair"],
                    "ratio": r["arrays_bytes_per_pair"] / r["bytes_per_pair"], "setup": setup + "; offsets counted",
                    "target": "<= 12", "passed": r["bytes_per_pair"] <= 12.0})
    return out


def to_markdown(report: dict) -> str:
    d, m = report["data"], report["machine"]
    title = (
        f"Loader, {d['views']:,} views of {d['size']} ({d['houses']} procedural houses), batch {report['batch']}, "
        f"{report['pairs_per_epoch']:,} pairs per epoch, {m['cores']} cores ({m['cpu']}), best of {report['repeats']}; "
        f"raw h5py reads of the same samples: {report['reference_pairs_per_s']:,.0f} pairs/s:"
    )
    lines = [
        title,
        "",
        "| workers | pairs/s | ratio to raw h5py | first batch s |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        lines.append(f"| {r['workers']} | {r['pairs_per_s']:,.0f} | {r['ratio']:.2f} | {r['first_batch_s']:.3f} |")
    if report.get("memory"):
        lines += ["", "Memory of a process holding the pairs (synthetic views; the file's datasets whole, for reference):",
                  "", "| views | pairs | sampling | peak GB | tables bytes/pair | file's datasets GB |",
                  "| ---: | ---: | --- | ---: | ---: | ---: |"]
        lines += [f"| {r['views']:,} | {r['pairs']:,} | {r['sampling']} | {r['peak_rss_bytes'] / 1e9:.2f} "
                  f"| {r['bytes_per_pair']:.2f} | {r['arrays_bytes'] / 1e9:.2f} |" for r in report["memory"]]
    return "\n".join(lines) + "\n"
