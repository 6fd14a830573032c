"""BYOL: an online network learns to predict a slowly moving target network's projection of another view.

Reference: J.-B. Grill, F. Strub, F. Altché et al., "Bootstrap Your Own Latent: A New Approach to
Self-Supervised Learning", NeurIPS 2020, arXiv 2006.07733.

Symbols: the online network is a backbone f_theta, a projector g_theta and a predictor q_theta (each MLP
``Linear -> BatchNorm -> ReLU -> Linear``; the paper's widths are 4096 hidden and 256 out); the target
network (f_xi, g_xi) has the online backbone's and projector's shape and follows them as an exponential
moving average ``xi <- tau xi + (1 - tau) theta`` after every optimiser step, with tau rising from
tau_base (0.996) to 1 on a cosine over the K steps of the schedule: ``tau_k = 1 - (1 - tau_base)
(cos(pi k / K) + 1) / 2``. For two views v, v' of an image, the online prediction p = q(g(f(v))) regresses
the target projection z' = g_xi(f_xi(v')) under stop-gradient: ``||p/|p| - z'/|z'|||^2 = 2 - 2 cos(p, z')``;
the loss is symmetrised over the two views (v' through the online network, v through the target) and
summed, as in the paper (so it lies in [0, 8]).

``Partners.SELF``: v' is a second augmentation of the same image (the paper's setting); ``Partners.SPATIAL``:
v' is an augmentation of the anchor's spatial partner, a nearby view drawn as the ESS methods draw them.
Here an SGD optimiser replaces the paper's LARS, and split BatchNorm may stand in for several GPUs'
per-device BatchNorm (``bn_splits``); no key shuffling is needed, BYOL has no negatives.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.ema import ema_update_
from training.mlp import mlp
from training.objective import AnchorFeatures, MethodOutput, StepViews
from training.positives import PositiveTable
from training.resnet import ARCHS, build_resnet, norm_layer
from training.schedule import cosine_schedule


class Partners(str, Enum):
    """What BYOL's second view shows."""

    SELF = "self"  # a second crop of the anchor's image (or of the same pose under another light)
    SPATIAL = "spatial"  # a crop of the anchor's spatial partner (ESS's nearby positive)


@dataclass(frozen=True)
class BYOLConfig:
    """BYOL's model and target schedule.

    Attributes:
        arch: backbone, a name of :data:`training.resnet.ARCHS`.
        dim: projection (and prediction) width; the paper uses 256.
        mlp_hidden: hidden width of the projector and the predictor; the paper uses 4096.
        bn_splits: SplitBatchNorm splits in the backbones (1 = plain BatchNorm, the paper's per-device BN).
        tau: tau_base, the target's decay at step 0, in [0, 1] (0.996 in the paper); it rises to 1.
    """

    arch: str = "resnet18"
    dim: int = 256
    mlp_hidden: int = 4096
    bn_splits: int = 1
    tau: float = 0.996

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {', '.join(sorted(ARCHS))}")
        for name in ("dim", "mlp_hidden", "bn_splits"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.tau) and 0.0 <= self.tau <= 1.0):
            raise ValueError(f"tau is the target's decay and must lie in [0, 1] (BYOL uses 0.996), got {self.tau}")


@dataclass(frozen=True)
class ViewOutput:
    """One network's output for one batch of views.

    Attributes:
        pooled: (N, C) backbone features.
        maps: the backbone's layer2-4 maps (N, C_l, H_l, W_l).
        projection: (N, dim) projector output.
    """

    pooled: Tensor
    maps: dict[str, Tensor]
    projection: Tensor


def regression_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """BYOL's loss ``2 - 2 cos(p, z)``, the squared distance of the unit vectors, averaged over the batch;
    no gradient flows into ``target``.

    Args:
        prediction: (N, D) online predictions p.
        target: (N, D) target projections z.

    Returns:
        Scalar in [0, 4].
    """
    p = F.normalize(prediction, dim=1)  # (N, D)
    z = F.normalize(target.detach(), dim=1)  # (N, D)
    return (2 - 2 * (p * z).sum(1)).mean()


def target_tau(step: int, total: int, base: float) -> float:
    """BYOL's target decay at ``step`` of ``total``: ``1 - (1 - base) (cos(pi step / total) + 1) / 2``,
    from ``base`` at step 0 to 1 at ``total`` (and after)."""
    return cosine_schedule(step, total, base, 1.0)


class BYOL(nn.Module):
    """BYOL (see the module docstring): online backbone, projector and predictor; EMA target.

    Args:
        config: model and target schedule.
        generator: CPU generator for the initial weights; ``None`` uses torch's global one. The backbone is
            built first, so after ``torch.manual_seed(s)`` it is :func:`training.encoder.random_encoder`'s
            network for seed s.
    """

    def __init__(self, config: BYOLConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_resnet(config.arch, norm_layer=norm_layer(config.bn_splits), generator=generator)
        width = self.backbone.out_dim
        self.projector = mlp(width, config.mlp_hidden, config.dim, batch_norm=True, generator=generator)
        self.predictor = mlp(config.dim, config.mlp_hidden, config.dim, batch_norm=True, generator=generator)
        self.target_backbone = copy.deepcopy(self.backbone).requires_grad_(False)  # xi starts as theta
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)

    @property
    def online_backbone(self) -> nn.Module:
        """f_theta, trained by gradient (what ``encoder.pt`` keeps)."""
        return self.backbone

    def online(self, x: Tensor) -> ViewOutput:
        """The online backbone and projector on (N, 3, H, W) views, with gradient."""
        pooled, maps = self.backbone.forward_maps(x)  # (N, C), {layer: map}
        return ViewOutput(pooled=pooled, maps=maps, projection=self.projector(pooled))  # projection (N, dim)

    @torch.no_grad()
    def target(self, x: Tensor) -> ViewOutput:
        """The target backbone and projector on (N, 3, H, W) views, without gradient."""
        pooled, maps = self.target_backbone.forward_maps(x)  # (N, C), {layer: map}
        return ViewOutput(pooled=pooled, maps=maps, projection=self.target_projector(pooled))  # (N, dim)

    def forward_views(self, v1: Tensor, v2: Tensor) -> tuple[ViewOutput, ViewOutput, ViewOutput, ViewOutput, Tensor]:
        """Both networks on both views and the symmetrised BYOL loss.

        Returns:
            online(v1), online(v2), target(v1), target(v2) and the scalar loss
            ``L(q(z1), z2') + L(q(z2), z1')``.
        """
        o1, o2 = self.online(v1), self.online(v2)
        t1, t2 = self.target(v1), self.target(v2)
        p1, p2 = self.predictor(o1.projection), self.predictor(o2.projection)  # (N, dim) each
        return o1, o2, t1, t2, regression_loss(p1, t2.projection) + regression_loss(p2, t1.projection)

    def forward(self, v1: Tensor, v2: Tensor) -> Tensor:
        """The symmetrised BYOL loss of two (N, 3, H, W) batches of views (scalar)."""
        return self.forward_views(v1, v2)[-1]

    def objective(self, views: StepViews, *, positives: PositiveTable | None = None,
                  generator: torch.Generator | None = None) -> MethodOutput:
        """The trainer's interface (:mod:`training.objective`): the BYOL loss of the anchor and second views."""
        o1, _, _, _, loss = self.forward_views(views.anchor, views.second)
        return MethodOutput(loss=loss, anchor=AnchorFeatures(pooled=o1.pooled, maps=o1.maps))

    @torch.no_grad()
    def after_step(self, step: int, horizon: int) -> None:
        """Move the target towards the online network after optimiser step ``step`` (0-based) of ``horizon``."""
        tau = target_tau(step, horizon, self.config.tau)
        online = [*self.backbone.parameters(), *self.projector.parameters()]
        target = [*self.target_backbone.parameters(), *self.target_projector.parameters()]
        ema_update_(target, online, tau)
