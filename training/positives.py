"""Which views are positives of which: the pairs file's rule as a lookup table on the training device.

The contrastive objectives need, for every query view and every key (the batch's keys and the queue's),
whether the key's view is a positive of the query's and with what weight. That rule is the one ``ess pair``
wrote into ``pairs.h5`` (distance and angle, covisibility, or both; ESS-MW weights), so the model never
recomputes it from poses: it looks it up here, by global view index.

:class:`PositiveTable` keeps the positive pairs (a < b) as sorted int64 codes ``a * n_views + b`` with their
weights, plus each view's scene; a lookup restricts itself to same-scene (query, key) candidates first, then
finds each candidate's code by binary search (``torch.searchsorted``), on whatever device the table is on.
A key of the query's own view is always a positive of weight 1 ("the same view"); so is another render of
the same pose (``ess render --light-variants``: distance 0, angle 0), which is also flagged ``same_pose``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

SAME_POSE_ANGLE = 1e-6  # radians: a pair at distance 0 and below this angle shows the same pose
FILE_BLOCK_ROWS = 1 << 20  # pairs read at a time by PositiveTable.from_pairs_file


@dataclass(frozen=True)
class Relation:
    """How every key relates to every query.

    Attributes:
        positive: bool (N, M) the key's view is a positive of the query's (the same view included).
        weight: float32 (N, M) the positive's spatial weight in [0, 1] (ESS-MW); 0 where not positive.
        same_view: bool (N, M) the key shows the query's own view, or the same pose under another light.
    """

    positive: Tensor
    weight: Tensor
    same_view: Tensor


class PositiveTable:
    """Positive pairs of a dataset's views, for lookups by view index on one device.

    Args:
        pairs: int (P, 2) global view indices of positive pairs, in either order.
        weight: float (P,) each pair's weight in [0, 1] (the pairs file's ESS-MW weight).
        same_pose: bool (P,) the pair shows one pose (distance 0, angle 0: light variants).
        scene: int (V,) scene id of every view of the dataset (V = number of views).

    Raises:
        ValueError: shapes disagree, an index is outside [0, V), or a weight outside [0, 1].
    """

    def __init__(self, pairs: np.ndarray | Tensor, weight: np.ndarray | Tensor, same_pose: np.ndarray | Tensor,
                 scene: np.ndarray | Tensor) -> None:
        pairs = torch.as_tensor(np.asarray(pairs), dtype=torch.long).reshape(-1, 2)  # (P, 2)
        weight = torch.as_tensor(np.asarray(weight), dtype=torch.float32).reshape(-1)  # (P,)
        same_pose = torch.as_tensor(np.asarray(same_pose), dtype=torch.bool).reshape(-1)  # (P,)
        self.scene = torch.as_tensor(np.asarray(scene), dtype=torch.long).reshape(-1)  # (V,)
        self.n_views = int(self.scene.numel())
        p = pairs.shape[0]
        if weight.shape != (p,) or same_pose.shape != (p,):
            raise ValueError(f"weight and same_pose need one entry per pair ({p}), got {tuple(weight.shape)} "
                             f"and {tuple(same_pose.shape)}")
        if p and (int(pairs.min()) < 0 or int(pairs.max()) >= self.n_views):
            raise ValueError(f"pair indices must lie in [0, {self.n_views}), the dataset's views")
        if p and not bool(((weight >= 0) & (weight <= 1)).all()):
            raise ValueError("pair weights must lie in [0, 1]")
        lo, hi = pairs.min(1).values, pairs.max(1).values  # (P,)
        codes = lo * self.n_views + hi  # (P,)
        order = torch.argsort(codes)
        self.codes, self.weight, self.same_pose = codes[order], weight[order], same_pose[order]

    @classmethod
    def from_pairs_file(cls, data: dict, positive: np.ndarray, scene: np.ndarray) -> "PositiveTable":
        """The table of a pairs file's arrays (:func:`pairing.store.read_pairs`) under a positive rule.

        Args:
            data: ``pair`` (P, 2), ``weight``, ``distance`` (m), ``angle`` (rad), each (P,): arrays, or the
                on-demand columns of :class:`pairing.loader.SpatialPairs` (read here in row blocks, so only
                the positive pairs' values are ever held at once).
            positive: bool (P,) which pairs are positives (the file's ``positive`` or another rule).
            scene: int (V,) scene id of every view.
        """
        keep = np.asarray(positive, bool)
        parts: dict[str, list[np.ndarray]] = {"pair": [], "weight": [], "same": []}
        for s in range(0, len(keep), FILE_BLOCK_ROWS):
            k = keep[s : s + FILE_BLOCK_ROWS]
            block = {key: np.asarray(data[key][s : s + len(k)]) for key in ("pair", "weight", "distance", "angle")}
            parts["pair"].append(block["pair"].reshape(-1, 2)[k])
            parts["weight"].append(block["weight"][k])
            parts["same"].append(((block["distance"] == 0) & (block["angle"] < SAME_POSE_ANGLE))[k])
        if not parts["pair"]:
            return cls(np.zeros((0, 2), np.int64), np.zeros(0, np.float32), np.zeros(0, bool), scene)
        return cls(*(np.concatenate(parts[key]) for key in ("pair", "weight", "same")), scene)

    def __len__(self) -> int:
        return int(self.codes.numel())

    def to(self, device: str | torch.device) -> "PositiveTable":
        """This table on ``device`` (a shallow copy; no copy when already there)."""
        out = object.__new__(PositiveTable)
        out.n_views = self.n_views
        for name in ("scene", "codes", "weight", "same_pose"):
            setattr(out, name, getattr(self, name).to(device))
        return out

    @torch.no_grad()
    def lookup(self, query: Tensor, keys: Tensor) -> Relation:
        """The relation of every key view to every query view.

        Args:
            query: int (N,) global view indices of the queries (>= 0).
            keys: int (M,) global view indices of the keys; -1 = unknown (an empty queue slot), never a positive.

        Returns:
            A :class:`Relation` of (N, M) tensors on the table's device.
        """
        device = self.codes.device
        query, keys = query.to(device).long(), keys.to(device).long()  # (N,), (M,)
        n, m = query.numel(), keys.numel()
        a, b = query.view(n, 1).expand(n, m), keys.view(1, m).expand(n, m)  # (N, M) each
        same = (a == b) & (b >= 0)  # (N, M) the query's own view
        positive = same.clone()  # (N, M)
        weight = same.float()  # (N, M)
        known = (b >= 0) & ~same
        candidate = known & (self.scene[a.clamp(min=0)] == self.scene[b.clamp(min=0)])  # (N, M) same scene
        if len(self) and bool(candidate.any()):
            i, j = candidate.nonzero(as_tuple=True)  # (C,) each
            lo, hi = torch.minimum(a[i, j], b[i, j]), torch.maximum(a[i, j], b[i, j])
            code = lo * self.n_views + hi  # (C,)
            at = torch.searchsorted(self.codes, code).clamp(max=len(self) - 1)  # (C,)
            hit = self.codes[at] == code  # (C,)
            i, j, at = i[hit], j[hit], at[hit]
            positive[i, j] = True
            weight[i, j] = self.weight[at]
            same[i, j] = self.same_pose[at]
        return Relation(positive=positive, weight=weight, same_view=same)
