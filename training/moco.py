"""MoCo-v2 with ESS spatial positives.

References: K. He, H. Fan, Y. Wu, S. Xie, R. Girshick, "Momentum Contrast for Unsupervised Visual
Representation Learning", CVPR 2020; X. Chen, H. Fan, R. Girshick, K. He, "Improved Baselines with
Momentum Contrastive Learning", arXiv 2003.04297; "Environmental Spatial Similarity" (ESS), arXiv
2401.15120. The structure follows facebookresearch/moco ``moco/builder.py``.

Symbols: a query encoder f_q (backbone + 2-layer MLP head, trained by gradient) embeds a query view as a
unit vector q; a key encoder f_k, a momentum copy updated as ``theta_k <- m theta_k + (1 - m) theta_q``
(m: momentum, 0.999), embeds a key view as a unit vector k. Keys of past batches wait in a FIFO queue of
K entries and serve as negatives. Logits are dot products divided by the temperature T (0.2 in MoCo v2).
N is the batch size, dim the embedding width.

* ``Method.MOCO``: logits ``[q . k_own, q . queue] / T`` (N, 1+K); the target is the own key (column 0).
* ``Method.ESS_MB`` / ``Method.ESS_MW``: logits ``[q . k_own | q . k_j, j != i | q . queue] / T``
  (N, 1+(N-1)+K). A batch or queue key is a spatial positive of query i when it was rendered in the same
  scene and the query's and the key's camera poses pass the :class:`pairing.similarity.SimilarityConfig`
  gate (distance <= radius, viewing-direction angle <= max angle). ESS-MB's target is uniform over the
  own key and the spatial positives; ESS-MW's is proportional to ``own_weight[i]`` for the own key and
  the ESS-MW weight of the two poses for the others (the torch port of
  :func:`pairing.similarity.weighted_similarity` below).

Queue slots never filled yet (the first K / N steps) are excluded: their logit is ``MASKED_LOGIT`` and
their target 0. ``forward`` returns ``(logits, targets)`` for :func:`training.losses.soft_info_nce` (or
``F.cross_entropy(logits, targets)``); with MOCO the targets are one-hot, so :func:`info_nce` agrees.

Shuffle-BN needs several processes; here the key encoder instead shuffles its batch (with a random
permutation) before :class:`training.resnet.SplitBatchNorm` layers, as the official MoCo CIFAR demo does,
so that a query and its key are normalised with statistics of different sub-batches. Under
``torch.distributed`` keys and their poses are all-gathered before they enter the queue.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from pairing.similarity import Falloff, SimilarityConfig
from training.losses import _require, multi_positive_targets, weighted_targets
from training.resnet import ARCHS, SplitBatchNorm, build_resnet

MASKED_LOGIT = -1e4  # an excluded key: exp(-1e4 - lse) is exactly 0 in float32 and float16, yet finite
_EXACT = "donot_use_mm_for_euclid_dist"  # cdist from differences: no cancellation for nearby points


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
        similarity: which batch and queue keys count as spatial positives, and their ESS-MW weights.
    """

    arch: str = "resnet18"
    dim: int = 128
    mlp_hidden: int = 2048
    K: int = 65536  # noqa: N815 - the paper's symbol
    m: float = 0.999
    T: float = 0.2  # noqa: N815
    bn_splits: int = 8
    method: Method = Method.MOCO
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)

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
        if not isinstance(self.similarity, SimilarityConfig):
            got = type(self.similarity).__name__
            raise ValueError(f"similarity must be a pairing.similarity.SimilarityConfig, got {got}")


# --- spatial similarity of poses (torch port of pairing.similarity, batch x queue) -------------------------


def view_direction(rotation: Tensor) -> Tensor:
    """Unit viewing directions (the camera's -Z axis) of (M, 4) quaternions (w, x, y, z): (M, 3)."""
    w, x, y, z = F.normalize(rotation, dim=-1).unbind(-1)  # (M,) each
    return -torch.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], dim=-1)  # (M, 3)


def pose_geometry(pos_a: Tensor, rot_a: Tensor, pos_b: Tensor, rot_b: Tensor) -> tuple[Tensor, Tensor]:
    """Camera-centre distances (metres) and viewing-direction angles (radians) between every a and every b.

    The angle is ``2 atan2(|u - v|, |u + v|)`` for unit directions u, v: accurate at 0 and at pi without
    an (N, M, 3) cross product.

    Args:
        pos_a: (N, 3) camera centres; rot_a: (N, 4) quaternions; pos_b: (M, 3); rot_b: (M, 4).

    Returns:
        ``(distance, angle)``, each (N, M).
    """
    distance = torch.cdist(pos_a, pos_b, compute_mode=_EXACT)  # (N, M)
    u, v = view_direction(rot_a), view_direction(rot_b)  # (N, 3), (M, 3)
    angle = 2 * torch.atan2(torch.cdist(u, v, compute_mode=_EXACT), torch.cdist(u, -v, compute_mode=_EXACT))  # (N, M)
    return distance, angle


def binary_similarity(distance: Tensor, angle: Tensor, config: SimilarityConfig) -> Tensor:
    """ESS-MB: 1 inside the gate (distance <= radius, angle <= max angle), else 0; same shape as the inputs."""
    return ((distance <= config.radius) & (angle <= config.max_angle)).to(distance.dtype)


def weighted_similarity(distance: Tensor, angle: Tensor, config: SimilarityConfig) -> Tensor:
    """ESS-MW: the gated Gaussian or linear falloff of :mod:`pairing.similarity`, in [0, 1]."""
    if config.falloff is Falloff.GAUSSIAN:
        w = torch.exp(-(distance**2 / (2 * config.sigma_position**2) + angle**2 / (2 * config.sigma_angle**2)))
    else:
        w = torch.clamp(1 - distance / config.radius, min=0) * torch.clamp(1 - angle / config.max_angle, min=0)
    return w * binary_similarity(distance, angle, config)


# --- helpers -------------------------------------------------------------------------------------------------


@torch.no_grad()
def concat_all_gather(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from every process along dim 0 (equal shapes on all ranks); no-op in one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered, dim=0)  # (world * N, ...)


def _other_index(n: int, device: torch.device) -> Tensor:
    """(N, N-1) long: row i lists the batch columns j != i in order."""
    j = torch.arange(n - 1, device=device).expand(n, n - 1)  # (N, N-1)
    return j + (j >= torch.arange(n, device=device).view(n, 1)).long()  # (N, N-1)


def _target_dtype(logits: Tensor) -> torch.dtype:
    """Targets stay at least float32 when the logits are half precision (autocast): weights keep their digits."""
    return torch.promote_types(logits.dtype, torch.float32)


def _pose_meta(meta: dict[str, Any] | None, n: int, device: torch.device, name: str) -> dict[str, Tensor]:
    """Scene (N,) long, position (N, 3) and unit rotation (N, 4) float32 on ``device``; unknown poses if None."""
    if meta is None:
        rotation = torch.zeros(n, 4, device=device)
        rotation[:, 0] = 1
        scene = torch.full((n,), -1, dtype=torch.long, device=device)
        return {"scene": scene, "position": torch.zeros(n, 3, device=device), "rotation": rotation}
    missing = {"scene", "position", "rotation"} - set(meta)
    if missing:
        raise ValueError(
            f"{name} lacks {sorted(missing)}; give the scene (N,), position (N, 3) and rotation (N, 4) of every view"
        )
    out = {
        "scene": torch.as_tensor(meta["scene"], device=device).long(),  # (N,)
        "position": torch.as_tensor(meta["position"], device=device).float(),  # (N, 3)
        "rotation": F.normalize(torch.as_tensor(meta["rotation"], device=device).float(), dim=-1),  # (N, 4)
    }
    for key, shape in (("scene", (n,)), ("position", (n, 3)), ("rotation", (n, 4))):
        if tuple(out[key].shape) != shape:
            raise ValueError(f"{name}[{key!r}] must have shape {shape} for a batch of {n}, got {tuple(out[key].shape)}")
    return out


class Encoder(nn.Module):
    """A ResNet backbone and MoCo-v2's projection head ``Linear -> ReLU -> Linear``: images -> (N, dim)."""

    def __init__(self, config: MoCoConfig, generator: torch.Generator | None) -> None:
        super().__init__()
        norm = nn.BatchNorm2d if config.bn_splits == 1 else partial(SplitBatchNorm, num_splits=config.bn_splits)
        self.backbone = build_resnet(config.arch, norm_layer=norm, generator=generator)
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
        self.register_buffer("queue_scene", torch.full((k,), -1, dtype=torch.long))  # (K,) -1: empty or unknown
        self.register_buffer("queue_position", torch.zeros(k, 3))  # (K, 3) metres
        self.register_buffer("queue_rotation", torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(k, 1))  # (K, 4)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))  # next slot to write
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))  # slots [0, filled) hold real keys

    @torch.no_grad()
    def _momentum_update_key_encoder(self) -> None:
        """theta_k <- m theta_k + (1 - m) theta_q."""
        pk, pq = list(self.encoder_k.parameters()), list(self.encoder_q.parameters())
        torch._foreach_mul_(pk, self.config.m)
        torch._foreach_add_(pk, pq, alpha=1.0 - self.config.m)

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
    def _dequeue_and_enqueue(self, keys: Tensor, meta: dict[str, Tensor]) -> None:
        """Write the (all-gathered) keys and their poses at the pointer, wrapping around the end of the queue."""
        keys = concat_all_gather(keys)  # (B, dim)
        meta = {name: concat_all_gather(t) for name, t in meta.items()}
        b, size = keys.shape[0], self.config.K
        skip = max(0, b - size)  # a batch longer than the queue: only its newest K keys stay
        idx = (self.queue_ptr + skip + torch.arange(b - skip, device=keys.device)) % size  # (min(B, K),)
        self.queue.index_copy_(0, idx, keys[skip:].to(self.queue.dtype))
        self.queue_scene.index_copy_(0, idx, meta["scene"][skip:])
        self.queue_position.index_copy_(0, idx, meta["position"][skip:].to(self.queue_position.dtype))
        self.queue_rotation.index_copy_(0, idx, meta["rotation"][skip:].to(self.queue_rotation.dtype))
        self.queue_ptr.copy_((self.queue_ptr + b) % size)
        self.queue_filled.copy_(torch.clamp(self.queue_filled + b, max=size))

    def _moco_logits(self, q: Tensor, k: Tensor, queue: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Logits [q . k_own, q . queue] / T and one-hot targets, both (N, 1+K)."""
        l_pos = (q * k).sum(1, keepdim=True)  # (N, 1)
        l_neg = q @ queue.T  # (N, K)
        logits = torch.cat([l_pos, l_neg], dim=1) / self.config.T  # (N, 1+K)
        keep = torch.cat([valid.new_ones(1), valid])  # (1+K,)
        logits = logits.masked_fill(~keep, MASKED_LOGIT)  # (N, 1+K)
        targets = torch.zeros(logits.shape, dtype=_target_dtype(logits), device=logits.device)  # (N, 1+K)
        targets[:, 0] = 1
        return logits, targets

    def _ess_logits(
        self, q: Tensor, k: Tensor, queue: Tensor, valid: Tensor, query: dict, key: dict, own_weight: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Logits [q . k_own | q . k_other | q . queue] / T and spatial targets, both (N, 1+(N-1)+K)."""
        n = q.shape[0]
        others = _other_index(n, q.device)  # (N, N-1)
        l_batch = q @ k.T  # (N, N)
        l_own = l_batch.diagonal().unsqueeze(1)  # (N, 1)
        l_other = l_batch.gather(1, others)  # (N, N-1)
        l_queue = q @ queue.T  # (N, K)
        logits = torch.cat([l_own, l_other, l_queue], dim=1) / self.config.T  # (N, N+K)
        keep = torch.cat([valid.new_ones(n), valid])  # (N+K,)
        logits = logits.masked_fill(~keep, MASKED_LOGIT)  # (N, N+K)
        with torch.no_grad():
            s = self._spatial_similarity(query, key)  # (N, N+K) vs [batch keys | queue]
            s = torch.cat([s[:, :n].gather(1, others), s[:, n:] * valid], dim=1)  # (N, N-1+K)
            if self.config.method is Method.ESS_MB:
                mask = torch.cat([torch.ones_like(own_weight, dtype=torch.bool).unsqueeze(1), s > 0], dim=1)  # (N, N+K)
                targets = multi_positive_targets(mask)  # (N, N+K)
            else:
                targets = weighted_targets(torch.cat([own_weight.unsqueeze(1), s], dim=1))  # (N, N+K)
        return logits, targets.to(_target_dtype(logits))

    def _spatial_similarity(self, query: dict[str, Tensor], key: dict[str, Tensor]) -> Tensor:
        """Similarity of every query pose to every key pose, batch keys then queue: (N, N+K); 0 across scenes."""
        scene = torch.cat([key["scene"], self.queue_scene])  # (N+K,)
        position = torch.cat([key["position"], self.queue_position])  # (N+K, 3)
        rotation = torch.cat([key["rotation"], self.queue_rotation])  # (N+K, 4)
        distance, angle = pose_geometry(query["position"], query["rotation"], position, rotation)  # (N, N+K)
        same_scene = (query["scene"].view(-1, 1) == scene.view(1, -1)) & (scene.view(1, -1) >= 0)  # (N, N+K)
        sim = binary_similarity if self.config.method is Method.ESS_MB else weighted_similarity
        return sim(distance, angle, self.config.similarity) * same_scene  # (N, N+K)

    def forward(
        self,
        im_q: Tensor,
        im_k: Tensor,
        key_meta: dict[str, Any] | None = None,
        query_meta: dict[str, Any] | None = None,
        own_weight: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One training step's logits and targets; updates the key encoder and the queue.

        Args:
            im_q: (N, 3, H, W) query views.
            im_k: (N, 3, H, W) key views (the own positives).
            key_meta: poses of the views the keys were made from: ``"scene"`` (N,) int, ``"position"``
                (N, 3) metres, ``"rotation"`` (N, 4) quaternions (w, x, y, z). Needed by ESS; with MOCO
                optional (stored in the queue if given).
            query_meta: the same for the query views; needed by ESS.
            own_weight: (N,) in (0, 1], ESS-MW's weight of each own key; default 1.
            generator: source of the key encoder's batch shuffle (split BN); ``None`` uses torch's global one.

        Returns:
            ``(logits, targets)``: (N, C) each, C = 1+K for MOCO and 1+(N-1)+K for ESS; the targets' rows
            sum to 1, column 0 is the own key.
        """
        if im_q.ndim != 4 or im_q.shape != im_k.shape:
            raise ValueError(
                f"im_q and im_k must both have shape (N, 3, H, W), got {tuple(im_q.shape)} and {tuple(im_k.shape)}"
            )
        n, device = im_q.shape[0], im_q.device
        if self.training and n % self.config.bn_splits:
            raise ValueError(f"batch size {n} must be a multiple of bn_splits={self.config.bn_splits}")
        ess = self.config.method is not Method.MOCO
        if ess and (key_meta is None or query_meta is None):
            raise ValueError(
                f"method {self.config.method.value} needs key_meta and query_meta (scene, position, rotation)"
            )
        key = _pose_meta(key_meta, n, device, "key_meta")

        q = F.normalize(self.encoder_q(im_q), dim=1)  # (N, dim)
        with torch.no_grad():
            self._momentum_update_key_encoder()
            k = self._keys(im_k, generator)  # (N, dim)
        queue = self.queue.clone()  # (K, dim) snapshot: the queue changes in place before backward
        valid = torch.arange(self.config.K, device=device) < self.queue_filled  # (K,) slots holding real keys

        if ess:
            query = _pose_meta(query_meta, n, device, "query_meta")
            if own_weight is None:
                own_weight = torch.ones(n, device=device)
            own_weight = torch.as_tensor(own_weight, device=device).float()  # (N,)
            if own_weight.shape != (n,):
                raise ValueError(f"own_weight must have shape ({n},), got {tuple(own_weight.shape)}")
            _require((own_weight > 0) & (own_weight <= 1), "own_weight must lie in (0, 1]")
            logits, targets = self._ess_logits(q, k, queue, valid, query, key, own_weight)
        else:
            logits, targets = self._moco_logits(q, k, queue, valid)
        self._dequeue_and_enqueue(k, key)
        return logits, targets

    def features(self, x: Tensor) -> Tensor:
        """Backbone features of the query encoder (no projection head), for evaluation: (N, out_dim)."""
        return self.encoder_q.backbone(x)
