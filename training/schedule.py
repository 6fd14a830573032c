"""Schedules and metrics as pure functions, shared by training and evaluation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def cosine_schedule(step: int, total: int, start: float, end: float = 0.0, warmup: int = 0) -> float:
    """A value that warms up linearly, then follows a half cosine from ``start`` down to ``end``.

    * warm-up, ``step < warmup``: ``start * (step + 1) / warmup`` (reaches ``start`` at step ``warmup - 1``;
      step 0 is not wasted at zero);
    * decay, ``warmup <= step < total``: ``end + (start - end) * (1 + cos(pi * p)) / 2`` with
      ``p = (step - warmup) / (total - warmup)``; MoCo's schedule is ``warmup=0, end=0`` stepped per epoch;
    * ``step >= total``: ``end``.

    Args:
        step: current step (or epoch), >= 0.
        total: number of steps, >= 1.
        start: value after warm-up (e.g. the base learning rate).
        end: value the cosine ends at.
        warmup: warm-up steps, 0 <= warmup <= total.

    Returns:
        The value at ``step``.
    """
    if total < 1 or not 0 <= warmup <= total:
        raise ValueError(f"need total >= 1 and 0 <= warmup <= total, got total={total}, warmup={warmup}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < warmup:
        return start * (step + 1) / warmup
    if step >= total:
        return end
    p = (step - warmup) / (total - warmup)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * p))


def scaled_lr(base_lr: float, batch_size: int, reference: int = 256) -> float:
    """The linear scaling rule (Goyal et al. 2017): ``base_lr * batch_size / reference``.

    Args:
        base_lr: learning rate at the reference batch size.
        batch_size: total batch size (over all processes), >= 1.
        reference: batch size ``base_lr`` was tuned for.
    """
    if batch_size < 1 or reference < 1:
        raise ValueError(f"batch_size and reference must be >= 1, got {batch_size} and {reference}")
    return base_lr * batch_size / reference


@torch.no_grad()
def accuracy(logits: Tensor, labels: Tensor, topk: Sequence[int] = (1,)) -> list[float]:
    """Top-k accuracies in percent.

    Args:
        logits: (N, C) scores.
        labels: (N,) integer classes in [0, C).
        topk: the k values, each in [1, C].

    Returns:
        One percentage in [0, 100] per k, in the order of ``topk``.
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],) or logits.shape[0] == 0:
        raise ValueError(
            f"need logits (N, C) and labels (N,) with N >= 1, got {tuple(logits.shape)}, {tuple(labels.shape)}"
        )
    maxk = max(topk)
    if min(topk) < 1 or maxk > logits.shape[1]:
        raise ValueError(f"every k in topk must lie in [1, {logits.shape[1]}], got {tuple(topk)}")
    pred = logits.topk(maxk, dim=1).indices  # (N, maxk)
    hit = pred == labels.view(-1, 1)  # (N, maxk)
    return [float(hit[:, :k].any(1).float().mean()) * 100.0 for k in topk]
