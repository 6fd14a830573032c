"""The pairs file (``pairs.h5`` next to the shards): spatial positives, weights, covisibility, relative
poses and per-view pretext labels of a rendered dataset. Readable with h5py and numpy alone.

| dataset | dtype, shape | meaning |
| --- | --- | --- |
| ``pair`` | int64 (P, 2) | global view indices (a, b), a < b, same scene, camera centres within the radius |
| ``distance`` | float32 (P,) | camera-centre distance, metres |
| ``angle`` | float32 (P,) | angle between viewing directions, radians |
| ``weight`` | float32 (P,) | ESS-MW spatial similarity in [0, 1] |
| ``positive`` | uint8 (P,) | 1 where the pair is a positive under the file's rule (ESS-MB, covisibility or both) |
| ``covisibility`` | float32 (P, 2) | fraction of a's pixels seen by b, and of b's seen by a (when computed) |
| ``rel_translation`` | float32 (P, 3) | b's camera centre in a's camera frame (x right, y up, z back), metres |
| ``rel_rotation`` | float32 (P, 4) | b's orientation in a's camera frame, unit quaternion (w, x, y, z) |
| ``view_offsets``, ``view_pairs`` | int64 (N+1,), (2P,) | CSR: rows of ``pair`` that touch view v are ``view_pairs[view_offsets[v]:view_offsets[v+1]]`` |
| ``depth_order_boxes`` | int16 (N, 3, 4) | three regions (row0, col0, row1, col1) of each view |
| ``depth_order_label`` | int8 (N,) | index into ``depth_order_permutations`` of the near-to-far order; -1 none found |
| ``crop_boxes`` | int16 (N, 2, 4) | two local crops of each view |
| ``crop_offset``, ``crop_log_scale`` | float32 (N, 2), (N,) | centre offset of crop 2 from crop 1 / image size (x right, y down); log side ratio |
| ``jigsaw_label``, ``flip_label`` | int16 (N,), int8 (N,) | index into ``jigsaw_permutations``; which tile is flipped |

Attributes: ``format``, ``config`` (JSON), ``seed``, ``code_version``, ``dataset_manifest_sha256``,
``n_views``, ``positive_rule``.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envsim.provenance import atomic_write

PAIRS_NAME = "pairs.h5"
PAIRS_FORMAT = "ess-pairs/1"


def csr_by_view(pairs: np.ndarray, n_views: int) -> tuple[np.ndarray, np.ndarray]:
    """For every view, the rows of ``pairs`` it belongs to.

    Args:
        pairs: int64 (P, 2).
        n_views: N.

    Returns:
        offsets int64 (N+1,) and rows int64 (2P,), rows sorted by view then by pair row.

    Pairs sorted as the pairs file keeps them (rows by (a, b), a < b) take a counting sort that holds the
    output and one block of rows at a time (~16 bytes a pair); other orders take a lexsort (~64).
    """
    pairs = np.asarray(pairs).reshape(-1, 2)
    if not pairs_sorted(pairs):
        ends = pairs.reshape(-1)  # (2P,) view of each endpoint
        rows = np.repeat(np.arange(len(pairs), dtype=np.int64), 2)
        order = np.lexsort((rows, ends))
        counts = np.bincount(ends, minlength=n_views)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return offsets, rows[order]
    return csr_of_sorted_parts([pairs], n_views)


def csr_of_sorted_parts(parts: list[np.ndarray], n_views: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`csr_by_view` of the concatenation of ``parts`` (int (P_i, 2) each), which together hold the rows
    of a pairs file in its order (by (a, b), a < b), without concatenating them: the output and one block of
    rows at a time (~16 bytes a pair)."""
    up, low = np.zeros(n_views, np.int64), np.zeros(n_views, np.int64)
    for part in parts:
        up += np.bincount(part[:, 0], minlength=n_views)  # (N,) rows where the view is a
        low += np.bincount(part[:, 1], minlength=n_views)  # (N,) rows where the view is b
    offsets = np.concatenate([[0], np.cumsum(up + low)]).astype(np.int64)  # (N+1,)
    # A view's rows as b (their a is smaller) come before its rows as a, which are contiguous in the file.
    up_shift = offsets[:-1] + low - np.concatenate([[0], np.cumsum(up)[:-1]])  # (N,) slot of row r: shift + r
    cursor = offsets[:-1].copy()  # (N,) next free slot of each view's rows as b
    out = np.empty(2 * int(up.sum()), np.int64)  # (2P,)
    first = 0  # file row of the part's first row
    for part in parts:
        for s in range(0, len(part), BLOCK_ROWS):
            block = part[s : s + BLOCK_ROWS]
            r = np.arange(first + s, first + s + len(block), dtype=np.int64)  # (B,)
            out[up_shift[block[:, 0]] + r] = r
            place_by_key(out, cursor, block[:, 1], r)
        first += len(part)
    return offsets, out


BLOCK_ROWS = 1 << 20  # pair rows handled at a time by the streaming routines


def pairs_sorted(pairs: np.ndarray) -> bool:
    """Whether int (P, 2) pairs have a < b on every row and rows in increasing (a, b) order (the file's order)."""
    for s in range(0, len(pairs), BLOCK_ROWS):
        a, b = pairs[max(s - 1, 0) : s + BLOCK_ROWS, 0], pairs[max(s - 1, 0) : s + BLOCK_ROWS, 1]
        step = (a[1:] > a[:-1]) | ((a[1:] == a[:-1]) & (b[1:] > b[:-1]))
        if not (np.all(a < b) and np.all(step)):
            return False
    return True


def place_by_key(out: np.ndarray, cursor: np.ndarray, key: np.ndarray, value: np.ndarray) -> None:
    """One block of a stable counting sort: ``value[i]`` goes to slot ``cursor[key[i]]`` (then the next), in
    block order within a key; ``cursor`` advances. Blocks fed in order give a stable sort overall.

    Args:
        out: (M,) the sorted output.
        cursor: int64 (K,) next free slot per key, updated in place.
        key, value: (B,) each; ``key`` in [0, K).
    """
    if not len(key):
        return
    order = np.argsort(key, kind="stable")  # (B,)
    k = key[order]
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])  # (G,) start of each key's run
    runs = np.diff(np.r_[first, len(k)])  # (G,)
    rank = np.arange(len(k)) - np.repeat(first, runs)  # (B,) place within the run
    out[cursor[k] + rank] = value[order]
    cursor[k[first]] += runs


def write_pairs(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], attrs: dict[str, Any]) -> None:
    """Write a pairs file atomically (``<path>.partial`` then rename). Deterministic bytes.

    ``arrays`` is read key by key, each value dropped once written: a lazy mapping
    (:func:`pairing.build.compute_pairs`) need never hold every dataset at once.
    """
    import h5py

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w", libver="v110", track_order=True) as f:
            for key in arrays:
                value = np.ascontiguousarray(arrays[key])
                if value.ndim and value.shape[0] > 1024:
                    # gzip, not lzf: h5py's LZF filter leaves its hash table uninitialised, so its bytes could
                    # depend on what the process compressed before; zlib's depend on the input alone.
                    dset = f.create_dataset(key, shape=value.shape, dtype=value.dtype, compression="gzip",
                                            compression_opts=1, shuffle=True, chunks=True, track_times=False)
                    write_deflated(dset, value)
                else:
                    f.create_dataset(key, data=value, track_times=False)
                del value
            f.attrs["format"] = PAIRS_FORMAT
            for key, value in attrs.items():
                f.attrs[key] = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value

    atomic_write(path, write)


def write_deflated(dset: Any, value: np.ndarray, *, threads: int | None = None, window: int = 64) -> None:
    """Fill a chunked ``shuffle`` + ``gzip`` h5py dataset with ``value``, compressing chunks on several threads.

    The same bytes as ``dset[...] = value``: each chunk (edge chunks padded with zeros, HDF5's fill value) is
    byte-shuffled and deflated at the dataset's level exactly as HDF5's filters do (zlib ``compress2``), and the
    chunks are written in HDF5's order (row-major over the chunk grid). zlib releases the GIL, so the
    compression, which dominated writing a large pairs file, runs on every core; at most ``window`` compressed
    chunks wait in memory.

    Args:
        dset: a dataset created with ``chunks``, ``shuffle=True``, ``compression="gzip"`` and no other filter.
        value: the whole dataset, its shape and dtype.
        threads: compression threads; default numba's thread count (cut per worker process).
        window: chunks compressed ahead of the writes.
    """
    import zlib
    from concurrent.futures import ThreadPoolExecutor

    from envsim.store.lzf import default_threads

    chunks, itemsize = dset.chunks, value.dtype.itemsize
    level = int(dset.compression_opts)
    grid = [-(-n // c) for n, c in zip(value.shape, chunks)]
    starts = [tuple(i * c for i, c in zip(index, chunks)) for index in np.ndindex(*grid)]

    def deflate(start: tuple[int, ...]) -> bytes:
        part = value[tuple(slice(a, a + c) for a, c in zip(start, chunks))]
        block = part
        if part.shape != chunks:
            block = np.zeros(chunks, value.dtype)
            block[tuple(slice(0, n) for n in part.shape)] = part
        raw = np.ascontiguousarray(block).view(np.uint8)
        if itemsize > 1:  # HDF5's shuffle: byte k of every element, then byte k + 1, ...
            raw = raw.reshape(-1, itemsize).T
        return zlib.compress(np.ascontiguousarray(raw).tobytes(), level)

    with ThreadPoolExecutor(max_workers=max(1, threads or default_threads())) as pool:
        for lo in range(0, len(starts), window):
            batch = starts[lo : lo + window]
            for start, data in zip(batch, pool.map(deflate, batch)):
                dset.id.write_direct_chunk(start, data, 0)


def read_pairs(path: str | os.PathLike, *, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Load a pairs file (all datasets, or ``keys``) into numpy arrays plus ``attrs``.

    Raises:
        ValueError: the file is not a pairs file.
    """
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != PAIRS_FORMAT:
            raise ValueError(f"{path} is not an {PAIRS_FORMAT} file")
        out: dict[str, Any] = {k: f[k][()] for k in (keys if keys is not None else tuple(f.keys())) if k in f}
        attrs = {}
        for k, v in f.attrs.items():
            attrs[k] = v.decode() if isinstance(v, bytes) else v
        if "config" in attrs:
            attrs["config"] = json.loads(attrs["config"])
        out["attrs"] = attrs
    return out


class PairRows:
    """Rows of a pairs file's datasets, read on demand.

    The h5py file opens on first use in each process (pickling drops the handle and the cache), so an object
    holding one works in ``DataLoader`` workers, forked or spawned. Reading rows decodes the whole chunks that
    hold them (a few thousand rows, gzip); the decoded chunks of recent reads are kept, up to ``cache_bytes``,
    the least recently used dropped first.

    Args:
        path: the pairs file.
        cache_bytes: bytes of decoded chunks kept per process.

    Raises:
        ValueError: the file is not a pairs file (on first use).
    """

    def __init__(self, path: str | os.PathLike, *, cache_bytes: int = 32 << 20):
        self.path = Path(path)
        self.cache_bytes = int(cache_bytes)
        self._reset(None)

    def _reset(self, handle: Any) -> None:
        self._h5, self._pid = handle, os.getpid()
        self._slabs: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()  # (key, slab) -> decoded rows
        self._held = 0  # bytes in _slabs
        self._info: dict[str, tuple[tuple[int, ...], np.dtype, int]] = {}  # key -> shape, dtype, rows per slab

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_h5=None, _slabs=OrderedDict(), _held=0, _info={})  # HDF5 handles do not cross processes
        return state

    def file(self) -> Any:
        """This process's open h5py file."""
        if self._h5 is None or self._pid != os.getpid():  # first use, or forked into a worker
            import h5py

            handle = h5py.File(self.path, "r")
            if handle.attrs.get("format") != PAIRS_FORMAT:
                handle.close()
                raise ValueError(f"{self.path} is not an {PAIRS_FORMAT} file")
            self._reset(handle)
        return self._h5

    def keys(self) -> list[str]:
        """The datasets of the file."""
        return list(self.file().keys())

    def __contains__(self, key: str) -> bool:
        return key in self.file()

    def info(self, key: str) -> tuple[tuple[int, ...], np.dtype, int]:
        """(shape, dtype, rows per cached slab: one chunk's rows) of dataset ``key``."""
        if key not in self._info or self._pid != os.getpid():
            ds = self.file()[key]
            slab = ds.chunks[0] if ds.chunks else min(max(ds.shape[0] if ds.ndim else 1, 1), 1 << 16)
            self._info[key] = (tuple(ds.shape), ds.dtype, int(slab))
        return self._info[key]

    def block(self, key: str, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of ``key``, read as one slice (not cached)."""
        return self.file()[key][start:stop]

    def _slab(self, key: str, k: int, size: int) -> np.ndarray:
        slab = self._slabs.get((key, k))
        if slab is None:
            slab = self.block(key, k * size, (k + 1) * size)
            self._slabs[(key, k)] = slab
            self._held += slab.nbytes
            while self._held > self.cache_bytes and len(self._slabs) > 1:
                self._held -= self._slabs.popitem(last=False)[1].nbytes
        else:
            self._slabs.move_to_end((key, k))
        return slab

    def rows(self, key: str, rows: int | np.ndarray) -> np.ndarray:
        """Rows of ``key``: one row ``(...)`` for an int, else ``(len(rows), ...)`` in the order given.

        Raises:
            IndexError: a row outside the dataset.
        """
        shape, dtype, size = self.info(key)
        if np.ndim(rows) == 0:
            r = int(rows)
            if not 0 <= r < shape[0]:
                raise IndexError(f"row {r} outside {key} of {shape[0]} rows")
            return self._slab(key, r // size, size)[r % size]
        rows = np.asarray(rows, np.int64).reshape(-1)
        out = np.empty((len(rows), *shape[1:]), dtype)
        if len(rows) and (rows.min() < 0 or rows.max() >= shape[0]):
            raise IndexError(f"rows outside {key} of {shape[0]} rows")
        slab = rows // size
        for k in np.unique(slab).tolist():
            at = np.flatnonzero(slab == k)
            out[at] = self._slab(key, k, size)[rows[at] - k * size]
        return out

    def close(self) -> None:
        """Close this process's handle (reopened on next use)."""
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._reset(None)


class PairColumn:
    """One dataset of a pairs file as a read-only array: indexing reads only the rows asked for.

    ``column[rows]``, ``column[rows, ...]`` and slices read on demand (:class:`PairRows`);
    ``numpy.asarray(column)`` reads the whole dataset (P rows in memory).

    Args:
        rows: the file's on-demand reader.
        key: the dataset.
        dtype: cast what is read to this dtype (default: the stored one).
    """

    def __init__(self, rows: PairRows, key: str, *, dtype: Any = None):
        self.source, self.key = rows, key
        stored_shape, stored = rows.info(key)[:2]
        self.shape: tuple[int, ...] = stored_shape
        self.dtype = np.dtype(dtype) if dtype is not None else stored
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        head, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        scalar = not isinstance(head, slice) and np.ndim(head) == 0
        if isinstance(head, slice):
            start, stop, step = head.indices(len(self))
            out = self.source.block(self.key, start, max(start, stop)) if step == 1 else self.source.rows(
                self.key, np.arange(start, stop, step))
        else:
            out = self.source.rows(self.key, head)
        if rest:
            out = out[rest] if scalar else out[(slice(None), *rest)]
        return np.asarray(out, self.dtype)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        whole = np.asarray(self.source.block(self.key, 0, len(self)), self.dtype)
        return whole if dtype is None else whole.astype(dtype, copy=False)


def iter_blocks(rows: PairRows, keys: tuple[str, ...], *, block: int | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Consecutive row blocks (``block`` rows, default :data:`BLOCK_ROWS`) of several equally long datasets:
    (first row, {key: rows}) per block."""
    n = rows.info(keys[0])[0][0]
    block = block or BLOCK_ROWS
    for s in range(0, n, block):
        yield s, {k: rows.block(k, s, min(s + block, n)) for k in keys}


def positive_counts(path: str | os.PathLike) -> tuple[int, int, np.ndarray]:
    """(pairs, positive pairs, int64 (N,) positives of every view) of a pairs file, read in row blocks."""
    rows = PairRows(path)
    n_views = int(rows.file().attrs["n_views"])
    per_view = np.zeros(n_views, np.int64)
    total = positives = 0
    for _, block in iter_blocks(rows, ("pair", "positive")):
        pos = block["pair"][block["positive"].astype(bool)]  # (p, 2)
        per_view += np.bincount(pos.reshape(-1), minlength=n_views)
        total, positives = total + len(block["pair"]), positives + len(pos)
    rows.close()
    return total, positives, per_view
