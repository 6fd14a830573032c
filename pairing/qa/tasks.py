"""The Spatial-SSRL question tasks built from one RGB-D view: what is asked, the answer, and how it was made.

Five tasks (Liu et al., "Spatial-SSRL: Enhancing Spatial Understanding via Self-Supervised Reinforcement
Learning", arXiv:2510.27606, 2025), each a builder that takes one view and a generator and returns a
:class:`Question` or, when the view cannot carry the task, a :class:`Skip` with the reason:

1. ``reorder``: an R x C grid shuffled by a random permutation pi (never the identity), one shown tile painted
   white; the answer is the order that restores the image, ``pi^-1`` (1-based): for each original position in
   reading order, the shown tile that belongs there.
2. ``flip``: one tile mirrored horizontally or vertically (a fair coin); the answer is (tile, direction).
3. ``inpaint``: one tile painted white and four candidates (the tile, it turned 90 degrees, an inner
   sub-region and an expanded outer region, both resized to the tile) in random order; the answer is the
   letter of the true one.
4. ``depth``: three flat regions (internal depth range below 0.15 m) whose median depths differ pairwise by
   more than 0.05 m, numbered in random order; the answer is the numbers from nearest to farthest.
5. ``position`` (:mod:`pairing.qa.position`): where object B lies relative to object A.

Tasks 1-3 only use tiles that tell themselves apart (mean absolute difference of at least
``min_tile_change`` grey levels), so that every answer is unique. Images come from
:func:`pairing.qa.images.task_images` and ``meta`` holds everything needed to draw them again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from pairing.pretext import DepthOrderConfig, crop_to_grid, invert_permutation, sample_depth_order
from pairing.qa.images import CANDIDATE_KINDS, inpaint_candidates, task_images, tile_box
from pairing.qa.objects import SceneObjects


class QATask(str, Enum):
    """The five tasks, in the order the export writes them."""

    REORDER = "reorder"
    FLIP = "flip"
    INPAINT = "inpaint"
    DEPTH = "depth"
    POSITION = "position"


ANSWER_FORMAT = (
    "First think it through inside <think> </think>, then give only the final answer inside <answer> </answer>."
)
"""The closing line of every prompt: the format :func:`pairing.qa.reward.qa_reward` gives 0.1 for."""

LETTERS = "ABCD"
DIRECTIONS = ("horizontal", "vertical")


def parse_grid(text: str) -> tuple[int, int]:
    """A grid ``"RxC"`` (rows x columns, e.g. ``"3x3"``) as (rows, cols), at least 2 tiles in all.

    Raises:
        ValueError: not two whole numbers >= 1 joined by ``x``, or a single tile.
    """
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts) or min(int(p) for p in parts) < 1:
        raise ValueError(f"grid must look like 3x3 (ROWS x COLUMNS of tiles), got {text!r}")
    rows, cols = int(parts[0]), int(parts[1])
    if rows * cols < 2:
        raise ValueError(f"grid {text!r} has a single tile; use at least two, e.g. 3x3")
    return rows, cols


@dataclass(frozen=True)
class TileConfig:
    """The tile tasks (reorder, flip, inpaint).

    Attributes:
        grid: (rows, cols) of tiles, at least 2 tiles in all.
        min_tile_change: grey levels (0-255), >= 0: least mean absolute difference between two tiles (or a
            tile and its flips, or two inpainting candidates) for them to count as different.
        inner_scale: side of the inner candidate region as a fraction of the tile's, in (0, 1).
        outer_scale: side of the outer candidate region as a multiple of the tile's, > 1 (clipped to the
            image).
    """

    grid: tuple[int, int] = (3, 3)
    min_tile_change: float = 4.0
    inner_scale: float = 0.6
    outer_scale: float = 1.6

    def __post_init__(self) -> None:
        rows, cols = (int(g) for g in self.grid)
        if (rows, cols) != tuple(self.grid) or rows < 1 or cols < 1 or rows * cols < 2:
            raise ValueError(f"grid must be (rows, cols) of whole numbers with at least 2 tiles, got {self.grid}")
        object.__setattr__(self, "grid", (rows, cols))
        if not (math.isfinite(self.min_tile_change) and self.min_tile_change >= 0):
            raise ValueError(f"min_tile_change is a mean grey-level difference >= 0, got {self.min_tile_change}")
        if not 0.0 < self.inner_scale < 1.0:
            raise ValueError(f"inner_scale is a fraction of the tile side in (0, 1), got {self.inner_scale}")
        if not (math.isfinite(self.outer_scale) and self.outer_scale > 1.0):
            raise ValueError(f"outer_scale is a multiple of the tile side > 1, got {self.outer_scale}")


@dataclass(frozen=True)
class DepthTaskConfig:
    """The depth-ordering task.

    Attributes:
        region_size: side of the square regions in pixels, >= 1.
        max_internal_range: metres, > 0: a region's depth range (max - min) must be below this.
        min_separation: metres, >= 0: the regions' median depths must differ pairwise by more than this.
        max_tries: random triples of regions tried per question, >= 1.
    """

    region_size: int = 16
    max_internal_range: float = 0.15
    min_separation: float = 0.05
    max_tries: int = 200

    def __post_init__(self) -> None:
        DepthOrderConfig(region_size=self.region_size, max_tries=self.max_tries)  # validates those two
        if not (math.isfinite(self.max_internal_range) and self.max_internal_range > 0):
            raise ValueError(f"max_internal_range is a depth range in metres > 0, got {self.max_internal_range}")
        if not (math.isfinite(self.min_separation) and self.min_separation >= 0):
            raise ValueError(f"min_separation is a depth difference in metres >= 0, got {self.min_separation}")


@dataclass(frozen=True, eq=False)
class ViewData:
    """One view and what the tasks may need of it.

    Attributes:
        rgb: uint8 (H, W, 3).
        depth: float (H, W) z-depth in metres, 0 = no surface; None when no task needs it.
        semantic: (H, W) ``1 + object index`` (0 = no surface or no object); None without object ids.
        pose: float64 (4, 4) camera-to-world (OpenGL camera: x right, y up, looking down -Z).
        K: float64 (3, 3) pixel-centre intrinsics.
        objects: the scene's object table, None for anonymous ids (each its own object).
    """

    rgb: np.ndarray
    pose: np.ndarray
    K: np.ndarray
    depth: np.ndarray | None = None
    semantic: np.ndarray | None = None
    objects: SceneObjects | None = None


@dataclass(frozen=True, eq=False)
class Question:
    """A built question (the record, less its id, view, scene and image paths).

    Attributes:
        task: its task.
        prompt: the full question text, ending with :data:`ANSWER_FORMAT`.
        answer: the canonical answer string.
        answer_struct: the same as JSON: a list (permutation), a pair or a letter.
        meta: JSON values from which :func:`pairing.qa.images.task_images` draws ``images`` again.
        images: uint8 (h, w, 3) images, in the order the prompt names them.
    """

    task: QATask
    prompt: str
    answer: str
    answer_struct: Any
    meta: dict[str, Any]
    images: list[np.ndarray] = field(repr=False)


@dataclass(frozen=True)
class Skip:
    """Why a view carries no question of a task (counted per reason in the export's manifest)."""

    reason: str


def make_question(
    task: QATask, prompt: str, answer_struct: Any, answer: str, meta: dict[str, Any], rgb: np.ndarray
) -> Question:
    """A question whose prompt ends with :data:`ANSWER_FORMAT` and whose images are drawn from ``(rgb, meta)``."""
    return Question(task=task, prompt=f"{prompt} {ANSWER_FORMAT}", answer=answer, answer_struct=answer_struct,
                    meta=meta, images=task_images(task.value, rgb, meta))


def _tiles(rgb: np.ndarray, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The cropped image, its tiles as float64 (k, th, tw, 3) row-major, and the tile size."""
    img, th, tw = crop_to_grid(rgb, grid)
    rows, cols = grid
    tiles = img.reshape(rows, th, cols, tw, -1).swapaxes(1, 2).reshape(rows * cols, th, tw, -1)
    return img, tiles.astype(np.float64), th, tw


def _grid_words(grid: tuple[int, int]) -> str:
    k = grid[0] * grid[1]
    return (f"a {grid[0]}x{grid[1]} grid of tiles ({grid[0]} rows, {grid[1]} columns), numbered 1 to {k} in "
            "reading order (left to right, top to bottom)")


def build_reorder(view: ViewData, rng: np.random.Generator, config: TileConfig) -> Question | Skip:
    """Task 1, patch reordering (see the module docstring)."""
    grid = config.grid
    img, tiles, _, _ = _tiles(view.rgb, grid)
    k = len(tiles)
    flat = tiles.reshape(k, -1)
    diff = np.abs(flat[:, None, :] - flat[None, :, :]).mean(axis=-1)  # (k, k) mean |difference|
    if np.any(diff[np.triu_indices(k, 1)] < config.min_tile_change):
        return Skip("tiles too alike")
    perm = rng.permutation(k)
    while np.array_equal(perm, np.arange(k)):  # the identity asks nothing
        perm = rng.permutation(k)
    meta = {"grid": list(grid), "crop": list(img.shape[:2]), "permutation": perm.tolist(),
            "blank": int(rng.integers(k))}
    answer = (invert_permutation(perm) + 1).tolist()
    prompt = (f"This image was cut into {_grid_words(grid)}, and the tiles were shuffled; one tile was painted "
              "white. Restore the original image: for each position of the original image, in reading order, "
              f"give the number of the tile shown here that belongs there. Answer with {k} numbers separated "
              f"by commas, e.g. {', '.join(str(i + 1) for i in range(k))}.")
    return make_question(QATask.REORDER, prompt, answer, ", ".join(map(str, answer)), meta, view.rgb)


def build_flip(view: ViewData, rng: np.random.Generator, config: TileConfig) -> Question | Skip:
    """Task 2, flip identification: direction by a fair coin first, then a tile uniformly among those whose
    two flips differ from it and from each other (so the skip never depends on the direction)."""
    direction = DIRECTIONS[int(rng.integers(2))]
    grid = config.grid
    img, tiles, _, _ = _tiles(view.rgb, grid)
    lr, ud = tiles[:, :, ::-1], tiles[:, ::-1, :]
    change = np.minimum.reduce([np.abs(tiles - lr).mean(axis=(1, 2, 3)), np.abs(tiles - ud).mean(axis=(1, 2, 3)),
                                np.abs(lr - ud).mean(axis=(1, 2, 3))])  # (k,)
    eligible = np.flatnonzero(change >= config.min_tile_change)
    if eligible.size == 0:
        return Skip("no tile changes visibly when flipped")
    tile = int(eligible[rng.integers(eligible.size)])
    meta = {"grid": list(grid), "crop": list(img.shape[:2]), "tile": tile, "direction": direction}
    prompt = (f"This image is divided into {_grid_words(grid)}. Exactly one tile was flipped, either "
              "horizontally (mirrored left to right) or vertically (upside down). Which tile, and which way? "
              "Answer with the tile number and the direction separated by a comma, e.g. 4, horizontal.")
    return make_question(QATask.FLIP, prompt, [tile + 1, direction], f"{tile + 1}, {direction}", meta, view.rgb)


def _inpaint_meta(grid: tuple[int, int], shape: tuple[int, int], tile: int, rotation: int, config: TileConfig) -> dict:
    """Boxes of the tile and of its inner and outer candidate regions (outer shifted to stay in the image)."""
    th, tw = shape[0] // grid[0], shape[1] // grid[1]
    r0, c0, r1, c1 = tile_box(tile, grid, (th, tw))
    ih, iw = max(1, round(th * config.inner_scale)), max(1, round(tw * config.inner_scale))
    oh, ow = min(shape[0], round(th * config.outer_scale)), min(shape[1], round(tw * config.outer_scale))
    ir, ic = r0 + (th - ih) // 2, c0 + (tw - iw) // 2
    orow = min(max(r0 - (oh - th) // 2, 0), shape[0] - oh)
    ocol = min(max(c0 - (ow - tw) // 2, 0), shape[1] - ow)
    return {"grid": list(grid), "crop": list(shape), "tile": tile, "box": [r0, c0, r1, c1], "rotation": rotation,
            "inner_box": [ir, ic, ir + ih, ic + iw], "outer_box": [orow, ocol, orow + oh, ocol + ow]}


def build_inpaint(view: ViewData, rng: np.random.Generator, config: TileConfig) -> Question | Skip:
    """Task 3, crop inpainting: rotation sense drawn first, then a tile uniformly among those whose four
    candidates differ pairwise, then the candidates' order (a uniform permutation)."""
    rotation = 1 if rng.integers(2) == 0 else 3  # quarter turns counter-clockwise (np.rot90)
    grid = config.grid
    img, _, _, _ = _tiles(view.rgb, grid)
    eligible = []
    for tile in range(grid[0] * grid[1]):
        cand = inpaint_candidates(view.rgb, _inpaint_meta(grid, img.shape[:2], tile, rotation, config))
        arrays = [cand[kind].astype(np.float64) for kind in CANDIDATE_KINDS]
        gaps = [np.abs(a - b).mean() for i, a in enumerate(arrays) for b in arrays[i + 1 :]]
        if min(gaps) >= config.min_tile_change:
            eligible.append(tile)
    if not eligible:
        return Skip("no tile with four distinct candidates")
    tile = eligible[int(rng.integers(len(eligible)))]
    order = rng.permutation(len(CANDIDATE_KINDS))
    meta = _inpaint_meta(grid, img.shape[:2], tile, rotation, config)
    meta["candidates"] = [CANDIDATE_KINDS[i] for i in order]
    letter = LETTERS[meta["candidates"].index("true")]
    prompt = (f"Image 1 is a view divided into {_grid_words(grid)}; tile {tile + 1} was painted white. Images 2 "
              "to 5 are candidates A, B, C and D for the missing tile. Which candidate is exactly the missing "
              "tile? Answer with one letter, e.g. B.")
    return make_question(QATask.INPAINT, prompt, letter, letter, meta, view.rgb)


def _metric_regions(depth: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median depth and depth range (max - min) in metres of each box, float64 (n,) each."""
    regions = [np.asarray(depth[r0:r1, c0:c1], np.float64) for r0, c0, r1, c1 in boxes]
    return np.array([np.median(r) for r in regions]), np.array([r.max() - r.min() for r in regions])


def build_depth(view: ViewData, rng: np.random.Generator, config: DepthTaskConfig) -> Question | Skip:
    """Task 4, depth ordering: :func:`pairing.pretext.sample_depth_order` on the view's depth, its
    thresholds (fractions of the view's depth range) set from the metric ones, and the result re-checked in
    metres (range < ``max_internal_range``, pairwise median gaps > ``min_separation``)."""
    if view.depth is None:
        raise ValueError("the depth task needs the view's depth")
    depth = np.asarray(view.depth, np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    span = float(depth[valid].max() - depth[valid].min()) if valid.sum() > 1 else 0.0
    if span <= config.min_separation:
        return Skip("depth range too small")
    s = int(config.region_size)
    if min(depth.shape) < s:
        return Skip("view smaller than a region")
    sampler = DepthOrderConfig(region_size=s, max_internal_range=min(1.0, config.max_internal_range / span),
                               min_separation=min(config.min_separation / span * (1 + 1e-6), 0.999999),
                               max_tries=config.max_tries)
    sample = sample_depth_order(depth, rng=rng, config=sampler)
    if sample is None:
        return Skip("no three flat, separated regions")
    median, extent = _metric_regions(depth, sample.boxes)
    gaps = [abs(median[i] - median[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    if extent.max() >= config.max_internal_range or min(gaps) <= config.min_separation:
        return Skip("no three flat, separated regions")
    order = np.argsort(median, kind="stable")
    meta = {"boxes": sample.boxes.tolist(), "median_depth_m": [round(float(m), 4) for m in median],
            "depth_range_m": [round(float(e), 4) for e in extent], "order": order.tolist(),
            "max_internal_range_m": config.max_internal_range, "min_separation_m": config.min_separation}
    answer = (order + 1).tolist()
    prompt = ("Three regions of this image are outlined and numbered 1, 2 and 3. Order them by their distance "
              "from the camera, from the nearest to the farthest. Answer with the three numbers separated by "
              "commas, e.g. 1, 2, 3.")
    return make_question(QATask.DEPTH, prompt, answer, ", ".join(map(str, answer)), meta, view.rgb)
