"""Exponential moving averages of parameters: MoCo's key encoder and BYOL's target network.

``theta_avg <- tau theta_avg + (1 - tau) theta``, in place, parameter by parameter. MoCo calls tau the
momentum m (fixed, 0.999); BYOL raises tau from 0.996 to 1 over training (:func:`training.byol.target_tau`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


@torch.no_grad()
def ema_update_(average: Iterable[Tensor], current: Iterable[Tensor], tau: float) -> None:
    """``a <- tau a + (1 - tau) c`` for every pair (a, c) of ``average`` and ``current``, in place.

    Args:
        average: the averaged tensors (a key encoder's or target network's parameters), updated in place.
        current: the tensors they follow (the trained network's parameters), the same shapes in the same order.
        tau: decay in [0, 1]; 1 leaves ``average`` unchanged, 0 copies ``current``.

    Raises:
        ValueError: tau outside [0, 1] or the two lists differ in length.
    """
    average, current = list(average), list(current)
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau is the averaging decay and must lie in [0, 1], got {tau}")
    if len(average) != len(current):
        raise ValueError(f"average and current need the same tensors, got {len(average)} and {len(current)}")
    torch._foreach_mul_(average, tau)
    torch._foreach_add_(average, current, alpha=1.0 - tau)
