"""The methods behind one interface: which model each trains, which views it sees, and the module the
trainer steps (the method plus its auxiliary heads).

Every method is a :class:`training.objective.Objective`; :data:`METHODS` maps a :class:`TrainMethod` to how
its model is built from a :class:`TrainConfig` and which images its views come from. The trainer knows
nothing else of a method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from training.byol import BYOL, BYOLConfig, Partners
from training.config import TrainConfig, TrainMethod
from training.heads import AuxHeads, AuxInputs
from training.inputs import ViewPlan, stream_seed
from training.moco import MoCo, MoCoConfig
from training.objective import Objective, StepViews
from training.positives import PositiveTable
from training.sarl import SARL, SARLConfig

MAX_QUEUE = 65536
HEADS_STREAM = 0x4845  # "HE": the stream of the seed the heads' initial weights draw from


def queue_size(config: TrainConfig, n_views: int) -> int:
    """K: the configured size, or 65536 scaled to the dataset (a multiple of the batch <= views)."""
    if config.queue_size is not None:
        return config.queue_size
    return max(config.batch_size, min(MAX_QUEUE, (n_views // config.batch_size) * config.batch_size))


def _moco(config: TrainConfig, n_views: int) -> tuple[nn.Module, MoCoConfig]:
    args = MoCoConfig(arch=config.arch, dim=config.dim, mlp_hidden=config.mlp_hidden, K=queue_size(config, n_views),
                      m=config.moco_m, T=config.temperature, bn_splits=config.bn_splits, method=config.method.value)
    return MoCo(args), args


def _byol_config(config: TrainConfig) -> BYOLConfig:
    return BYOLConfig(arch=config.arch, dim=config.dim, mlp_hidden=config.mlp_hidden, bn_splits=config.bn_splits,
                      tau=config.byol_tau)


def _byol(config: TrainConfig, n_views: int) -> tuple[nn.Module, BYOLConfig]:
    args = _byol_config(config)
    return BYOL(args), args


def _sarl(config: TrainConfig, n_views: int) -> tuple[nn.Module, dict[str, Any]]:
    byol = _byol_config(config)
    sarl = SARLConfig(lambda_sal=config.lambda_sal, lambda_ppda=config.lambda_ppda, lambda_ram=config.lambda_ram)
    return SARL(byol, sarl), {"byol": byol, "sarl": sarl}


def _contrastive_views(config: TrainConfig) -> ViewPlan:
    spatial = config.method is not TrainMethod.MOCO
    return ViewPlan(second_from_partner=spatial and not config.instance_positive,
                    extra_partner=spatial and config.instance_positive)


def _bootstrap_views(config: TrainConfig) -> ViewPlan:
    return ViewPlan(second_from_partner=config.partners is Partners.SPATIAL)


@dataclass(frozen=True)
class MethodSpec:
    """How a method is built and fed.

    Attributes:
        build: (config, number of training views) -> (model, its arguments as recorded in the checkpoint).
        views: config -> which images the method's views come from.
    """

    build: Callable[[TrainConfig, int], tuple[nn.Module, Any]]
    views: Callable[[TrainConfig], ViewPlan]


METHODS: dict[TrainMethod, MethodSpec] = {
    TrainMethod.MOCO: MethodSpec(_moco, _contrastive_views),
    TrainMethod.ESS_MB: MethodSpec(_moco, _contrastive_views),
    TrainMethod.ESS_MW: MethodSpec(_moco, _contrastive_views),
    TrainMethod.BYOL: MethodSpec(_byol, _bootstrap_views),
    TrainMethod.SARL: MethodSpec(_sarl, _bootstrap_views),
}


def view_plan(config: TrainConfig) -> ViewPlan:
    """Which images ``config``'s method reads and augments into which views."""
    return METHODS[config.method].views(config)


class Learner(nn.Module):
    """What the optimiser trains: a method and, optionally, auxiliary heads on its online backbone.

    Args:
        method: the method's model (an :class:`training.objective.Objective`).
        name: the method's name (the log's key for its own loss when heads add theirs).
        heads: the auxiliary heads, or None.
    """

    def __init__(self, method: nn.Module, *, name: str, heads: AuxHeads | None = None) -> None:
        super().__init__()
        self.method: Objective = method
        self.heads = heads
        self.name = name

    def forward(self, views: StepViews, aux: AuxInputs | None, *, positives: PositiveTable | None,
                generator: torch.Generator | None) -> tuple[Tensor, dict[str, Tensor]]:
        """The step's loss (the method's plus the weighted heads') and its named parts, detached, for the log."""
        out = self.method.objective(views, positives=positives, generator=generator)
        if self.heads is None:
            return out.loss, dict(out.terms)
        extra, head_terms = self.heads(out.anchor, aux, self.method.online_backbone)
        return out.loss + extra, {self.name: out.loss.detach(), **out.terms, **head_terms}


def build_learner(config: TrainConfig, n_views: int) -> tuple[Learner, dict[str, Any]]:
    """The method's model (initialised from torch's global generator: seed it first) and its heads (from a
    generator of their own, so they never change the method's initial weights).

    Returns:
        The learner and the model arguments to record: ``{"model_args": ..., "heads_args": ... or None}``.
    """
    method, args = METHODS[config.method].build(config, n_views)
    heads = None
    if config.heads is not None:
        gen = torch.Generator().manual_seed(stream_seed(config.seed, 0, HEADS_STREAM))
        heads = AuxHeads(config.heads, features=method.online_backbone.out_dim, generator=gen)
    return Learner(method, name=config.method.value, heads=heads), {"model_args": args, "heads_args": config.heads}
