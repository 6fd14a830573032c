"""What a training step reads: each anchor view, its instance key's view and its spatial partner, in batches.

:class:`TrainViews` wraps :class:`pairing.loader.SpatialPairs` (restricted to the training split) and
yields, for item ``i`` anchored on view ``v``:

- ``anchor``: view ``v`` (uint8 (3, H, W)), the query after augmentation;
- ``instance``: the view of the own key, ``v`` itself (MoCo's second augmentation of the same image) or,
  with light positives, the same pose under another light (``ess render --light-variants``);
- ``partner`` (ESS only): a spatial positive of ``v`` drawn uniformly among its positives (``v`` itself
  when it has none), the extra batch key of ESS-MB / ESS-MW;
- ``view``, ``instance_view``, ``partner_view``: their global view indices (the queue stores them and the
  positive lookup uses them);
- with ``pose``: ``partner_translation`` float32 (3,) and ``partner_rotation`` float32 (3, 3), the partner's
  camera in the anchor's camera frame (the pairs file's relative pose, inverted when the anchor is the
  pair's second view; identity for a view that is its own partner);
- with ``depth_order``: ``depth_boxes`` int64 (3, 4) and ``depth_label`` int64, the pairs file's
  ``depth_order_boxes`` and ``depth_order_label`` of the anchor.

Every draw is seeded by (seed, epoch, view), so a run is the same whatever the number of loader workers.
:class:`EpochBatches` cuts each epoch's permutation (from (seed, epoch)) into global batches.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from pairing.loader import PartnerSampling, SpatialPairs
from pairing.store import PAIRS_NAME, read_pairs
from training.targets import partner_pose

DEPTH_ORDER_KEYS = ("depth_order_boxes", "depth_order_label")


def image_chw(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> uint8 (3, H, W) tensor (augmentation runs later, batched, on the device)."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)


class TrainViews(torch.utils.data.Dataset):
    """Anchors of the training split with their instance and spatial keys' views (module docstring).

    Args:
        folder: dataset folder with ``pairs.h5``.
        subset: bool (V,) the views training may use (anchors and partners both).
        seed: partner-sampling seed.
        spatial: also read a spatial partner per anchor (ESS methods, BYOL with spatial partners, the pose head).
        light: take the instance key from another light of the same pose when there is one.
        pose: also give the partner's pose in the anchor's frame (needs ``spatial``).
        depth_order: also give the anchor's depth-order regions and label.

    Raises:
        ValueError: no pairs file, one built for another dataset, or one without depth-order labels.
    """

    def __init__(self, folder: str | os.PathLike, *, subset: np.ndarray, seed: int, spatial: bool, light: bool,
                 pose: bool = False, depth_order: bool = False):
        self.pairs = SpatialPairs(folder, sampling=PartnerSampling.UNIFORM, subset=subset, seed=seed)
        self.reader = self.pairs.reader
        if pose and not spatial:
            raise ValueError("the partner's pose needs its partner: pass spatial=True with pose=True")
        self.spatial, self.light, self.pose = spatial, light, pose
        if light:
            self.pairs.load_same_pose()  # once, before a DataLoader forks its workers
        self.depth_order = None
        if depth_order:
            labels = read_pairs(self.reader.folder / PAIRS_NAME, keys=DEPTH_ORDER_KEYS)
            if not all(k in labels for k in DEPTH_ORDER_KEYS):
                raise ValueError(f"{self.reader.folder / PAIRS_NAME} has no depth-order labels; rebuild it with "
                                 "`ess pair --force`")
            self.depth_order = (labels["depth_order_boxes"].astype(np.int64), labels["depth_order_label"].astype(np.int64))

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Draw other partners in the next epoch."""
        self.pairs.set_epoch(epoch)

    def _image(self, view: int) -> torch.Tensor:
        return image_chw(self.pairs.images.read("rgb", view))

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.__getitems__([item])[0]

    def __getitems__(self, items: list[int]) -> list[dict[str, Any]]:
        """``[self[i] for i in items]``, the spatial partners drawn all at once (what ``DataLoader`` asks per batch)."""
        views = [int(self.pairs.index_map[int(item)]) for item in items]
        drawn = self.pairs.partners(views) if self.spatial else [None] * len(views)
        return [self._item(view, partner) for view, partner in zip(views, drawn)]

    def _item(self, view: int, drawn: tuple[int, float, int] | None) -> dict[str, Any]:
        """The item anchored on ``view`` with its drawn spatial partner (view, weight, pair row) when spatial."""
        instance = self.pairs.light_variant(view)[0] if self.light else view
        anchor = self._image(view)
        out = {"anchor": anchor, "instance": anchor if instance == view else self._image(instance),
               "view": view, "instance_view": instance}
        if drawn is not None:
            partner, _, row = drawn
            out["partner"] = self._image(partner)
            out["partner_view"] = partner
            if self.pose:
                out["partner_translation"], out["partner_rotation"] = self._partner_pose(view, row)
        if self.depth_order is not None:
            out["depth_boxes"] = torch.from_numpy(self.depth_order[0][view])
            out["depth_label"] = int(self.depth_order[1][view])
        return out

    def _partner_pose(self, view: int, row: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The partner's translation (3,) and rotation (3, 3) in the anchor's frame; identity for row -1 (itself)."""
        if row < 0:
            return torch.zeros(3), torch.eye(3)
        t, r = partner_pose(self.pairs.rel_translation[row], self.pairs.rel_rotation[row],
                            anchor_is_a=int(self.pairs.pairs[row, 0]) == view)
        return torch.from_numpy(t), torch.from_numpy(r)


class EpochBatches(torch.utils.data.Sampler):
    """Index batches of one epoch: a permutation from (seed, epoch), cut into global batches (the last
    incomplete one dropped), each rank taking its contiguous slice; starts at batch ``start``."""

    def __init__(self, n: int, *, batch_size: int, seed: int, epoch: int, start: int = 0, rank: int = 0, world: int = 1):
        order = np.random.default_rng((seed, epoch)).permutation(n)
        per_rank = batch_size // world
        self.batches = [
            order[b * batch_size + rank * per_rank : b * batch_size + (rank + 1) * per_rank].tolist()
            for b in range(start, n // batch_size)
        ]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def steps_per_epoch(n_views: int, batch_size: int) -> int:
    """Optimiser steps of one epoch (incomplete batches are dropped)."""
    return n_views // batch_size
