"""The one interface the trainer has over the methods: what a step feeds a method and what it gets back.

A method (:class:`training.moco.MoCo`, :class:`training.byol.BYOL`, :class:`training.sarl.SARL`) is an
``nn.Module`` with

* ``objective(views, *, positives, generator) -> MethodOutput``: the step's loss from its augmented views,
  plus the anchor's backbone features (pooled and the layer2-4 maps) that auxiliary heads read;
* ``after_step(step, horizon)``: what follows the optimiser step (BYOL's target update; nothing for MoCo,
  whose key encoder moves inside ``objective`` as in the MoCo paper);
* ``online_backbone``: the backbone trained by gradient, the one ``encoder.pt`` keeps.

Which images a step augments into which views (anchor, second view, extra spatial key) is data
(:class:`training.inputs.ViewPlan`, chosen per method in :mod:`training.methods`), not code in the
trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor, nn

from training.augment import CropParams
from training.positives import PositiveTable


@dataclass(frozen=True)
class StepViews:
    """The augmented views of one step, on the training device.

    Attributes:
        anchor: (N, 3, S, S) each anchor's first view: MoCo's query, BYOL's first view.
        anchor_params: its crop boxes and flips.
        second: (N, 3, S, S) the second view: the instance key (MoCo, ESS), the second crop of the same image
            (BYOL ``self``) or of the spatial partner (BYOL ``spatial``, ESS without instance positive).
        second_params: its crop boxes and flips (in the second image's pixels).
        view: (N,) global view index of each anchor.
        second_view: (N,) global view index of each second view's image.
        partner: (N, 3, S, S) ESS's extra key, the anchor's spatial partner; None without it.
        partner_view: (N,) its global view indices; None without it.
    """

    anchor: Tensor
    anchor_params: CropParams
    second: Tensor
    second_params: CropParams
    view: Tensor
    second_view: Tensor
    partner: Tensor | None = None
    partner_view: Tensor | None = None


@dataclass(frozen=True)
class AnchorFeatures:
    """The online (query) backbone's output for the anchor views, with gradient.

    Attributes:
        pooled: (N, C) globally pooled features.
        maps: ``{"layer2": ..., "layer3": ..., "layer4": ...}`` feature maps (N, C_l, H_l, W_l).
    """

    pooled: Tensor
    maps: dict[str, Tensor]


@dataclass(frozen=True)
class MethodOutput:
    """One step of a method.

    Attributes:
        loss: scalar loss to minimise.
        anchor: the anchor views' backbone features (what auxiliary heads read).
        terms: named parts of the loss, detached, for the log (empty when the loss has one part).
    """

    loss: Tensor
    anchor: AnchorFeatures
    terms: dict[str, Tensor] = field(default_factory=dict)


class Objective(Protocol):
    """What the trainer calls on a method (see the module docstring)."""

    def objective(self, views: StepViews, *, positives: PositiveTable | None,
                  generator: torch.Generator | None) -> MethodOutput: ...

    def after_step(self, step: int, horizon: int) -> None: ...

    @property
    def online_backbone(self) -> nn.Module: ...
