"""Tests for pairing.pretext: hand-computed cases, round trips, and sampled labels re-checked independently."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from envsim.camera import pose_matrix, quat_from_yaw_pitch_roll, quat_multiply
from pairing.pretext import (
    PERMUTATIONS_3,
    CropConfig,
    DepthOrderConfig,
    FlipAxis,
    apply_flipped_patch,
    apply_jigsaw,
    crop_relation,
    depth_order_label,
    invert_permutation,
    jigsaw_permutations,
    normalise_depth,
    qualified_regions,
    relative_pose,
    relative_pose_matrix,
    sample_crop_boxes,
    sample_crop_pair,
    sample_depth_order,
    sample_flipped_patch,
    sample_jigsaw,
)

C45 = math.cos(math.pi / 4)
IDENTITY_Q = np.array([1.0, 0.0, 0.0, 0.0])


def pose(position, yaw_deg=0.0, pitch_deg=0.0, roll_deg=0.0) -> np.ndarray:
    q = quat_from_yaw_pitch_roll(math.radians(yaw_deg), math.radians(pitch_deg), math.radians(roll_deg))
    return pose_matrix(np.asarray(position, float), q)


def random_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return pose_matrix(rng.uniform(-5, 5, size=(n, 3)), q)


# --- relative pose ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pose_a", "pose_b", "translation", "rotation"),
    [
        # B one metre to A's right / ahead / above, no rotation.
        (pose([0, 0, 0]), pose([1, 0, 0]), [1, 0, 0], IDENTITY_Q),
        (pose([0, 0, 0]), pose([0, 0, -1]), [0, 0, -1], IDENTITY_Q),
        (pose([2, 1.5, 3]), pose([2, 2.5, 3]), [0, 1, 0], IDENTITY_Q),
        # B turned 90 degrees left at the same place.
        (pose([0, 0, 0]), pose([0, 0, 0], yaw_deg=90), [0, 0, 0], [C45, 0, C45, 0]),
        # A looks down world -X (yaw +90): its right is world -Z, its forward world -X.
        (pose([0, 0, 0], yaw_deg=90), pose([0, 0, -1], yaw_deg=90), [1, 0, 0], IDENTITY_Q),
        (pose([0, 0, 0], yaw_deg=90), pose([0, 0, 1]), [-1, 0, 0], [C45, 0, -C45, 0]),
        (pose([2, 1.5, 3], yaw_deg=90), pose([1, 1.5, 3], yaw_deg=180), [0, 0, -1], [C45, 0, C45, 0]),
        # B pitched 90 degrees up, one metre above A.
        (pose([0, 0, 0]), pose([0, 1, 0], pitch_deg=90), [0, 1, 0], [C45, C45, 0, 0]),
        # A turned around (yaw 180): world +Z is A's forward, world +X A's left.
        (pose([0, 0, 0], yaw_deg=180), pose([1, 0, 2], yaw_deg=180), [-1, 0, -2], IDENTITY_Q),
    ],
)
def test_relative_pose_hand_cases(pose_a, pose_b, translation, rotation):
    t, q = relative_pose(pose_a, pose_b)
    np.testing.assert_allclose(t, translation, atol=1e-12)
    np.testing.assert_allclose(q, rotation, atol=1e-12)


def test_relative_pose_matrix_maps_b_points_into_a_frame():
    rng = np.random.default_rng(0)
    pa, pb = random_poses(rng, 2)
    point_b = np.array([0.3, -0.2, -1.7, 1.0])  # a point in B's camera frame
    world = pb @ point_b
    expected_in_a = np.linalg.solve(pa, world)
    np.testing.assert_allclose(relative_pose_matrix(pa, pb) @ point_b, expected_in_a, atol=1e-12)


def test_relative_pose_inverse_consistency():
    rng = np.random.default_rng(1)
    pa, pb = random_poses(rng, 20), random_poses(rng, 20)
    ab, ba = relative_pose_matrix(pa, pb), relative_pose_matrix(pb, pa)
    np.testing.assert_allclose(ab @ ba, np.broadcast_to(np.eye(4), ab.shape), atol=1e-12)
    _, q_ab = relative_pose(pa, pb)
    _, q_ba = relative_pose(pb, pa)
    composed = quat_multiply(q_ab, q_ba)
    np.testing.assert_allclose(np.abs(composed[:, 0]), 1.0, atol=1e-12)  # identity up to sign


def test_relative_pose_batched_matches_single_and_is_world_invariant():
    rng = np.random.default_rng(2)
    pa, pb = random_poses(rng, 7), random_poses(rng, 7)
    t, q = relative_pose(pa, pb)
    assert t.shape == (7, 3) and q.shape == (7, 4)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
    for i in range(7):
        ti, qi = relative_pose(pa[i], pb[i])
        assert ti.shape == (3,) and qi.shape == (4,)
        np.testing.assert_allclose(ti, t[i], atol=1e-12)
        np.testing.assert_allclose(qi, q[i], atol=1e-12)
    # Broadcasting one A against many B.
    t1, _ = relative_pose(pa[0], pb)
    np.testing.assert_allclose(t1[3], relative_pose(pa[0], pb[3])[0], atol=1e-12)
    # Moving the whole world rigidly does not change relative poses.
    g = random_poses(rng, 1)[0]
    t2, q2 = relative_pose(g @ pa, g @ pb)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    np.testing.assert_allclose(q2, q, atol=1e-9)


def test_relative_pose_rejects_bad_poses():
    with pytest.raises(ValueError, match="shape"):
        relative_pose(np.eye(3), np.eye(4))
    transposed = pose([1, 2, 3]).T  # translation in the last row: a row-major/column-major mix-up
    with pytest.raises(ValueError, match="last row"):
        relative_pose(transposed, np.eye(4))
    bad = np.eye(4)
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        relative_pose(np.eye(4), bad)


# --- depth ordering -----------------------------------------------------------------------------------------


def stepped_depth() -> np.ndarray:
    """A 96 x 128 view: three flat vertical bands at 1, 2.5 and 4 m, a hole, and a floor-like ramp."""
    d = np.full((96, 128), 4.0)
    d[:, :40] = 1.0
    d[:, 40:80] = 2.5
    d[10:40, 90:120] = 0.0  # no surface (a window)
    rows = np.arange(70, 96, dtype=float)[:, None]
    d[70:, :] = 1.0 + 0.02 * (rows - 70)  # ramp
    return d


def recheck(depth: np.ndarray, sample, config: DepthOrderConfig) -> None:
    """Check every constraint of a depth-order sample from scratch, with loops."""
    valid = depth > 0
    lo, hi = depth[valid].min(), depth[valid].max()
    s = config.region_size
    boxes = sample.boxes
    assert boxes.shape == (3, 4)
    medians = []
    for r0, c0, r1, c1 in boxes:
        assert r1 - r0 == s and c1 - c0 == s
        assert 0 <= r0 and r1 <= depth.shape[0] and 0 <= c0 and c1 <= depth.shape[1]
        region = depth[r0:r1, c0:c1]
        assert np.all(region > 0), "region contains pixels with no surface"
        dn = (region - lo) / (hi - lo)
        assert dn.max() - dn.min() < config.max_internal_range
        medians.append(float(np.median(dn)))
    for i, j in itertools.combinations(range(3), 2):
        assert abs(medians[i] - medians[j]) >= config.min_separation - 1e-12
        bi, bj = boxes[i], boxes[j]
        overlap = bi[0] < bj[2] and bj[0] < bi[2] and bi[1] < bj[3] and bj[1] < bi[3]
        assert not overlap
    np.testing.assert_allclose(sample.median_depth, medians, atol=1e-12)
    # order runs from near (small metres) to far, and the label indexes it in PERMUTATIONS_3.
    metres = [np.median(depth[r0:r1, c0:c1]) for r0, c0, r1, c1 in boxes]
    assert metres[sample.order[0]] < metres[sample.order[1]] < metres[sample.order[2]]
    assert sorted(sample.order.tolist()) == [0, 1, 2]
    assert 0 <= sample.label < 6
    np.testing.assert_array_equal(PERMUTATIONS_3[sample.label], sample.order)


def test_permutations_3_is_fixed_and_lexicographic():
    assert PERMUTATIONS_3.tolist() == [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
    assert not PERMUTATIONS_3.flags.writeable
    for i, p in enumerate(PERMUTATIONS_3):
        assert depth_order_label(p) == i
    with pytest.raises(ValueError, match="permutation"):
        depth_order_label([0, 0, 1])


@pytest.mark.parametrize("seed", range(25))
def test_sampled_depth_order_satisfies_constraints(seed):
    depth = stepped_depth()
    config = DepthOrderConfig()
    sample = sample_depth_order(depth, rng=np.random.default_rng(seed), config=config)
    assert sample is not None
    recheck(depth, sample, config)


def test_depth_order_on_a_noisy_scene_with_other_thresholds():
    rng = np.random.default_rng(3)
    depth = stepped_depth() + rng.uniform(0, 0.01, size=(96, 128))
    depth[stepped_depth() == 0] = 0
    config = DepthOrderConfig(region_size=9, max_internal_range=0.05, min_separation=0.2, max_tries=500)
    found = 0
    for seed in range(10):
        sample = sample_depth_order(depth, rng=np.random.default_rng(seed), config=config)
        if sample is not None:
            recheck(depth, sample, config)
            found += 1
    assert found > 0


def test_depth_order_labels_vary_and_seed_reproduces():
    depth = stepped_depth()
    config = DepthOrderConfig()
    labels = {sample_depth_order(depth, rng=np.random.default_rng(s), config=config).label for s in range(60)}
    assert len(labels) == 6  # presentation order is shuffled, so every order occurs
    a = sample_depth_order(depth, rng=np.random.default_rng(7), config=config)
    b = sample_depth_order(depth, rng=np.random.default_rng(7), config=config)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert a.label == b.label


@pytest.mark.parametrize(
    "depth",
    [
        np.full((64, 64), 2.0),  # a flat wall facing the camera
        np.zeros((64, 64)),  # nothing in range
        np.where(np.arange(64)[None, :] < 32, 1.0, 3.0) * np.ones((64, 1)),  # only two depths
    ],
    ids=["flat-wall", "empty", "two-planes"],
)
def test_depth_order_returns_none_without_a_valid_triple(depth):
    assert sample_depth_order(depth, rng=np.random.default_rng(0), config=DepthOrderConfig()) is None


def test_depth_order_on_tilted_plane_follows_depth():
    depth = 1.0 + 0.02 * np.arange(80, dtype=float)[None, :] * np.ones((60, 1))  # farther to the right
    config = DepthOrderConfig(region_size=8)
    sample = sample_depth_order(depth, rng=np.random.default_rng(0), config=config)
    assert sample is not None
    recheck(depth, sample, config)
    cols = sample.boxes[sample.order, 1]
    assert cols[0] < cols[1] < cols[2]


@pytest.mark.parametrize("size", [1, 3, 4, 7])
def test_qualified_regions_match_brute_force(size):
    rng = np.random.default_rng(size)
    depth = np.repeat(np.repeat(rng.uniform(1, 3, size=(3, 4)), 8, axis=0), 8, axis=1)  # 24 x 32 plateaus
    depth += rng.uniform(0, 0.05, size=depth.shape)
    depth[rng.random(depth.shape) < 0.02] = 0.0
    config = DepthOrderConfig(region_size=size, max_internal_range=0.1)
    got = qualified_regions(depth, config=config)
    dn, valid = normalise_depth(depth)
    h, w = depth.shape
    expected = np.zeros((h - size + 1, w - size + 1), dtype=bool)
    for r in range(h - size + 1):
        for c in range(w - size + 1):
            win, ok = dn[r : r + size, c : c + size], valid[r : r + size, c : c + size]
            expected[r, c] = ok.all() and win.max() - win.min() < 0.1
    np.testing.assert_array_equal(got, expected)
    assert got.any() and not got.all()


def test_normalise_depth_ignores_invalid_pixels():
    depth = np.array([[0.0, 2.0], [4.0, 3.0]])
    dn, valid = normalise_depth(depth)
    np.testing.assert_array_equal(valid, [[False, True], [True, True]])
    np.testing.assert_allclose(dn, [[0.0, 0.0], [1.0, 0.5]])


def test_depth_order_config_validation_and_small_views():
    for kwargs in ({"region_size": 0}, {"max_internal_range": 0.0}, {"min_separation": 1.0}, {"max_tries": 0}):
        with pytest.raises(ValueError):
            DepthOrderConfig(**kwargs)
    with pytest.raises(ValueError, match="region_size"):
        sample_depth_order(np.ones((8, 8)), rng=np.random.default_rng(0), config=DepthOrderConfig())


# --- crop relation ------------------------------------------------------------------------------------------


def test_crop_relation_hand_cases():
    h, w = 50, 100
    offset, log_scale = crop_relation([0, 0, 50, 50], [0, 0, 50, 50], h, w)
    np.testing.assert_allclose(offset, [0.0, 0.0])
    assert log_scale == pytest.approx(0.0)
    # B is the right half, A the left half.
    offset, log_scale = crop_relation([0, 0, 50, 50], [0, 50, 50, 100], h, w)
    np.testing.assert_allclose(offset, [0.5, 0.0])
    assert log_scale == pytest.approx(0.0)
    # B below A: y grows downwards.
    offset, _ = crop_relation([0, 0, 25, 100], [25, 0, 50, 100], h, w)
    np.testing.assert_allclose(offset, [0.0, 0.5])
    # B has half A's side (same top-left corner): quarter the area.
    offset, log_scale = crop_relation([0, 0, 40, 40], [0, 0, 20, 20], h, w)
    np.testing.assert_allclose(offset, [-10 / 100, -10 / 50])
    assert log_scale == pytest.approx(math.log(0.5))
    # Non-square: sqrt of the area ratio.
    _, log_scale = crop_relation([0, 0, 10, 10], [0, 0, 10, 40], h, w)
    assert log_scale == pytest.approx(math.log(2.0))


def test_crop_relation_vectorised_matches_single():
    rng = np.random.default_rng(4)
    r0 = rng.integers(0, 40, size=(9, 2))
    c0 = rng.integers(0, 80, size=(9, 2))
    sizes = rng.integers(1, 20, size=(9, 2, 2))
    boxes = np.stack([r0, c0, r0 + sizes[..., 0], c0 + sizes[..., 1]], axis=-1)  # (9, 2, 4)
    offset, log_scale = crop_relation(boxes[:, 0], boxes[:, 1], 60, 100)
    assert offset.shape == (9, 2) and log_scale.shape == (9,)
    for i in range(9):
        o, s = crop_relation(boxes[i, 0], boxes[i, 1], 60, 100)
        np.testing.assert_allclose(o, offset[i])
        assert s == pytest.approx(log_scale[i])
    # Swapping A and B negates both.
    offset_ba, log_scale_ba = crop_relation(boxes[:, 1], boxes[:, 0], 60, 100)
    np.testing.assert_allclose(offset_ba, -offset)
    np.testing.assert_allclose(log_scale_ba, -log_scale)


def test_crop_relation_rejects_empty_boxes():
    with pytest.raises(ValueError, match="empty"):
        crop_relation([0, 0, 0, 10], [0, 0, 10, 10], 20, 20)
    with pytest.raises(ValueError, match="shape"):
        crop_relation([0, 0, 10], [0, 0, 10, 10], 20, 20)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (48, 120), (1, 1)])
def test_sampled_crops_stay_inside_and_respect_config(height, width):
    config = CropConfig(min_scale=0.25, max_scale=0.5, max_aspect=1.5)
    m = min(height, width)
    for seed in range(50):
        pair = sample_crop_pair(height, width, rng=np.random.default_rng(seed), config=config)
        for box in (pair.box_a, pair.box_b):
            r0, c0, r1, c1 = box
            assert 0 <= r0 < r1 <= height and 0 <= c0 < c1 <= width
            if m >= 32:  # rounding aside, the side and aspect follow the config
                side = math.sqrt((r1 - r0) * (c1 - c0))
                assert 0.25 * m - 1 <= side <= 0.5 * m + 1
                assert 1 / 1.5 - 0.1 <= (c1 - c0) / (r1 - r0) <= 1.5 + 0.1
        offset, log_scale = crop_relation(pair.box_a, pair.box_b, height, width)
        np.testing.assert_allclose(pair.offset, offset)
        assert pair.log_scale == pytest.approx(log_scale)


def test_crop_pair_reproducible_and_square_without_jitter():
    config = CropConfig(max_aspect=1.0)
    a = sample_crop_pair(80, 100, rng=np.random.default_rng(5), config=config)
    b = sample_crop_pair(80, 100, rng=np.random.default_rng(5), config=config)
    np.testing.assert_array_equal(a.box_a, b.box_a)
    np.testing.assert_array_equal(a.box_b, b.box_b)
    for box in (a.box_a, a.box_b):
        assert box[2] - box[0] == box[3] - box[1]


def test_crop_boxes_are_the_crop_pairs_boxes_from_the_same_draws():
    """The pairs file labels crops with sample_crop_boxes: the same boxes as sample_crop_pair, the generator left
    in the same state (so every later draw of a view's labels is unchanged)."""
    config = CropConfig()
    for height, width in ((16, 16), (24, 40), (1, 7)):
        rng_boxes, rng_pairs = np.random.default_rng(11), np.random.default_rng(11)
        for _ in range(50):
            boxes = sample_crop_boxes(height, width, rng=rng_boxes, config=config)
            pair = sample_crop_pair(height, width, rng=rng_pairs, config=config)
            assert boxes.shape == (2, 4) and boxes.dtype == np.int64
            np.testing.assert_array_equal(boxes, np.stack([pair.box_a, pair.box_b]))
        assert rng_boxes.integers(0, 2**62) == rng_pairs.integers(0, 2**62)
    with pytest.raises(ValueError, match="whole pixels"):
        sample_crop_boxes(0, 5, rng=np.random.default_rng(0), config=config)


def test_crop_config_validation():
    for kwargs in ({"min_scale": 0.0}, {"min_scale": 0.5, "max_scale": 0.4}, {"max_scale": 1.5}, {"max_aspect": 0.5}):
        with pytest.raises(ValueError):
            CropConfig(**kwargs)


# --- jigsaw and flipped patches -----------------------------------------------------------------------------


def min_pairwise_hamming(perms: np.ndarray) -> int:
    d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    np.fill_diagonal(d, perms.shape[1] + 1)
    return int(d.min())


def test_default_jigsaw_set_is_fixed_and_far_apart():
    perms = jigsaw_permutations()
    assert perms.shape == (100, 9)
    np.testing.assert_array_equal(perms[0], np.arange(9))  # label 0 = tiles in place
    assert all(sorted(p) == list(range(9)) for p in perms.tolist())
    assert len({tuple(p) for p in perms.tolist()}) == 100
    np.testing.assert_array_equal(perms, jigsaw_permutations(100, 3, seed=0))
    # Greedy max-min selection beats random sets (whose minimum distance is 2 or 3) by far.
    assert min_pairwise_hamming(perms) >= 6
    other = jigsaw_permutations(100, 3, seed=1)
    assert not np.array_equal(other, perms) and min_pairwise_hamming(other) >= 6


def test_jigsaw_permutations_other_grids():
    all_2x2 = jigsaw_permutations(24, 2)
    assert {tuple(p) for p in all_2x2.tolist()} == set(itertools.permutations(range(4)))
    assert min_pairwise_hamming(jigsaw_permutations(4, 2)) == 4  # four mutually disjoint derangements exist
    big = jigsaw_permutations(10, 4)
    assert big.shape == (10, 16) and min_pairwise_hamming(big) >= 12
    with pytest.raises(ValueError, match="n must"):
        jigsaw_permutations(25, 2)
    with pytest.raises(ValueError, match="grid"):
        jigsaw_permutations(5, 1)


def test_apply_jigsaw_hand_case():
    tile_ids = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    out = apply_jigsaw(tile_ids, [1, 0, 3, 2], 2)
    np.testing.assert_array_equal(out, [[1, 1, 0, 0], [1, 1, 0, 0], [3, 3, 2, 2], [3, 3, 2, 2]])
    out = apply_jigsaw(tile_ids, [3, 2, 0, 1], 2)  # position k shows tile permutation[k]
    np.testing.assert_array_equal(out[::2, ::2], [[3, 2], [0, 1]])


@pytest.mark.parametrize("shape", [(12, 18, 3), (9, 9), (14, 20, 2), (10, 11)])
def test_apply_jigsaw_round_trip(shape):
    rng = np.random.default_rng(6)
    image = rng.integers(0, 255, size=shape, dtype=np.uint8)
    perms = jigsaw_permutations()
    label = sample_jigsaw(rng=rng, permutations=perms)
    assert 0 <= label < 100
    shuffled = apply_jigsaw(image, perms[label], 3)
    h, w = 3 * (shape[0] // 3), 3 * (shape[1] // 3)  # cropped to a multiple of the grid
    cropped = image[:h, :w]
    assert shuffled.shape == cropped.shape and shuffled.dtype == image.dtype
    np.testing.assert_array_equal(apply_jigsaw(shuffled, invert_permutation(perms[label]), 3), cropped)
    np.testing.assert_array_equal(apply_jigsaw(image, np.arange(9), 3), cropped)
    th, tw = h // 3, w // 3
    for k, src in enumerate(perms[label]):
        r, c = divmod(k, 3)
        sr, sc = divmod(int(src), 3)
        target = shuffled[r * th : (r + 1) * th, c * tw : (c + 1) * tw]
        np.testing.assert_array_equal(target, cropped[sr * th : (sr + 1) * th, sc * tw : (sc + 1) * tw])


def test_apply_jigsaw_rejects_bad_permutations():
    image = np.zeros((9, 9))
    with pytest.raises(ValueError, match="permutation"):
        apply_jigsaw(image, [0, 1, 2, 3, 4, 5, 6, 7, 7], 3)
    with pytest.raises(ValueError, match="permutation"):
        apply_jigsaw(image, np.arange(4), 3)
    with pytest.raises(ValueError, match="smaller"):
        apply_jigsaw(np.zeros((2, 9)), np.arange(9), 3)


@pytest.mark.parametrize("axis", [FlipAxis.LEFT_RIGHT, FlipAxis.UP_DOWN, 1, 0])
def test_flipped_patch_changes_one_tile_and_flips_back(axis):
    rng = np.random.default_rng(7)
    image = rng.integers(0, 255, size=(12, 15, 3), dtype=np.uint8)  # not symmetric
    index = sample_flipped_patch(rng=rng, grid=3)
    assert 0 <= index < 9
    out = apply_flipped_patch(image, index, 3, axis=axis)
    th, tw = 4, 5
    r, c = divmod(index, 3)
    tile = (slice(r * th, (r + 1) * th), slice(c * tw, (c + 1) * tw))
    assert not np.array_equal(out[tile], image[tile])
    np.testing.assert_array_equal(out[tile], np.flip(image[tile], axis=int(axis)))
    changed = np.ones(image.shape[:2], dtype=bool)
    changed[tile] = False
    np.testing.assert_array_equal(out[changed], image[changed])  # every other tile untouched
    np.testing.assert_array_equal(apply_flipped_patch(out, index, 3, axis=axis), image)
    assert image is not out


def test_flipped_patch_validation_and_reproducibility():
    draws = [sample_flipped_patch(rng=np.random.default_rng(8), grid=4) for _ in range(2)]
    assert draws[0] == draws[1] and 0 <= draws[0] < 16
    with pytest.raises(ValueError, match="index"):
        apply_flipped_patch(np.zeros((9, 9)), 9, 3)
    with pytest.raises(ValueError, match="axis"):
        apply_flipped_patch(np.zeros((9, 9)), 0, 3, axis=2)
