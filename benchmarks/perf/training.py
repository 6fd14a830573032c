"""MoCo-v2 training-step throughput: :class:`training.moco.MoCo` against the reference implementation
(facebookresearch/moco ``moco/builder.py``, written out below), same model, batch and resolution, same run.

Both sides train the same network: the project's ResNet (:func:`training.resnet.build_resnet`) with MoCo
v2's two-layer MLP head (``Linear(512, mlp_hidden) -> ReLU -> Linear(mlp_hidden, dim)``), a queue of K
keys, momentum m and temperature T, SGD with momentum and weight decay, fp32. Only the MoCo wrapper
differs:

* **ours**: ``MoCo`` as ``ess train --method moco`` runs it, with plain BatchNorm like the reference (the
  same model): the view-index queue, masking of empty and same-view queue slots,
  :func:`training.losses.soft_info_nce`, a per-step ``torch.Generator`` (as the trainer);
* **reference**: the official builder on one device: plain BatchNorm (shuffle-BN needs several GPUs and is
  omitted), a per-parameter momentum loop, a ``(dim, K)`` queue, ``einsum`` logits and
  ``nn.CrossEntropyLoss``;
* diagnostics (no target): **ours, bn_splits=S** (the trainer's split BatchNorm, S = 8 by default, with the
  key batch shuffled through the key encoder) and **ours, ess-mb** (what the spatial-positive keys cost).

Batches are synthetic (random normalised images, random poses), already on the device: augmentation and
loading are left out on both sides. Each step is timed on its own (with ``torch.cuda.synchronize`` on a
GPU); the variants take turns step by step, so a busy neighbour slows them alike, and the figure is
``batch / median step time`` after the warm-up steps.

Before timing, a parity check runs both wrappers from the same weights and queue (every queue slot marked
filled) on a batch of the timed configuration (batch, image size, K): its outcome is ``parity.logits_match``,
and a false one fails the section.

Usage: part of the suite, ``ess bench-perf --only training``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.machine import machine_info

REFERENCE_URL = "https://github.com/facebookresearch/moco/blob/main/moco/builder.py"


class ReferenceEncoder(nn.Module):
    """The base encoder with MoCo v2's MLP head (``mlp=True`` in the official builder): images -> (N, dim)."""

    def __init__(self, arch: str, *, dim: int, mlp_hidden: int) -> None:
        super().__init__()
        from training.resnet import build_resnet

        self.backbone = build_resnet(arch, norm_layer=nn.BatchNorm2d)
        self.head = nn.Sequential(nn.Linear(self.backbone.out_dim, mlp_hidden), nn.ReLU(), nn.Linear(mlp_hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))  # (N, dim)


class ReferenceMoCo(nn.Module):
    """facebookresearch/moco ``moco/builder.py:MoCo`` on one device (no shuffle-BN, no all-gather).

    Args:
        arch: backbone name for :func:`training.resnet.build_resnet`.
        dim: feature dimension (default 128).
        mlp_hidden: hidden width of the MLP head.
        K: queue size; number of negative keys.
        m: momentum of the key encoder.
        T: softmax temperature.
    """

    def __init__(self, arch: str, *, dim: int, mlp_hidden: int, K: int, m: float, T: float) -> None:
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.encoder_q = ReferenceEncoder(arch, dim=dim, mlp_hidden=mlp_hidden)
        self.encoder_k = ReferenceEncoder(arch, dim=dim, mlp_hidden=mlp_hidden)
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data.copy_(param_q.data)  # initialize
            param_k.requires_grad = False  # not updated by gradient
        self.register_buffer("queue", F.normalize(torch.randn(dim, K), dim=0))  # (dim, K)
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self) -> None:
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data = param_k.data * self.m + param_q.data * (1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: Tensor) -> None:
        batch_size = keys.shape[0]
        ptr = int(self.queue_ptr)
        assert self.K % batch_size == 0  # for simplicity
        self.queue[:, ptr : ptr + batch_size] = keys.T  # replace the keys at ptr (dequeue and enqueue)
        self.queue_ptr[0] = (ptr + batch_size) % self.K

    def forward(self, im_q: Tensor, im_k: Tensor) -> tuple[Tensor, Tensor]:
        q = F.normalize(self.encoder_q(im_q), dim=1)  # (N, dim) queries
        with torch.no_grad():  # no gradient to keys
            self._momentum_update_key_encoder()
            k = F.normalize(self.encoder_k(im_k), dim=1)  # (N, dim) keys
        l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)  # (N, 1)
        l_neg = torch.einsum("nc,ck->nk", [q, self.queue.clone().detach()])  # (N, K)
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T  # (N, 1+K)
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)  # positives are the 0-th
        self._dequeue_and_enqueue(k)
        return logits, labels


def _ours(arch: str, *, dim: int, mlp_hidden: int, K: int, m: float, T: float, bn_splits: int, method: str):
    from training.moco import MoCo, MoCoConfig

    config = MoCoConfig(arch=arch, dim=dim, mlp_hidden=mlp_hidden, K=K, m=m, T=T, bn_splits=bn_splits, method=method)
    return MoCo(config)


def check_parity(arch: str, *, dim: int, mlp_hidden: int, m: float, T: float, seed: int, batch: int = 8,
                 size: int = 32, k: int = 64, device: str | torch.device = "cpu",
                 perturb: float = 0.0) -> dict[str, Any]:
    """Whether our wrapper and the reference give the same logits and loss from the same weights, queue and
    batch, at the configuration that is timed (batch, image size, K; plain BatchNorm, as the reference).

    Args:
        perturb: added to our logits before the comparison (a test shows the check failing with it).

    Returns:
        The configuration, the differences and ``logits_match`` (the outcome, with ``logits_check``).
    """
    from training.losses import soft_info_nce

    torch.manual_seed(seed)
    ref = ReferenceMoCo(arch, dim=dim, mlp_hidden=mlp_hidden, K=k, m=m, T=T)
    ours = _ours(arch, dim=dim, mlp_hidden=mlp_hidden, K=k, m=m, T=T, bn_splits=1, method="moco")
    ours.encoder_q.load_state_dict(ref.encoder_q.state_dict())
    ours.encoder_k.load_state_dict(ref.encoder_k.state_dict())
    with torch.no_grad():
        ours.queue.copy_(ref.queue.T)  # (K, dim)
        ours.queue_filled.fill_(k)  # every slot holds a key, as in the reference
    ours, ref = ours.to(device), ref.to(device)
    g = torch.Generator().manual_seed(seed)
    im_q, im_k = (x.to(device) for x in torch.randn(2, batch, 3, size, size, generator=g).unbind(0))
    logits, targets = ours(im_q, im_k)
    logits = logits + perturb
    ref_logits, labels = ref(im_q, im_k)
    loss = float(soft_info_nce(logits, targets).detach())
    ref_loss = float(F.cross_entropy(ref_logits, labels).detach())
    diff = float((logits - ref_logits).detach().abs().max())
    keys_diff = float((ours.queue[:batch] - ref.queue[:, :batch].T).abs().max())
    match = diff <= 1e-3 and keys_diff <= 1e-5 and abs(loss - ref_loss) <= 1e-4
    return {
        "batch": batch,
        "size": f"{size}x{size}",
        "K": k,
        "bn_splits": 1,
        "max_logit_diff": diff,
        "max_key_diff": keys_diff,
        "loss": loss,
        "reference_loss": ref_loss,
        "logits_match": match,
        "logits_check": f"logits {diff:.2e}, enqueued keys {keys_diff:.2e}, loss {loss:.6f} vs {ref_loss:.6f}",
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    *,
    device: str,
    size: int,
    batch: int,
    steps: int,
    warmup: int,
    queue: int = 65536,
    arch: str = "resnet18",
    bn_splits: int = 8,
    diagnostics: bool = True,
    threads: int = 0,
    seed: int = 0,
) -> dict:
    """Images/s of our MoCo step and of the reference's (see the module docstring).

    Args:
        device: ``"cpu"`` or ``"cuda"``.
        size: image side in pixels.
        batch: images per step (query and key views of ``batch`` samples).
        steps: timed steps per variant.
        warmup: untimed steps per variant first.
        queue: K, a multiple of ``batch``.
        arch: ``resnet18`` or ``resnet50``.
        bn_splits: split-BatchNorm splits of the diagnostic variants (the trainer's default 8); ``batch`` must be
            a multiple. The headline variant uses plain BatchNorm, as the reference does.
        diagnostics: also time ours with ``bn_splits`` split BatchNorm and ours with ESS-MB.
        threads: torch CPU threads during the measurement (restored after); 0 keeps torch's default (what
            ``ess train`` uses).
        seed: weights, batches and poses.

    Returns:
        A report: per variant, images/s, ms per step and the ratio to the reference; the parity check.
    """
    if steps < 1 or warmup < 0 or batch < 2 or size < 8:
        raise ValueError("steps must be >= 1, warmup >= 0, batch >= 2 and size >= 8")
    if queue % batch or batch % bn_splits:
        raise ValueError(
            f"queue {queue} must be a multiple of batch {batch}, and batch a multiple of bn_splits {bn_splits}"
        )
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0: torch's default), got {threads}")
    default_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _measure(device=device, size=size, batch=batch, steps=steps, warmup=warmup, queue=queue, arch=arch,
                        bn_splits=bn_splits, diagnostics=diagnostics, seed=seed)
    finally:
        torch.set_num_threads(default_threads)


def _measure(
    *,
    device: str,
    size: int,
    batch: int,
    steps: int,
    warmup: int,
    queue: int,
    arch: str,
    bn_splits: int,
    diagnostics: bool,
    seed: int,
) -> dict:
    """:func:`measure` once the thread count is set (same arguments, checked)."""
    from training.trainer import TrainConfig

    dev = torch.device(device)
    defaults = TrainConfig()
    hyper = {"dim": defaults.dim, "mlp_hidden": defaults.mlp_hidden, "m": defaults.moco_m, "T": defaults.temperature}
    parity = check_parity(arch, seed=seed, batch=batch, size=size, k=queue, device=dev, **hyper)  # what is timed
    lr = 0.03 * batch / 256
    data = _SyntheticBatch.make(dev, batch=batch, size=size, seed=seed)
    torch.manual_seed(seed)
    variants = _variants(data, dev, arch=arch, queue=queue, bn_splits=bn_splits, diagnostics=diagnostics, hyper=hyper,
                         lr=lr, momentum=defaults.momentum, weight_decay=defaults.weight_decay, seed=seed)
    times, losses = _time_steps(variants, dev, steps=steps, warmup=warmup)
    median = {name: statistics.median(t) for name, t in times.items()}
    rows = [
        {
            "variant": name,
            "images_per_s": batch / median[name],
            "ms_per_step": 1e3 * median[name],
            "ratio_to_reference": median["reference"] / median[name],
            "last_loss": losses[name],
        }
        for name in variants
    ]
    info: dict[str, Any] = {"device": str(dev), "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
        info["cuda"] = torch.version.cuda
        info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    return {
        "benchmark": "training",
        "setup": {
            **info,
            "arch": arch,
            "size": f"{size}x{size}",
            "batch": batch,
            "K": queue,
            "bn_splits": bn_splits,
            **hyper,
            "optimizer": f"SGD lr {lr:g}, momentum {defaults.momentum}, weight decay {defaults.weight_decay}",
            "precision": "fp32",
            "memory_format": "contiguous NCHW (training.trainer uses neither channels_last nor AMP)",
            "data": "synthetic batches on the device; augmentation and loading excluded",
            "steps": steps,
            "warmup": warmup,
            "statistic": "batch / median step time",
            "seed": seed,
        },
        "reference": f"facebookresearch/moco moco/builder.py, one device, shuffle-BN omitted ({REFERENCE_URL})",
        "parity": parity,
        "target": "ours >= 1.5x the reference's images/s on an H100 (DESIGN.md); no target on a CPU",
        "machine": machine_info(),
        "results": rows,
    }



@dataclass(frozen=True)
class _SyntheticBatch:
    """The batch every timed step trains on, already on the device.

    Attributes:
        im_q: float32 (N, 3, S, S) query images (random, normalised).
        im_k: float32 (N, 3, S, S) key images.
        im_p: float32 (N, 3, S, S) the spatial partners' images (``im_k`` rolled by one).
        positives: the positives of ``n_views`` views: views 2j and 2j+1 are positives (weight 0.5).
        n_views: number of view indices; step i shows views [i * N, (i + 1) * N) modulo it.
    """

    im_q: Tensor
    im_k: Tensor
    im_p: Tensor
    positives: Any
    n_views: int

    @classmethod
    def make(cls, dev: torch.device, *, batch: int, size: int, seed: int) -> _SyntheticBatch:
        """Images from a generator seeded with ``seed`` (the global torch generator is left alone)."""
        from training.positives import PositiveTable

        g = torch.Generator().manual_seed(seed)
        im_q = torch.randn(batch, 3, size, size, generator=g).to(dev)  # (N, 3, S, S)
        im_k = torch.randn(batch, 3, size, size, generator=g).to(dev)  # (N, 3, S, S)
        n_views = 1 << 20  # view indices of the synthetic batches: step i shows views [i * batch, (i + 1) * batch)
        pairs = np.stack([np.arange(0, n_views - 1, 2), np.arange(1, n_views, 2)], 1)  # views 2j and 2j+1 are positives
        positives = PositiveTable(pairs, np.full(len(pairs), 0.5), np.zeros(len(pairs), bool),
                                  np.zeros(n_views, np.int64)).to(dev)
        im_p = im_k.roll(1, 0)  # (N, 3, S, S) the spatial partners' images
        return cls(im_q=im_q, im_k=im_k, im_p=im_p, positives=positives, n_views=n_views)


def _variants(
    data: _SyntheticBatch,
    dev: torch.device,
    *,
    arch: str,
    queue: int,
    bn_splits: int,
    diagnostics: bool,
    hyper: dict[str, Any],
    lr: float,
    momentum: float,
    weight_decay: float,
    seed: int,
) -> dict[str, Callable[[int], float]]:
    """The models to time, each as one training step: step index -> the step's loss.

    Builds them on ``dev`` in order (ours, the reference, then the diagnostics) from the global torch
    generator, which the caller seeds. ``hyper`` holds dim, mlp_hidden, m and T; SGD uses ``lr``, ``momentum`` and
    ``weight_decay``; ours seeds each step's generator from (``seed``, step).
    """
    from training.losses import soft_info_nce

    batch = len(data.im_q)
    im_q, im_k, im_p, positives, n_views = data.im_q, data.im_k, data.im_p, data.positives, data.n_views

    def ours_step(model, opt, step_index):
        gen = torch.Generator(device=dev).manual_seed(seed * 1_000_003 + step_index)
        views = (torch.arange(batch, device=dev) + step_index * batch) % n_views  # (N,)
        ess = model.config.method.value != "moco"
        logits, targets = model(im_q, im_k, view_q=views, view_k=views, im_p=im_p if ess else None,
                                view_p=views ^ 1 if ess else None, positives=positives, generator=gen)
        loss = soft_info_nce(logits, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def reference_step(model, opt, criterion):
        logits, labels = model(im_q, im_k)
        loss = criterion(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def sgd(model):
        return torch.optim.SGD(model.parameters(), lr, momentum=momentum, weight_decay=weight_decay)

    variants: dict[str, Any] = {}
    # the headline is the reference's model (plain BatchNorm), whose logits check_parity compares; the
    # trainer's split BatchNorm and ESS-MB are diagnostics
    specs = [("ours", 1, "moco"), ("reference", None, None)]
    if diagnostics:
        specs += [(f"ours, bn_splits={bn_splits}", bn_splits, "moco"), ("ours, ess-mb", bn_splits, "ess-mb")]
    for name, splits, method in specs:
        if splits is None:
            model = ReferenceMoCo(arch, K=queue, **hyper).to(dev).train()
            opt, criterion = sgd(model), nn.CrossEntropyLoss().to(dev)
            variants[name] = (lambda i, model=model, opt=opt, c=criterion: reference_step(model, opt, c))
        else:
            model = _ours(arch, K=queue, bn_splits=splits, method=method, **hyper).to(dev).train()
            opt = sgd(model)
            variants[name] = (lambda i, model=model, opt=opt: ours_step(model, opt, i))
    return variants


def _time_steps(
    variants: dict[str, Callable[[int], float]], dev: torch.device, *, steps: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Run ``warmup + steps`` steps of every variant, taking turns going first; time each after the warm-up.

    Returns:
        Per variant, the seconds of each timed step and the last step's loss.

    Raises:
        AssertionError: a last loss is not finite.
    """
    times: dict[str, list[float]] = {name: [] for name in variants}
    losses: dict[str, float] = {}
    names = list(variants)
    for i in range(warmup + steps):
        order = names[i % len(names) :] + names[: i % len(names)]  # take turns going first
        for name in order:
            _sync(dev)
            t0 = time.perf_counter()
            losses[name] = variants[name](i)
            _sync(dev)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    bad = {k: v for k, v in losses.items() if not torch.isfinite(torch.tensor(v))}
    if bad:
        raise AssertionError(f"non-finite loss: {bad}")
    return times, losses


def to_markdown(report: dict) -> str:
    s = report["setup"]
    where = s.get("gpu", f"{report['machine']['cores']} cores ({report['machine']['cpu']})")
    lines = [
        (
            f"MoCo-v2 step, {s['arch']} @ {s['size']}, batch {s['batch']}, K {s['K']}, {s['precision']}, {where}, "
            f"median of {s['steps']} steps after {s['warmup']} warm-up:"
        ),
        "",
        "| variant | images/s | ms/step | ratio to reference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['variant']} | {r['images_per_s']:,.1f} | {r['ms_per_step']:,.1f} | {r['ratio_to_reference']:.2f} |"
        )
    return "\n".join(lines) + "\n"
