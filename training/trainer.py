"""The training loop: MoCo-v2 / ESS-MB / ESS-MW / BYOL / SARL (plus auxiliary heads) on a rendered dataset
with its pairs.

The loop knows the methods through one interface (:mod:`training.objective`, :mod:`training.methods`): it
augments the views a method's plan asks for, calls the method (and the heads) for a loss, steps the
optimiser and lets the method follow up (BYOL's target update).

Everything random derives from the seed: model initialisation (``torch.manual_seed``), the order of views
in an epoch (numpy, from (seed, epoch)), each view's spatial partner (the loader, from (seed, epoch,
view)), and the augmentations of each step (a torch generator seeded from (seed, step); the heads' crops and
partner views from generators of their own). A checkpoint holds the model (with MoCo's queue or BYOL's
target), the heads, the optimiser and the position in the epoch, so ``--resume`` after an interruption
continues to the same weights as an uninterrupted run.

Resuming (:func:`resume_plan`): a finished run is left as it is; ``--epochs`` may grow, and the run then
reaches the weights of a run trained that long from the start: it continues from its checkpoint when the
learning-rate schedule's horizon (``schedule_epochs``, by default ``epochs``) is unchanged, and otherwise
retrains from step 0 (every step's cosine learning rate depends on the horizon). Any other changed setting
is refused, by name (a setting added after the run was made counts as its default).

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
from training.augment import AugmentConfig
from training.config import TrainConfig, TrainError
from training.encoder import ENCODER_NAME, load_plain
from training.heads import AuxHead
from training.inputs import ViewPlan, aux_inputs, step_views
from training.methods import Learner, build_learner, view_plan
from training.positives import PositiveTable
from training.runlog import plot_log, truncate_log
from training.schedule import cosine_schedule, scaled_lr
from training.views import EpochBatches, TrainViews, steps_per_epoch

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"
CONFIG_NAME = "config.json"


RESUMABLE_CHANGES = ("epochs", "workers", "device", "log_every", "checkpoint_every")
"""Settings ``--resume`` accepts with another value: more epochs, and how the run is executed."""


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
        model_args: the method's model arguments (``model_args``) and the heads' (``heads_args``, or None).
        cfg_json: ``config`` in JSON form.
        model: the method's model (MoCo with its queue, BYOL or SARL with its target) and the heads.
        optimizer: SGD over ``model``'s parameters.
        net: ``model``, wrapped in DistributedDataParallel under torchrun.
        positives: the pairs file's positives as a lookup table on ``device``.
        plan: which images the method's views come from.
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
    model_args: dict[str, Any]
    cfg_json: dict[str, Any]
    model: Learner
    optimizer: torch.optim.Optimizer
    net: torch.nn.Module
    positives: PositiveTable
    plan: ViewPlan
    augment: AugmentConfig
    base_lr: float
    per_epoch: int
    total: int
    horizon: int
    step: int = 0

    def checkpoint(self) -> None:
        """Write everything to resume from ``step`` to ``checkpoint.pt`` (rank 0 only): ``model`` is the
        method's state (MoCo's, BYOL's or SARL's), ``heads`` the auxiliary heads' (only with heads)."""
        if self.rank == 0:
            state = {"model": self.model.method.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                     "config": self.cfg_json, "model_args": to_jsonable(self.model_args["model_args"]),
                     "dataset": self.provenance, "code_version": code_version(), "seed": self.config.seed}
            if self.model.heads is not None:
                state.update(heads=self.model.heads.state_dict(), heads_args=to_jsonable(self.model_args["heads_args"]))
            _save_torch(state, self.out / CHECKPOINT_NAME)

    def finish(self) -> None:
        """Write the query backbone to ``encoder.pt`` and plot the log to ``loss.png`` (rank 0 only)."""
        if self.rank == 0:
            _save_torch(
                {"arch": self.config.arch, "state_dict": self.model.method.online_backbone.state_dict(),
                 "model_args": to_jsonable(self.model_args["model_args"]), "config": self.cfg_json,
                 "dataset": self.provenance,
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
        out: run folder: ``checkpoint.pt`` (everything to resume), ``encoder.pt`` (the query / online
            backbone with its model arguments, for ``ess bench``), ``log.jsonl``, ``loss.png`` and
            ``config.json``.
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
    cfg_json = to_jsonable(config)
    per_epoch = steps_per_epoch(len(dataset), config.batch_size)
    ckpt, status = _resume_checkpoint(out, config=config, cfg_json=cfg_json, provenance=provenance, resume=resume,
                                      total=per_epoch * config.epochs, device=device)
    if status == "finished":
        return {"steps": int(ckpt["step"]), "final_loss": None, "images_per_s": None, "status": status}
    run = _set_up(config, out=out, device=device, rank=rank, world=world, dataset=dataset, provenance=provenance,
                  cfg_json=cfg_json, per_epoch=per_epoch, ckpt=ckpt)
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
        heads = config.aux
        dataset = TrainViews(data, subset=splits.train, seed=config.seed,
                             spatial=view_plan(config).loads_partner or AuxHead.POSE in heads,
                             light=config.light_positives, pose=AuxHead.POSE in heads,
                             depth_order=AuxHead.DEPTH_ORDER in heads)
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
    try:
        ckpt = load_plain(ckpt_path, map_location=device)
    except ValueError as exc:
        raise TrainError(str(exc)) from None
    if ckpt["dataset"]["manifest_sha256"] != provenance["manifest_sha256"]:
        raise TrainError(f"{out} was trained on another dataset; choose another --out")
    saved = {**to_jsonable(TrainConfig()), **ckpt["config"]}  # settings the run predates take their defaults
    status = {"finished": "finished", "continue": "continued", "restart": "restarted"}[
        resume_plan(saved, cfg_json, int(ckpt["step"]), total)]
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
    cfg_json: dict[str, Any],
    per_epoch: int,
    ckpt: dict[str, Any] | None,
) -> _Run:
    """Seed and build the model and optimiser (from ``ckpt`` when given), write ``config.json`` and trim the log."""
    torch.manual_seed(config.seed)
    learner, model_args = build_learner(config, len(dataset))
    model = learner.to(device)
    base_lr = config.lr if config.lr is not None else scaled_lr(0.03, config.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=config.momentum, weight_decay=config.weight_decay)
    step = 0
    if ckpt is not None:
        model.method.load_state_dict(ckpt["model"])
        if model.heads is not None:
            model.heads.load_state_dict(ckpt["heads"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
    positives = PositiveTable.from_pairs_file(
        {"pair": dataset.pairs.pairs, "weight": dataset.pairs.weight, "distance": dataset.pairs.distance,
         "angle": dataset.pairs.angle}, dataset.pairs.positive, dataset.pairs.meta["scene"],
    ).to(device)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        record = {"config": cfg_json, "model_args": to_jsonable(model_args["model_args"])}
        if model.heads is not None:
            record["heads_args"] = to_jsonable(model_args["heads_args"])
        record.update(dataset=provenance, code_version=code_version())
        (out / CONFIG_NAME).write_text(json.dumps(record, indent=2) + "\n")
        truncate_log(out / LOG_NAME, step)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    j = config.jitter_strength
    augment = AugmentConfig(
        size=config.image_size or dataset.reader.width, scale=(config.crop_min_scale, 1.0),
        jitter=(0.4 * j, 0.4 * j, 0.4 * j, min(0.5, 0.1 * j)), blur_p=0.5 if config.blur else 0.0,
    )
    return _Run(config=config, out=out, device=device, rank=rank, world=world, dataset=dataset, provenance=provenance,
                model_args=model_args, cfg_json=cfg_json, model=model, optimizer=optimizer, net=net,
                positives=positives, plan=view_plan(config), augment=augment, base_lr=base_lr, per_epoch=per_epoch,
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
        loss, terms = _train_step(run, batch, lr)
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
        record = {"step": step, "epoch": epoch, "loss": value, "lr": lr, "images_per_s": images_per_s,
                  **{name: float(part) for name, part in terms.items()}}
        if run.rank == 0 and (step % config.log_every == 0 or step == run.total):
            with open(run.out / LOG_NAME, "a") as f:
                f.write(json.dumps(record) + "\n")
        if progress is not None:
            progress(step, record)
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            run.checkpoint()
        if step >= run.total:
            break


def _train_step(run: _Run, batch: dict[str, torch.Tensor], lr: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One optimiser step at learning rate ``lr`` on a batch of views (augmentations seeded from the step).

    Args:
        run: the run; ``run.step`` is the step being trained (not yet counted).
        batch: the loader's tensors: ``anchor``, ``instance`` (and ``partner``) images (B, 3, H, W), their
            view indices (B,), and the heads' labels (:class:`training.views.TrainViews`).
        lr: learning rate of this step.

    Returns:
        The step's loss (a scalar tensor, before the update) and its named parts (detached; empty when the
        loss has one part).
    """
    config, device, augment = run.config, run.device, run.augment
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    gen = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + run.step)
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    views = step_views(batch, run.plan, augment=augment, generator=gen)
    heads = run.model.heads
    aux = None if heads is None else aux_inputs(heads.config, batch, views.anchor_params, augment=augment,
                                                seed=config.seed, step=run.step)
    loss, terms = run.net(views, aux, positives=run.positives, generator=gen)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    run.model.method.after_step(run.step, run.horizon)
    return loss, terms
