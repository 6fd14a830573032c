"""MoCo-v2 with ESS spatial positives.

References: K. He, H. Fan, Y. Wu, S. Xie, R. Girshick, "Momentum Contrast for Unsupervised Visual
Representation Learning", CVPR 2020; X. Chen, H. Fan, R. Girshick, K. He, "Improved Baselines with
Momentum Contrastive Learning", arXiv 2003.04297; "Environmental Spatial Similarity" (ESS), arXiv
2401.15120. The structure follows facebookresearch/moco ``moco/builder.py``.

Symbols: a query encoder f_q (backbone + 2-layer MLP head, trained by gradient) embeds a query view as a
unit vector q; a key encoder f_k, a momentum copy updated as ``theta_k <- m theta_k + (1 - m) theta_q``
(m: momentum, 0.999), embeds a key view as a unit vector k. Keys of past batches wait in a FIFO queue of
K entries, each with the global index of the view it was made from. Logits are dot products divided by the
temperature T (0.2 in MoCo v2). N is the batch size, dim the embedding width.

* ``Method.MOCO``: logits ``[q . k_own, q . queue] / T`` (N, 1+K); the target is the own key (column 0),
  the anchor's second augmentation. A queued key of the query's own view (an older embedding of the same
  image, or the same pose under another light) is excluded, never a negative: otherwise instance
  discrimination would push a view away from itself whenever the queue is a large part of the dataset.
* ``Method.ESS_MB`` / ``Method.ESS_MW``: the instance positive stays (the anchor's second augmentation,
  column 0) and the anchor's spatial partner joins the batch keys: logits
  ``[q . k_own | q . k_j for the other 2N-1 batch keys | q . queue] / T`` (N, 2N+K). Every batch or queue
  key whose view is a positive of the query's view under the pairs file's rule (distance and angle,
  covisibility or both: :class:`training.positives.PositiveTable`) is a positive, and so is a key of the
  same view. ESS-MB's target is uniform over the positives; ESS-MW's is proportional to their spatial
  weights w (1 for the own key and the same view), so each weight counts once. Without ``im_p`` (the
  instance positive turned off) the key batch is the partners alone, as in the ESS paper's variant that
  replaces the second augmentation by a nearby view.

Queue slots never filled yet (the first K / N steps) are excluded: their logit is ``MASKED_LOGIT`` and
their target 0. ``forward`` returns ``(logits, targets)`` for :func:`training.losses.soft_info_nce` (or
``F.cross_entropy(logits, targets)``); with MOCO the targets are one-hot, so :func:`info_nce` agrees.

Shuffle-BN needs several processes; here the key encoder instead shuffles its batch (with a random
permutation) before :class:`training.resnet.SplitBatchNorm` layers, as the official MoCo CIFAR demo does,
so that a query and its key are normalised with statistics of different sub-batches. Under
``torch.distributed`` keys and their view indices are all-gathered before they enter the queue.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from enum import Enum

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from training.ema import ema_update_
from training.losses import multi_positive_targets, soft_info_nce, weighted_targets
from training.objective import AnchorFeatures, MethodOutput, StepViews
from training.positives import PositiveTable
from training.resnet import ARCHS, build_resnet, norm_layer

MASKED_LOGIT = -1e4  # an excluded key: exp(-1e4 - lse) is exactly 0 in float32 and float16, yet finite
MIN_OWN_WEIGHT = 1e-3  # ESS-MW: an own key whose pair weight is 0 (a covisibility positive outside the angle gate)


class Method(str, Enum):
    """Which keys count as positives."""

    MOCO = "moco"
    ESS_MB = "ess-mb"
    ESS_MW = "ess-mw"


@dataclass(frozen=True)
class MoCoConfig:
    """MoCo-v2 model and objective.

    Attributes:
        arch: backbone, ``"resnet18"`` or ``"resnet50"``.
        dim: embedding width of q and k.
        mlp_hidden: hidden width of the projection head.
        K: queue length (keys of past batches used as negatives or spatial positives).
        m: key-encoder momentum in [0, 1].
        T: softmax temperature, > 0.
        bn_splits: SplitBatchNorm splits in both encoders (1 = plain BatchNorm); the batch size must be a
            multiple of it.
        method: MOCO, ESS_MB or ESS_MW (a string such as ``"ess-mb"`` is accepted and converted).
    """

    arch: str = "resnet18"
    dim: int = 128
    mlp_hidden: int = 2048
    K: int = 65536  # noqa: N815 - the paper's symbol
    m: float = 0.999
    T: float = 0.2  # noqa: N815
    bn_splits: int = 8
    method: Method = Method.MOCO

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {', '.join(sorted(ARCHS))}")
        for name in ("dim", "mlp_hidden", "K", "bn_splits"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.m <= 1.0:
            raise ValueError(f"m is the key-encoder momentum and must lie in [0, 1] (MoCo uses 0.999), got {self.m}")
        if not (math.isfinite(self.T) and self.T > 0):
            raise ValueError(f"T is the softmax temperature and must be > 0 (MoCo v2 uses 0.2), got {self.T}")
        try:
            object.__setattr__(self, "method", Method(self.method))
        except ValueError:
            choices = ", ".join(x.value for x in Method)
            raise ValueError(f"method must be one of {choices}, got {self.method!r}") from None


# --- helpers -------------------------------------------------------------------------------------------------


@torch.no_grad()
def concat_all_gather(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from every process along dim 0 (equal shapes on all ranks); no-op in one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered, dim=0)  # (world * N, ...)


def _other_index(n: int, m: int, device: torch.device) -> Tensor:
    """(N, M-1) long: row i lists the batch columns j != i of an (N, M) matrix (M >= N) in order."""
    j = torch.arange(m - 1, device=device).expand(n, m - 1)  # (N, M-1)
    return j + (j >= torch.arange(n, device=device).view(n, 1)).long()  # (N, M-1)


def _target_dtype(logits: Tensor) -> torch.dtype:
    """Targets stay at least float32 when the logits are half precision (autocast): weights keep their digits."""
    return torch.promote_types(logits.dtype, torch.float32)


def _view_ids(ids: Tensor | None, n: int, device: torch.device, name: str) -> Tensor:
    """Global view indices as long (N,) on ``device``; -1 (unknown) for all when ``ids`` is None."""
    if ids is None:
        return torch.full((n,), -1, dtype=torch.long, device=device)
    out = torch.as_tensor(ids, device=device).long().reshape(-1)
    if out.shape != (n,):
        raise ValueError(f"{name} must hold one view index per image ({n}), got shape {tuple(torch.as_tensor(ids).shape)}")
    return out


class Encoder(nn.Module):
    """A ResNet backbone and MoCo-v2's projection head ``Linear -> ReLU -> Linear``: images -> (N, dim)."""

    def __init__(self, config: MoCoConfig, generator: torch.Generator | None) -> None:
        super().__init__()
        self.backbone = build_resnet(config.arch, norm_layer=norm_layer(config.bn_splits), generator=generator)
        self.head = nn.Sequential(
            nn.Linear(self.backbone.out_dim, config.mlp_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.mlp_hidden, config.dim),
        )
        for layer in (self.head[0], self.head[2]):  # torch's default Linear init, from the given generator
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))  # (N, dim)


class MoCo(nn.Module):
    """MoCo-v2 with an optional ESS spatial-positive objective (see the module docstring).

    Args:
        config: model and objective.
        generator: CPU generator for the initial weights and queue; ``None`` uses torch's global one.
    """

    def __init__(self, config: MoCoConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.encoder_q = Encoder(config, generator)
        self.encoder_k = copy.deepcopy(self.encoder_q).requires_grad_(False)  # theta_k starts as theta_q
        k = config.K
        self.register_buffer("queue", F.normalize(torch.randn(k, config.dim, generator=generator), dim=1))  # (K, dim)
        self.register_buffer("queue_view", torch.full((k,), -1, dtype=torch.long))  # (K,) -1: empty or unknown
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))  # next slot to write
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))  # slots [0, filled) hold real keys

    @torch.no_grad()
    def _momentum_update_key_encoder(self) -> None:
        """theta_k <- m theta_k + (1 - m) theta_q."""
        ema_update_(self.encoder_k.parameters(), self.encoder_q.parameters(), self.config.m)

    @torch.no_grad()
    def _keys(self, im_k: Tensor, generator: torch.Generator | None) -> Tensor:
        """Unit keys (N, dim); with split BN the batch is shuffled through the key encoder and put back."""
        if self.config.bn_splits == 1:
            return F.normalize(self.encoder_k(im_k), dim=1)  # (N, dim)
        device = generator.device if generator is not None else im_k.device
        perm = torch.randperm(im_k.shape[0], generator=generator, device=device).to(im_k.device)  # (N,)
        k = self.encoder_k(im_k[perm])  # (N, dim) in shuffled order
        return F.normalize(k[torch.argsort(perm)], dim=1)  # (N, dim)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: Tensor, views: Tensor) -> None:
        """Write the (all-gathered) keys and their view indices at the pointer, wrapping around the queue's end."""
        keys = concat_all_gather(keys)  # (B, dim)
        views = concat_all_gather(views)  # (B,)
        b, size = keys.shape[0], self.config.K
        skip = max(0, b - size)  # a batch longer than the queue: only its newest K keys stay
        idx = (self.queue_ptr + skip + torch.arange(b - skip, device=keys.device)) % size  # (min(B, K),)
        self.queue.index_copy_(0, idx, keys[skip:].to(self.queue.dtype))
        self.queue_view.index_copy_(0, idx, views[skip:])
        self.queue_ptr.copy_((self.queue_ptr + b) % size)
        self.queue_filled.copy_(torch.clamp(self.queue_filled + b, max=size))

    def _moco_logits(self, q: Tensor, k: Tensor, queue: Tensor, exclude: Tensor) -> tuple[Tensor, Tensor]:
        """Logits [q . k_own, q . queue] / T and one-hot targets, both (N, 1+K); ``exclude`` (N, K) masks keys."""
        l_pos = (q * k).sum(1, keepdim=True)  # (N, 1)
        l_neg = q @ queue.T  # (N, K)
        logits = torch.cat([l_pos, l_neg], dim=1) / self.config.T  # (N, 1+K)
        logits = logits.masked_fill(F.pad(exclude, (1, 0), value=False), MASKED_LOGIT)  # (N, 1+K)
        targets = torch.zeros(logits.shape, dtype=_target_dtype(logits), device=logits.device)  # (N, 1+K)
        targets[:, 0] = 1
        return logits, targets

    def _ess_logits(self, q: Tensor, keys: Tensor, queue: Tensor, valid: Tensor, relation) -> tuple[Tensor, Tensor]:
        """Logits [q . k_own | q . other batch keys | q . queue] / T and spatial targets, both (N, B+K).

        ``keys`` (B, dim) are the batch keys, the N own keys first; ``relation`` covers [batch keys | queue].
        """
        n, b = q.shape[0], keys.shape[0]
        others = _other_index(n, b, q.device)  # (N, B-1)
        l_batch = q @ keys.T  # (N, B)
        l_own = l_batch.diagonal().unsqueeze(1)  # (N, 1)
        logits = torch.cat([l_own, l_batch.gather(1, others), q @ queue.T], dim=1) / self.config.T  # (N, B+K)
        logits = logits.masked_fill(F.pad(~valid, (b, 0), value=False).view(1, -1), MASKED_LOGIT)  # (N, B+K)
        with torch.no_grad():
            def arrange(x: Tensor) -> Tensor:  # [batch | queue] columns -> [own | other batch | queue]
                return torch.cat([x[:, :b].diagonal().unsqueeze(1), x[:, :b].gather(1, others), x[:, b:]], dim=1)

            queue_ok = torch.cat([valid.new_ones(b), valid]).view(1, -1)  # (1, B+K)
            positive = arrange(relation.positive & queue_ok)  # (N, B+K)
            positive[:, 0] = True  # the own key is a positive whatever the rule says of its pair
            if self.config.method is Method.ESS_MB:
                targets = multi_positive_targets(positive)  # (N, B+K)
            else:
                weight = arrange(relation.weight * relation.positive * queue_ok)  # (N, B+K)
                weight[:, 0] = weight[:, 0].clamp(min=MIN_OWN_WEIGHT)
                targets = weighted_targets(weight)  # (N, B+K)
        return logits, targets.to(_target_dtype(logits))

    def forward(
        self,
        im_q: Tensor,
        im_k: Tensor,
        *,
        view_q: Tensor | None = None,
        view_k: Tensor | None = None,
        im_p: Tensor | None = None,
        view_p: Tensor | None = None,
        positives: PositiveTable | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One training step's logits and targets; updates the key encoder and the queue.

        Args:
            im_q: (N, 3, H, W) query views (the anchors, first augmentation).
            im_k: (N, 3, H, W) own keys: the anchors' second augmentation (or the same pose under another
                light); with ESS and no ``im_p``, the spatial partners.
            view_q: (N,) global view index of each query; MOCO excludes queued keys of the same view with it.
            view_k: (N,) view index of each own key (stored in the queue).
            im_p: (N, 3, H, W) ESS: each anchor's spatial partner, an extra batch key (None: the own keys only).
            view_p: (N,) view index of each partner.
            positives: which views are positives of which (needed by ESS; MOCO uses it to find other renders
                of the query's pose in the queue).
            generator: source of the key encoder's batch shuffle (split BN); ``None`` uses torch's global one.

        Returns:
            ``(logits, targets)``: (N, C) each, C = 1+K for MOCO, B+K for ESS (B = 2N with partners, else N);
            the targets' rows sum to 1, column 0 is the own key.
        """
        logits, targets, _ = self.contrast(im_q, im_k, view_q=view_q, view_k=view_k, im_p=im_p, view_p=view_p,
                                           positives=positives, generator=generator)
        return logits, targets

    def contrast(
        self,
        im_q: Tensor,
        im_k: Tensor,
        *,
        view_q: Tensor | None = None,
        view_k: Tensor | None = None,
        im_p: Tensor | None = None,
        view_p: Tensor | None = None,
        positives: PositiveTable | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, AnchorFeatures]:
        """:meth:`forward` (same arguments, same values) that also returns the queries' backbone features
        (pooled and layer2-4 maps, with gradient), for auxiliary heads."""
        if im_q.ndim != 4 or im_q.shape != im_k.shape or (im_p is not None and im_p.shape != im_q.shape):
            shapes = [tuple(x.shape) for x in (im_q, im_k, im_p) if x is not None]
            raise ValueError(f"im_q, im_k (and im_p) must all have shape (N, 3, H, W), got {shapes}")
        n, device = im_q.shape[0], im_q.device
        if self.training and n % self.config.bn_splits:
            raise ValueError(f"batch size {n} must be a multiple of bn_splits={self.config.bn_splits}")
        ess = self.config.method is not Method.MOCO
        if ess and (positives is None or view_q is None or view_k is None or (im_p is not None and view_p is None)):
            raise ValueError(
                f"method {self.config.method.value} needs positives (a PositiveTable) and the view indices "
                "view_q, view_k (and view_p with im_p)"
            )
        view_q = _view_ids(view_q, n, device, "view_q")
        view_k = _view_ids(view_k, n, device, "view_k")

        pooled, maps = self.encoder_q.backbone.forward_maps(im_q)  # (N, C), {layer: (N, C_l, H_l, W_l)}
        q = F.normalize(self.encoder_q.head(pooled), dim=1)  # (N, dim)
        with torch.no_grad():
            self._momentum_update_key_encoder()
            k = self._keys(im_k, generator)  # (N, dim)
            k_p = self._keys(im_p, generator) if ess and im_p is not None else None  # (N, dim)
        queue = self.queue.clone()  # (K, dim) snapshot: the queue changes in place before backward
        queue_view = self.queue_view.clone()  # (K,)
        valid = torch.arange(self.config.K, device=device) < self.queue_filled  # (K,) slots holding real keys

        if ess:
            keys, views = k, view_k
            if k_p is not None:
                keys, views = torch.cat([k, k_p]), torch.cat([view_k, _view_ids(view_p, n, device, "view_p")])
            relation = positives.lookup(view_q, torch.cat([views, queue_view]))  # (N, B+K)
            logits, targets = self._ess_logits(q, keys, queue, valid, relation)
        else:
            if positives is not None:
                same = positives.lookup(view_q, queue_view).same_view  # (N, K)
            else:
                same = (view_q.view(-1, 1) == queue_view.view(1, -1)) & (queue_view >= 0).view(1, -1)  # (N, K)
            logits, targets = self._moco_logits(q, k, queue, same | ~valid.view(1, -1))
        self._dequeue_and_enqueue(k, view_k)
        return logits, targets, AnchorFeatures(pooled=pooled, maps=maps)

    def objective(self, views: StepViews, *, positives: PositiveTable | None,
                  generator: torch.Generator | None) -> MethodOutput:
        """The trainer's interface (:mod:`training.objective`): InfoNCE with soft targets on one step's views."""
        logits, targets, anchor = self.contrast(
            views.anchor, views.second, view_q=views.view, view_k=views.second_view, im_p=views.partner,
            view_p=views.partner_view, positives=positives, generator=generator)
        return MethodOutput(loss=soft_info_nce(logits, targets), anchor=anchor)

    def after_step(self, step: int, horizon: int) -> None:
        """Nothing: the key encoder moves inside :meth:`forward`, before the keys are computed (MoCo's order)."""

    @property
    def online_backbone(self) -> nn.Module:
        """The query encoder's backbone (trained by gradient; what ``encoder.pt`` keeps)."""
        return self.encoder_q.backbone

    def features(self, x: Tensor) -> Tensor:
        """Backbone features of the query encoder (no projection head), for evaluation: (N, out_dim)."""
        return self.encoder_q.backbone(x)
