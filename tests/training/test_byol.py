"""BYOL: the loss on hand-computed vectors, the target's moving average and schedule, the stop-gradient."""

from __future__ import annotations

import math

import pytest
import torch

from training.byol import BYOL, BYOLConfig, regression_loss, target_tau
from training.ema import ema_update_

SMALL = dict(arch="resnet18-cifar-quarter", dim=8, mlp_hidden=16, bn_splits=2)


def _views(seed: int, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=g), torch.randn(n, 3, 16, 16, generator=g)


def test_loss_is_two_minus_twice_the_cosine():
    p = torch.tensor([[3.0, 4.0], [1.0, 0.0], [2.0, 0.0]])
    z = torch.tensor([[4.0, 3.0], [1.0, 1.0], [-5.0, 0.0]])
    # cosines 24/25, 1/sqrt(2), -1
    expected = ((2 - 48 / 25) + (2 - math.sqrt(2)) + 4) / 3
    assert regression_loss(p, z).item() == pytest.approx(expected, rel=1e-6)
    assert regression_loss(z, z).item() == pytest.approx(0.0, abs=1e-6)


def test_loss_is_the_squared_distance_of_unit_vectors():
    g = torch.Generator().manual_seed(0)
    p, z = torch.randn(16, 5, generator=g), torch.randn(16, 5, generator=g)
    ref = ((p / p.norm(dim=1, keepdim=True) - z / z.norm(dim=1, keepdim=True)) ** 2).sum(1).mean()
    torch.testing.assert_close(regression_loss(p, z), ref)


def test_one_ema_step_from_target_0_and_online_1_gives_1_minus_tau():
    target, online = [torch.zeros(3), torch.zeros(2, 2)], [torch.ones(3), torch.ones(2, 2)]
    ema_update_(target, online, 0.996)
    for t in target:
        torch.testing.assert_close(t, torch.full_like(t, 1 - 0.996))
    ema_update_(target, online, 1.0)  # tau = 1 keeps the target
    torch.testing.assert_close(target[0], torch.full((3,), 1 - 0.996))
    with pytest.raises(ValueError, match="tau"):
        ema_update_(target, online, 1.5)


def test_after_step_moves_the_target_by_the_scheduled_tau():
    model = BYOL(BYOLConfig(**SMALL, tau=0.99), generator=torch.Generator().manual_seed(0))
    online = [*model.backbone.parameters(), *model.projector.parameters()]
    target = [*model.target_backbone.parameters(), *model.target_projector.parameters()]
    with torch.no_grad():
        for o, t in zip(online, target):
            o.fill_(1.0)
            t.fill_(0.0)
    model.after_step(0, 100)  # tau = 0.99 at step 0
    for t in target:
        torch.testing.assert_close(t, torch.full_like(t, 0.01))
    assert all(torch.equal(o, torch.ones_like(o)) for o in online)


def test_the_tau_schedule_runs_from_base_to_one():
    assert target_tau(0, 100, 0.996) == 0.996
    assert target_tau(50, 100, 0.996) == pytest.approx(0.998)
    assert target_tau(100, 100, 0.996) == 1.0
    assert target_tau(250, 100, 0.996) == 1.0
    values = [target_tau(k, 100, 0.996) for k in range(101)]
    assert values == sorted(values)


def test_no_gradient_reaches_the_target():
    model = BYOL(BYOLConfig(**SMALL), generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("target_")}
    loss = model(*_views(1))
    loss.backward()
    assert all(p.grad is None and not p.requires_grad
               for p in [*model.target_backbone.parameters(), *model.target_projector.parameters()])
    assert all(p.grad is not None for p in model.predictor.parameters())
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    z = torch.randn(4, 8, requires_grad=True)
    regression_loss(torch.randn(4, 8, requires_grad=True), z).backward()
    assert z.grad is None  # stop-gradient inside the loss
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    after = model.state_dict()
    params = {f"target_{n}" for n, _ in [*model.target_backbone.named_parameters(prefix="backbone"),
                                        *model.target_projector.named_parameters(prefix="projector")]}
    assert all(torch.equal(before[k], after[k]) for k in params)


def test_the_loss_is_symmetrised_over_the_two_views():
    model = BYOL(BYOLConfig(**SMALL), generator=torch.Generator().manual_seed(0))
    v1, v2 = _views(2)
    o1, o2, t1, t2, loss = model.forward_views(v1, v2)
    p1, p2 = model.predictor(o1.projection), model.predictor(o2.projection)
    torch.testing.assert_close(loss, regression_loss(p1, t2.projection) + regression_loss(p2, t1.projection))
    assert 0 <= loss.item() <= 8


def test_the_target_starts_as_the_online_network_and_the_backbone_as_random_encoder():
    from training.encoder import random_encoder

    torch.manual_seed(7)  # what the trainer does before building a method
    model = BYOL(BYOLConfig(arch="resnet18-cifar-half", bn_splits=2, dim=8, mlp_hidden=16))
    floor = random_encoder("resnet18-cifar-half", seed=7).state_dict()
    online = model.backbone.state_dict()
    assert all(torch.equal(online[k], floor[k]) for k in floor)
    target = model.target_backbone.state_dict()
    assert all(torch.equal(online[k], target[k]) for k in online)


@pytest.mark.parametrize(("field", "value"), [("tau", 1.5), ("dim", 0), ("arch", "vgg")])
def test_config_validates(field, value):
    with pytest.raises(ValueError, match=field):
        BYOLConfig(**{field: value})
