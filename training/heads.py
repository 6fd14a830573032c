"""Auxiliary heads any method can train beside its own loss: small MLPs on the backbone's features.

``--aux sp pose depth-order --aux-weight W...`` adds ``sum_h W_h L_h`` to the method's loss. Each head
reads the online (query) backbone, and :mod:`training.targets` describes each target:

* ``sp``, Spatial Prediction (Y. Shen, Y. Cai, W. Hryniewska-Guzik, Q. Lin, M. Zhang, "Learning to Perceive
  'Where': Spatial Pretext Tasks for Robust Self-Supervised Learning", arXiv 2605.09963): two local crops
  of the anchor image go through the backbone; from their two pooled features the head regresses crop B's
  position relative to crop A (dx, dy over the image size) and its log scale (mean squared error).
* ``pose``: from the anchor's pooled features and its spatial partner's (the ESS partner, loaded for every
  method when this head is on), the head regresses the partner's pose in the anchor's camera frame:
  translation in metres and the rotation's 6-D representation (mean squared error). The partner's view
  is a crop of its own (no flip drawn) and is mirrored exactly when the anchor's view is, so that the
  mirrored target (x, yaw and roll negated) describes what the two images show.
* ``depth-order``: the anchor's layer3 map is area-average pooled inside the three regions of its
  ``depth_order_boxes`` (mapped through its crop and flip); from the three features the head classifies
  ``depth_order_label``, one of the 3! = 6 near-to-far orders (cross-entropy over the views that have a
  label and show every region).

The extra backbone passes (crops, partner) run in training mode without updating BatchNorm's running
statistics, so with every weight 0 a run trains to the same weights and buffers as the run without heads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.augment import CropParams
from training.mlp import mlp
from training.objective import AnchorFeatures
from training.targets import region_features

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)  # SplitBatchNorm is a BatchNorm2d
DEPTH_ORDERS = 6  # 3! near-to-far orders of three regions (pairing.pretext.PERMUTATIONS_3)
DEPTH_ORDER_LAYER = "layer3"
"""The map the depth-order head pools: layer4 is too coarse on small images (4 x 4 cells at 32 px)."""


class AuxHead(str, Enum):
    """An auxiliary head."""

    SP = "sp"
    POSE = "pose"
    DEPTH_ORDER = "depth-order"


@dataclass(frozen=True)
class AuxConfig:
    """Which auxiliary heads train and how much each counts.

    Attributes:
        heads: the heads, each at most once (strings such as ``"depth-order"`` are converted).
        weights: one weight >= 0 per head, or one for all (expanded to one per head).
        hidden: hidden width of every head's MLP.
    """

    heads: tuple[AuxHead, ...]
    weights: tuple[float, ...] = (1.0,)
    hidden: int = 256

    def __post_init__(self) -> None:
        choices = ", ".join(h.value for h in AuxHead)
        try:
            heads = tuple(AuxHead(h) for h in self.heads)
        except ValueError:
            raise ValueError(f"--aux takes heads among {choices}, got {list(self.heads)}") from None
        if not heads or len(set(heads)) != len(heads):
            raise ValueError(f"--aux needs one or more different heads among {choices}, got {[h.value for h in heads]}")
        weights = tuple(float(w) for w in self.weights)
        if len(weights) == 1:
            weights = weights * len(heads)
        if len(weights) != len(heads):
            raise ValueError(f"--aux-weight takes one weight, or one per --aux head ({len(heads)}), got {len(weights)}")
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            raise ValueError(f"--aux-weight values must be finite and >= 0, got {list(weights)}")
        if not isinstance(self.hidden, int) or self.hidden < 1:
            raise ValueError(f"hidden must be a positive integer, got {self.hidden!r}")
        object.__setattr__(self, "heads", heads)
        object.__setattr__(self, "weights", weights)

    def weight(self, head: AuxHead) -> float:
        """The weight of ``head`` (0 for a head that is not on)."""
        return dict(zip(self.heads, self.weights)).get(head, 0.0)


@dataclass(frozen=True)
class AuxInputs:
    """What the heads need beyond the anchor's features, on the training device (None for a head that is off).

    Attributes:
        sp_a: (N, 3, S, S) each anchor's first local crop.
        sp_b: (N, 3, S, S) its second local crop.
        sp_target: (N, 3) (dx, dy, log_scale) of crop B relative to crop A.
        partner: (N, 3, S, S) each anchor's spatial partner, augmented and mirrored with the anchor.
        pose_target: (N, 9) the partner's pose in the anchor's frame (translation, 6-D rotation).
        depth_boxes: (N, 3, 4) the anchor image's depth-order regions (row0, col0, row1, col1), pixels.
        depth_label: (N,) their near-to-far order in [0, 6), -1 where none was found.
        anchor_params: the anchor views' crop boxes and flips.
    """

    anchor_params: CropParams
    sp_a: Tensor | None = None
    sp_b: Tensor | None = None
    sp_target: Tensor | None = None
    partner: Tensor | None = None
    pose_target: Tensor | None = None
    depth_boxes: Tensor | None = None
    depth_label: Tensor | None = None


@contextmanager
def frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """BatchNorm layers of ``module`` normalise with batch statistics (in training mode) without updating
    their running statistics or batch counters, inside the block."""
    norms = [m for m in module.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


def _masked_cross_entropy(logits: Tensor, labels: Tensor, valid: Tensor) -> Tensor:
    """Mean cross-entropy over the ``valid`` rows; 0 (not NaN) when there are none."""
    ce = F.cross_entropy(logits, labels.clamp(min=0), reduction="none")  # (N,)
    mask = valid.to(ce.dtype)
    return (ce * mask).sum() / mask.sum().clamp(min=1.0)


class AuxHeads(nn.Module):
    """The auxiliary heads of an :class:`AuxConfig` (see the module docstring).

    Args:
        config: heads and weights.
        features: width C of the backbone's pooled features (layer3 has C / 2 channels).
        generator: source of the heads' initial weights (``None``: torch's global generator).
    """

    def __init__(self, config: AuxConfig, *, features: int, generator: torch.Generator | None) -> None:
        super().__init__()
        self.config = config
        inputs = {AuxHead.SP: 2 * features, AuxHead.POSE: 2 * features, AuxHead.DEPTH_ORDER: 3 * (features // 2)}
        outputs = {AuxHead.SP: 3, AuxHead.POSE: 9, AuxHead.DEPTH_ORDER: DEPTH_ORDERS}
        self.mlps = nn.ModuleDict({h.value: mlp(inputs[h], config.hidden, outputs[h], batch_norm=False, generator=generator)
                                   for h in config.heads})

    def losses(self, anchor: AnchorFeatures, inputs: AuxInputs, backbone: nn.Module) -> dict[str, Tensor]:
        """Each head's unweighted loss (scalars), keyed by the head's name.

        Args:
            anchor: the anchor views' online backbone features.
            inputs: crops, partners, targets and labels.
            backbone: the online backbone, for the crops' and partners' features.
        """
        out = {}
        if AuxHead.SP.value in self.mlps:
            with frozen_running_stats(backbone):
                f_a, f_b = backbone(inputs.sp_a), backbone(inputs.sp_b)  # (N, C) each
            pred = self.mlps[AuxHead.SP.value](torch.cat([f_a, f_b], dim=1))  # (N, 3)
            out[AuxHead.SP.value] = F.mse_loss(pred, inputs.sp_target)
        if AuxHead.POSE.value in self.mlps:
            with frozen_running_stats(backbone):
                f_p = backbone(inputs.partner)  # (N, C)
            pred = self.mlps[AuxHead.POSE.value](torch.cat([anchor.pooled, f_p], dim=1))  # (N, 9)
            out[AuxHead.POSE.value] = F.mse_loss(pred, inputs.pose_target)
        if AuxHead.DEPTH_ORDER.value in self.mlps:
            regions, shown = region_features(anchor.maps[DEPTH_ORDER_LAYER], inputs.depth_boxes,
                                             inputs.anchor_params)  # (N, 3, C3), (N,)
            logits = self.mlps[AuxHead.DEPTH_ORDER.value](regions.flatten(1))  # (N, 6)
            valid = shown & (inputs.depth_label >= 0)  # (N,)
            out[AuxHead.DEPTH_ORDER.value] = _masked_cross_entropy(logits, inputs.depth_label, valid)
        return out

    def forward(self, anchor: AnchorFeatures, inputs: AuxInputs, backbone: nn.Module) -> tuple[Tensor, dict[str, Tensor]]:
        """``sum_h W_h L_h`` and each head's loss (detached, for the log)."""
        losses = self.losses(anchor, inputs, backbone)
        total = sum(self.config.weight(AuxHead(name)) * value for name, value in losses.items())
        return total, {name: value.detach() for name, value in losses.items()}
