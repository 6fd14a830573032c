"""Pretext probes against independent references: labels fed as features, shuffled labels, tiles reassembled
by hand, relative poses recomputed from camera poses."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.evaluation.metrics import rotation_error_deg
from benchmarks.evaluation.pretext import (
    PRETEXT_KEYS,
    PretextLabels,
    PretextLabelsError,
    crop_images,
    jigsaw_probe,
    jigsaw_tiles,
    load_pretext_labels,
    partner_pairs,
    plan_pretext,
    pose_probe,
    pretext_images,
    pretext_metrics,
    sp_probe,
)
from envsim.camera import pose_matrix, quat_from_yaw_pitch_roll
from pairing.pretext import (
    CropConfig,
    apply_jigsaw,
    invert_permutation,
    jigsaw_permutations,
    relative_pose,
    sample_crop_pair,
)
from pairing.store import PAIRS_NAME, write_pairs


def _crop_targets(rng, n, size=64):
    """(dx, dy, log scale) of n crop pairs drawn as ``ess pair`` draws them."""
    pairs = [sample_crop_pair(size, size, rng=rng, config=CropConfig()) for _ in range(n)]
    return np.array([[*p.offset, p.log_scale] for p in pairs])


def _split(x, y, n_train=600):
    return x[:n_train], y[:n_train], {"familiar": (x[n_train:900], y[n_train:900]), "unfamiliar": (x[900:], y[900:])}


def test_sp_probe_reads_labels_fed_as_features_exactly():
    rng = np.random.default_rng(0)
    y = _crop_targets(rng, 1200)
    noise = rng.normal(size=(1200, 5))  # channels with nothing to read
    train_x, train_y, tests = _split(np.column_stack([y, noise]), y)
    out = sp_probe(train_x, train_y, tests)
    for setting in ("familiar", "unfamiliar"):
        m = out[setting]
        assert m["sp_test_views"] == len(tests[setting][1])
        for target in ("dx", "dy", "log_scale"):
            assert m[f"sp_mae_{target}"] < 1e-4, (setting, target, m)
        assert m["sp_r2"] == pytest.approx(1.0, abs=1e-6)


def test_sp_probe_with_shuffled_labels_explains_nothing():
    rng = np.random.default_rng(1)
    y = _crop_targets(rng, 3000)
    x = np.column_stack([y, rng.normal(size=(3000, 5))])
    shuffled = y[rng.permutation(3000)]  # the features no longer say anything about the targets
    train_x, train_y, _ = _split(x, shuffled, n_train=2000)
    tests = {"familiar": (x[2000:], shuffled[2000:])}
    m = sp_probe(train_x, train_y, tests)["familiar"]
    assert abs(m["sp_r2"]) < 0.02
    # the MAE of a readout that learnt nothing is that of the training mean
    mean_mae = np.mean(np.abs(shuffled[2000:] - train_y.mean(axis=0)), axis=0)
    np.testing.assert_allclose([m["sp_mae_dx"], m["sp_mae_dy"], m["sp_mae_log_scale"]], mean_mae, rtol=0.02)


def _random_poses(rng, n):
    position = rng.uniform(-3, 3, size=(n, 3))
    rotation = quat_from_yaw_pitch_roll(rng.uniform(-np.pi, np.pi, n), rng.uniform(-0.3, 0.3, n), 0.0)
    return pose_matrix(position, rotation)


def test_pose_probe_reads_labels_fed_as_features_exactly_and_shuffled_labels_not_at_all():
    rng = np.random.default_rng(2)
    poses = _random_poses(rng, 2400)
    t, q = relative_pose(poses[:1200], poses[1200:])  # (1200, 3), (1200, 4)
    x = np.column_stack([t, q])
    tests = {"familiar": (x[800:1000], t[800:1000], q[800:1000]), "unfamiliar": (x[1000:], t[1000:], q[1000:])}
    out = pose_probe(x[:800], t[:800], q[:800], tests)
    for setting in ("familiar", "unfamiliar"):
        assert out[setting]["pose_test_pairs"] == 200
        assert out[setting]["pose_median_m"] < 1e-4 and out[setting]["pose_median_deg"] < 1e-2
    order = rng.permutation(800)
    noise = pose_probe(x[:800], t[order], q[order], tests)["familiar"]  # shuffled labels
    mean_t = np.median(np.linalg.norm(t[800:1000] - t[:800].mean(axis=0), axis=1))
    assert noise["pose_median_m"] == pytest.approx(mean_t, rel=0.15)
    assert noise["pose_median_deg"] > 30


def test_jigsaw_tiles_reassemble_to_the_image_under_the_inverse_permutation():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(31, 35, 3), dtype=np.uint8)  # not a multiple of the grid: cropped as pairing does
    perms = jigsaw_permutations(100, 3)
    perm = perms[37]
    tiles = jigsaw_tiles(image[None], perm[None], (3, 3), None)[0]  # (9, th, tw, 3)
    th, tw = 31 // 3, 35 // 3
    assert tiles.shape == (9, th, tw, 3)
    # by hand: the original tile i sits at position inverse[i] of the shuffled grid
    inverse = invert_permutation(perm)
    canvas = np.zeros((3 * th, 3 * tw, 3))
    for i in range(9):
        r, c = divmod(i, 3)
        canvas[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = tiles[inverse[i]]
    np.testing.assert_array_equal(canvas, image[: 3 * th, : 3 * tw])
    # and position k of the tiles is position k of pairing's shuffled image
    shuffled = apply_jigsaw(image, perm, 3)
    for k in range(9):
        r, c = divmod(k, 3)
        np.testing.assert_array_equal(tiles[k], shuffled[r * th : (r + 1) * th, c * tw : (c + 1) * tw])
    resized = jigsaw_tiles(image[None], perm[None], (3, 3), 16)
    assert resized.shape == (1, 9, 16, 16, 3) and resized.dtype == np.float32


def test_crops_are_the_stored_boxes_resized():
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, size=(2, 20, 24, 3), dtype=np.uint8)
    boxes = np.array([[[0, 0, 8, 8], [5, 10, 13, 18]], [[12, 16, 20, 24], [1, 2, 9, 10]]])
    crops = crop_images(rgb, boxes, None)  # equal-size boxes: kept as they are
    for i in range(2):
        for j, (r0, c0, r1, c1) in enumerate(boxes[i]):
            np.testing.assert_array_equal(crops[i, j], rgb[i, r0:r1, c0:c1])
    flat = np.full((1, 20, 24, 3), 77, np.uint8)
    big = crop_images(flat, np.array([[[0, 0, 5, 7], [2, 3, 20, 24]]]), 32)
    assert big.shape == (1, 2, 32, 32, 3)
    np.testing.assert_allclose(big, 77.0, atol=1e-3)  # resizing keeps a flat colour


def test_jigsaw_probe_reads_tile_identities_and_scores_tiles():
    rng = np.random.default_rng(5)
    perms = jigsaw_permutations(20, 3)
    label = rng.integers(0, 20, 600)
    x = np.eye(9)[perms[label]].reshape(600, -1)  # tile k's "features": which source tile it is
    tests = {"familiar": (x[400:], label[400:])}
    m = jigsaw_probe(x[:400], label[:400], tests, permutations=perms, seed=0, epochs=100)["familiar"]
    assert m["jigsaw_perm_top1"] == 1.0 and m["jigsaw_tile_acc"] == 1.0 and m["jigsaw_test_views"] == 200
    blind = jigsaw_probe(rng.normal(size=(400, 81)), label[:400], {"familiar": (rng.normal(size=(200, 81)), label[400:])},
                         permutations=perms, seed=0, epochs=50)["familiar"]  # features that know nothing
    assert blind["jigsaw_perm_top1"] < 0.2 and blind["jigsaw_tile_acc"] < 0.4


def _labels(rng, n_views, poses, pair):
    t, q = relative_pose(poses[pair[:, 0]], poses[pair[:, 1]])
    perms = jigsaw_permutations(10, 3)
    boxes = np.stack([np.stack([p.box_a, p.box_b]) for p in
                      (sample_crop_pair(32, 32, rng=rng, config=CropConfig()) for _ in range(n_views))])
    target = rng.normal(size=(n_views, 3))
    return PretextLabels(crop_boxes=boxes, crop_target=target, jigsaw_label=rng.integers(0, 10, n_views),
                         permutations=perms, grid=(3, 3), pair=pair, rel_translation=t, rel_rotation=q, source={})


def test_partner_pairs_are_relative_poses_from_the_view():
    rng = np.random.default_rng(6)
    n = 40
    poses = _random_poses(rng, n)
    pair = np.array([(a, b) for a in range(n) for b in range(a + 1, n) if rng.random() < 0.15])
    labels = _labels(rng, n, poses, pair)
    mask = np.zeros(n, bool)
    mask[rng.choice(n, 25, replace=False)] = True
    p = partner_pairs(labels, mask, rng=np.random.default_rng(0))
    inside = {(a, b) for a, b in pair if mask[a] and mask[b]}
    with_partner = sorted({v for ab in inside for v in ab})
    np.testing.assert_array_equal(p.view, with_partner)  # each view of the split with a partner, once
    for v, u in zip(p.view, p.partner):
        assert (min(v, u), max(v, u)) in inside  # a stored pair inside the split
    t, q = relative_pose(poses[p.view], poses[p.partner])  # recomputed from the cameras, seen from the view
    np.testing.assert_allclose(p.translation, t, atol=1e-9)
    np.testing.assert_allclose(rotation_error_deg(p.rotation, q), 0.0, atol=1e-5)
    again = partner_pairs(labels, mask, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(again.partner, p.partner)
    empty = partner_pairs(labels, np.zeros(n, bool), rng=np.random.default_rng(0))
    assert empty.view.size == 0 and empty.translation.shape == (0, 3)


def test_plan_caps_each_split_with_the_bench_seed():
    rng = np.random.default_rng(7)
    n = 60
    poses = _random_poses(rng, n)
    labels = _labels(rng, n, poses, np.array([(i, i + 1) for i in range(n - 1)]))
    masks = {"train": np.arange(n) < 40, "familiar": (np.arange(n) >= 40) & (np.arange(n) < 50), "unfamiliar": np.arange(n) >= 50}
    plan = plan_pretext(labels, masks, max_views=8, seed=0)
    assert {s: v.size for s, v in plan.samples.items()} == {"train": 8, "familiar": 8, "unfamiliar": 8}
    for split, views in plan.samples.items():
        assert np.all(masks[split][views]) and np.all(np.diff(views) > 0)
    assert plan.pairs["train"].view.size == 40  # the pose probe keeps every view
    np.testing.assert_array_equal(plan_pretext(labels, masks, max_views=8, seed=0).samples["train"], plan.samples["train"])
    assert not np.array_equal(plan_pretext(labels, masks, max_views=8, seed=1).samples["train"], plan.samples["train"])
    assert plan_pretext(labels, masks, max_views=None, seed=0).samples["train"].size == 40
    summary = plan.summary()
    assert summary["views"]["familiar"] == 8 and summary["pose_pairs"]["train"] == 40 and summary["skipped"] is None

    # the probes of one representation on this plan: every key, in every setting
    images = rng.integers(0, 256, size=(plan.views.size, 32, 32, 3), dtype=np.uint8)
    parts = pretext_images(images, plan.views, labels=labels, size=16)
    assert parts.shape == (plan.views.size, 11, 16, 16, 3)
    part_x = rng.normal(size=(plan.views.size, 11, 4))
    out = pretext_metrics(rng.normal(size=(n, 4)), part_x, plan, seed=0, epochs=10)
    assert set(out) == {"familiar", "unfamiliar"}
    for m in out.values():
        assert set(m) == set(PRETEXT_KEYS)
        assert all(m[k] is not None for k in PRETEXT_KEYS)


def test_labels_are_refused_when_missing_or_from_other_data(tmp_path):
    with pytest.raises(PretextLabelsError, match="ess pair"):
        load_pretext_labels(tmp_path, manifest_sha256="a" * 64, n_views=2)
    arrays = {
        "pair": np.array([[0, 1]]), "rel_translation": np.zeros((1, 3), np.float32),
        "rel_rotation": np.array([[1, 0, 0, 0]], np.float32), "crop_boxes": np.zeros((2, 2, 4), np.int16),
        "crop_offset": np.zeros((2, 2), np.float32), "crop_log_scale": np.zeros(2, np.float32),
        "jigsaw_label": np.zeros(2, np.int16), "jigsaw_permutations": jigsaw_permutations(4, 3).astype(np.int8),
    }
    write_pairs(tmp_path / PAIRS_NAME, arrays, {"dataset_manifest_sha256": "a" * 64, "n_views": 2, "seed": 3})
    labels = load_pretext_labels(tmp_path, manifest_sha256="a" * 64, n_views=2)
    assert labels.grid == (3, 3) and labels.permutations.shape == (4, 9) and labels.source["seed"] == 3
    assert labels.crop_target.shape == (2, 3)
    with pytest.raises(PretextLabelsError, match="another rendering"):
        load_pretext_labels(tmp_path, manifest_sha256="b" * 64, n_views=2)
    (tmp_path / PAIRS_NAME).unlink()
    write_pairs(tmp_path / PAIRS_NAME, arrays, {"dataset_manifest_sha256": "a" * 64, "n_views": 2, "config": {"jigsaw_grid": 2}})
    with pytest.raises(PretextLabelsError, match="jigsaw_grid"):
        load_pretext_labels(tmp_path, manifest_sha256="a" * 64, n_views=2)
    del arrays["jigsaw_label"]
    (tmp_path / PAIRS_NAME).unlink()
    write_pairs(tmp_path / PAIRS_NAME, arrays, {"dataset_manifest_sha256": "a" * 64, "n_views": 2})
    with pytest.raises(PretextLabelsError, match="jigsaw_label"):
        load_pretext_labels(tmp_path, manifest_sha256="a" * 64, n_views=2)
