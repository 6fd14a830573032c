"""The three contrastive objectives as one formula: cross-entropy between soft targets and the softmax of logits.

For a query with logits ``l`` over C keys (already divided by the temperature T) and a target distribution
``y`` over the same keys, the loss is ``-sum_c y_c log softmax(l)_c``, averaged over queries:

* MoCo / InfoNCE (He et al. 2020): ``y`` is one-hot on the own key (column 0), so the loss is
  ``-log(exp(l_0) / sum_c exp(l_c))``, the usual cross-entropy with label 0.
* ESS-MB (arXiv 2401.15120): ``y`` is uniform over the positives (the own key and every spatial
  neighbour), the SupCon "L_out" average of ``-log p`` over positives (Khosla et al. 2020).
* ESS-MW: ``y`` is proportional to non-negative positive weights (spatial similarity).

Keys that must not count at all (empty queue slots) take a very negative logit and a zero target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _require(condition: Tensor, message: str) -> None:
    """Raise ValueError unless ``condition`` is all true; on an accelerator check asynchronously (no sync)."""
    if condition.device.type == "cpu":
        if not bool(condition.all()):
            raise ValueError(message)
    else:
        torch._assert_async(condition.all(), message)


def info_nce(logits: Tensor) -> Tensor:
    """MoCo's InfoNCE loss: cross-entropy with the positive in column 0.

    Args:
        logits: (N, 1+K) similarities already divided by the temperature T; column 0 is the own key.

    Returns:
        Scalar mean loss.
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must have shape (N, 1+K) with K >= 1, got {tuple(logits.shape)}")
    labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)  # (N,)
    return F.cross_entropy(logits, labels)


def soft_info_nce(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy with soft targets: ``-(targets * log_softmax(logits)).sum(1).mean()``.

    Entries with a zero target contribute nothing even where the logit is ``-inf``.

    Args:
        logits: (N, C) similarities divided by the temperature.
        targets: (N, C) non-negative, each row summing to 1.

    Returns:
        Scalar mean loss.
    """
    if logits.shape != targets.shape or logits.ndim != 2:
        raise ValueError(
            f"logits and targets must have the same shape (N, C), got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    logp = F.log_softmax(logits, dim=1)  # (N, C)
    terms = torch.where(targets > 0, targets * logp, torch.zeros_like(logp))  # (N, C)
    return -terms.sum(1).mean()


def multi_positive_targets(positive_mask: Tensor) -> Tensor:
    """ESS-MB targets: uniform over each row's positives.

    Args:
        positive_mask: bool (N, C); every row needs at least one positive (the own key).

    Returns:
        float32 (N, C), rows summing to 1.
    """
    if positive_mask.dtype != torch.bool or positive_mask.ndim != 2:
        raise ValueError(
            f"positive_mask must be a bool (N, C) tensor, got {positive_mask.dtype} {tuple(positive_mask.shape)}"
        )
    counts = positive_mask.sum(1, keepdim=True)  # (N, 1)
    _require(counts > 0, "every row of positive_mask needs at least one positive (the own key)")
    return positive_mask.to(torch.float32) / counts.clamp(min=1)  # (N, C)


def weighted_targets(weights: Tensor) -> Tensor:
    """ESS-MW targets: each row's weights divided by their sum.

    Args:
        weights: (N, C) finite, >= 0; every row needs a positive weight (the own key's).

    Returns:
        (N, C) in the weights' floating dtype, rows summing to 1.
    """
    if weights.ndim != 2 or not weights.is_floating_point():
        raise ValueError(f"weights must be a floating (N, C) tensor, got {weights.dtype} {tuple(weights.shape)}")
    _require(torch.isfinite(weights) & (weights >= 0), "weights must be finite and non-negative")
    total = weights.sum(1, keepdim=True)  # (N, 1)
    _require(total > 0, "every row of weights needs a positive weight (the own key's)")
    return weights / torch.where(total > 0, total, torch.ones_like(total))  # (N, C)
