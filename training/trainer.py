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
    out = Path(out)
    ckpt_path = out / CHECKPOINT_NAME
    provenance = {
        "path": str(dataset.reader.folder),
        "manifest_sha256": dataset.reader.manifest_sha256(),
        "pairs_sha256": file_sha256(dataset.reader.folder / PAIRS_NAME),
        "views": n,
        "splits": splits.summary(),
    }
    model_args = MoCoConfig(
        arch=config.arch, dim=config.dim, mlp_hidden=config.mlp_hidden, K=queue_size(config, n), m=config.moco_m,
        T=config.temperature, bn_splits=config.bn_splits, method=config.method,
    )
    cfg_json = to_jsonable(config)
    if ckpt_path.exists() and not resume:
        raise TrainError(f"{out} holds a run; pass --resume to continue it or choose another --out")
    if resume and not ckpt_path.exists():
        raise TrainError(f"nothing to resume: {ckpt_path} does not exist")

    per_epoch = steps_per_epoch(n, config.batch_size)
    total = per_epoch * config.epochs
    horizon = per_epoch * config.horizon
    ckpt, status = None, "trained"
    if resume:
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ckpt["dataset"]["manifest_sha256"] != provenance["manifest_sha256"]:
            raise TrainError(f"{out} was trained on another dataset; choose another --out")
        status = {"finished": "finished", "continue": "continued", "restart": "restarted"}[
            resume_plan(ckpt["config"], cfg_json, int(ckpt["step"]), total)]
        if status == "finished":
            return {"steps": int(ckpt["step"]), "final_loss": None, "images_per_s": None, "status": status}
        if status == "restarted":
            log.warning("the learning-rate schedule now spans %d epochs instead of %d: every step's learning rate "
                        "changed, so the run is retrained from step 0", config.horizon,
                        ckpt["config"].get("schedule_epochs") or ckpt["config"]["epochs"])
            ckpt = None

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
    net = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    j = config.jitter_strength
    augment = AugmentConfig(
        size=config.image_size or dataset.reader.width, scale=(config.crop_min_scale, 1.0),
        jitter=(0.4 * j, 0.4 * j, 0.4 * j, min(0.5, 0.1 * j)), blur_p=0.5 if config.blur else 0.0,
    )

    def checkpoint() -> None:
        if rank == 0:
            _save_torch(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "config": cfg_json,
                 "model_args": to_jsonable(model_args), "dataset": provenance, "code_version": code_version(),
                 "seed": config.seed},
                ckpt_path,
            )

    spatial = config.method is not Method.MOCO
    losses, speeds = [], []
    try:
        while step < total:
            epoch, start = divmod(step, per_epoch)
            dataset.set_epoch(epoch)
            sampler = EpochBatches(n, batch_size=config.batch_size, seed=config.seed, epoch=epoch, start=start,
                                   rank=rank, world=world)
            loader = torch.utils.data.DataLoader(
                dataset, batch_sampler=sampler, num_workers=config.workers,
                persistent_workers=False, pin_memory=device.type == "cuda",
            )
            t_last = time.perf_counter()
            for batch in loader:
                lr = cosine_schedule(step, horizon, base_lr, 0.0)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                gen = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + step)
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                q_in = moco_v2_augment(batch["anchor"], config=augment, generator=gen)  # (B, 3, S, S)
                k_in = moco_v2_augment(batch["instance"], config=augment, generator=gen)
                if spatial and config.instance_positive:
                    p_in, p_view = moco_v2_augment(batch["partner"], config=augment, generator=gen), batch["partner_view"]
                elif spatial:  # the partner replaces the instance key
                    k_in, batch["instance_view"] = moco_v2_augment(batch["partner"], config=augment, generator=gen), batch["partner_view"]
                    p_in = p_view = None
                else:
                    p_in = p_view = None
                logits, targets = net(q_in, k_in, view_q=batch["view"], view_k=batch["instance_view"], im_p=p_in,
                                      view_p=p_view, positives=positives, generator=gen)
                loss = soft_info_nce(logits, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                now = time.perf_counter()
                images_per_s = config.batch_size / max(now - t_last, 1e-9)
                t_last = now
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainError(f"the loss became {value} at step {step}; lower --lr")
                losses.append(value)
                speeds.append(images_per_s)
                record = {"step": step, "epoch": epoch, "loss": value, "lr": lr, "images_per_s": images_per_s}
                if rank == 0 and (step % config.log_every == 0 or step == total):
                    with open(out / LOG_NAME, "a") as f:
                        f.write(json.dumps(record) + "\n")
                if progress is not None:
                    progress(step, record)
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    checkpoint()
                if step >= total:
                    break
            checkpoint()  # end of epoch
    except KeyboardInterrupt:
        checkpoint()
        raise
    if rank == 0:
        _save_torch(
            {"arch": config.arch, "state_dict": model.encoder_q.backbone.state_dict(), "model_args": to_jsonable(model_args),
             "config": cfg_json, "dataset": provenance, "code_version": code_version(), "seed": config.seed, "step": step},
            out / ENCODER_NAME,
        )
        plot_log(out / LOG_NAME, out / "loss.png")
    warm = speeds[len(speeds) // 4 :] or speeds
    return {"steps": step, "final_loss": losses[-1] if losses else None,
            "images_per_s": float(np.mean(warm)) if warm else None, "status": status}


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
