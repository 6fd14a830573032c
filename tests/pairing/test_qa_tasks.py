"""Tests for pairing.qa.tasks and pairing.qa.images: answers checked by undoing the transformation, images
redrawn from ``meta`` (and through PNG), balance of flip directions and candidate positions by binomial tests,
depth-ordering thresholds, skips."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from pairing.pretext import FlipAxis, apply_flipped_patch, crop_to_grid
from pairing.qa.images import decode_png, encode_png, resize_bilinear, task_images
from pairing.qa.tasks import (
    ANSWER_FORMAT,
    DepthTaskConfig,
    QATask,
    Question,
    Skip,
    TileConfig,
    ViewData,
    build_depth,
    build_flip,
    build_inpaint,
    build_reorder,
    parse_grid,
)

H, W = 72, 96


def noise_view(seed: int = 0, depth: np.ndarray | None = None) -> ViewData:
    rgb = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    return ViewData(rgb=rgb, pose=np.eye(4), K=np.eye(3), depth=depth)


def tiles_of(image: np.ndarray, grid: tuple[int, int]) -> list[np.ndarray]:
    img, th, tw = crop_to_grid(image, grid)
    return [img[r * th:(r + 1) * th, c * tw:(c + 1) * tw] for r in range(grid[0]) for c in range(grid[1])]


def steps_depth() -> np.ndarray:
    """Three flat vertical bands at 1.0, 2.0 and 3.5 m (plus a ramp row that qualifies nowhere)."""
    d = np.empty((H, W), np.float32)
    d[:, :32], d[:, 32:64], d[:, 64:] = 1.0, 2.0, 3.5
    return d


@pytest.mark.parametrize("grid", [(3, 3), (2, 4)])
def test_reorder_answer_restores_the_image(grid):
    q = build_reorder(noise_view(1), np.random.default_rng(0), TileConfig(grid=grid))
    assert isinstance(q, Question) and q.prompt.endswith(ANSWER_FORMAT)
    shown, original = tiles_of(q.images[0], grid), tiles_of(noise_view(1).rgb, grid)
    k = grid[0] * grid[1]
    assert sorted(q.answer_struct) == list(range(1, k + 1)) and q.answer_struct != list(range(1, k + 1))
    blank = q.meta["blank"]
    assert np.all(shown[blank] == 255)
    for j, number in enumerate(q.answer_struct):
        if number - 1 != blank:
            np.testing.assert_array_equal(shown[number - 1], original[j])
    assert q.answer == ", ".join(map(str, q.answer_struct))


def test_flip_answer_undoes_the_flip():
    view = noise_view(2)
    for seed in range(10):
        q = build_flip(view, np.random.default_rng(seed), TileConfig())
        tile, direction = q.answer_struct
        axis = FlipAxis.LEFT_RIGHT if direction == "horizontal" else FlipAxis.UP_DOWN
        restored = apply_flipped_patch(q.images[0], tile - 1, 3, axis)
        np.testing.assert_array_equal(restored, crop_to_grid(view.rgb, 3)[0])
        assert q.answer == f"{tile}, {direction}"


def test_inpaint_answer_is_the_masked_tile():
    view = noise_view(3)
    q = build_inpaint(view, np.random.default_rng(0), TileConfig())
    masked, *candidates = q.images
    r0, c0, r1, c1 = q.meta["box"]
    assert np.all(masked[r0:r1, c0:c1] == 255)
    true = crop_to_grid(view.rgb, 3)[0][r0:r1, c0:c1]
    letter = "ABCD".index(q.answer_struct)
    np.testing.assert_array_equal(candidates[letter], true)
    assert all(c.shape == true.shape for c in candidates)
    assert sum(np.array_equal(c, true) for c in candidates) == 1
    assert sorted(q.meta["candidates"]) == ["inner", "outer", "rotated", "true"]


def test_depth_regions_meet_the_metric_thresholds():
    depth = steps_depth()
    q = build_depth(noise_view(4, depth), np.random.default_rng(0), DepthTaskConfig())
    assert isinstance(q, Question)
    boxes = np.array(q.meta["boxes"])
    medians = [np.median(depth[r0:r1, c0:c1]) for r0, c0, r1, c1 in boxes]
    for r0, c0, r1, c1 in boxes:
        region = depth[r0:r1, c0:c1]
        assert region.max() - region.min() < 0.15
    assert min(abs(a - b) for i, a in enumerate(medians) for b in medians[i + 1:]) > 0.05
    assert [medians[n - 1] for n in q.answer_struct] == sorted(medians)


@pytest.mark.parametrize(
    ("depth", "reason"),
    [
        (np.full((H, W), 2.0, np.float32), "depth range too small"),
        (np.tile(np.linspace(1, 8, W, dtype=np.float32), (H, 1)), "no three flat, separated regions"),  # a steep ramp
        (np.zeros((H, W), np.float32), "depth range too small"),  # no surface at all
    ],
)
def test_depth_skips_views_without_regions(depth, reason):
    assert build_depth(noise_view(0, depth), np.random.default_rng(0), DepthTaskConfig()) == Skip(reason)


def test_flat_grey_views_are_skipped_by_the_tile_tasks():
    view = ViewData(rgb=np.full((H, W, 3), 128, np.uint8), pose=np.eye(4), K=np.eye(3))
    rng = np.random.default_rng(0)
    assert isinstance(build_reorder(view, rng, TileConfig()), Skip)
    assert isinstance(build_flip(view, rng, TileConfig()), Skip)
    assert isinstance(build_inpaint(view, rng, TileConfig()), Skip)


def test_flip_directions_and_candidate_positions_are_balanced():
    n = 400
    directions, letters, tiles = [], [], []
    for seed in range(n):
        view = noise_view(seed % 7)
        rng = np.random.default_rng(seed)
        flip = build_flip(view, rng, TileConfig())
        directions.append(flip.answer_struct[1])
        tiles.append(flip.answer_struct[0])
        letters.append(build_inpaint(view, np.random.default_rng(10_000 + seed), TileConfig()).answer_struct)
    assert binomtest(directions.count("horizontal"), n, 0.5).pvalue > 1e-3
    for letter in "ABCD":  # each position of the true candidate: Bonferroni over the four
        assert binomtest(letters.count(letter), n, 0.25).pvalue > 1e-3 / 4
    for tile in range(1, 10):
        assert binomtest(tiles.count(tile), n, 1 / 9).pvalue > 1e-3 / 9


@pytest.mark.parametrize("build", [build_reorder, build_flip, build_inpaint, build_depth])
def test_images_are_redrawn_from_meta_through_png(build):
    view = noise_view(5, steps_depth())
    config = DepthTaskConfig() if build is build_depth else TileConfig()
    q = build(view, np.random.default_rng(3), config)
    again = task_images(q.task.value, view.rgb, q.meta)
    assert len(again) == len(q.images) == (5 if q.task is QATask.INPAINT else 1)
    for a, b in zip(again, q.images):
        np.testing.assert_array_equal(decode_png(encode_png(b)), a)
    assert encode_png(q.images[0]) == encode_png(again[0])


def test_same_generator_state_same_question():
    view = noise_view(6)
    a = build_inpaint(view, np.random.default_rng(9), TileConfig())
    b = build_inpaint(view, np.random.default_rng(9), TileConfig())
    assert a.meta == b.meta and a.answer == b.answer


def test_resize_bilinear():
    img = np.random.default_rng(0).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    assert resize_bilinear(img, 10, 14) is img
    flat = np.full((7, 9, 3), 77, np.uint8)
    assert np.all(resize_bilinear(flat, 20, 3) == 77)
    up = resize_bilinear(img, 20, 28)
    assert up.shape == (20, 28, 3) and up.dtype == np.uint8
    assert img.min() <= up.min() and up.max() <= img.max()  # interpolation never leaves the input's range
    np.testing.assert_array_equal(up[0, 0], img[0, 0])  # corners sample the corner pixels
    np.testing.assert_array_equal(up[-1, -1], img[-1, -1])


def test_grid_and_configs_validate():
    assert parse_grid("3x3") == (3, 3) and parse_grid("2X4") == (2, 4)
    for bad in ("3", "3x", "0x3", "1x1", "axb", "3x3x3"):
        with pytest.raises(ValueError, match="grid"):
            parse_grid(bad)
    with pytest.raises(ValueError, match="inner_scale"):
        TileConfig(inner_scale=1.2)
    with pytest.raises(ValueError, match="outer_scale"):
        TileConfig(outer_scale=1.0)
    with pytest.raises(ValueError, match="max_internal_range"):
        DepthTaskConfig(max_internal_range=0.0)
