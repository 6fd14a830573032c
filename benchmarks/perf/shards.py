"""Shard write and read throughput: :class:`envsim.store.shards.ShardWriter` / :func:`envsim.store.shards.read_shard`
against plain h5py on the same arrays, in the same run.

The arrays are rendered views, not noise, so compression ratios are realistic: a few views of a procedural
house are rendered with :func:`envsim.job.driver.render_dataset` and tiled to the wanted number of samples
(every chunk is still one real view). For each compression (``lzf``, the default; ``none``; ``lz4`` when
hdf5plugin is installed) and each repeat:

1. **write, ours**: ``ShardWriter`` in a ``with`` block, batches of ``batch`` samples (as the renderer
   writes them), atomic rename at the end;
2. **write, reference**: plain h5py, one ``create_dataset(data=...)`` per array with the same chunks and
   the same filter pipeline (checked on the files, not assumed), then ``fsync`` of the file and its folder:
   the durability the writer gives (:func:`envsim.provenance.durable_replace`), so both sides pay for the disk
   alike (without it, whichever side runs after a ``fsync`` finds the dirty pages already written back and
   the other pays the kernel's writeback throttling: the ratio would measure the order of the runs); a
   second, diagnostic reference fills the same datasets ``batch`` rows at a time (the writer's access
   pattern), which separates the cost of writing in batches from the writer's own overhead;
3. **read, ours**: ``read_shard`` of our file;
4. **read, reference**: plain h5py ``f[key][()]`` of every dataset of the same file.

Throughput counts raw (uncompressed) bytes: MB/s = raw bytes / 1e6 / seconds, and samples/s. Files live in
a temporary folder on the local disk, every write ends durable on it (fsync) and reads come back from the
page cache (no cache drop). The suite checks that
the bytes read back (through both readers, from both files) equal the bytes written.

Usage: part of the suite, ``ess bench-perf --only shards``.
"""

from __future__ import annotations

import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine_info

IMAGE_KEYS = ("rgb", "depth")
WRITE_BATCH = 32  # samples per ShardWriter.write call: the renderer's default batch_views
MEASUREMENTS = ("write_ours", "write_reference", "write_reference_batched", "read_ours", "read_reference")


def rendered_views(folder: Path, *, views: int, size: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``views`` views of one procedural house at ``size`` x ``size``: the shard arrays and attributes."""
    from envsim.job import DatasetConfig, render_dataset, resolve_sources
    from envsim.nav.trajectory import TrajectoryConfig
    from envsim.render.renderer import RenderConfig
    from envsim.store.shards import read_shard

    config = DatasetConfig(
        seed=seed,
        render=RenderConfig(width=size, height=size),
        trajectory=TrajectoryConfig(views=views, views_per_trajectory=max(1, min(views, 50))),
    )
    manifest = render_dataset(resolve_sources(["procedural:1"]), config=config, out=folder)
    data = read_shard(folder / manifest["shards"][0]["file"])
    attrs = data.pop("attrs")
    return data, attrs


def tile(arrays: dict[str, np.ndarray], samples: int, *, depth_dtype: str) -> dict[str, np.ndarray]:
    """Every array repeated along axis 0 to ``samples`` rows (contiguous copies); depth cast to ``depth_dtype``."""
    n = len(arrays["rgb"])
    idx = np.arange(samples) % n
    out = {k: np.ascontiguousarray(v[idx]) for k, v in arrays.items()}
    out["depth"] = out["depth"].astype(depth_dtype)
    return out


def write_ours(path: Path, arrays: dict[str, np.ndarray], layout, attrs: dict[str, Any], *, batch: int) -> None:
    from envsim.store.shards import ShardWriter

    n = layout.samples
    with ShardWriter(path, layout=layout, attrs=attrs) as writer:
        for s in range(0, n, batch):
            writer.write(**{k: v[s : s + batch] for k, v in arrays.items()})


def write_reference(path: Path, arrays: dict[str, np.ndarray], filters: dict[str, Any]) -> None:
    """Plain h5py: one ``create_dataset(data=...)`` per array, image datasets chunked one sample per chunk; then
    durable on disk (:func:`_sync`)."""
    import h5py

    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if key in IMAGE_KEYS:
                f.create_dataset(key, data=value, chunks=(1,) + value.shape[1:], **filters)
            else:
                f.create_dataset(key, data=value)
    _sync(path)


def _sync(path: Path) -> None:
    """``fsync`` a finished file and its folder: what the writer's rename into place costs besides the rename."""
    import os

    for target in (path, path.parent):
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_reference_batched(path: Path, arrays: dict[str, np.ndarray], filters: dict[str, Any], *, batch: int) -> None:
    """Plain h5py with the writer's access pattern: datasets created empty, then filled ``batch`` rows at a time."""
    import h5py

    n = len(arrays["rgb"])
    with h5py.File(path, "w") as f:
        datasets = {}
        for key, value in arrays.items():
            image = key in IMAGE_KEYS
            datasets[key] = f.create_dataset(
                key, shape=value.shape, dtype=value.dtype, chunks=(1,) + value.shape[1:] if image else None,
                **(filters if image else {}),
            )
        for s in range(0, n, batch):
            for key, value in arrays.items():
                datasets[key][s : s + batch] = value[s : s + batch]
    _sync(path)


def read_reference(path: Path) -> dict[str, np.ndarray]:
    import h5py

    with h5py.File(path, "r") as f:
        return {key: f[key][()] for key in f}


def read_ours(path: Path) -> dict[str, np.ndarray]:
    from envsim.store.shards import read_shard

    data = read_shard(path)
    data.pop("attrs")
    return data


def _pipeline(path: Path) -> dict[str, tuple]:
    """Chunk shape and filter pipeline (id, flags, values) of every image dataset of a file."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        for key in IMAGE_KEYS:
            plist = f[key].id.get_create_plist()
            filters = tuple(plist.get_filter(i)[:3] for i in range(plist.get_nfilters()))
            out[key] = (f[key].chunks, filters)
    return out


def compare_arrays(written: dict[str, np.ndarray], read: dict[str, np.ndarray], what: str) -> tuple[int, str | None]:
    """The bytes of ``read`` that equal what was written (keys, dtypes, shapes, bytes), and the first
    difference (None when everything matches)."""
    if set(read) != set(written):
        return 0, f"{what}: datasets {sorted(read)} != written {sorted(written)}"
    total = 0
    for key, value in written.items():
        got = read[key]
        same = got.dtype == value.dtype and got.shape == value.shape
        if not (same and np.array_equal(_bytes(got), _bytes(value))):
            return total, f"{what}: dataset {key!r} differs from what was written"
        total += got.nbytes
    return total, None


def _warm_up(folder: Path, arrays, layout, attrs, filters, *, batch: int) -> None:
    """Untimed: every write and read path once on a few samples (loads the filter plugin, warms h5py's caches),
    so that whichever side goes first in the first repeat does not pay for it."""
    import dataclasses

    folder.mkdir(exist_ok=True)
    n = min(layout.samples, 2 * batch)
    few = {k: v[:n] for k, v in arrays.items()}
    write_ours(folder / "ours.h5", few, dataclasses.replace(layout, samples=n), attrs, batch=batch)
    write_reference(folder / "ref.h5", few, filters)
    write_reference_batched(folder / "ref-b.h5", few, filters, batch=batch)
    read_ours(folder / "ours.h5")
    read_reference(folder / "ours.h5")
    for path in folder.iterdir():
        path.unlink()


def _bytes(a: np.ndarray) -> np.ndarray:
    """The raw bytes of an array, as a flat uint8 view (no copy for contiguous arrays)."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def _timed(fn) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def available_compressions() -> list[str]:
    """``lzf`` (the default), ``none``, and ``lz4`` when hdf5plugin imports."""
    names = ["lzf", "none"]
    try:
        import hdf5plugin  # noqa: F401
    except ImportError:
        return names
    return names + ["lz4"]


def measure(
    *,
    samples: int,
    size: int,
    repeats: int,
    views: int = 32,
    depth_dtype: str = "float32",
    compressions: list[str] | None = None,
    batch: int = WRITE_BATCH,
    seed: int = 0,
) -> dict:
    """Write and read throughput of our shard writer and reader against plain h5py (see the module docstring).

    Args:
        samples: samples per shard.
        size: image width and height in pixels.
        repeats: best of this many runs of each measurement (ours and the reference alternate).
        views: distinct rendered views, tiled to ``samples``.
        depth_dtype: ``float32`` (the dataset default) or ``float16``.
        compressions: :class:`envsim.store.shards.Compression` values; default :func:`available_compressions`.
        batch: samples per ``ShardWriter.write`` call.
        seed: dataset seed of the rendered views.

    Returns:
        A report: per compression, MB/s and samples/s of every measurement, the ratios ours / reference,
        file sizes, and ``bytes_match`` (checked).
    """
    if samples < 1 or size < 1 or repeats < 1 or views < 1:
        raise ValueError("samples, size, repeats and views must be >= 1")
    compressions = compressions or available_compressions()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ess-bench-shards-") as tmp:
        tmp = Path(tmp)
        distinct = min(views, samples)
        t_render, (base, attrs) = _timed(partial(rendered_views, tmp / "views", views=distinct, size=size, seed=seed))
        arrays = tile(base, samples, depth_dtype=depth_dtype)
        raw_bytes = sum(v.nbytes for v in arrays.values())
        image_bytes = sum(arrays[k].nbytes for k in IMAGE_KEYS)
        for name in compressions:
            rows.append(_measure_compression(tmp, name, arrays, attrs, samples=samples, size=size,
                                             depth_dtype=depth_dtype, batch=batch, repeats=repeats))
    return {
        "benchmark": "shards",
        "data": {
            "kind": "rendered views of a procedural house, tiled",
            "distinct_views": distinct,
            "samples": samples,
            "size": f"{size}x{size}",
            "depth_dtype": depth_dtype,
            "raw_bytes": raw_bytes,
            "image_bytes": image_bytes,
            "bytes_per_sample": raw_bytes / samples,
            "seed": seed,
            "render_s": t_render,
        },
        "write_batch": batch,
        "repeats": repeats,
        "page_cache": "every write ends with fsync of the file and its folder (ours through its rename, the "
        "references after closing); reads come back from the page cache",
        "target": "write and read >= 0.8 of plain h5py on the same arrays (DESIGN.md)",
        "machine": machine_info(),
        "results": rows,
    }



def _measure_compression(
    tmp: Path,
    name: str,
    arrays: dict[str, np.ndarray],
    attrs: dict[str, Any],
    *,
    samples: int,
    size: int,
    depth_dtype: str,
    batch: int,
    repeats: int,
) -> dict[str, Any]:
    """Measure and check one compression: the report's row for it (see :func:`measure`).

    Args:
        tmp: scratch folder for the files.
        name: a :class:`envsim.store.shards.Compression` value.
        arrays: the shard arrays, ``samples`` rows each.
        attrs: the shard attributes.
        samples: samples per shard.
        size: image width and height in pixels.
        depth_dtype: ``float32`` or ``float16``.
        batch: samples per ``ShardWriter.write`` call.
        repeats: best of this many runs of each measurement.

    Raises:
        AssertionError: the bytes read back, or the reference files' chunks or filters, differ from the writer's.
    """
    from envsim.store.shards import Compression, ShardLayout, filter_kwargs

    raw_bytes = sum(v.nbytes for v in arrays.values())
    compression = Compression(name)
    layout = ShardLayout(
        samples=samples, height=size, width=size, depth_dtype=depth_dtype, compression=compression
    )
    filters = filter_kwargs(compression)
    ours, ref, ref_b = tmp / f"ours-{name}.h5", tmp / f"ref-{name}.h5", tmp / f"ref-batched-{name}.h5"
    _warm_up(tmp / "warm-up", arrays, layout, attrs, filters, batch=batch)
    best, checked = _best_times((ours, ref, ref_b), arrays, layout, attrs, filters, name=name, batch=batch,
                                repeats=repeats)
    # Not timed: the reference file holds the same bytes and uses the same chunks and filters.
    problems = [why for why in (compare_arrays(arrays, read_reference(ref), f"reference file ({name})")[1],
                                compare_arrays(arrays, read_reference(ref_b), f"batched reference file ({name})")[1])
                if why]
    checked, why = checked
    if why:
        problems.append(why)
    if not _pipeline(ours) == _pipeline(ref) == _pipeline(ref_b):
        problems.append(f"{name}: the reference file's chunks or filters differ from the writer's")
    if checked != raw_bytes:
        problems.append(f"{name}: read {checked} bytes equal to those written, of {raw_bytes}")
    row: dict[str, Any] = {
        "compression": name,
        "file_bytes": ours.stat().st_size,
        "reference_file_bytes": ref.stat().st_size,
        "size_ratio": ours.stat().st_size / raw_bytes,
        "bytes_written": raw_bytes,
        "bytes_read": checked,
        "bytes_match": not problems,
        "bytes_check": "; ".join(problems) or f"{checked:,} bytes read back equal, same chunks and filters",
    }
    for key, seconds in best.items():
        row[f"{key}_s"] = seconds
        row[f"{key}_mb_per_s"] = raw_bytes / 1e6 / seconds
        row[f"{key}_samples_per_s"] = samples / seconds
    row["write_ratio"] = best["write_reference"] / best["write_ours"]
    row["write_ratio_to_batched"] = best["write_reference_batched"] / best["write_ours"]
    row["read_ratio"] = best["read_reference"] / best["read_ours"]
    return row


def _best_times(
    paths: tuple[Path, Path, Path],
    arrays: dict[str, np.ndarray],
    layout: Any,
    attrs: dict[str, Any],
    filters: dict[str, Any],
    *,
    name: str,
    batch: int,
    repeats: int,
) -> tuple[dict[str, float], tuple[int, str | None]]:
    """Best seconds of each of :data:`MEASUREMENTS` over ``repeats`` runs, ours and the reference alternating.

    Args:
        paths: our file, the reference file and the batched reference file.
        arrays: the shard arrays.
        layout: the :class:`envsim.store.shards.ShardLayout`.
        attrs: the shard attributes.
        filters: h5py filter keyword arguments of the compression.
        name: the compression's name (for messages).
        batch: samples per write call.
        repeats: runs of each measurement.

    Returns:
        The best seconds per measurement, and (bytes read back equal to ``arrays``, the first difference or None).

    """
    ours, ref, ref_b = paths
    best = dict.fromkeys(MEASUREMENTS, np.inf)
    checked: tuple[int, str | None] = (0, None)
    for r in range(repeats):
        for path in (ours, ref, ref_b):
            path.unlink(missing_ok=True)
        writes = [
            ("write_ours", partial(write_ours, ours, arrays, layout, attrs, batch=batch)),
            ("write_reference", partial(write_reference, ref, arrays, filters)),
            ("write_reference_batched", partial(write_reference_batched, ref_b, arrays, filters, batch=batch)),
        ]
        reads = [("read_ours", partial(read_ours, ours)), ("read_reference", partial(read_reference, ours))]
        if r % 2:  # alternate who goes first: a busy neighbour hurts both alike
            writes.reverse()
            reads.reverse()
        for key, fn in writes + reads:
            seconds, out = _timed(fn)
            best[key] = min(best[key], seconds)
            if out is not None:  # a read: every byte written must come back
                got = compare_arrays(arrays, out, f"{key} ({name})")
                checked = got if got[1] or checked[1] is None else checked  # keep the first difference
                del out
    return best, checked


def to_markdown(report: dict) -> str:
    d, m = report["data"], report["machine"]
    title = (
        f"Shard I/O, {d['samples']:,} samples of {d['size']} RGB + {d['depth_dtype']} depth "
        f"({d['bytes_per_sample'] / 1e3:.0f} kB raw each, {d['distinct_views']} distinct rendered views), "
        f"{m['cores']} cores ({m['cpu']}), best of {report['repeats']}, writes fsync'ed, reads from the page cache:"
    )
    header = (
        "| compression | size | write MB/s (samples/s) | plain h5py write MB/s, one call (ratio) "
        f"| plain h5py, batches of {report['write_batch']} (ratio) | read MB/s (samples/s) | plain h5py read MB/s "
        "| ratio |"
    )
    lines = [title, "", header, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in report["results"]:
        lines.append(
            f"| {r['compression']} | {r['size_ratio']:.2f}x "
            f"| {r['write_ours_mb_per_s']:,.0f} ({r['write_ours_samples_per_s']:,.0f}) "
            f"| {r['write_reference_mb_per_s']:,.0f} ({r['write_ratio']:.2f}) "
            f"| {r['write_reference_batched_mb_per_s']:,.0f} ({r['write_ratio_to_batched']:.2f}) "
            f"| {r['read_ours_mb_per_s']:,.0f} ({r['read_ours_samples_per_s']:,.0f}) "
            f"| {r['read_reference_mb_per_s']:,.0f} | {r['read_ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"
