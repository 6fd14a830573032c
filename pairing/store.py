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
    """
    ends = pairs.reshape(-1)  # (2P,) view of each endpoint
    rows = np.repeat(np.arange(len(pairs), dtype=np.int64), 2)
    order = np.lexsort((rows, ends))
    counts = np.bincount(ends, minlength=n_views)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return offsets, rows[order]


def write_pairs(path: str | os.PathLike, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
    """Write a pairs file atomically (``<path>.partial`` then rename). Deterministic bytes."""
    import h5py

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w", libver="v110", track_order=True) as f:
            for key, value in arrays.items():
                kw: dict[str, Any] = {"track_times": False}
                if value.ndim and value.shape[0] > 1024:
                    # gzip, not lzf: h5py's LZF filter leaves its hash table uninitialised, so its bytes could
                    # depend on what the process compressed before; zlib's depend on the input alone.
                    kw.update(compression="gzip", compression_opts=1, shuffle=True, chunks=True)
                f.create_dataset(key, data=value, **kw)
            f.attrs["format"] = PAIRS_FORMAT
            for key, value in attrs.items():
                f.attrs[key] = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value

    atomic_write(path, write)


def read_pairs(path: str | os.PathLike, *, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Load a pairs file (all datasets, or ``keys``) into numpy arrays plus ``attrs``.

    Raises:
        ValueError: the file is not a pairs file.
    """
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != PAIRS_FORMAT:
            raise ValueError(f"{path} is not an {PAIRS_FORMAT} file")
        out: dict[str, Any] = {k: f[k][()] for k in (keys or tuple(f.keys())) if k in f}
        attrs = {}
        for k, v in f.attrs.items():
            attrs[k] = v.decode() if isinstance(v, bytes) else v
        if "config" in attrs:
            attrs["config"] = json.loads(attrs["config"])
        out["attrs"] = attrs
    return out
