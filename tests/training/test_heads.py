"""Auxiliary heads: their targets against hand computations and independent geometry, the heads' losses and
the BatchNorm statistics their extra passes leave alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from envsim.camera import quat_from_yaw_pitch_roll, quat_to_matrix
from pairing.pretext import relative_pose
from training.augment import CropParams
from training.heads import AuxConfig, AuxHead, AuxHeads, AuxInputs, frozen_running_stats
from training.objective import AnchorFeatures
from training.resnet import SplitBatchNorm, build_resnet
from training.targets import (
    boxes_to_tlhw,
    partner_pose,
    pose_targets,
    region_features,
    sample_sp_boxes,
    sp_targets,
)


def _pose(position, yaw_deg=0.0) -> np.ndarray:
    """Camera-to-world 4x4 at ``position`` turned ``yaw_deg`` to the left (about +Y)."""
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(quat_from_yaw_pitch_roll(np.radians(yaw_deg), 0.0, 0.0))
    m[:3, 3] = position
    return m


# --- Spatial Prediction --------------------------------------------------------------------------------------


def test_sp_targets_of_two_boxes():
    """Boxes are (row0, col0, row1, col1), half-open: centres (16, 16) and (72, 72) on 128 px, sides 32 and 16."""
    boxes = np.array([[[0, 0, 32, 32], [64, 64, 80, 80]]])
    np.testing.assert_allclose(sp_targets(boxes, 128, 128), [[0.4375, 0.4375, math.log(0.5)]], rtol=1e-6)
    assert math.log(0.5) == pytest.approx(-0.693, abs=5e-4)
    np.testing.assert_allclose(sp_targets(boxes[:, ::-1], 128, 128), [[-0.4375, -0.4375, math.log(2)]], rtol=1e-6)
    np.testing.assert_array_equal(boxes_to_tlhw(boxes)[0], [[0, 0, 32, 32], [64, 64, 16, 16]])


def test_sp_crops_are_seeded_by_seed_step_and_view_and_lie_inside_the_image():
    a = sample_sp_boxes(np.array([3, 9, 4]), 40, 56, seed=0, step=5)
    assert a.shape == (3, 2, 4)
    np.testing.assert_array_equal(sample_sp_boxes(np.array([4, 3]), 40, 56, seed=0, step=5), a[[2, 0]])  # order-free
    assert not np.array_equal(sample_sp_boxes(np.array([3]), 40, 56, seed=0, step=6), a[:1])
    assert (a[..., 0] >= 0).all() and (a[..., 2] <= 40).all() and (a[..., 1] >= 0).all() and (a[..., 3] <= 56).all()
    assert ((a[..., 2] > a[..., 0]) & (a[..., 3] > a[..., 1])).all()


# --- relative pose -------------------------------------------------------------------------------------------


def test_a_partner_one_metre_to_the_right_gives_1_0_0_and_mirrored_minus_1_0_0():
    anchor, partner = _pose([0, 0, 0]), _pose([1, 0, 0])
    t_ab, q_ab = relative_pose(anchor, partner)  # the pairs file's row for the pair (anchor, partner)
    t, r = partner_pose(t_ab, q_ab, anchor_is_a=True)
    target = pose_targets(torch.from_numpy(t[None]), torch.from_numpy(r[None]), torch.tensor([False]))
    torch.testing.assert_close(target[0, :3], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(target[0, 3:], torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))  # R = I
    flipped = pose_targets(torch.from_numpy(t[None]), torch.from_numpy(r[None]), torch.tensor([True]))
    torch.testing.assert_close(flipped[0, :3], torch.tensor([-1.0, 0.0, 0.0]))
    # the same pair stored the other way round (the partner is a, the anchor b)
    t_ba, q_ba = relative_pose(partner, anchor)
    t2, r2 = partner_pose(t_ba, q_ba, anchor_is_a=False)
    np.testing.assert_allclose(t2, [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(r2, np.eye(3), atol=1e-6)


def test_partner_pose_inverts_the_pair_when_the_anchor_is_second():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = _pose(rng.normal(size=3), rng.uniform(-180, 180))
        b = _pose(rng.normal(size=3), rng.uniform(-180, 180))
        t_ab, q_ab = relative_pose(a, b)
        t_ba_ref, q_ba_ref = relative_pose(b, a)  # a's pose in b's frame, computed from the poses
        t, r = partner_pose(t_ab.astype(np.float32), q_ab.astype(np.float32), anchor_is_a=False)
        np.testing.assert_allclose(t, t_ba_ref, atol=1e-5)
        np.testing.assert_allclose(r, quat_to_matrix(q_ba_ref), atol=1e-5)


def test_a_flip_mirrors_the_partner_as_the_flipped_image_shows_it():
    """Points of the partner's frame (its centre and a point 1 m ahead of it, turned 30 degrees left) project
    into the anchor's image at column u; with both views flipped, the mirrored target puts them at 2 cx - u."""
    anchor, partner = _pose([0, 0, 0]), _pose([0.5, 0.2, -2.0], yaw_deg=30)
    t, r = partner_pose(*relative_pose(anchor, partner), anchor_is_a=True)
    plain, mirrored = (pose_targets(torch.from_numpy(t[None]), torch.from_numpy(r[None]), torch.tensor([f]))[0].numpy().astype(np.float64)
                       for f in (False, True))

    def columns(target):  # pinhole with fx = 100, cx = 50 in the anchor's frame (looking down -z)
        t, c0, c1 = target[:3], target[3:6], target[6:]
        rot = np.stack([c0, c1, np.cross(c0, c1)], axis=1)
        pts = [t, t + rot @ np.array([0.0, 0.0, -1.0])]
        return np.array([50 + 100 * p[0] / -p[2] for p in pts])

    np.testing.assert_allclose(columns(mirrored), 100 - columns(plain), atol=1e-4)
    np.testing.assert_allclose(mirrored[:3], plain[:3] * [-1, 1, 1], atol=1e-6)  # x mirrored
    assert plain[5] == pytest.approx(-0.5) and mirrored[5] == pytest.approx(0.5)  # R e_x = (cos, 0, -sin yaw): yaw negated
    assert mirrored[3] == pytest.approx(plain[3])


# --- depth order ---------------------------------------------------------------------------------------------


def test_region_features_pool_the_mapped_boxes():
    """On a map whose cell holds its own (row, column), a region covering cells is pooled to their mean; a flip
    mirrors the columns; a region outside the view is not shown."""
    h = w = 4
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    fmap = torch.stack([rows, cols]).expand(3, 2, h, w)
    params = CropParams(box=torch.tensor([[0.0, 0.0, 32.0, 32.0], [0.0, 0.0, 32.0, 32.0], [0.0, 0.0, 16.0, 16.0]]),
                        flip=torch.tensor([False, True, False]), image_size=(32, 32))
    boxes = torch.tensor([[[0, 0, 8, 16], [16, 16, 32, 32], [8, 0, 16, 8]]] * 3)  # cells (0, 0-1), (2-3, 2-3), (1, 0)
    feats, shown = region_features(fmap, boxes, params)
    torch.testing.assert_close(feats[0], torch.tensor([[0.0, 0.5], [2.5, 2.5], [1.0, 0.0]]))
    torch.testing.assert_close(feats[1], torch.tensor([[0.0, 2.5], [2.5, 0.5], [1.0, 3.0]]))  # columns mirrored
    assert shown.tolist() == [True, True, False]  # view 2 shows the top-left quarter only


# --- the heads -----------------------------------------------------------------------------------------------


def test_aux_config_expands_one_weight_and_validates():
    c = AuxConfig(heads=("sp", "depth-order"), weights=(0.5,))
    assert c.heads == (AuxHead.SP, AuxHead.DEPTH_ORDER) and c.weights == (0.5, 0.5)
    assert c.weight(AuxHead.POSE) == 0.0
    with pytest.raises(ValueError, match="one per --aux head"):
        AuxConfig(heads=("sp", "pose"), weights=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="different heads"):
        AuxConfig(heads=("sp", "sp"))
    with pytest.raises(ValueError, match="--aux takes"):
        AuxConfig(heads=("jigsaw",))
    with pytest.raises(ValueError, match=">= 0"):
        AuxConfig(heads=("sp",), weights=(-1.0,))


def test_extra_passes_leave_batchnorm_statistics_alone():
    net = build_resnet("resnet18-cifar-quarter", norm_layer=lambda c: SplitBatchNorm(c, num_splits=2)).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(4, 3, 16, 16)
    with frozen_running_stats(net):
        y = net(x)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(m.track_running_stats for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    torch.testing.assert_close(y, net(x))  # the same batch statistics normalise either way
    assert not torch.equal(before["bn1.running_mean"], net.state_dict()["bn1.running_mean"])


def test_heads_losses_and_weights():
    torch.manual_seed(0)
    backbone = build_resnet("resnet18-cifar-quarter").train()
    n, g = 4, torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, 32, 32, generator=g)
    pooled, maps = backbone.forward_maps(x)
    params = CropParams(box=torch.tensor([[0.0, 0.0, 32.0, 32.0]] * n), flip=torch.zeros(n, dtype=torch.bool),
                        image_size=(32, 32))
    inputs = AuxInputs(anchor_params=params, sp_a=torch.randn(n, 3, 32, 32, generator=g),
                       sp_b=torch.randn(n, 3, 32, 32, generator=g), sp_target=torch.randn(n, 3, generator=g),
                       partner=torch.randn(n, 3, 32, 32, generator=g), pose_target=torch.randn(n, 9, generator=g),
                       depth_boxes=torch.tensor([[[0, 0, 8, 8], [8, 8, 16, 16], [16, 16, 32, 32]]] * n),
                       depth_label=torch.tensor([0, 5, -1, 2]))
    heads = AuxHeads(AuxConfig(heads=("sp", "pose", "depth-order"), weights=(1.0, 2.0, 3.0)),
                     features=backbone.out_dim, generator=torch.Generator().manual_seed(0))
    total, terms = heads(AnchorFeatures(pooled=pooled, maps=maps), inputs, backbone)
    assert set(terms) == {"sp", "pose", "depth-order"} and all(v.item() > 0 for v in terms.values())
    torch.testing.assert_close(total.detach(), terms["sp"] + 2 * terms["pose"] + 3 * terms["depth-order"])
    none = AuxInputs(**{**inputs.__dict__, "depth_label": torch.full((n,), -1)})
    _, terms = heads(AnchorFeatures(pooled=pooled, maps=maps), none, backbone)
    assert terms["depth-order"].item() == 0.0  # no labelled view: 0, not NaN


def test_the_pose_heads_partner_is_mirrored_with_the_anchor():
    from training.augment import AugmentConfig
    from training.inputs import aux_inputs

    g = torch.Generator().manual_seed(0)
    batch = {"partner": torch.randint(0, 256, (2, 3, 24, 24), dtype=torch.uint8, generator=g),
             "partner_translation": torch.tensor([[1.0, 0.0, 0.0]] * 2), "partner_rotation": torch.eye(3).expand(2, 3, 3),
             "anchor": torch.zeros(2, 3, 24, 24, dtype=torch.uint8), "view": torch.tensor([0, 1])}

    def inputs(flip):
        params = CropParams(box=torch.tensor([[0.0, 0.0, 24.0, 24.0]] * 2), flip=torch.tensor(flip), image_size=(24, 24))
        return aux_inputs(AuxConfig(heads=("pose",)), batch, params, augment=AugmentConfig(size=16), seed=0, step=3)

    plain, mirrored = inputs([False, False]), inputs([True, False])
    torch.testing.assert_close(mirrored.partner[0], plain.partner[0].flip(-1))
    torch.testing.assert_close(mirrored.partner[1], plain.partner[1])
    assert mirrored.pose_target[:, 0].tolist() == [-1.0, 1.0]
    assert not torch.equal(plain.partner, inputs([False, False]).partner.flip(-1))  # no flip drawn of its own
