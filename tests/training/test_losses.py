"""InfoNCE, soft-target InfoNCE and the ESS target builders against slow Python references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training.losses import info_nce, multi_positive_targets, soft_info_nce, weighted_targets


def _slow_soft_ce(logits: torch.Tensor, targets: torch.Tensor) -> float:
    total = 0.0
    for row, target in zip(logits.tolist(), targets.tolist()):
        finite = [v for v in row if v != -math.inf]
        top = max(finite)
        lse = top + math.log(sum(math.exp(v - top) for v in finite))
        total += -sum(t * (v - lse) for v, t in zip(row, target) if t > 0)
    return total / len(logits)


def _slow_multi_positive(mask: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(mask.shape)
    for i, row in enumerate(mask.tolist()):
        positives = [j for j, p in enumerate(row) if p]
        for j in positives:
            out[i, j] = 1.0 / len(positives)
    return out


@pytest.mark.parametrize("k", [1, 7, 4096])
def test_info_nce_equal_logits_is_log_k_plus_1(k):
    logits = torch.full((5, 1 + k), 0.37)
    assert math.isclose(info_nce(logits).item(), math.log(k + 1), rel_tol=1e-6)


def test_info_nce_and_soft_match_slow_reference():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 11, generator=g, dtype=torch.float64) * 3
    one_hot = torch.zeros_like(logits)
    one_hot[:, 0] = 1
    assert math.isclose(info_nce(logits).item(), _slow_soft_ce(logits, one_hot), rel_tol=1e-12)
    soft = torch.rand(6, 11, generator=g, dtype=torch.float64) ** 4
    soft = soft / soft.sum(1, keepdim=True)
    assert math.isclose(soft_info_nce(logits, soft).item(), _slow_soft_ce(logits, soft), rel_tol=1e-12)
    torch.testing.assert_close(soft_info_nce(logits, soft), F.cross_entropy(logits, soft))  # a stock loss agrees


def test_ess_mb_with_only_own_key_is_moco():
    logits = torch.randn(8, 40, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(8, 40, dtype=torch.bool)
    mask[:, 0] = True
    targets = multi_positive_targets(mask)
    assert torch.equal(targets, mask.float())
    torch.testing.assert_close(soft_info_nce(logits, targets), info_nce(logits), rtol=1e-6, atol=0)


def test_multi_positive_targets_match_reference():
    mask = torch.rand(7, 13, generator=torch.Generator().manual_seed(2)) < 0.3
    mask[:, 0] = True
    targets = multi_positive_targets(mask)
    torch.testing.assert_close(targets, _slow_multi_positive(mask))
    torch.testing.assert_close(targets.sum(1), torch.ones(7))


def test_ess_mw_reduces_to_ess_mb():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 20, generator=g)
    mask = torch.rand(6, 20, generator=g) < 0.4
    mask[:, 0] = True
    # Binary weights: ESS-MW is ESS-MB.
    torch.testing.assert_close(weighted_targets(mask.float()), multi_positive_targets(mask))
    torch.testing.assert_close(
        soft_info_nce(logits, weighted_targets(mask.float())), soft_info_nce(logits, multi_positive_targets(mask))
    )
    # One-hot weights (any scale): ESS-MW is ESS-MB with the own key alone.
    one = torch.zeros(6, 20)
    one[:, 0] = torch.rand(6, generator=g) + 0.1
    only_own = torch.zeros(6, 20, dtype=torch.bool)
    only_own[:, 0] = True
    torch.testing.assert_close(
        soft_info_nce(logits, weighted_targets(one)), soft_info_nce(logits, multi_positive_targets(only_own))
    )


def test_weighted_targets_normalise_rows():
    w = torch.rand(5, 9, generator=torch.Generator().manual_seed(4))
    t = weighted_targets(w)
    for i in range(5):
        for j in range(9):
            assert math.isclose(t[i, j].item(), w[i, j].item() / sum(w[i].tolist()), rel_tol=1e-5)


def test_rows_without_a_positive_raise():
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[0, 0] = mask[2, 1] = True
    with pytest.raises(ValueError, match="own key"):
        multi_positive_targets(mask)
    with pytest.raises(ValueError, match="own key"):
        weighted_targets(mask.float())
    with pytest.raises(ValueError, match="non-negative"):
        weighted_targets(torch.tensor([[1.0, -0.1]]))
    with pytest.raises(ValueError, match="bool"):
        multi_positive_targets(mask.float())
    with pytest.raises(ValueError, match="same shape"):
        soft_info_nce(torch.zeros(2, 3), torch.zeros(2, 4))


@pytest.mark.parametrize("masked", [-1e4, -math.inf])
def test_gradients_finite_with_excluded_columns(masked):
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(4, 10, generator=g).requires_grad_()
    keep = torch.ones(10, dtype=torch.bool)
    keep[6:] = False  # excluded keys: very negative logit, zero target
    targets = weighted_targets(torch.rand(4, 10, generator=g) * keep)
    loss = soft_info_nce(logits.masked_fill(~keep, masked), targets)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert torch.all(logits.grad[:, 6:] == 0)
    assert math.isclose(loss.item(), _slow_soft_ce(logits[:, :6].detach(), targets[:, :6]), rel_tol=1e-5)
    hard = torch.randn(4, 10, generator=g).requires_grad_()
    info_nce(hard.masked_fill(~keep, masked)).backward()
    assert torch.isfinite(hard.grad).all()


# --- training.schedule (the brief allots no test file of its own; move to test_schedule.py freely) ---------

from training.schedule import accuracy, cosine_schedule, scaled_lr  # noqa: E402


def test_cosine_schedule_hand_values():
    assert cosine_schedule(0, 100, 0.4) == 0.4
    assert math.isclose(cosine_schedule(50, 100, 0.4), 0.2)
    assert math.isclose(cosine_schedule(25, 100, 1.0), 0.5 * (1 + math.cos(math.pi / 4)))
    assert cosine_schedule(100, 100, 0.4) == 0.0 and cosine_schedule(150, 100, 0.4, end=0.1) == 0.1
    assert math.isclose(cosine_schedule(50, 100, 1.0, end=0.2), 0.6)
    # Linear warm-up over 10 steps, then the half cosine over the remaining 90.
    assert [cosine_schedule(s, 100, 1.0, warmup=10) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert cosine_schedule(10, 100, 1.0, warmup=10) == 1.0
    assert math.isclose(cosine_schedule(55, 100, 1.0, warmup=10), 0.5)
    # MoCo's per-epoch rule lr * 0.5 * (1 + cos(pi * epoch / epochs)).
    for e in range(200):
        assert math.isclose(cosine_schedule(e, 200, 0.03), 0.03 * 0.5 * (1 + math.cos(math.pi * e / 200)))
    with pytest.raises(ValueError):
        cosine_schedule(0, 10, 1.0, warmup=11)
    with pytest.raises(ValueError):
        cosine_schedule(-1, 10, 1.0)


def test_scaled_lr():
    assert scaled_lr(0.03, 256) == 0.03 and math.isclose(scaled_lr(0.03, 512), 0.06)
    assert math.isclose(scaled_lr(0.1, 64, reference=128), 0.05)
    with pytest.raises(ValueError):
        scaled_lr(0.1, 0)


def test_accuracy_hand_values():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5], [0.5, 0.1, 0.4]])
    labels = torch.tensor([1, 1, 0, 2])
    top1, top2, top3 = accuracy(logits, labels, topk=(1, 2, 3))
    assert (top1, top2, top3) == (25.0, 75.0, 100.0)
    assert accuracy(logits, labels) == [25.0]
    with pytest.raises(ValueError, match="topk"):
        accuracy(logits, labels, topk=(4,))
