"""The pictures of the QA tasks, drawn from a view's RGB image and a question's ``meta`` alone.

Every task image is a pure function of ``(rgb, meta)`` (:func:`task_images`), so a record can be checked
by drawing it again. Everything is numpy: tiles come from :mod:`pairing.pretext` (:func:`crop_to_grid`,
:func:`apply_jigsaw`, :func:`apply_flipped_patch`), resizing is bilinear at pixel centres
(:func:`resize_bilinear`), and labels use a built-in 3x5 pixel font, so the PNG bytes depend on neither a
font file nor an image library's resampling code.

Boxes are ``(row0, col0, row1, col1)`` half-open pixel boxes; tiles are numbered row-major from 0 in
``meta`` (and from 1 in prompts and answers).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pairing.pretext import FlipAxis, apply_flipped_patch, apply_jigsaw, crop_to_grid

WHITE = 255

_GLYPHS = {  # 3 columns x 5 rows, '#' = ink
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", "..#", "..#"),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    "A": (".#.", "#.#", "###", "#.#", "#.#"),
    "B": ("##.", "#.#", "##.", "#.#", "##."),
    "C": (".##", "#..", "#..", "#..", ".##"),
    "D": ("##.", "#.#", "#.#", "#.#", "##."),
}
COLOURS = ((230, 25, 25), (25, 90, 240), (20, 170, 40), (240, 200, 0))
"""Outline colours of marked regions and objects, in label order (red, blue, green, yellow)."""

CANDIDATE_KINDS = ("true", "rotated", "inner", "outer")
"""The four crop-inpainting candidates: the masked tile, it rotated by 90 degrees, an inner sub-region and an
expanded outer region (both resized to the tile)."""


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize sampling at pixel centres (no antialiasing), rounded back to uint8.

    Args:
        image: uint8 (H, W, 3).
        height: output rows, >= 1.
        width: output columns, >= 1.

    Returns:
        uint8 (height, width, 3); the input itself when the size is unchanged.
    """
    ih, iw = image.shape[:2]
    if (ih, iw) == (height, width):
        return image
    y = np.clip((np.arange(height) + 0.5) * ih / height - 0.5, 0, ih - 1)  # (height,) source rows
    x = np.clip((np.arange(width) + 0.5) * iw / width - 0.5, 0, iw - 1)  # (width,) source columns
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, ih - 1), np.minimum(x0 + 1, iw - 1)
    wy, wx = (y - y0)[:, None, None], (x - x0)[None, :, None]
    img = image.astype(np.float64)
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx  # (height, width, 3)
    bottom = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return np.clip(np.rint(top * (1 - wy) + bottom * wy), 0, 255).astype(np.uint8)


def label_scale(height: int, width: int) -> int:
    """Pixels per font pixel for an image of ``height x width``: 1 below 128 pixels, then 1 more per 64."""
    return max(1, min(height, width) // 64)


def draw_text(image: np.ndarray, text: str, top: int, left: int, *, scale: int, colour: Sequence[int]) -> None:
    """Draw ``text`` (digits and A-D) in place, in ``colour`` on a black plate with a 1 font-pixel margin.

    The plate is ``7 * scale`` rows by ``(4 * len(text) + 1) * scale`` columns from ``(top, left)``, clipped
    to the image.
    """
    plate_h, plate_w = 7 * scale, (4 * len(text) + 1) * scale
    canvas = np.zeros((plate_h, plate_w, 3), np.uint8)
    for k, ch in enumerate(text):
        glyph = np.array([[c == "#" for c in row] for row in _GLYPHS[ch]])  # (5, 3)
        ink = np.kron(glyph, np.ones((scale, scale), bool))  # (5s, 3s)
        r, c = scale, (1 + 4 * k) * scale
        canvas[r : r + 5 * scale, c : c + 3 * scale][ink] = colour
    h, w = image.shape[:2]
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + plate_h, h), min(left + plate_w, w)
    if r1 > r0 and c1 > c0:
        image[r0:r1, c0:c1] = canvas[r0 - top : r1 - top, c0 - left : c1 - left]


def draw_box(image: np.ndarray, box: Sequence[int], colour: Sequence[int], *, label: str, scale: int) -> None:
    """Outline ``box`` one pixel outside it (clipped) and put ``label`` on a plate above its top-left corner
    (below the box when there is no room above), in place."""
    h, w = image.shape[:2]
    r0, c0, r1, c1 = (int(v) for v in box)
    top, bottom, left, right = max(r0 - 1, 0), min(r1, h - 1), max(c0 - 1, 0), min(c1, w - 1)
    image[top, left : right + 1] = colour
    image[bottom, left : right + 1] = colour
    image[top : bottom + 1, left] = colour
    image[top : bottom + 1, right] = colour
    plate_h, plate_w = 7 * scale, (4 * len(label) + 1) * scale
    row = r0 - 1 - plate_h if r0 - 1 - plate_h >= 0 else min(r1 + 1, h - plate_h)
    col = min(max(c0 - 1, 0), max(w - plate_w, 0))
    draw_text(image, label, row, col, scale=scale, colour=colour)


def tile_box(tile: int, grid: Sequence[int], tile_size: Sequence[int]) -> tuple[int, int, int, int]:
    """The pixel box of row-major ``tile`` in a ``(rows, cols)`` grid of ``(th, tw)`` tiles."""
    r, c = divmod(int(tile), int(grid[1]))
    th, tw = int(tile_size[0]), int(tile_size[1])
    return r * th, c * tw, (r + 1) * th, (c + 1) * tw


def _crop(image: np.ndarray, box: Sequence[int]) -> np.ndarray:
    return image[int(box[0]) : int(box[2]), int(box[1]) : int(box[3])]


def reorder_image(rgb: np.ndarray, meta: Mapping[str, Any]) -> np.ndarray:
    """Patch reordering: shown tile ``k`` is original tile ``meta["permutation"][k]``; tile ``meta["blank"]``
    (a shown position) is painted white."""
    grid = tuple(meta["grid"])
    img, th, tw = crop_to_grid(rgb, grid)
    out = apply_jigsaw(img, np.asarray(meta["permutation"]), grid)
    r0, c0, r1, c1 = tile_box(meta["blank"], grid, (th, tw))
    out[r0:r1, c0:c1] = WHITE
    return out


def flip_image(rgb: np.ndarray, meta: Mapping[str, Any]) -> np.ndarray:
    """Flip identification: tile ``meta["tile"]`` mirrored left-right (``horizontal``) or upside down."""
    axis = FlipAxis.LEFT_RIGHT if meta["direction"] == "horizontal" else FlipAxis.UP_DOWN
    return apply_flipped_patch(rgb, int(meta["tile"]), tuple(meta["grid"]), axis)


def inpaint_candidates(rgb: np.ndarray, meta: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The four crop-inpainting candidates by kind (:data:`CANDIDATE_KINDS`), each the tile's size.

    ``meta``: ``grid``, ``box`` (the tile), ``rotation`` (quarter turns for ``np.rot90``, 1 or 3),
    ``inner_box`` and ``outer_box``, all in the image cropped to whole tiles.
    """
    img, _, _ = crop_to_grid(rgb, tuple(meta["grid"]))
    true = _crop(img, meta["box"])
    th, tw = true.shape[:2]
    return {
        "true": true,
        "rotated": resize_bilinear(np.rot90(true, int(meta["rotation"])), th, tw),
        "inner": resize_bilinear(_crop(img, meta["inner_box"]), th, tw),
        "outer": resize_bilinear(_crop(img, meta["outer_box"]), th, tw),
    }


def inpaint_images(rgb: np.ndarray, meta: Mapping[str, Any]) -> list[np.ndarray]:
    """Crop inpainting: the view with the tile painted white, then the candidates in ``meta["candidates"]``
    order (A, B, C, D)."""
    img, _, _ = crop_to_grid(rgb, tuple(meta["grid"]))
    masked = img.copy()
    r0, c0, r1, c1 = (int(v) for v in meta["box"])
    masked[r0:r1, c0:c1] = WHITE
    candidates = inpaint_candidates(rgb, meta)
    return [masked, *(np.ascontiguousarray(candidates[kind]) for kind in meta["candidates"])]


def marked_image(rgb: np.ndarray, boxes: Sequence[Sequence[int]], labels: Sequence[str]) -> np.ndarray:
    """The view with ``boxes`` outlined in :data:`COLOURS` and labelled, drawn in order."""
    out = np.array(rgb, np.uint8, copy=True)
    scale = label_scale(*out.shape[:2])
    for k, (box, label) in enumerate(zip(boxes, labels)):
        draw_box(out, box, COLOURS[k % len(COLOURS)], label=label, scale=scale)
    return out


def task_images(task: str, rgb: np.ndarray, meta: Mapping[str, Any]) -> list[np.ndarray]:
    """Every image of a question, in the record's ``images`` order, from the view's RGB and ``meta``.

    Args:
        task: the task's name (``reorder``, ``flip``, ``inpaint``, ``depth``, ``position``).
        rgb: uint8 (H, W, 3) the view.
        meta: the record's ``meta``.

    Returns:
        uint8 (h, w, 3) arrays.
    """
    if task == "reorder":
        return [reorder_image(rgb, meta)]
    if task == "flip":
        return [flip_image(rgb, meta)]
    if task == "inpaint":
        return inpaint_images(rgb, meta)
    if task == "depth":
        return [marked_image(rgb, meta["boxes"], [str(k + 1) for k in range(len(meta["boxes"]))])]
    if task == "position":
        return [marked_image(rgb, [o["box"] for o in meta["objects"]], [o["label"] for o in meta["objects"]])]
    raise ValueError(f"unknown QA task {task!r}; the tasks are reorder, flip, inpaint, depth, position")


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W, 3) image (zlib level 6, no metadata: the same pixels give the same bytes)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, np.uint8), "RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """uint8 (H, W, 3) pixels of PNG bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))
