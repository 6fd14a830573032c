"""Sharded HDF5 datasets: the writer, a reader that needs only h5py and numpy, and the manifest.

One file per shard (``shard-00000.h5``, ...) plus ``manifest.json`` listing every shard with its sample
count and SHA-256, the resolved config, the seed and the code version. Image datasets are chunked one
sample per chunk for random access and written in batches for speed. See DESIGN.md for the schema.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "envsim-dataset/1"


class Compression(str, Enum):
    """Per-chunk compression of image datasets.

    ``lzf`` (default) and ``gzip`` ship with h5py, so shards stay readable with h5py alone; ``lz4`` (Blosc
    LZ4 with byte shuffle, via hdf5plugin) is ~3x faster to write, and readers must ``import hdf5plugin``.
    """

    LZF = "lzf"
    GZIP = "gzip"
    LZ4 = "lz4"
    NONE = "none"


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard-00000.h5``."""
    return f"shard-{index:05d}.h5"


def _filter_kwargs(compression: Compression) -> dict[str, Any]:
    if compression is Compression.LZF:
        return {"compression": "lzf", "shuffle": True}
    if compression is Compression.GZIP:
        return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    if compression is Compression.LZ4:
        import hdf5plugin

        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    return {}


@dataclass(frozen=True)
class ShardLayout:
    """Shapes and dtypes of one shard.

    Attributes:
        samples: number of samples in the shard.
        height: image height in pixels.
        width: image width in pixels.
        depth_dtype: ``float32`` or ``float16`` (metres).
        semantic_dtype: ``uint16``/``uint32`` or None for no semantic dataset.
        compression: image compression.
    """

    samples: int
    height: int
    width: int
    depth_dtype: str = "float32"
    semantic_dtype: str | None = None
    compression: Compression = Compression.LZF


class ShardWriter:
    """Writes one shard to ``<path>.partial`` and renames it to ``path`` only when complete.

    Use it in a ``with`` block: leaving the block by an exception deletes the partial file, so a shard file
    either exists complete or not at all.

    Args:
        path: final shard path.
        layout: shapes, dtypes and compression.
        attrs: file attributes (``K``, ``room_names``, ``scene_names``, provenance); ``format_version`` is
            added.
    """

    def __init__(self, path: str | os.PathLike, *, layout: ShardLayout, attrs: dict[str, Any]):
        import h5py

        if layout.samples < 1:
            raise ValueError("a shard needs at least one sample")
        self.path = Path(path)
        self.layout = layout
        self._tmp = self.path.with_name(self.path.name + ".partial")
        self._f = h5py.File(self._tmp, "w", libver="v110", track_order=True)
        self._n = 0
        n, h, w = layout.samples, layout.height, layout.width
        img = dict(_filter_kwargs(layout.compression), track_times=False)
        small = dict(track_times=False)
        f = self._f
        f.create_dataset("rgb", (n, h, w, 3), dtype="uint8", chunks=(1, h, w, 3), **img)
        f.create_dataset("depth", (n, h, w), dtype=layout.depth_dtype, chunks=(1, h, w), **img)
        if layout.semantic_dtype is not None:
            f.create_dataset("semantic", (n, h, w), dtype=layout.semantic_dtype, chunks=(1, h, w), **img)
        f.create_dataset("pose", (n, 4, 4), dtype="float32", **small)
        f.create_dataset("position", (n, 3), dtype="float32", **small)
        f.create_dataset("rotation", (n, 4), dtype="float32", **small)
        f.create_dataset("light", (n, 5), dtype="float32", **small)
        for key in ("scene", "trajectory", "step", "room"):
            f.create_dataset(key, (n,), dtype="int32", **small)
        f["depth"].attrs["units"] = "metres (z-depth along the optical axis, 0 = no surface)"
        f["pose"].attrs["convention"] = "camera-to-world, Y up, camera looks down -Z"
        f["rotation"].attrs["convention"] = "unit quaternion (w, x, y, z), camera-to-world"
        f["light"].attrs["layout"] = "direction towards the light (x, y, z), ambient, diffuse"
        f.attrs["format_version"] = FORMAT_VERSION
        for key, value in attrs.items():
            f.attrs[key] = _attr_value(value)

    @property
    def written(self) -> int:
        return self._n

    def write(self, **batch: np.ndarray) -> None:
        """Append a batch; every dataset of the shard must be given, all with the same leading size B."""
        sizes = {k: len(v) for k, v in batch.items()}
        b = next(iter(sizes.values()))
        expected = set(self._f.keys())
        if set(batch) != expected or any(s != b for s in sizes.values()):
            raise ValueError(f"a batch needs the datasets {sorted(expected)} with equal lengths, got {sizes}")
        if self._n + b > self.layout.samples:
            raise ValueError(f"shard {self.path.name} holds {self.layout.samples} samples; batch overflows it")
        for key, value in batch.items():
            self._f[key][self._n : self._n + b] = value
        self._n += b

    def close(self) -> None:
        """Finish the shard: check it is full, close and rename into place."""
        if self._f is None:
            return
        if self._n != self.layout.samples:
            self.abort()
            raise ValueError(f"shard {self.path.name} got {self._n} of {self.layout.samples} samples")
        self._f.close()
        self._f = None
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file."""
        if self._f is not None:
            self._f.close()
            self._f = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _attr_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return np.array([v.encode("utf-8") for v in value], dtype=object)  # variable-length strings
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def read_shard(path: str | os.PathLike, *, images: bool = True) -> dict[str, Any]:
    """Read a whole shard into numpy arrays (h5py and numpy only).

    Args:
        path: a shard file.
        images: when False, skip ``rgb``, ``depth`` and ``semantic``.

    Returns:
        A dict of arrays plus ``attrs`` (a dict of the file attributes, strings decoded).
    """
    import h5py

    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        for key in f.keys():
            if not images and key in ("rgb", "depth", "semantic"):
                continue
            out[key] = f[key][()]
        out["attrs"] = {k: _decode_attr(v) for k, v in f.attrs.items()}
    return out


def _decode_attr(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.dtype == object:
        return [x.decode("utf-8") if isinstance(x, bytes) else x for x in v.tolist()]
    return v


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON (sorted keys, 2-space indent) to a temporary file and rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """Load ``manifest.json`` from a dataset folder.

    Raises:
        FileNotFoundError: there is no manifest.
        ValueError: the manifest is not an envsim dataset manifest.
    """
    path = Path(folder) / MANIFEST_NAME
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not an {MANIFEST_FORMAT} manifest")
    return data
