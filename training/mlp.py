"""Small MLPs: BYOL's projector and predictor, and the auxiliary heads."""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp(in_dim: int, hidden: int, out_dim: int, *, batch_norm: bool, generator: torch.Generator | None) -> nn.Sequential:
    """``Linear -> [BatchNorm1d] -> ReLU -> Linear`` with torch's default Linear initialisation drawn from ``generator``.

    Args:
        in_dim: input width.
        hidden: hidden width.
        out_dim: output width.
        batch_norm: put a BatchNorm1d after the first layer (BYOL's projector and predictor have one).
        generator: source of the initial weights; ``None`` uses torch's global generator.

    Returns:
        The MLP, mapping (N, in_dim) to (N, out_dim).
    """
    for name, value in (("in_dim", in_dim), ("hidden", hidden), ("out_dim", out_dim)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    first, last = nn.Linear(in_dim, hidden), nn.Linear(hidden, out_dim)
    for layer in (first, last):
        bound = 1 / math.sqrt(layer.in_features)
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    middle = [nn.BatchNorm1d(hidden)] if batch_norm else []
    return nn.Sequential(first, *middle, nn.ReLU(inplace=True), last)
