"""Random access to a rendered dataset's views by global index, across shards.

Global view ``g`` is row ``g - first_view`` of the shard whose range holds it (the manifest's order). HDF5
files open lazily and per process, so a reader can be pickled into ``DataLoader`` workers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from envsim.provenance import file_sha256
from envsim.store.shards import MANIFEST_NAME, read_manifest

META_KEYS = ("position", "rotation", "pose", "scene", "trajectory", "step", "room")


class DatasetReader:
    """Views of a rendered dataset folder.

    Args:
        folder: a folder written by ``ess render`` (``manifest.json`` + shards).
        require_complete: refuse a dataset whose render job has not finished.

    Raises:
        ValueError: not a dataset folder, or incomplete when ``require_complete``.
    """

    def __init__(self, folder: str | os.PathLike, *, require_complete: bool = True):
        self.folder = Path(folder)
        try:
            self.manifest = read_manifest(self.folder)
        except FileNotFoundError:
            raise ValueError(f"{self.folder} is not a dataset folder (no {MANIFEST_NAME}); render one with `ess render`") from None
        if require_complete and not self.manifest.get("complete"):
            raise ValueError(f"{self.folder} is an unfinished render; rerun its `ess render` command to finish it")
        self.shards = list(self.manifest["shards"])
        self.starts = np.array([e["first_view"] for e in self.shards] + [self.manifest["total_samples"]], np.int64)
        self.K = np.asarray(self.manifest["K"], np.float64)
        self.width, self.height = int(self.manifest["width"]), int(self.manifest["height"])
        self.scene_names: list[str] = list(self.manifest["scene_names"])
        self.room_names: list[str] = list(self.manifest["room_names"])
        self._files: dict[int, Any] = {}
        self._datasets: dict[tuple[int, str], Any] = {}  # h5py dataset objects: looking one up costs ~0.2 ms
        self._pid = os.getpid()
        self._meta: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_files"] = {}  # HDF5 handles do not cross processes
        state["_datasets"] = {}
        return state

    def manifest_sha256(self) -> str:
        """SHA-256 of ``manifest.json`` (which holds every shard's checksum): the dataset's identity."""
        return file_sha256(self.folder / MANIFEST_NAME)

    def _file(self, shard: int):
        import h5py

        if os.getpid() != self._pid:  # forked into a worker: never reuse the parent's handles
            self._files, self._datasets, self._pid = {}, {}, os.getpid()
        f = self._files.get(shard)
        if f is None:
            f = h5py.File(self.folder / self.shards[shard]["file"], "r")
            self._files[shard] = f
        return f

    def _dataset(self, shard: int, key: str):
        ds = self._datasets.get((shard, key)) if os.getpid() == self._pid else None
        if ds is None:
            ds = self._file(shard)[key]
            self._datasets[(shard, key)] = ds
        return ds

    def locate(self, index: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """(shard, row) of global view indices."""
        idx = np.asarray(index, np.int64)
        if np.any((idx < 0) | (idx >= len(self))):
            raise IndexError(f"view index out of range [0, {len(self)})")
        shard = np.searchsorted(self.starts, idx, side="right") - 1
        return shard, idx - self.starts[shard]

    def meta(self) -> dict[str, np.ndarray]:
        """Per-view metadata of every view, concatenated over shards (no images): position (N, 3),
        rotation (N, 4), pose (N, 4, 4), scene, trajectory, step, room (N,)."""
        if self._meta is None:
            parts: dict[str, list] = {k: [] for k in META_KEYS}
            for s in range(len(self.shards)):
                f = self._file(s)
                for k in META_KEYS:
                    parts[k].append(f[k][()])
            self._meta = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
        return self._meta

    def read(self, key: str, index: int) -> np.ndarray:
        """One view's ``key`` array (``rgb``, ``depth``, ``semantic``, ...)."""
        shard, row = self.locate(int(index))
        return self._dataset(int(shard), key)[int(row)]

    def read_many(self, key: str, indices: np.ndarray) -> np.ndarray:
        """``key`` for many views, in the order given (repeats allowed): (len(indices), ...) of the dataset's dtype.

        Each shard's distinct rows are read in runs of consecutive rows, one HDF5 slice a run: h5py's
        list indexing (one point selection per row) costs ~3 ms an LZF image where a slice or a single row costs
        ~30 us, so random indices read row by row and sorted ranges in one call.
        """
        indices = np.asarray(indices, np.int64).reshape(-1)
        shard, row = self.locate(indices)
        if not len(self.shards):
            return np.zeros((0,))
        first = self._dataset(int(shard[0]) if len(indices) else 0, key)
        out = np.empty((len(indices), *first.shape[1:]), first.dtype)
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            rows, inverse = np.unique(row[sel], return_inverse=True)  # sorted distinct rows
            ds = self._dataset(int(s), key)
            data = np.empty((len(rows), *out.shape[1:]), out.dtype)
            runs = np.flatnonzero(np.diff(rows) != 1) + 1
            for a, b in zip(np.r_[0, runs], np.r_[runs, len(rows)]):
                ds.read_direct(data, np.s_[rows[a] : rows[b - 1] + 1], np.s_[a:b])
            out[sel] = data[inverse.reshape(-1)]
        return out

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files, self._datasets = {}, {}
