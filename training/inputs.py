"""What a training step feeds the model: the method's augmented views and the auxiliary heads' inputs.

Views (:func:`step_views`): every step augments the anchor, then the instance image, then (when the plan
uses it) the spatial partner, all from the step's generator and in that order, so that the anchor and
instance draws are the same for every method; ESS without the instance positive, and BYOL with spatial
partners, take the partner as the second view (the instance draw is then unused). The heads' inputs
(:func:`aux_inputs`) draw from generators of their own, seeded by (seed, step, purpose), so turning heads
on never changes a method's draws.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from training.augment import AugmentConfig, CropParams, crop_views, moco_v2_augment
from training.heads import AuxConfig, AuxHead, AuxInputs
from training.objective import StepViews
from training.targets import boxes_to_tlhw, pose_targets, sample_sp_boxes, sp_targets

POSE_STREAM = 0x504F  # "PO": the stream of the step's seeds the pose head's partner views draw from


@dataclass(frozen=True)
class ViewPlan:
    """Which loaded images a method's views come from.

    Attributes:
        second_from_partner: the second view is a crop of the spatial partner (ESS without the instance
            positive, BYOL with spatial partners), not of the instance image.
        extra_partner: the spatial partner is an extra view besides the second (ESS's extra key).
    """

    second_from_partner: bool = False
    extra_partner: bool = False

    @property
    def loads_partner(self) -> bool:
        """The method reads each anchor's spatial partner."""
        return self.second_from_partner or self.extra_partner


def stream_seed(seed: int, step: int, stream: int) -> int:
    """A 32-bit seed for one purpose (``stream``) of one training step."""
    return int(np.random.SeedSequence([int(seed), int(step), int(stream)]).generate_state(1)[0])


def step_views(batch: dict[str, Tensor], plan: ViewPlan, *, augment: AugmentConfig,
               generator: torch.Generator) -> StepViews:
    """The augmented views of one step (module docstring).

    Args:
        batch: the loader's tensors on the device: ``anchor``, ``instance`` (and ``partner``) uint8 images
            (N, 3, H, W) with ``view``, ``instance_view`` (and ``partner_view``) indices (N,).
        plan: which images the views come from.
        augment: the augmentation recipe.
        generator: the step's generator.
    """
    anchor, anchor_params = moco_v2_augment(batch["anchor"], config=augment, generator=generator, return_params=True)
    second, second_params = moco_v2_augment(batch["instance"], config=augment, generator=generator, return_params=True)
    second_view, partner, partner_view = batch["instance_view"], None, None
    if plan.extra_partner:
        partner, partner_view = moco_v2_augment(batch["partner"], config=augment, generator=generator), batch["partner_view"]
    elif plan.second_from_partner:
        second, second_params = moco_v2_augment(batch["partner"], config=augment, generator=generator, return_params=True)
        second_view = batch["partner_view"]
    return StepViews(anchor=anchor, anchor_params=anchor_params, second=second, second_params=second_params,
                     view=batch["view"], second_view=second_view, partner=partner, partner_view=partner_view)


def _sp_inputs(batch: dict[str, Tensor], augment: AugmentConfig, *, seed: int, step: int) -> dict[str, Tensor]:
    """Two local crops of every anchor image and their relation (:mod:`training.targets`)."""
    images = batch["anchor"]  # (N, 3, H, W)
    height, width = images.shape[-2:]
    boxes = sample_sp_boxes(batch["view"].cpu().numpy(), height, width, seed=seed, step=step)  # (N, 2, 4)
    tlhw = torch.from_numpy(boxes_to_tlhw(boxes)).to(images.device)  # (N, 2, 4)
    target = torch.from_numpy(sp_targets(boxes, height, width)).to(images.device)  # (N, 3)
    return {"sp_a": crop_views(images, tlhw[:, 0], config=augment), "sp_b": crop_views(images, tlhw[:, 1], config=augment),
            "sp_target": target}


def _pose_inputs(batch: dict[str, Tensor], anchor_params: CropParams, augment: AugmentConfig, *, seed: int,
                 step: int) -> dict[str, Tensor]:
    """Each anchor's partner, augmented without a flip of its own and mirrored with the anchor, and the
    partner's pose in the anchor's (mirrored) frame."""
    images = batch["partner"]
    gen = torch.Generator(device=images.device).manual_seed(stream_seed(seed, step, POSE_STREAM))
    partner = moco_v2_augment(images, config=replace(augment, flip_p=0.0), generator=gen)  # (N, 3, S, S)
    flip = anchor_params.flip.to(partner.device).view(-1, 1, 1, 1)  # (N, 1, 1, 1)
    target = pose_targets(batch["partner_translation"].float(), batch["partner_rotation"].float(), anchor_params.flip)
    return {"partner": torch.where(flip, partner.flip(-1), partner), "pose_target": target}


def aux_inputs(heads: AuxConfig, batch: dict[str, Tensor], anchor_params: CropParams, *, augment: AugmentConfig,
               seed: int, step: int) -> AuxInputs:
    """The heads' crops, partner views, targets and labels for one step.

    Args:
        heads: the heads that train.
        batch: the loader's tensors on the device (with ``partner``, ``partner_translation`` and
            ``partner_rotation`` for ``pose``; ``depth_boxes`` and ``depth_label`` for ``depth-order``).
        anchor_params: the anchor views' crop boxes and flips.
        augment: the augmentation recipe (output size, normalisation).
        seed: the training seed.
        step: the step being trained.
    """
    parts: dict[str, Tensor] = {}
    if AuxHead.SP in heads.heads:
        parts.update(_sp_inputs(batch, augment, seed=seed, step=step))
    if AuxHead.POSE in heads.heads:
        parts.update(_pose_inputs(batch, anchor_params, augment, seed=seed, step=step))
    if AuxHead.DEPTH_ORDER in heads.heads:
        parts.update(depth_boxes=batch["depth_boxes"], depth_label=batch["depth_label"].long())
    return AuxInputs(anchor_params=anchor_params, **parts)
