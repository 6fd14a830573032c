"""SARL: BYOL plus three losses that align the online network's intermediate feature maps with the target's.

Reference: SARL, arXiv 2512.01908. Each loss compares the online network's maps of one view with the target
network's maps (under stop-gradient) of the other view, symmetrised over the two views (the mean of both
directions), as BYOL's loss is:

* **SAL**, saliency alignment: a map's saliency is the sum over channels of |F| (N, h, w), L2-normalised
  over the map's cells; the loss is the mean squared difference of the two views' saliencies over the
  region both crops share (each cell of view A is read in view B through the crop boxes and flips:
  :mod:`training.correspondence`), averaged over layer2, layer3 and layer4. Crops that share nothing give 0.
* **PPDA**, patch-prototype distribution alignment: the layer3 map, adaptively pooled to 7 x 7 patches, is
  softly assigned to K = 32 learnable prototypes (softmax of cosine similarities at temperature 0.1),
  averaged over an image's patches into a distribution over prototypes; the loss is the symmetric KL
  divergence ``KL(P || Q) + KL(Q || P)`` of the two views' distributions.
* **RAM**, region affinity matching: the layer3 map pooled to 6 x 6 regions r_i gives the affinity matrix
  ``A_ij = 1 - cos(r_i, r_j)``; view B's regions are read where view A's regions are (the same
  correspondence as SAL), and the loss is the mean squared difference of the online and target affinity
  matrices over pairs of regions both views show.

The total is ``L_BYOL + lambda_sal SAL + lambda_ppda PPDA + lambda_ram RAM``. **The lambda defaults are
ours**: the paper's text gives no values. We weighted each term to about 4 % of BYOL's loss at
initialisation (measured on the CPU protocol, a quarter-width CIFAR ResNet-18 on 32 x 32 views: BYOL 3.8,
SAL 0.0015, PPDA 0.17, RAM 0.012), so that together they steer without drowning BYOL: lambda_sal = 100
(a mean squared difference of unit-norm maps is about 1 / cells), lambda_ppda = 1 and lambda_ram = 10.

SAL and RAM need a pixel correspondence between the two views, which two crops of one image (or of one
pose under two lights) have and a spatial partner does not; SARL therefore takes its second view from the
same image (``--partners self``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from training.augment import CropParams
from training.byol import BYOL, BYOLConfig, ViewOutput
from training.correspondence import correspondence, sample_cells
from training.objective import AnchorFeatures, MethodOutput, StepViews
from training.positives import PositiveTable
from training.resnet import MAP_LAYERS

LAMBDAS_ARE_OURS = "ours: arXiv 2512.01908 gives no values for the lambdas"


@dataclass(frozen=True)
class SARLConfig:
    """The three map losses of SARL and their weights (the lambda defaults are ours; see the module docstring).

    Attributes:
        lambda_sal: weight of the saliency alignment loss (ours: 100).
        lambda_ppda: weight of the patch-prototype distribution alignment loss (ours: 1).
        lambda_ram: weight of the region affinity matching loss (ours: 10).
        prototypes: number K of learnable prototypes (32).
        temperature: softmax temperature of the prototype assignment (0.1).
        patch_grid: side of the pooled layer3 grid PPDA assigns (7).
        region_grid: side of the pooled layer3 grid RAM relates (6).
        lambda_source: where the lambda defaults come from (recorded in every run's model arguments).
    """

    lambda_sal: float = 100.0
    lambda_ppda: float = 1.0
    lambda_ram: float = 10.0
    prototypes: int = 32
    temperature: float = 0.1
    patch_grid: int = 7
    region_grid: int = 6
    lambda_source: str = field(default=LAMBDAS_ARE_OURS, init=False)

    def __post_init__(self) -> None:
        for name in ("lambda_sal", "lambda_ppda", "lambda_ram"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a finite weight >= 0, got {value}")
        for name in ("prototypes", "patch_grid", "region_grid"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0 (SARL uses 0.1), got {self.temperature}")


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask`` holds (0, not NaN, where it never does)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def saliency(fmap: Tensor) -> Tensor:
    """Sum over channels of |F|, L2-normalised over the cells: (N, C, h, w) -> (N, h, w)."""
    s = fmap.abs().sum(1)  # (N, h, w)
    return F.normalize(s.flatten(1), dim=1).view_as(s)  # (N, h, w), unit norm per view


def saliency_alignment_loss(online: dict[str, Tensor], target: dict[str, Tensor], src: CropParams,
                            dst: CropParams) -> Tensor:
    """SAL of one direction: online saliency of views ``src`` against the target saliency of views ``dst``
    read at the same image points, mean squared difference over shared cells, averaged over layer2-4.

    Args:
        online: the online network's maps of the ``src`` views, {layer: (N, C_l, h_l, w_l)}.
        target: the target network's maps of the ``dst`` views (stop-gradient applied here).
        src: crop boxes and flips of the ``src`` views.
        dst: those of the ``dst`` views (other crops of the same images).

    Returns:
        Scalar >= 0; 0 when no crop shares a cell centre with its pair.
    """
    losses = []
    for name in MAP_LAYERS:
        s_on = saliency(online[name])  # (N, h, w)
        s_tg = saliency(target[name].detach())  # (N, h', w')
        grid, valid = correspondence(src, dst, *s_on.shape[1:])  # (N, h, w, 2), (N, h, w)
        s_tg_at = sample_cells(s_tg.unsqueeze(1), grid)[:, 0]  # (N, h, w) target saliency where src's cells are
        losses.append(_masked_mean((s_on - s_tg_at) ** 2, valid))
    return torch.stack(losses).mean()


def prototype_log_distribution(fmap: Tensor, prototypes: Tensor, *, temperature: float, grid: int) -> Tensor:
    """Log of each image's mean soft assignment of its patches to the prototypes.

    Args:
        fmap: (N, C, h, w) feature map (layer3).
        prototypes: (K, C) prototype vectors (normalised here).
        temperature: softmax temperature.
        grid: the map is adaptively average-pooled to grid x grid patches.

    Returns:
        (N, K) ``log(mean_patches softmax_k(cos(patch, prototype_k) / temperature))``.
    """
    x = F.adaptive_avg_pool2d(fmap, grid)  # (N, C, g, g)
    x = F.normalize(x.flatten(2).transpose(1, 2), dim=-1)  # (N, P, C) unit patches
    c = F.normalize(prototypes, dim=1)  # (K, C)
    logp = F.log_softmax(x @ c.T / temperature, dim=-1)  # (N, P, K)
    return torch.logsumexp(logp, dim=1) - math.log(x.shape[1])  # (N, K)


def symmetric_kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """``KL(P || Q) + KL(Q || P) = sum_k (p_k - q_k)(log p_k - log q_k)``, averaged over the batch.

    Args:
        log_p: (N, K) log-probabilities.
        log_q: (N, K) log-probabilities.
    """
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(1).mean()


def region_affinity(regions: Tensor) -> Tensor:
    """``A_ij = 1 - cos(r_i, r_j)`` of (N, R, C) region features: (N, R, R)."""
    r = F.normalize(regions, dim=-1)  # (N, R, C)
    return 1 - r @ r.transpose(1, 2)  # (N, R, R)


def region_affinity_loss(online: Tensor, target: Tensor, src: CropParams, dst: CropParams, *, grid: int) -> Tensor:
    """RAM of one direction: the online affinity of views ``src`` against the target affinity of views ``dst``
    read at the same regions, mean squared difference over pairs of regions both views show.

    Args:
        online: (N, C, h, w) online layer3 maps of the ``src`` views.
        target: (N, C, h', w') target layer3 maps of the ``dst`` views (stop-gradient applied here).
        src: crop boxes and flips of the ``src`` views.
        dst: those of the ``dst`` views.
        grid: regions per side.

    Returns:
        Scalar >= 0; 0 when no region is shared.
    """
    r_on = F.adaptive_avg_pool2d(online, grid)  # (N, C, g, g)
    r_tg = F.adaptive_avg_pool2d(target.detach(), grid)  # (N, C, g, g)
    where, valid = correspondence(src, dst, grid, grid)  # (N, g, g, 2), (N, g, g)
    r_tg = sample_cells(r_tg, where)  # (N, C, g, g) dst's regions where src's are
    a_on = region_affinity(r_on.flatten(2).transpose(1, 2))  # (N, R, R)
    a_tg = region_affinity(r_tg.flatten(2).transpose(1, 2))  # (N, R, R)
    v = valid.flatten(1)  # (N, R)
    return _masked_mean((a_on - a_tg) ** 2, v.unsqueeze(2) & v.unsqueeze(1))


class SARL(BYOL):
    """BYOL with SARL's three map losses (see the module docstring).

    Args:
        config: the BYOL part.
        sarl: the map losses and their weights.
        generator: CPU generator for the initial weights; ``None`` uses torch's global one. The prototypes are
            drawn after every BYOL weight, so the BYOL part starts as :class:`training.byol.BYOL` does.
    """

    def __init__(self, config: BYOLConfig, sarl: SARLConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(config, generator=generator)
        self.sarl = sarl
        channels = self.backbone.out_dim // 2  # layer3's width: half of layer4's
        init = torch.randn(sarl.prototypes, channels, generator=generator)  # (K, C3)
        self.prototypes = torch.nn.Parameter(F.normalize(init, dim=1))

    def map_losses(self, o1: ViewOutput, o2: ViewOutput, t1: ViewOutput, t2: ViewOutput, p1: CropParams,
                   p2: CropParams) -> dict[str, Tensor]:
        """SAL, PPDA and RAM (unweighted), each the mean of its two directions (online v1 vs target v2, and
        online v2 vs target v1)."""
        c = self.sarl

        def log_dist(view: ViewOutput) -> Tensor:  # (N, K)
            return prototype_log_distribution(view.maps["layer3"], self.prototypes, temperature=c.temperature,
                                              grid=c.patch_grid)

        with torch.no_grad():
            q1, q2 = log_dist(t1), log_dist(t2)
        return {
            "sal": 0.5 * (saliency_alignment_loss(o1.maps, t2.maps, p1, p2)
                          + saliency_alignment_loss(o2.maps, t1.maps, p2, p1)),
            "ppda": 0.5 * (symmetric_kl(log_dist(o1), q2) + symmetric_kl(log_dist(o2), q1)),
            "ram": 0.5 * (region_affinity_loss(o1.maps["layer3"], t2.maps["layer3"], p1, p2, grid=c.region_grid)
                          + region_affinity_loss(o2.maps["layer3"], t1.maps["layer3"], p2, p1, grid=c.region_grid)),
        }

    def objective(self, views: StepViews, *, positives: PositiveTable | None = None,
                  generator: torch.Generator | None = None) -> MethodOutput:
        """The trainer's interface (:mod:`training.objective`): BYOL's loss plus the weighted map losses."""
        o1, o2, t1, t2, byol = self.forward_views(views.anchor, views.second)
        terms = self.map_losses(o1, o2, t1, t2, views.anchor_params, views.second_params)
        c = self.sarl
        loss = byol + c.lambda_sal * terms["sal"] + c.lambda_ppda * terms["ppda"] + c.lambda_ram * terms["ram"]
        logged = {"byol": byol.detach(), **{k: v.detach() for k, v in terms.items()}}
        return MethodOutput(loss=loss, anchor=AnchorFeatures(pooled=o1.pooled, maps=o1.maps), terms=logged)
