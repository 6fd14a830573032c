"""Read shards + pairs and yield ``(view_a, view_b, weight, metadata)`` for any contrastive trainer.

:class:`SpatialPairs` needs only numpy and h5py; it is a map-style dataset (``__len__`` and
``__getitem__``), so ``torch.utils.data.DataLoader`` takes it as it is, with ``num_workers > 0`` too: HDF5
files are opened lazily inside each worker. :func:`iter_batches` is the same without torch.

Item ``i`` is anchored on view ``i``; its partner is drawn among the view's positives (``UNIFORM``: every
positive equally likely, weight 1 or, for ESS-MW, the pair's weight in the loss; ``WEIGHTED``: in proportion
to the spatial weight, in which case the loss should weigh the pair 1, or the weight counts twice) from a
generator seeded by (seed, epoch, i), so a run is reproducible whatever the number of workers. A view
without positives is paired with itself (two augmentations of one image, as in plain MoCo) with weight 1.
``ess train`` samples ``UNIFORM`` for both ESS methods and puts ESS-MW's weight in the targets.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from envsim.store.reader import DatasetReader
from pairing.store import PAIRS_NAME, read_pairs


class PartnerSampling(str, Enum):
    """How a partner is drawn among a view's positives."""

    SELF = "self"  # plain MoCo: the view itself (two augmentations of one image)
    UNIFORM = "uniform"  # ESS-MB: every positive equally likely, weight 1
    WEIGHTED = "weighted"  # ESS-MW: probability and weight from the spatial similarity
    LIGHT = "light"  # the same pose under another light (``ess render --light-variants``), else itself


class SpatialPairs:
    """Positive pairs of a rendered dataset.

    Args:
        folder: the dataset folder (shards + ``manifest.json``).
        pairs_file: the pairs file (default ``<folder>/pairs.h5`` from ``ess pair``).
        sampling: partner sampling.
        transform: applied to each view's image (uint8 (H, W, 3) RGB, or a dict with ``rgb`` and
            ``depth`` when ``with_depth``); its output is what ``view_a``/``view_b`` hold.
        with_depth: also read depth (metres, float32 (H, W)).
        min_covisibility: when given, only pairs whose mean covisibility reaches it count as positives
            (overrides the file's rule; needs covisibility in the file).
        subset: bool (N,) mask of the views to use (e.g. the training split); items and partners both
            come from it, so held-out views never leak in as partners.
        seed: partner-sampling seed.

    Raises:
        ValueError: missing pairs file, or a pairs file built for another dataset.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        pairs_file: str | os.PathLike | None = None,
        sampling: PartnerSampling = PartnerSampling.UNIFORM,
        transform: Callable[[Any], Any] | None = None,
        with_depth: bool = False,
        min_covisibility: float | None = None,
        subset: np.ndarray | None = None,
        seed: int = 0,
    ):
        self.reader = DatasetReader(folder)
        path = Path(pairs_file) if pairs_file is not None else self.reader.folder / PAIRS_NAME
        if not path.is_file():
            raise ValueError(f"no pairs file at {path}; build it with `ess pair {self.reader.folder}`")
        data = read_pairs(path)
        if data["attrs"].get("dataset_manifest_sha256") != self.reader.manifest_sha256():
            raise ValueError(f"{path} was built for another dataset; rebuild it with `ess pair --force`")
        self.sampling = PartnerSampling(sampling)
        self.transform = transform
        self.with_depth = with_depth
        self.seed = int(seed)
        self.epoch = 0
        self.pairs = data["pair"]
        self.weight = data["weight"]
        self.distance, self.angle = data["distance"], data["angle"]
        self.covisibility = data.get("covisibility")
        self.rel_translation, self.rel_rotation = data["rel_translation"], data["rel_rotation"]
        if min_covisibility is not None:
            if self.covisibility is None:
                raise ValueError(f"{path} has no covisibility; rebuild it without --no-covisibility")
            positive = self.covisibility.mean(axis=1) >= min_covisibility
        else:
            positive = data["positive"].astype(bool)
        self.positive = positive
        self.offsets, self.view_pairs = data["view_offsets"], data["view_pairs"]
        self.meta = self.reader.meta()
        n = len(self.reader)
        self.allowed = np.ones(n, bool) if subset is None else np.asarray(subset, bool)
        if self.allowed.shape != (n,):
            raise ValueError(f"subset must be a boolean mask of the dataset's {n} views")
        self.index_map = np.flatnonzero(self.allowed)

    def __len__(self) -> int:
        return len(self.index_map)

    def set_epoch(self, epoch: int) -> None:
        """Draw other partners in the next epoch (call before iterating, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def positives_of(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The partners of a view and the rows of the pairs they come from: int64 (k,), (k,)."""
        rows = self.view_pairs[self.offsets[index] : self.offsets[index + 1]]
        rows = rows[self.positive[rows]]
        a, b = self.pairs[rows, 0], self.pairs[rows, 1]
        partners = np.where(a == index, b, a)
        inside = self.allowed[partners]
        return partners[inside], rows[inside]

    def light_variant(self, index: int) -> tuple[int, int]:
        """(view, pair row) of the same pose under another light this epoch (``ess render --light-variants``),
        drawn uniformly among the pose's renders; ``(index, -1)`` when it has none."""
        partners, rows = self.positives_of(index)
        same = (self.distance[rows] == 0) & (self.angle[rows] < 1e-6)
        partners, rows = partners[same], rows[same]
        if len(partners) == 0:
            return index, -1
        k = int(np.random.default_rng((self.seed, self.epoch, int(index), 1)).integers(len(rows)))
        return int(partners[k]), int(rows[k])

    def partner(self, index: int) -> tuple[int, float, int]:
        """(partner view, weight, pair row or -1 for the view itself) of view ``index`` this epoch."""
        if self.sampling is PartnerSampling.SELF:
            return index, 1.0, -1
        if self.sampling is PartnerSampling.LIGHT:
            view, row = self.light_variant(index)
            return view, 1.0, row
        partners, rows = self.positives_of(index)
        if len(partners) == 0:
            return index, 1.0, -1
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        if self.sampling is PartnerSampling.WEIGHTED:
            w = self.weight[rows].astype(np.float64)
            k = int(rng.choice(len(rows), p=w / w.sum())) if w.sum() > 0 else int(rng.integers(len(rows)))
            return int(partners[k]), float(self.weight[rows[k]]), int(rows[k])
        k = int(rng.integers(len(rows)))
        return int(partners[k]), 1.0, int(rows[k])

    def _view(self, index: int) -> Any:
        rgb = self.reader.read("rgb", index)
        item: Any = rgb
        if self.with_depth:
            item = {"rgb": rgb, "depth": self.reader.read("depth", index).astype(np.float32)}
        return self.transform(item) if self.transform is not None else item

    def __getitem__(self, item: int) -> tuple[Any, Any, float, dict[str, Any]]:
        """Item ``item`` of the (subset of) views: anchored on view ``index_map[item]``."""
        item = int(item)
        if not 0 <= item < len(self):
            raise IndexError(item)
        index = int(self.index_map[item])
        j, weight, row = self.partner(index)
        m = self.meta
        metadata = {
            "index_a": index,
            "index_b": j,
            "scene": int(m["scene"][index]),
            "room_a": int(m["room"][index]),
            "room_b": int(m["room"][j]),
            "position_a": m["position"][index],
            "position_b": m["position"][j],
            "rotation_a": m["rotation"][index],
            "rotation_b": m["rotation"][j],
            "distance": float(self.distance[row]) if row >= 0 else 0.0,
            "angle": float(self.angle[row]) if row >= 0 else 0.0,
            "covisibility": float(self.covisibility[row].mean()) if row >= 0 and self.covisibility is not None else 1.0,
        }
        return self._view(index), self._view(j), np.float32(weight), metadata


def iter_batches(
    dataset: SpatialPairs, *, batch_size: int, rng: np.random.Generator, drop_last: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]]:
    """Shuffled batches without torch: (views_a (B, ...), views_b (B, ...), weights (B,), metadata).

    Views are stacked with ``np.stack``, so the transform must return equally shaped arrays.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = rng.permutation(len(dataset))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if drop_last and len(idx) < batch_size:
            return
        items = [dataset[int(i)] for i in idx]
        yield (
            np.stack([it[0] for it in items]),
            np.stack([it[1] for it in items]),
            np.array([it[2] for it in items], np.float32),
            [it[3] for it in items],
        )
