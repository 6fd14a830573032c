"""The performance suite: every DESIGN.md performance target, as ratios against references measured in the
same run, written as ``perf.json`` + ``perf.md`` and, on request, as the README's performance table.

Sections (``--only`` picks some):

* ``render``: CPU rendering at each size, in memory and to shards, against raw Open3D casting of the same
  rays (:mod:`benchmarks.perf.render`);
* ``gpu_render``: GPU rendering (Mitsuba / Dr.Jit) when CUDA and Mitsuba's ``cuda_ad_rgb`` variant are
  there, by :func:`benchmarks.perf.gpu_render.measure` (``views``, ``sizes``, ``repeats`` keywords) once that
  module exists; its report carries a ``figures`` list in the schema below. Otherwise recorded as skipped,
  with the reason;
* ``pairs``: pair building against the O(N^2) brute force and O(N log N) scaling, the covisibility
  kernel against its numpy reference, and the peak memory of ``ess pair`` on synthetic views (from 100k views
  in ``pair_sizes``, else the largest; in a child process) (:mod:`benchmarks.perf.pairs`);
* ``shards``: shard write / read MB/s and samples/s against plain h5py (:mod:`benchmarks.perf.shards`);
* ``loader``: the training loader's pairs/s with 0, 2 and all workers against raw h5py reads
  (:mod:`benchmarks.perf.loader`), and against the images/s the trainer consumes in the same run; the peak
  memory of a process holding the pairs of the memory sizes above, and its tables' bytes per pair;
* ``training``: our MoCo-v2 step against facebookresearch/moco's builder on the CPU, and on CUDA when
  there is one (:mod:`benchmarks.perf.training`).

Every section holds ``figures``: ``{"section", "figure", "value", "unit", "reference",
"reference_value", "ratio", "target", "pass", "setup"}`` (ratio > 1 is better than the reference; ``pass``
is null where DESIGN.md sets no target), the full report of its benchmark, its wall time, the load average
of the machine before and after it (the machine may be shared), and whether it ran, was skipped (with the
reason) or failed (with the error). The top level records the machine, the library versions and the
suite's configuration. Each benchmark checks its own invariants (same pairs as brute force, bytes read ==
bytes written, loader images == raw reads, our MoCo logits == the reference's from the same weights) and
fails its section when one breaks.

Usage::

    ess bench-perf [--quick] [--only shards loader] [--out benchmarks/results] [--readme README.md]
    ess bench-perf --table render|pairs|gpu-render [...]     (one benchmark's own, more detailed table)
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine_info
from benchmarks.perf.report import (  # re-exported: suite.<name> is the suite's face
    failed_checks,
    failures,
    figures,
    readme_block,
    summary_table,
    to_markdown,
    update_readme,
    write_results,
)
from envsim.provenance import to_jsonable

SECTIONS = ("render", "gpu_render", "pairs", "shards", "loader", "training")
REPORT_NAME = "perf"  # perf.json + perf.md
_MAY_BE_ZERO = ("seed", "covisibility_views", "train_cpu_warmup", "train_cuda_warmup", "train_threads")


@dataclass(frozen=True)
class SuiteConfig:
    """Sizes of every section (see each benchmark module for what they mean).

    Attributes:
        render_views: camera poses per CPU render measurement.
        render_sizes: image sides (pixels) of the CPU render measurements.
        render_batch: views per ray-casting call.
        render_repeats: best of this many CPU render runs.
        render_triangles: triangles of the scan-sized headline scene, at least (0: the small house only).
        gpu_views: views per GPU render measurement.
        gpu_sizes: image sides of the GPU render measurements.
        gpu_repeats: best of this many GPU render runs.
        pair_sizes: numbers of views of the pair-building runs.
        pair_views_per_scene: views per synthetic scene.
        pair_brute_max: largest number of views the O(N^2) brute force runs on.
        covisibility_views: views of the covisibility-kernel run (0 skips it).
        covisibility_size: depth-map side of the covisibility run.
        shard_samples: samples per shard.
        shard_size: image side in the shards.
        shard_views: distinct rendered views tiled into the shard.
        shard_repeats: best of this many shard runs.
        loader_houses: procedural houses of the loader's dataset.
        loader_views: views per house.
        loader_size: image side of the loader's dataset.
        loader_batch: pairs per batch.
        loader_repeats: best of this many epochs.
        train_queue: MoCo queue length K (a multiple of both training batches).
        train_cpu_size: image side of the CPU training step.
        train_cpu_batch: batch of the CPU training step (a multiple of 8, the trainer's BN splits).
        train_cpu_steps: timed CPU steps per variant.
        train_cpu_warmup: untimed CPU steps per variant first.
        train_cuda_size: image side of the CUDA training step.
        train_cuda_batch: batch of the CUDA training step.
        train_cuda_steps: timed CUDA steps per variant.
        train_cuda_warmup: untimed CUDA steps per variant first.
        train_diagnostics: also time ours with plain BN and ours with ESS-MB.
        train_threads: torch CPU threads of the CPU training step; 0 = torch's default (what ``ess train``
            uses).
        seed: every benchmark's seed.
    """

    render_views: int = 512
    render_sizes: tuple[int, ...] = (128, 256)
    render_batch: int = 32
    render_repeats: int = 3
    render_triangles: int = 500_000
    gpu_views: int = 4096
    gpu_sizes: tuple[int, ...] = (128, 256)
    gpu_repeats: int = 3
    pair_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    pair_views_per_scene: int = 10_000
    pair_brute_max: int = 10_000
    covisibility_views: int = 2048
    covisibility_size: int = 128
    shard_samples: int = 2000
    shard_size: int = 128
    shard_views: int = 32
    shard_repeats: int = 3
    loader_houses: int = 2
    loader_views: int = 1000
    loader_size: int = 64
    loader_batch: int = 64
    loader_repeats: int = 3
    train_queue: int = 65536
    train_cpu_size: int = 64
    train_cpu_batch: int = 32
    train_cpu_steps: int = 5
    train_cpu_warmup: int = 1
    train_cuda_size: int = 128
    train_cuda_batch: int = 256
    train_cuda_steps: int = 20
    train_cuda_warmup: int = 5
    train_diagnostics: bool = True
    train_threads: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                if not value or any(not isinstance(v, int) or v < 1 for v in value):
                    raise ValueError(f"{f.name} must list whole numbers >= 1, got {value!r}")
            elif isinstance(value, int) and not isinstance(value, bool):
                low = 0 if f.name in _MAY_BE_ZERO else 1
                if value < low:
                    raise ValueError(f"{f.name} must be >= {low}, got {value}")
        if min(self.pair_sizes) < 2 or self.pair_views_per_scene < 2:
            raise ValueError("pair_sizes and pair_views_per_scene must be at least 2")
        for batch in (self.train_cpu_batch, self.train_cuda_batch):
            if batch % 8 or self.train_queue % batch:
                raise ValueError(
                    f"training batch {batch} must be a multiple of 8 and divide train_queue {self.train_queue}"
                )


FULL = SuiteConfig()
QUICK = SuiteConfig(
    render_views=64,
    render_repeats=1,
    gpu_views=1024,
    gpu_repeats=1,
    pair_sizes=(10_000, 100_000),
    covisibility_views=512,
    shard_samples=500,
    shard_repeats=1,
    loader_houses=1,
    loader_views=256,
    loader_batch=32,
    loader_repeats=1,
    train_cpu_steps=2,
    train_cuda_steps=5,
    train_cuda_warmup=2,
    train_diagnostics=False,
)


# --- figures -------------------------------------------------------------------------------------------------


def figure(
    section: str,
    name: str,
    value: float,
    unit: str,
    *,
    reference: str,
    reference_value: float,
    ratio: float,
    setup: str,
    target: str | None = None,
    passed: bool | None = None,
) -> dict[str, Any]:
    """One row of the suite's table: a measured value, the same-run reference it is compared with, and the ratio
    (> 1: better than the reference)."""
    return {
        "section": section,
        "figure": name,
        "value": float(value),
        "unit": unit,
        "reference": reference,
        "reference_value": float(reference_value),
        "ratio": float(ratio),
        "target": target,
        "pass": passed,
        "setup": setup,
    }


def library_versions() -> dict[str, str]:
    """Versions of the libraries on the hot paths (those present), the HDF5 library, and CUDA when there is one."""
    versions = dict(machine_info()["versions"])
    for pkg in ("scipy", "hdf5plugin", "mitsuba", "drjit", "Pillow"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    try:
        import h5py

        versions["HDF5"] = h5py.version.hdf5_version
    except ImportError:
        pass
    cuda = _cuda()
    if cuda:
        import torch

        versions["CUDA (torch)"] = torch.version.cuda or "?"
        versions["GPU"] = torch.cuda.get_device_name(0)
    return versions


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


# --- sections ------------------------------------------------------------------------------------------------


def _render(cfg: SuiteConfig, scratch: Path) -> dict[str, Any]:
    from benchmarks.perf import render

    report = render.measure(
        views=cfg.render_views, sizes=list(cfg.render_sizes), triangles_min=cfg.render_triangles,
        batch=cfg.render_batch, repeats=cfg.render_repeats,
    )
    raw = "raw Open3D ray casting of the same rays"
    figures = []
    for r in report["results"]:
        where = f"{r['scene']} house ({r['triangles']:,} triangles), {r['size']}"
        common = {
            "reference": raw,
            "reference_value": r["raw_views_per_s"],
            "setup": f"procedural house, {r['triangles']:,} triangles, {r['views']} views at {r['size']}, best of "
                     f"{report['repeats']}",
        }
        figures.append(figure(
            "render", f"CPU render in memory, {where}", r["render_views_per_s"], "views/s",
            ratio=r["render_ratio_to_raw"], **common,
        ))
        ratio = r["to_shards_ratio_to_raw"]
        figures.append(figure(
            "render", f"CPU render to shards, {where}", r["to_shards_views_per_s"], "views/s",
            ratio=ratio, target=">= 0.75", passed=ratio >= 0.75, **common,
        ))
        if math.isfinite(r["to_shards_steady_views_per_s"]):  # a job of one batch has no steady state
            figures.append(figure(
                "render", f"CPU render to shards after the first batch, {where}", r["to_shards_steady_views_per_s"],
                "views/s", ratio=r["to_shards_steady_ratio_to_raw"], **common,
            ))
            # What overlap alone could give: the steady state's CPU time per view spread over every core.
            figures.append(figure(
                "render", f"the same, if every core were busy ({r['steady_core_use']:.0%} were), {where}",
                r["to_shards_steady_full_cores_ratio"] * r["raw_views_per_s"], "views/s",
                ratio=r["to_shards_steady_full_cores_ratio"], **common,
            ))
    return {"report": report, "figures": figures, "markdown": render.to_markdown(report), "scene": report["scene"]}


def _gpu_render(cfg: SuiteConfig, scratch: Path) -> dict[str, Any]:
    import importlib

    if not _cuda():
        return {"skipped": "no CUDA device (torch.cuda.is_available() is False)"}
    try:
        import mitsuba as mi
    except ImportError as exc:
        return {"skipped": f"Mitsuba is not importable ({exc}); pip install the 'gpu' extra"}
    if "cuda_ad_rgb" not in mi.variants():
        return {"skipped": "this Mitsuba build has no cuda_ad_rgb variant"}
    try:
        gpu_render = importlib.import_module("benchmarks.perf.gpu_render")
    except ModuleNotFoundError as exc:
        if exc.name != "benchmarks.perf.gpu_render":
            raise
        return {"skipped": "benchmarks.perf.gpu_render does not exist yet (the GPU renderer's benchmark)"}
    report = gpu_render.measure(views=cfg.gpu_views, sizes=list(cfg.gpu_sizes), repeats=cfg.gpu_repeats)
    out: dict[str, Any] = {
        "report": report,
        "figures": [dict(f, section="gpu_render") for f in report.get("figures", [])],
    }
    if hasattr(gpu_render, "to_markdown"):
        out["markdown"] = gpu_render.to_markdown(report)
    if "scene" in report:
        out["scene"] = report["scene"]
    return out


def nlogn_exponent(sizes: list[int]) -> float:
    """Slope of the log-log least-squares line through (N, N log N): what O(N log N) scores at these sizes."""
    n = np.asarray(sizes, np.float64)
    return float(np.polyfit(np.log(n), np.log(n * np.log(n)), 1)[0])


def _pairs(cfg: SuiteConfig, scratch: Path) -> dict[str, Any]:
    from benchmarks.perf import pairs

    sizes = sorted(cfg.pair_sizes)
    rows = pairs.measure_pairs(
        sizes=sizes, views_per_scene=cfg.pair_views_per_scene, brute_max=cfg.pair_brute_max, seed=cfg.seed
    )
    report = {  # the layout of benchmarks.perf.pairs.measure, with the covisibility run sized by the config
        "benchmark": "pairs",
        "data": {
            "kind": "synthetic random walks",
            "house_m": pairs.HOUSE,
            "step_m": pairs.STEP,
            "camera_height_m": pairs.CAMERA_HEIGHT,
            "views_per_scene": cfg.pair_views_per_scene,
        },
        "similarity": {"radius_m": 1.0, "max_angle_deg": 45.0, "falloff": "gaussian"},
        "seed": cfg.seed,
        "target": "1M views in under a minute on 2 cores, O(n log n) (DESIGN.md)",
        "machine": machine_info(),
        "results": rows,
        "scaling_exponent": pairs.scaling_exponent(rows),
    }
    if cfg.covisibility_views:
        report["covisibility"] = pairs.measure_covisibility(
            views=cfg.covisibility_views, size=cfg.covisibility_size, stride=4, seed=cfg.seed
        )
    data = f"synthetic random walks, {cfg.pair_views_per_scene:,} views per 12 x 12 m house, radius 1 m"
    figures = []
    first = rows[0]
    for r in rows:
        setup = f"{data}, {r['views']:,} views, {r['pairs']:,} pairs"
        if "brute_s" in r:
            figures.append(figure(
                "pairs", f"pair building, {r['views']:,} views", r["pairs_per_s"], "pairs/s",
                reference="O(N^2) brute force written apart, same pairs and weights: "
                + ("checked, equal" if r["brute_matches"] else f"**differ** ({r['brute_check']})"),
                reference_value=r["pairs"] / r["brute_s"], ratio=r["speedup_vs_brute"], setup=setup,
            ))
        if r["views"] > first["views"]:
            scale = r["views"] * math.log(r["views"]) / (first["views"] * math.log(first["views"]))
            predicted = first["total_s"] * scale
            target, passed = None, None
            if r["views"] >= 1_000_000:  # DESIGN: 1M views in under a minute (larger N scaled back to 1M)
                at_1m = r["total_s"] * 1e6 * math.log(1e6) / (r["views"] * math.log(r["views"]))
                target, passed = "< 60 s at 1M views", at_1m < 60.0
            figures.append(figure(
                "pairs", f"pair building time, {r['views']:,} views", r["total_s"], "s",
                reference=f"extrapolated, not measured: O(N log N) from the {first['views']:,}-view time of this run",
                reference_value=predicted, ratio=predicted / r["total_s"], setup=setup, target=target, passed=passed,
            ))
    exponent = report["scaling_exponent"]
    if exponent is not None:
        ideal = nlogn_exponent(sizes)
        figures.append(figure(
            "pairs", "pair building scaling exponent", exponent, "",
            reference="N log N over the same sizes (brute force: 2)", reference_value=ideal, ratio=ideal / exponent,
            setup=f"{data}, log-log fit over {', '.join(f'{n:,}' for n in sizes)} views",
            target="<= N log N's + 0.15", passed=exponent <= ideal + 0.15,
        ))
    if "covisibility" in report:
        c = report["covisibility"]
        ref = c["reference_pairs_per_s"] / 2  # the reference's figure counts directed pairs
        figures.append(figure(
            "pairs", f"covisibility kernel, {c['size']}, stride {c['stride']}", c["pairs_per_s"], "pairs/s",
            reference="per-pixel back-projection written apart, every pair: "
            + ("checked, equal" if c["reference_matches"] else f"**differ** ({c['reference_check']})"),
            reference_value=ref, ratio=c["pairs_per_s"] / ref,
            setup=f"{c['views']:,} views, {c['pairs']:,} radius pairs, both directions",
        ))
    report["memory"] = pairs.measure_build_memory_rows(sizes, views_per_scene=cfg.pair_views_per_scene, seed=cfg.seed,
                                                       keep=scratch)
    figures += [figure(f.pop("section"), f.pop("name"), **f) for f in pairs.memory_figures(report["memory"])]
    markdown = pairs.to_markdown(report) if "covisibility" in report else None  # its table needs the covisibility
    return {"report": report, "figures": figures, "markdown": markdown}


def _shards(cfg: SuiteConfig, scratch: Path) -> dict[str, Any]:
    from benchmarks.perf import shards

    report = shards.measure(
        samples=cfg.shard_samples, size=cfg.shard_size, repeats=cfg.shard_repeats, views=cfg.shard_views, seed=cfg.seed
    )
    d = report["data"]
    figures = []
    for r in report["results"]:
        c = r["compression"]
        setup = (
            f"{d['samples']:,} samples of {d['size']} RGB + {d['depth_dtype']} depth, {c} ({r['size_ratio']:.2f}x), "
            f"writes fsync'ed, reads from the page cache, best of {report['repeats']}"
        )
        for op, ours, ref in (
            ("write", "ShardWriter", "plain h5py, one create_dataset per array, fsync'ed as ours"),
            ("read", "read_shard", "plain h5py f[key][()] of the same file"),
        ):
            ratio = r[f"{op}_ratio"]
            figures.append(figure(
                "shards", f"shard {op} ({ours}), {c}", r[f"{op}_ours_mb_per_s"], "MB/s",
                reference=f"{ref}, same chunks and filters", reference_value=r[f"{op}_reference_mb_per_s"],
                ratio=ratio, setup=f"{setup}; {r[f'{op}_ours_samples_per_s']:,.0f} samples/s",
                target=">= 0.8", passed=ratio >= 0.8,
            ))
    return {"report": report, "figures": figures, "markdown": shards.to_markdown(report)}


def _loader(cfg: SuiteConfig, scratch: Path) -> dict[str, Any]:
    from benchmarks.perf import loader

    report = loader.measure(
        houses=cfg.loader_houses, views=cfg.loader_views, size=cfg.loader_size, batch=cfg.loader_batch,
        repeats=cfg.loader_repeats, seed=cfg.seed,
    )
    d = report["data"]
    setup = (
        f"{d['views']:,} views of {d['size']}, batch {report['batch']}, best of {report['repeats']} epochs, "
        "worker start-up included"
    )
    figures = [
        figure(
            "loader", f"loader, {r['workers']} workers", r["pairs_per_s"], "pairs/s",
            reference="raw h5py reads of the same samples, one process", reference_value=r["reference_pairs_per_s"],
            ratio=r["ratio"], setup=setup,
            # the loader's own cost, in the process that trains (DESIGN: >= 0.5 of raw reads); workers add start-up
            **({"target": ">= 0.5", "passed": r["ratio"] >= 0.5} if r["workers"] == 0 else {}),
        )
        for r in report["results"]
    ]
    report["memory"] = loader.measure_memory_rows(cfg.pair_sizes, views_per_scene=cfg.pair_views_per_scene, seed=cfg.seed,
                                                  keep=scratch)
    figures += [figure(f.pop("section"), f.pop("name"), **f) for f in loader.memory_figures(report["memory"])]
    return {"report": report, "figures": figures, "markdown": loader.to_markdown(report)}


def _training(cfg: SuiteConfig, scratch: Path) -> dict[str, Any]:
    from benchmarks.perf import training

    runs = {
        "cpu": training.measure(
            device="cpu", size=cfg.train_cpu_size, batch=cfg.train_cpu_batch, steps=cfg.train_cpu_steps,
            warmup=cfg.train_cpu_warmup, queue=cfg.train_queue, diagnostics=cfg.train_diagnostics,
            threads=cfg.train_threads, seed=cfg.seed,
        )
    }
    skipped = {}
    if _cuda():
        runs["cuda"] = training.measure(
            device="cuda", size=cfg.train_cuda_size, batch=cfg.train_cuda_batch, steps=cfg.train_cuda_steps,
            warmup=cfg.train_cuda_warmup, queue=cfg.train_queue, diagnostics=cfg.train_diagnostics, seed=cfg.seed,
        )
    else:
        skipped["cuda"] = "no CUDA device (torch.cuda.is_available() is False)"
    figures = []
    for device, report in runs.items():
        s = report["setup"]
        ref = next(r for r in report["results"] if r["variant"] == "reference")
        for r in report["results"]:
            if r["variant"] == "reference":
                continue
            main = r["variant"] == "ours"
            target = passed = None
            if main and device == "cuda":
                target, passed = ">= 1.5 (H100)", r["ratio_to_reference"] >= 1.5
            figures.append(figure(
                "training", f"MoCo-v2 step, {s.get('gpu', 'CPU')}, {r['variant']}", r["images_per_s"], "images/s",
                reference="facebookresearch/moco builder, same ResNet, batch and resolution",
                reference_value=ref["images_per_s"], ratio=r["ratio_to_reference"], target=target, passed=passed,
                setup=f"{s['arch']} @ {s['size']}, batch {s['batch']}, K {s['K']}, {s['precision']}, "
                f"{s['threads']} threads, median of {s['steps']} steps" + ("" if main else " (diagnostic)"),
            ))
    markdown = "\n".join(training.to_markdown(r) for r in runs.values())
    return {"report": runs, "figures": figures, "markdown": markdown, "skipped_parts": skipped}


# Each section runs as RUNNERS[name](config, scratch): scratch is a folder of this run, shared by its sections
# (the pairs and loader sections both use the synthetic memory datasets) and removed when the run ends.
RUNNERS: dict[str, Callable[[SuiteConfig, Path], dict[str, Any]]] = {
    "render": _render,
    "gpu_render": _gpu_render,
    "pairs": _pairs,
    "shards": _shards,
    "loader": _loader,
    "training": _training,
}


def _run_section(name: str, cfg: SuiteConfig, scratch: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    start = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    try:
        out = RUNNERS[name](cfg, scratch)
    except Exception as exc:  # noqa: BLE001 - one broken section (or invariant) must not hide the others
        out = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)}
    bad = failed_checks(out)
    if bad and "error" not in out:
        out["error"] = "check failed: " + "; ".join(bad)
    section: dict[str, Any] = {"status": "skipped" if "skipped" in out else "error" if "error" in out else "ok"}
    if "skipped" in out:
        section["reason"] = out.pop("skipped")
    section.update(out)
    section.setdefault("figures", [])
    section.update(measured_at=start, seconds=time.perf_counter() - t0, load_average=[load_before, os.getloadavg()[0]])
    return section


def _loader_vs_trainer(sections: dict[str, Any]) -> None:
    """The DESIGN target 'loader faster than the trainer consumes': the best loader pairs/s against the
    images/s our trainer step consumed in this run (GPU when measured, else CPU); one image pair per sample."""
    loader_s, training_s = sections.get("loader"), sections.get("training")
    if not (loader_s and training_s and loader_s["status"] == training_s["status"] == "ok"):
        return
    runs = training_s["report"]
    device = "cuda" if "cuda" in runs else "cpu"
    ours = next(r for r in runs[device]["results"] if r["variant"] == "ours")
    best = max(loader_s["report"]["results"], key=lambda r: r["pairs_per_s"])
    s, d = runs[device]["setup"], loader_s["report"]["data"]
    ratio = best["pairs_per_s"] / ours["images_per_s"]
    loader_s["figures"].append(figure(
        "loader", f"loader ({best['workers']} workers) vs trainer consumption", best["pairs_per_s"], "pairs/s",
        reference=f"our MoCo step's samples/s on {s.get('gpu', 'the CPU')} in this run",
        reference_value=ours["images_per_s"],
        ratio=ratio, target=">= 1", passed=ratio >= 1.0,
        setup=f"loader at {d['size']}, trainer at {s['size']} batch {s['batch']}",
    ))


# --- the suite -----------------------------------------------------------------------------------------------


def check_clean(allow_dirty: bool) -> None:
    """Refuse to measure code with uncommitted changes (no commit would reproduce the figures) unless allowed.

    Raises:
        ValueError: the tree has uncommitted changes and ``allow_dirty`` is False.
    """
    from envsim.version import code_version

    if code_version().endswith(".dirty") and not allow_dirty:
        raise ValueError(f"the code has uncommitted changes ({code_version()}): no commit would reproduce these "
                         "figures; commit first, or pass --allow-dirty (the table then says so)")


def table_provenance(report: dict[str, Any], command: str) -> str:
    """The line under one benchmark's own table: when it was measured, on which code, by which command."""
    version = report["machine"]["code_version"]
    dirty = " (**uncommitted changes**: no commit reproduces these figures)" if version.endswith(".dirty") else ""
    return f"Measured {report['started']} on code {version}{dirty} by `{command}`.\n"


def run_suite(
    *,
    quick: bool,
    out: Path,
    only: list[str] | None,
    config: SuiteConfig | None = None,
    merge: bool = False,
    progress: Callable[[str], None] | None = None,
    allow_dirty: bool = False,
) -> dict[str, Any]:
    """Run the suite and write ``perf.json`` + ``perf.md`` into ``out``.

    Args:
        quick: the reduced sizes (:data:`QUICK`, about two minutes on 2 cores) instead of :data:`FULL`.
        out: folder of the report.
        only: section names to run (default all of :data:`SECTIONS`).
        config: explicit sizes (overrides ``quick``).
        merge: keep the sections of an existing ``out/perf.json`` that this run does not measure; each kept
            section records the date and code version of the run that measured it (shown in the table).
        progress: called with each section's name before it runs.
        allow_dirty: measure code with uncommitted changes (the report and its table say so); otherwise such a
            tree is refused, since no commit would reproduce its figures.

    Returns:
        The report written to ``perf.json``.

    Raises:
        ValueError: an unknown section name, or uncommitted changes without ``allow_dirty``.
    """
    check_clean(allow_dirty)
    names = list(SECTIONS) if not only else list(dict.fromkeys(only))
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    cfg = config or (QUICK if quick else FULL)
    out = Path(out)
    t0 = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    sections: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ess-bench-suite-") as scratch:  # datasets sections share, then gone
        for name in names:
            if progress is not None:
                progress(name)
            sections[name] = _run_section(name, cfg, Path(scratch))
    _loader_vs_trainer(sections)
    if merge and (out / f"{REPORT_NAME}.json").is_file():
        old = json.loads((out / f"{REPORT_NAME}.json").read_text())
        kept = {
            k: dict(v, merged_from_run=v.get("merged_from_run") or old.get("started"),
                    merged_code_version=v.get("merged_code_version") or (old.get("machine") or {}).get("code_version"))
            for k, v in old.get("sections", {}).items()
            if k not in sections
        }
        sections = {k: sections.get(k, kept.get(k)) for k in SECTIONS if k in sections or k in kept}
    report = {
        "suite": "perf",
        "mode": "custom" if config is not None else "quick" if quick else "full",
        "started": started,
        "seconds": time.perf_counter() - t0,
        "config": to_jsonable(dataclasses.asdict(cfg), finite=True),
        "machine": machine_info(),
        "versions": library_versions(),
        "sections": sections,
    }
    report = to_jsonable(report, finite=True)
    write_results(out, REPORT_NAME, report, to_markdown(report))
    return report


__all__ = [
    "FULL", "QUICK", "REPORT_NAME", "RUNNERS", "SECTIONS", "SuiteConfig", "check_clean", "failed_checks", "failures",
    "figure", "figures", "library_versions", "nlogn_exponent", "readme_block", "run_suite", "summary_table",
    "table_provenance", "to_markdown", "update_readme", "write_results",
]
