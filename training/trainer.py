"""The training loop: MoCo-v2 / ESS-MB / ESS-MW on a rendered dataset with its pairs.

Everything random derives from the seed: model initialisation (``torch.manual_seed``), the order of views
in an epoch (numpy, from (seed, epoch)), each view's spatial partner (the loader, from (seed, epoch,
view)), and the augmentations of each step (a torch generator seeded from (seed, step)). A checkpoint holds
the model (with the queue), the optimiser and the position in the epoch, so ``--resume`` after an
interruption continues to the same weights as an uninterrupted run.

Resuming (:func:`resume_plan`): a finished run is left as it is; ``--epochs`` may grow, and the run then
reaches the weights of a run trained that long from the start: it continues from its checkpoint when the
learning-rate schedule's horizon (``schedule_epochs``, by default ``epochs``) is unchanged, and otherwise
retrains from step 0 (every step's cosine learning rate depends on the horizon). Any other changed setting
is refused, by name.

Multi-GPU / multi-node: launch with ``torchrun``; each rank takes its slice of every global batch, the
model is wrapped in DistributedDataParallel, and keys are all-gathered into every rank's queue.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envsim.provenance import atomic_write, file_sha256, to_jsonable
from envsim.store.reader import DatasetReader
from envsim.store.splits import view_splits
from envsim.version import code_version
from pairing.store import PAIRS_NAME
from training.augment import AugmentConfig, moco_v2_augment
from training.encoder import ENCODER_NAME
from training.losses import soft_info_nce
from training.moco import Method, MoCo, MoCoConfig
from training.positives import PositiveTable
from training.resnet import ARCHS
from training.schedule import cosine_schedule, scaled_lr
from training.views import EpochBatches, TrainViews, steps_per_epoch

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"
CONFIG_NAME = "config.json"
MAX_QUEUE = 65536


class TrainError(ValueError):
    """A training run that cannot start as asked."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of ``ess train`` (MoCo-v2 defaults, Chen et al. 2020).

    Attributes:
        method: moco (instance discrimination), ess-mb (binary spatial positives) or ess-mw (weighted).
        arch: a backbone of :data:`training.resnet.ARCHS` (resnet18, resnet50, resnet18-cifar,
            resnet18-cifar-half).
        epochs: passes over the dataset's views.
        schedule_epochs: length of the cosine learning-rate schedule in epochs; None = ``epochs``. Set it
            above ``epochs`` to train part of a schedule now and extend the run later with ``--resume``.
        batch_size: global batch (split over ranks under torchrun).
        lr: base learning rate; None = 0.03 * batch_size / 256.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        moco_m: key-encoder momentum m.
        temperature: InfoNCE temperature T.
        queue_size: K; None = 65536 scaled down to the dataset (a multiple of the batch, at most the
            number of views).
        dim: embedding dimension.
        mlp_hidden: hidden width of the projection head.
        bn_splits: SplitBatchNorm splits (single-process stand-in for shuffle-BN); 1 = plain BN.
        image_size: crop size fed to the network; None = the dataset's image width.
        workers: DataLoader worker processes.
        seed: everything random derives from it.
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        checkpoint_every: also checkpoint every this many steps (0 = at epoch ends only).
        light_positives: the own key's view is the same pose under another light (datasets rendered with
            ``--light-variants``), for every method.
        instance_positive: ESS methods keep the anchor's second augmentation as a positive and add the
            spatial partner as an extra key; False: the partner replaces it.
        log_every: steps between log lines.
        crop_min_scale: smallest random-resized-crop area fraction (MoCo-v2: 0.2).
        jitter_strength: multiplier of MoCo-v2's colour jitter (0.4, 0.4, 0.4, 0.1).
        blur: MoCo-v2's Gaussian blur (p = 0.5).
    """

    method: Method = Method.MOCO
    arch: str = "resnet18"
    epochs: int = 10
    schedule_epochs: int | None = None
    batch_size: int = 64
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 1e-4
    moco_m: float = 0.999
    temperature: float = 0.2
    queue_size: int | None = None
    dim: int = 128
    mlp_hidden: int = 2048
    bn_splits: int = 8
    image_size: int | None = None
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 0
    light_positives: bool = False
    instance_positive: bool = True
    log_every: int = 10
    crop_min_scale: float = 0.2
    jitter_strength: float = 1.0
    blur: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.crop_min_scale <= 1 or self.jitter_strength < 0:
            raise ValueError("--crop-min-scale must lie in (0, 1] and --jitter-strength be >= 0")
        object.__setattr__(self, "method", Method(self.method))
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("--epochs must be >= 1 and --batch-size >= 2")
        if self.schedule_epochs is not None and self.schedule_epochs < self.epochs:
            raise ValueError(f"--schedule-epochs {self.schedule_epochs} must be at least --epochs {self.epochs}")
        if self.arch not in ARCHS:
            raise ValueError(f"unknown --arch {self.arch!r}; choose one of {', '.join(sorted(ARCHS))}")
        if self.batch_size % self.bn_splits:
            raise ValueError(f"--batch-size {self.batch_size} must be a multiple of --bn-splits {self.bn_splits}")
        if not 0 <= self.moco_m < 1 or self.temperature <= 0:
            raise ValueError("--moco-m must lie in [0, 1) and --temperature be positive")
        if self.seed < 0 or self.workers < 0:
            raise ValueError("--seed and --workers must be >= 0")

    @property
    def horizon(self) -> int:
        """Epochs of the cosine learning-rate schedule."""
        return self.schedule_epochs or self.epochs


RESUMABLE_CHANGES = ("epochs", "workers", "device", "log_every", "checkpoint_every")
"""Settings ``--resume`` accepts with another value: more epochs, and how the run is executed."""


def queue_size(config: TrainConfig, n_views: int) -> int:
    """K: the configured size, or 65536 scaled to the dataset (a multiple of the batch <= views)."""
    if config.queue_size is not None:
        return config.queue_size
    return max(config.batch_size, min(MAX_QUEUE, (n_views // config.batch_size) * config.batch_size))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _save_torch(obj: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def resume_plan(saved: dict[str, Any], config: dict[str, Any], steps_done: int, total: int) -> str:
    """What ``--resume`` does with a checkpoint: ``"finished"``, ``"continue"`` or ``"restart"``.

    Args:
        saved: the run's resolved config (from its checkpoint).
        config: the config asked for now (JSON form).
        steps_done: steps in the checkpoint.
        total: steps the config asks for.

    Raises:
        TrainError: a setting other than :data:`RESUMABLE_CHANGES` changed (the message names it), or
            ``--epochs`` shrank below what the run has done.
    """
    changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k) and k not in RESUMABLE_CHANGES)
    if changed:
        diffs = "; ".join(f"{k.replace('_', '-')}: {saved.get(k)!r} in the run, {config.get(k)!r} now" for k in changed)
        raise TrainError(f"the run was trained with other settings ({diffs}); drop them or choose another --out")
    if steps_done > total:
        raise TrainError(f"the run has trained {steps_done} steps, more than --epochs {config['epochs']} gives ({total}); "
                         "keep its --epochs or choose another --out")
    horizon = lambda c: c.get("schedule_epochs") or c["epochs"]  # noqa: E731
    if horizon(saved) != horizon(config) and steps_done > 0:
        return "restart"
    return "finished" if steps_done == total else "continue"


@dataclass
class _Run:
    """A training run, set up: where it writes, what it trains and where it stands.

    Attributes:
        config: training settings.
        out: run folder.
        device: the device this rank trains on.
        rank: this process's rank (0 without torchrun).
        world: number of ranks (1 without torchrun).
        dataset: the training split's views with their partners.
        provenance: the dataset's path, manifest and pairs SHA-256, view count and splits.
        model_args: the MoCo model's arguments.
        cfg_json: ``config`` in JSON form.
        model: the MoCo model (query and key encoders, queue).
        optimizer: SGD over ``model``'s parameters.
        net: ``model``, wrapped in DistributedDataParallel under torchrun.
        positives: the pairs file's positives as a lookup table on ``device``.
        augment: MoCo-v2 augmentation settings.
        base_lr: learning rate before the cosine schedule.
        per_epoch: optimiser steps per epoch.
        total: steps the run trains to (``per_epoch * epochs``).
        horizon: steps of the cosine schedule (``per_epoch * schedule_epochs``).
        step: steps done so far.
    """

    config: TrainConfig
    out: Path
    device: torch.device
    rank: int
    world: int
    dataset: TrainViews
    provenance: dict[str, Any]
    model_args: MoCoConfig
    cfg_json: dict[str, Any]
    model: MoCo
    optimizer: torch.optim.Optimizer
    net: torch.nn.Module
    positives: PositiveTable
    augment: AugmentConfig
    base_lr: float
    per_epoch: int
    total: int
    horizon: int
    step: int = 0

    def checkpoint(self) -> None:
        """Write everything to resume from ``step`` to ``checkpoint.pt`` (rank 0 only)."""
        if self.rank == 0:
            _save_torch(
                {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                 "config": self.cfg_json, "model_args": to_jsonable(self.model_args), "dataset": self.provenance,
                 "code_version": code_version(), "seed": self.config.seed},
                self.out / CHECKPOINT_NAME,
            )

    def finish(self) -> None:
        """Write the query backbone to ``encoder.pt`` and plot the log to ``loss.png`` (rank 0 only)."""
        if self.rank == 0:
            _save_torch(
                {"arch": self.config.arch, "state_dict": self.model.encoder_q.backbone.state_dict(),
                 "model_args": to_jsonable(self.model_args), "config": self.cfg_json, "dataset": self.provenance,
                 "code_version": code_version(), "seed": self.config.seed, "step": self.step},
                self.out / ENCODER_NAME,
            )
            plot_log(self.out / LOG_NAME, self.out / "loss.png")


def train(
    data: str | os.PathLike,
    *,
    config: TrainConfig,
    out: str | os.PathLike,
    resume: bool = False,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train on a rendered dataset (with ``pairs.h5`` from ``ess pair``) and write a run folder.

    Args:
        data: dataset folder.
        config: training settings.
        out: run folder: ``checkpoint.pt`` (everything to resume), ``encoder.pt`` (the query backbone with
            its model arguments, for ``ess bench``), ``log.jsonl``, ``loss.png`` and ``config.json``.
        resume: continue the run in ``out`` from its checkpoint (see :func:`resume_plan`).
        progress: called after every step with the global step and the step's numbers.

    Returns:
        A summary: ``steps``, ``final_loss`` and mean ``images_per_s`` of this call's steps (None when it
        trained none), ``status`` ("trained", "continued", "restarted" or "finished": nothing to do).

    Raises:
        TrainError: bad input, or ``out`` holds another run (without ``resume``).
    """
    device, rank, world = _devices(config)
    dataset, provenance = _open_dataset(data, config)
    out = Path(out)
    model_args = MoCoConfig(
        arch=config.arch, dim=config.dim, mlp_hidden=config.mlp_hidden, K=queue_size(config, len(dataset)),
        m=config.moco_m, T=config.temperature, bn_splits=config.bn_splits, method=config.method,
    )
    cfg_json = to_jsonable(config)
    per_epoch = steps_per_epoch(len(dataset), config.batch_size)
    ckpt, status = _resume_checkpoint(out, config=config, cfg_json=cfg_json, provenance=provenance, resume=resume,
                                      total=per_epoch * config.epochs, device=device)
    if status == "finished":
        return {"steps": int(ckpt["step"]), "final_loss": None, "images_per_s": None, "status": status}
    run = _set_up(config, out=out, device=device, rank=rank, world=world, dataset=dataset, provenance=provenance,
                  model_args=model_args, cfg_json=cfg_json, per_epoch=per_epoch, ckpt=ckpt)
    losses, speeds = _train_loop(run, progress)
    run.finish()
    warm = speeds[len(speeds) // 4 :] or speeds
    return {"steps": run.step, "final_loss": losses[-1] if losses else None,
            "images_per_s": float(np.mean(warm)) if warm else None, "status": status}


def _devices(config: TrainConfig) -> tuple[torch.device, int, int]:
    """This rank's device, its rank and the world size; joins the process group under torchrun.

    Raises:
        TrainError: the batch does not split evenly over the ranks and BN splits.
    """
    dist = torch.distributed
    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = world > 1
    device = _device(config.device)
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    if distributed and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if config.batch_size % world or (config.batch_size // world) % config.bn_splits:
        raise TrainError(f"--batch-size {config.batch_size} must split evenly over {world} ranks and {config.bn_splits} BN splits")
    return device, rank, world


def _open_dataset(data: str | os.PathLike, config: TrainConfig) -> tuple[TrainViews, dict[str, Any]]:
    """The training split's views and their provenance (path, manifest and pairs SHA-256, views, splits).

    Raises:
        TrainError: the dataset cannot be read, or its training split is smaller than a batch.
    """
    try:
        reader = DatasetReader(data)
        splits = view_splits(reader.manifest, reader.meta())
        dataset = TrainViews(data, subset=splits.train, seed=config.seed,
                             spatial=config.method is not Method.MOCO, light=config.light_positives)
    except ValueError as exc:
        raise TrainError(str(exc)) from exc
    n = len(dataset)
    if n < config.batch_size:
        raise TrainError(f"the training split has {n} views, fewer than --batch-size {config.batch_size}")
    provenance = {
        "path": str(dataset.reader.folder),
        "manifest_sha256": dataset.reader.manifest_sha256(),
        "pairs_sha256": file_sha256(dataset.reader.folder / PAIRS_NAME),
        "views": n,
        "splits": splits.summary(),
    }
    return dataset, provenance


def _resume_checkpoint(
    out: Path,
    *,
    config: TrainConfig,
    cfg_json: dict[str, Any],
    provenance: dict[str, Any],
    resume: bool,
    total: int,
    device: torch.device,
) -> tuple[dict[str, Any] | None, str]:
    """The checkpoint to continue from (None: train from step 0) and the run's status (see :func:`train`).

    Raises:
        TrainError: ``out`` holds a run and ``resume`` is False, there is nothing to resume, or the run was
            trained on another dataset or with other settings.
    """
    ckpt_path = out / CHECKPOINT_NAME
    if ckpt_path.exists() and not resume:
        raise TrainError(f"{out} holds a run; pass --resume to continue it or choose another --out")
    if resume and not ckpt_path.exists():
        raise TrainError(f"nothing to resume: {ckpt_path} does not exist")
    if not resume:
        return None, "trained"
    ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
    if ckpt["dataset"]["manifest_sha256"] != provenance["manifest_sha256"]:
        raise TrainError(f"{out} was trained on another dataset; choose another --out")
    status = {"finished": "finished", "continue": "continued", "restart": "restarted"}[
        resume_plan(ckpt["config"], cfg_json, int(ckpt["step"]), total)]
    if status == "restarted":
        log.warning("the learning-rate schedule now spans %d epochs instead of %d: every step's learning rate "
                    "changed, so the run is retrained from step 0", config.horizon,
                    ckpt["config"].get("schedule_epochs") or ckpt["config"]["epochs"])
        ckpt = None
    return ckpt, status


def _set_up(
    config: TrainConfig,
    *,
    out: Path,
    device: torch.device,
    rank: int,
    world: int,
    dataset: TrainViews,
    provenance: dict[str, Any],
    model_args: MoCoConfig,
    cfg_json: dict[str, Any],
    per_epoch: int,
    ckpt: dict[str, Any] | None,
) -> _Run:
    """Seed and build the model and optimiser (from ``ckpt`` when given), write ``config.json`` and trim the log."""
    torch.manual_seed(config.seed)
    model = MoCo(model_args).to(device)
    base_lr = config.lr if config.lr is not None else scaled_lr(0.03, config.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=config.momentum, weight_decay=config.weight_decay)
    step = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
    positives = PositiveTable.from_pairs_file(
        {"pair": dataset.pairs.pairs, "weight": dataset.pairs.weight, "distance": dataset.pairs.distance,
         "angle": dataset.pairs.angle}, dataset.pairs.positive, dataset.pairs.meta["scene"],
    ).to(device)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_NAME).write_text(json.dumps({"config": cfg_json, "model_args": to_jsonable(model_args),
                                                   "dataset": provenance, "code_version": code_version()}, indent=2) + "\n")
        _truncate_log(out / LOG_NAME, step)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    j = config.jitter_strength
    augment = AugmentConfig(
        size=config.image_size or dataset.reader.width, scale=(config.crop_min_scale, 1.0),
        jitter=(0.4 * j, 0.4 * j, 0.4 * j, min(0.5, 0.1 * j)), blur_p=0.5 if config.blur else 0.0,
    )
    return _Run(config=config, out=out, device=device, rank=rank, world=world, dataset=dataset, provenance=provenance,
                model_args=model_args, cfg_json=cfg_json, model=model, optimizer=optimizer, net=net,
                positives=positives, augment=augment, base_lr=base_lr, per_epoch=per_epoch,
                total=per_epoch * config.epochs, horizon=per_epoch * config.horizon, step=step)


def _train_loop(
    run: _Run, progress: Callable[[int, dict[str, float]], None] | None
) -> tuple[list[float], list[float]]:
    """Train from ``run.step`` to ``run.total``, checkpointing at epoch ends and on Ctrl-C.

    Returns:
        The loss of each step trained and its speed in images per second.
    """
    losses: list[float] = []
    speeds: list[float] = []
    try:
        while run.step < run.total:
            epoch, start = divmod(run.step, run.per_epoch)
            _train_epoch(run, epoch, start, progress, losses, speeds)
            run.checkpoint()  # end of epoch
    except KeyboardInterrupt:
        run.checkpoint()
        raise
    return losses, speeds


def _train_epoch(
    run: _Run,
    epoch: int,
    start: int,
    progress: Callable[[int, dict[str, float]], None] | None,
    losses: list[float],
    speeds: list[float],
) -> None:
    """Train the steps of ``epoch`` from its ``start``-th batch on (or up to ``run.total``), logging each step.

    Appends each step's loss to ``losses`` and its images per second to ``speeds``.

    Raises:
        TrainError: the loss is not finite.
    """
    config = run.config
    run.dataset.set_epoch(epoch)
    sampler = EpochBatches(len(run.dataset), batch_size=config.batch_size, seed=config.seed, epoch=epoch, start=start,
                           rank=run.rank, world=run.world)
    loader = torch.utils.data.DataLoader(
        run.dataset, batch_sampler=sampler, num_workers=config.workers,
        persistent_workers=False, pin_memory=run.device.type == "cuda",
    )
    t_last = time.perf_counter()
    for batch in loader:
        lr = cosine_schedule(run.step, run.horizon, run.base_lr, 0.0)
        loss = _train_step(run, batch, lr)
        run.step += 1
        step = run.step
        now = time.perf_counter()
        images_per_s = config.batch_size / max(now - t_last, 1e-9)
        t_last = now
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainError(f"the loss became {value} at step {step}; lower --lr")
        losses.append(value)
        speeds.append(images_per_s)
        record = {"step": step, "epoch": epoch, "loss": value, "lr": lr, "images_per_s": images_per_s}
        if run.rank == 0 and (step % config.log_every == 0 or step == run.total):
            with open(run.out / LOG_NAME, "a") as f:
                f.write(json.dumps(record) + "\n")
        if progress is not None:
            progress(step, record)
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            run.checkpoint()
        if step >= run.total:
            break


def _train_step(run: _Run, batch: dict[str, torch.Tensor], lr: float) -> torch.Tensor:
    """One optimiser step at learning rate ``lr`` on a batch of views (augmentations seeded from the step).

    Args:
        run: the run; ``run.step`` is the step being trained (not yet counted).
        batch: the loader's tensors: ``anchor``, ``instance`` (and ``partner`` for ESS) images (B, 3, H, W),
            and their view indices (B,).
        lr: learning rate of this step.

    Returns:
        The step's loss (a scalar tensor, before the update).
    """
    config, device, augment = run.config, run.device, run.augment
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    gen = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + run.step)
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    q_in = moco_v2_augment(batch["anchor"], config=augment, generator=gen)  # (B, 3, S, S)
    k_in = moco_v2_augment(batch["instance"], config=augment, generator=gen)
    spatial = config.method is not Method.MOCO
    if spatial and config.instance_positive:
        p_in, p_view = moco_v2_augment(batch["partner"], config=augment, generator=gen), batch["partner_view"]
    elif spatial:  # the partner replaces the instance key
        k_in, batch["instance_view"] = moco_v2_augment(batch["partner"], config=augment, generator=gen), batch["partner_view"]
        p_in = p_view = None
    else:
        p_in = p_view = None
    logits, targets = run.net(q_in, k_in, view_q=batch["view"], view_k=batch["instance_view"], im_p=p_in,
                              view_p=p_view, positives=run.positives, generator=gen)
    loss = soft_info_nce(logits, targets)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    return loss


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log lines of steps <= ``step`` (a resumed run rewrites what came after its checkpoint)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in keep))


def plot_log(log_path: Path, png_path: Path) -> None:
    """Loss and learning rate against step, as a PNG (Pillow only)."""
    from PIL import Image, ImageDraw

    if not log_path.exists():
        return
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line]
    if len(rows) < 2:
        return
    w, h, pad = 640, 360, 48
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    steps = np.array([r["step"] for r in rows], float)
    for key, colour in (("loss", (31, 119, 180)), ("lr", (214, 39, 40))):
        v = np.array([r[key] for r in rows], float)
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo if hi > lo else 1.0
        x = pad + (steps - steps[0]) / max(steps[-1] - steps[0], 1) * (w - 2 * pad)
        y = h - pad - (v - lo) / span * (h - 2 * pad)
        d.line(list(zip(x.tolist(), y.tolist())), fill=colour, width=2)
        d.text((pad if key == "loss" else w - 3 * pad, 8), f"{key} {lo:.3g}..{hi:.3g}", fill=colour)
    d.rectangle([pad, pad, w - pad, h - pad], outline=(0, 0, 0))
    d.text((w // 2 - 20, h - pad + 12), "step", fill=(0, 0, 0))
    img.save(png_path)
