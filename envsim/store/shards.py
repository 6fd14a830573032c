"""Sharded HDF5 datasets: the writer, a reader that needs only h5py and numpy, and the manifest.

One file per shard (``shard-00000.h5``, ...) plus ``manifest.json`` listing every shard with its sample
count and SHA-256, the resolved config, the seed and the code version. Image datasets are chunked one
sample per chunk for random access and written in batches for speed. See DESIGN.md for the schema.

With ``lzf`` (the default) the writer compresses the image chunks itself (:mod:`envsim.store.lzf`, all cores) and
hands them to HDF5 as they are (``write_direct_chunk``): h5py's own LZF filter leaves its hash table
uninitialised, so its bytes could depend on what the process compressed before. The datasets keep h5py's
``shuffle`` + ``lzf`` pipeline, so plain h5py reads the files as before.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from envsim.provenance import durable_replace, write_error

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "envsim-dataset/1"


class Compression(str, Enum):
    """Per-chunk compression of image datasets.

    ``lzf`` (default) and ``gzip`` ship with h5py, so shards stay readable with h5py alone; ``lz4`` (Blosc
    LZ4 with byte shuffle, via hdf5plugin) is ~3x faster to write, and readers must ``import hdf5plugin``.
    All three give the same bytes for the same arrays (``lzf`` through :mod:`envsim.store.lzf`).
    """

    LZF = "lzf"
    GZIP = "gzip"
    LZ4 = "lz4"
    NONE = "none"


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard-00000.h5``."""
    return f"shard-{index:05d}.h5"


def filter_kwargs(compression: Compression) -> dict[str, Any]:
    """h5py keyword arguments (filter, shuffle) of an image dataset under ``compression``."""
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
    either exists complete or not at all. An ``OSError`` while creating, writing or closing the shard (disk
    full, permission denied, I/O error) deletes the partial file too and is raised as a one-line ``OSError``
    with the same errno naming the shard (see :func:`envsim.provenance.write_error`). HDF5 writes through
    :class:`_GuardedFile`, so a full disk never leaves the HDF5 library half-closed.

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
        self._f = None
        self._io: _GuardedFile | None = None
        self._n = 0
        self._direct: dict[str, int] = {}  # LZF image datasets written as compressed chunks: LZF filter-mask bit
        self._raw: set[str] = set()  # uncompressed image datasets written as raw chunks
        self._small: dict[str, np.ndarray] = {}  # per-sample metadata, kept here and written once on close
        self._threads = 1
        try:
            self._io = _GuardedFile(self._tmp)
            self._f = h5py.File(self._io, "w", libver="v110", track_order=True)
            self._create(layout, attrs)
            self._check_io()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise write_error(self.path, exc) from exc
            raise

    def _create(self, layout: ShardLayout, attrs: dict[str, Any]) -> None:
        n, h, w = layout.samples, layout.height, layout.width
        img = dict(filter_kwargs(layout.compression), track_times=False)
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
        images = [key for key in ("rgb", "depth", "semantic") if key in f]
        if layout.compression is Compression.LZF:
            from envsim.store.lzf import default_threads

            self._threads = default_threads()  # here, not in write(): the caller's thread carries the limit
            for key in images:
                self._direct[key] = _lzf_mask_bit(f[key])
        elif layout.compression is Compression.NONE:
            self._raw = set(images)
        self._small = {key: np.zeros(d.shape, d.dtype) for key, d in f.items() if key not in images}
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
        if self._f is None:
            raise ValueError(f"shard {self.path.name} is closed or was aborted")
        sizes = {k: len(v) for k, v in batch.items()}
        b = next(iter(sizes.values()))
        expected = set(self._f.keys())
        if set(batch) != expected or any(s != b for s in sizes.values()):
            raise ValueError(f"a batch needs the datasets {sorted(expected)} with equal lengths, got {sizes}")
        if self._n + b > self.layout.samples:
            raise ValueError(f"shard {self.path.name} holds {self.layout.samples} samples; batch overflows it")
        for key, value in batch.items():
            if key in self._direct:
                self._write_lzf(key, value, b)
            elif key in self._raw:
                self._write_raw(key, value, b)
            elif key in self._small:
                self._small[key][self._n : self._n + b] = value
                if self._n == 0:  # file space taken where the first batch's write always took it
                    self._f[key][...] = self._small[key]
            else:
                self._f[key][self._n : self._n + b] = value
        self._n += b
        self._check_io()

    def _write_lzf(self, key: str, value, b: int) -> None:
        """Compress ``b`` samples (one chunk each) with :mod:`envsim.store.lzf` and store the chunks as they are."""
        from envsim.store.lzf import encode_chunks

        dset = self._f[key]
        value = _as_dataset_array(dset, value, b)
        if b == 0:
            return
        chunks = value.reshape(b, value.size // b).view(np.uint8)  # one row per sample = per chunk
        out, sizes, raw = encode_chunks(chunks, dset.dtype.itemsize, threads=self._threads)
        bit = self._direct[key]
        zeros = (0,) * (dset.ndim - 1)
        write = dset.id.write_direct_chunk
        for i in range(b):
            # A chunk LZF cannot shrink is stored shuffled but uncompressed, the LZF bit set in its filter
            # mask: what HDF5 does when h5py's (optional) LZF filter fails on it.
            write((self._n + i, *zeros), out[i, : sizes[i]], bit if raw[i] else 0)

    def _write_raw(self, key: str, value, b: int) -> None:
        """Store ``b`` samples of an uncompressed image dataset as they are, one chunk each (no HDF5 chunk cache)."""
        dset = self._f[key]
        value = _as_dataset_array(dset, value, b)
        chunks = value.reshape(b, -1)
        zeros = (0,) * (dset.ndim - 1)
        write = dset.id.write_direct_chunk
        for i in range(b):
            write((self._n + i, *zeros), chunks[i], 0)

    def close(self) -> None:
        """Finish the shard: check it is full, write the per-sample metadata, close and rename into place."""
        if self._f is None:
            return
        if self._n != self.layout.samples:
            self.abort()
            raise ValueError(f"shard {self.path.name} got {self._n} of {self.layout.samples} samples")
        try:
            for key, value in self._small.items():
                self._f[key][...] = value
            self._f.close()  # HDF5 flushes its caches here: a full disk often shows up only now
        except BaseException:
            self.abort()
            raise
        self._f = None
        self._check_io()
        try:
            self._io.close()
            durable_replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise write_error(self.path, exc) from exc
        self._io = None

    def _check_io(self) -> None:
        """Raise the first I/O error the file met (after dropping the partial file)."""
        if self._io is not None and self._io.error is not None:
            error = self._io.error
            self.abort()
            raise write_error(self.path, error) from error

    def abort(self) -> None:
        """Drop the partial file (safe to call twice, and after a failed write)."""
        f, self._f = self._f, None
        io, self._io = self._io, None
        try:
            if f is not None:
                f.close()
        finally:
            if io is not None:
                io.close()
            try:
                self._tmp.unlink(missing_ok=True)
            except OSError:
                if self._tmp.exists():
                    raise

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _GuardedFile:
    """The shard file as HDF5 sees it (h5py's file-object driver): positioned reads and writes on a file
    descriptor. The first failed write (a full disk, an I/O error) is kept in ``error`` and the writes after
    it are dropped, so HDF5 finishes and closes cleanly; the writer then deletes the file and raises the
    error. Reads past the end return zeros, as HDF5's default (sec2) driver does.
    """

    def __init__(self, path: Path):
        self.error: OSError | None = None
        self._pos = 0
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            pos += os.fstat(self._fd).st_size
        elif whence == os.SEEK_CUR:
            pos += self._pos
        self._pos = pos
        return pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = max(0, os.fstat(self._fd).st_size - self._pos)
        data = os.pread(self._fd, size, self._pos)
        self._pos += size
        return data + bytes(size - len(data))

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):
                    done += os.pwrite(self._fd, view[done:], self._pos + done)
            except OSError as exc:
                self.error = exc
        self._pos += len(view)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self._fd, size)
            except OSError as exc:
                self.error = exc
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def _lzf_mask_bit(dset) -> int:
    """The filter-mask bit of the LZF filter of an image dataset, after checking that its pipeline is the one
    :func:`envsim.store.lzf.encode_chunks` produces (shuffle, then LZF) and it holds one sample per chunk."""
    from h5py import h5z

    plist = dset.id.get_create_plist()
    ids = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if ids != [h5z.FILTER_SHUFFLE, h5z.FILTER_LZF] or dset.chunks != (1, *dset.shape[1:]):
        raise RuntimeError(f"{dset.name}: unexpected filters {ids} or chunks {dset.chunks} for direct LZF writes")
    return 1 << ids.index(h5z.FILTER_LZF)


def _as_dataset_array(dset, value, b: int) -> np.ndarray:
    """``value`` as a C-contiguous array of the dataset's dtype and shape ``(b, *dset.shape[1:])``, as h5py's
    own ``dset[...] = value`` would store it: numpy broadcasting, HDF5's type conversion (which saturates)."""
    from h5py import h5t

    dtype = dset.dtype
    value = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=dtype)
    shape = (b, *dset.shape[1:])
    if value.shape != shape:
        try:
            value = np.broadcast_to(value, shape)
        except ValueError:
            raise TypeError(f"Can't broadcast {value.shape} -> {shape}") from None
    if value.dtype != dtype:
        count = int(np.prod(shape))
        buf = np.empty(count * max(value.dtype.itemsize, dtype.itemsize), np.uint8)
        buf[: count * value.dtype.itemsize] = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
        h5t.convert(h5t.py_create(value.dtype), h5t.py_create(dtype), count, buf)
        return buf[: count * dtype.itemsize].view(dtype).reshape(shape)
    return np.ascontiguousarray(value)


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
