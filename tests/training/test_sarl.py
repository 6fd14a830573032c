"""SARL's map losses (SAL, PPDA, RAM) and the cell correspondence between crops, against hand computations
and invariances."""

from __future__ import annotations

import math

import pytest
import torch

from training.augment import CropParams
from training.byol import BYOLConfig
from training.correspondence import correspondence, region_weights, sample_cells
from training.sarl import (
    SARL,
    SARLConfig,
    prototype_log_distribution,
    region_affinity,
    region_affinity_loss,
    saliency,
    saliency_alignment_loss,
    symmetric_kl,
)

H = W = 64


def _params(boxes, flips) -> CropParams:
    return CropParams(box=torch.tensor(boxes, dtype=torch.float32), flip=torch.tensor(flips), image_size=(H, W))


def _maps(seed: int, n: int = 2, c: int = 8, side: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(n, c * k, side // k, side // k, generator=g)
            for name, k in (("layer2", 1), ("layer3", 2), ("layer4", 4))}


# --- correspondence ------------------------------------------------------------------------------------------


def test_a_flipped_view_maps_column_x_to_w_minus_1_minus_x():
    box = [[8.0, 4.0, 40.0, 48.0]]
    for w in (4, 7, 8):
        grid, valid = correspondence(_params(box, [False]), _params(box, [True]), 5, w)
        assert valid.all()
        cols = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w).expand(1, 1, 5, w)  # a map holding its column
        read = sample_cells(cols, grid)[0, 0]  # (5, w) the column of view B that each cell of view A reads
        torch.testing.assert_close(read, (w - 1 - torch.arange(w, dtype=torch.float32)).expand(5, w))


def test_cells_of_a_sub_crop_land_where_the_boxes_say():
    """View A is the left half of view B's box: A's cell column j (of 4) lies at B's columns j / 2 (of 4)."""
    a, b = _params([[0.0, 0.0, 32.0, 16.0]], [False]), _params([[0.0, 0.0, 32.0, 32.0]], [False])
    grid, valid = correspondence(a, b, 4, 4)
    assert valid.all()
    x_in_b = (grid[0, 0, :, 0] + 1) / 2 * 4 - 0.5  # B's cell coordinate of A's cell centres
    torch.testing.assert_close(x_in_b, torch.tensor([0.0, 0.5, 1.0, 1.5]) - 0.25)
    _, valid = correspondence(b, a, 4, 4)  # B's right half is outside A
    assert valid[0, :, :2].all() and not valid[0, :, 2:].any()


def test_region_weights_cover_the_mapped_box():
    params = _params([[0.0, 0.0, 64.0, 64.0], [0.0, 0.0, 64.0, 64.0], [0.0, 32.0, 32.0, 32.0]], [False, True, False])
    boxes = torch.tensor([[[0, 0, 16, 32]]] * 3)  # rows 0-15, columns 0-31
    weights, visible = region_weights(boxes, params, 4, 4)
    ref = torch.zeros(4, 4)
    ref[0, :2] = 1
    torch.testing.assert_close(weights[0, 0], ref)
    torch.testing.assert_close(weights[1, 0], ref.flip(-1))  # the flipped view shows it on the right
    assert visible[:2].tolist() == [[1.0], [1.0]] and visible[2, 0] == 0 and weights[2].sum() == 0


# --- SAL -----------------------------------------------------------------------------------------------------


def test_saliency_is_the_unit_norm_channel_sum_of_magnitudes():
    f = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.0]]]])  # (1, 2, 1, 2): sums of |F| are 4 and 2
    torch.testing.assert_close(saliency(f), torch.tensor([[[4.0, 2.0]]]) / math.sqrt(20))


def test_sal_is_zero_for_the_same_maps_seen_through_a_flip_and_positive_otherwise():
    maps = _maps(0, n=1)
    box = [[8.0, 8.0, 48.0, 48.0]]
    flipped = {k: v.flip(-1) for k, v in maps.items()}  # what a flipped view of the same crop shows
    assert saliency_alignment_loss(maps, flipped, _params(box, [False]), _params(box, [True])).item() < 1e-12
    assert saliency_alignment_loss(maps, flipped, _params(box, [False]), _params(box, [False])).item() > 1e-4


def test_sal_of_disjoint_crops_is_zero_not_nan():
    maps = {k: v.requires_grad_() for k, v in _maps(1).items()}
    left = _params([[0.0, 0.0, 64.0, 20.0]] * 2, [False, True])
    right = _params([[0.0, 40.0, 64.0, 24.0]] * 2, [False, False])
    loss = saliency_alignment_loss(maps, _maps(2), left, right)
    assert loss.item() == 0.0
    loss.backward()
    assert all(torch.isfinite(m.grad).all() for m in maps.values())
    assert region_affinity_loss(maps["layer3"], _maps(2)["layer3"], left, right, grid=6).item() == 0.0


# --- PPDA ----------------------------------------------------------------------------------------------------


def test_ppda_matches_a_hand_computed_two_prototype_kl():
    """Prototypes e1, e2 at T = 0.1: a patch along e1 is assigned (s, 1 - s), s = 1 / (1 + e^-10); view A has 49
    such patches, view B 21 along e1 and 28 along e2."""
    protos = torch.eye(2)
    a = torch.zeros(1, 2, 7, 7)
    a[:, 0] = 1
    b = torch.zeros(1, 2, 7, 7)
    b.view(1, 2, 49)[:, 0, :21] = 1
    b.view(1, 2, 49)[:, 1, 21:] = 1
    s = 1 / (1 + math.exp(-10))
    p = [s, 1 - s]
    q = [21 / 49 * s + 28 / 49 * (1 - s), 21 / 49 * (1 - s) + 28 / 49 * s]
    expected = sum(pk * math.log(pk / qk) + qk * math.log(qk / pk) for pk, qk in zip(p, q))
    log_p = prototype_log_distribution(a, protos, temperature=0.1, grid=7)
    log_q = prototype_log_distribution(b, protos, temperature=0.1, grid=7)
    torch.testing.assert_close(log_p.exp(), torch.tensor([p]))
    assert symmetric_kl(log_p, log_q).item() == pytest.approx(expected, rel=1e-5)


def test_ppda_is_zero_for_identical_maps_and_blind_to_where_patches_are():
    g = torch.Generator().manual_seed(0)
    fmap, protos = torch.randn(3, 16, 7, 7, generator=g), torch.randn(32, 16, generator=g)
    log_p = prototype_log_distribution(fmap, protos, temperature=0.1, grid=7)
    assert symmetric_kl(log_p, log_p).item() == 0.0
    perm = torch.randperm(49, generator=g)
    shuffled = fmap.flatten(2)[:, :, perm].view_as(fmap)
    log_s = prototype_log_distribution(shuffled, protos, temperature=0.1, grid=7)
    torch.testing.assert_close(log_s, log_p)
    assert symmetric_kl(log_p, log_s).item() == pytest.approx(0.0, abs=1e-6)
    other = prototype_log_distribution(torch.randn(3, 16, 7, 7, generator=g), protos, temperature=0.1, grid=7)
    assert symmetric_kl(log_p, other).item() > 1e-3


# --- RAM -----------------------------------------------------------------------------------------------------


def test_region_affinity_is_one_minus_cosine():
    r = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]]])
    torch.testing.assert_close(region_affinity(r), torch.tensor([[[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]]))


def test_ram_is_blind_to_a_rotation_of_channels_and_sees_shuffled_regions():
    g = torch.Generator().manual_seed(0)
    online, target = torch.randn(2, 12, 6, 6, generator=g), torch.randn(2, 12, 6, 6, generator=g)
    same = _params([[0.0, 0.0, 64.0, 64.0]] * 2, [False, False])
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g))  # an orthogonal matrix
    rotate = lambda f: torch.einsum("nchw,cd->ndhw", f, q)  # noqa: E731
    base = region_affinity_loss(online, target, same, same, grid=6)
    assert base.item() > 0
    torch.testing.assert_close(region_affinity_loss(rotate(online), rotate(target), same, same, grid=6), base)
    assert region_affinity_loss(online, rotate(online), same, same, grid=6).item() == pytest.approx(0.0, abs=1e-10)
    perm = torch.randperm(36, generator=g)
    shuffled = online.flatten(2)[:, :, perm].view_as(online)
    assert region_affinity_loss(online, shuffled, same, same, grid=6).item() > 1e-3


# --- the model -----------------------------------------------------------------------------------------------


def test_sarl_reports_its_terms_and_weights_them():
    from training.objective import StepViews

    torch.manual_seed(0)
    model = SARL(BYOLConfig(arch="resnet18-cifar-quarter", dim=8, mlp_hidden=16, bn_splits=2),
                 SARLConfig(lambda_sal=2.0, lambda_ppda=3.0, lambda_ram=5.0))
    g = torch.Generator().manual_seed(1)
    p1 = CropParams(box=torch.tensor([[0.0, 0.0, 24.0, 24.0]] * 4), flip=torch.tensor([False, True] * 2), image_size=(32, 32))
    p2 = CropParams(box=torch.tensor([[8.0, 8.0, 24.0, 24.0]] * 4), flip=torch.tensor([True, False] * 2), image_size=(32, 32))
    views = StepViews(anchor=torch.randn(4, 3, 32, 32, generator=g), anchor_params=p1,
                      second=torch.randn(4, 3, 32, 32, generator=g), second_params=p2,
                      view=torch.arange(4), second_view=torch.arange(4))
    out = model.objective(views)
    t = out.terms
    assert set(t) == {"byol", "sal", "ppda", "ram"} and all(v.item() > 0 for v in t.values())
    torch.testing.assert_close(out.loss.detach(), t["byol"] + 2 * t["sal"] + 3 * t["ppda"] + 5 * t["ram"])
    out.loss.backward()
    assert model.prototypes.grad is not None and model.prototypes.grad.abs().sum() > 0
    assert out.anchor.maps["layer3"].shape == (4, 64, 8, 8) and model.prototypes.shape == (32, 64)


@pytest.mark.parametrize("field", ["lambda_sal", "lambda_ppda", "lambda_ram"])
def test_config_rejects_negative_weights(field):
    with pytest.raises(ValueError, match=field.replace("_", "-")):
        SARLConfig(**{field: -1.0})
    assert "ours" in SARLConfig().lambda_source
