"""Where a feature-map cell of one augmented view lies in its image, and in another view of the same image.

An augmented view (:func:`training.augment.moco_v2_augment`) shows the crop box (top, left, h, w) of its
image, resized to S x S and mirrored left-right when flipped. A feature map of h x w cells over the view
splits it evenly, so cell (i, j) has its centre at view coordinates ``u = (j + 0.5) / w`` (to the right) and
``v = (i + 0.5) / h`` (down), both in [0, 1]. The view coordinate ``u`` shows image column
``left + w_box * u``, or ``left + w_box * (1 - u)`` when flipped; ``v`` shows row ``top + h_box * v``.
Image coordinates are pixels with (0, 0) the top-left corner of the top-left pixel (so pixel (r, c) covers
[c, c + 1) x [r, r + 1)).

Between two views of one image (two crops, or the same pose under two lights), a cell of view A maps to
the point of view B that shows the same image point; it exists when that point lies inside B's crop. The
point is returned as a ``grid_sample`` grid (``align_corners=False``, where -1 and 1 are the map's outer
edges), so sampling B's map there reads B's features where A's cell is. Two spatially distinct views
(a spatial partner) have no such pixel correspondence.

Image boxes such as ``depth_order_boxes`` are ``(row0, col0, row1, col1)``, half-open, in image pixels;
:func:`region_weights` turns each into the fraction of every cell it covers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from training.augment import CropParams


def _box(params: CropParams, dims: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """top, left, h, w (N, 1, ..., 1) float and flip (N, 1, ..., 1) bool, broadcastable over ``dims`` trailing dims."""
    shape = (-1,) + (1,) * dims
    top, left, h, w = (t.reshape(shape) for t in params.box.float().unbind(1))
    return top, left, h, w, params.flip.reshape(shape)


def view_to_image(u: Tensor, v: Tensor, params: CropParams) -> tuple[Tensor, Tensor]:
    """Image coordinates (x, y) in pixels of view coordinates (u, v) in [0, 1] of each view.

    Args:
        u: (N, ...) view x (one row of points per view), 0 = the view's left edge, 1 = its right edge.
        v: same shape, view y, 0 = top edge, 1 = bottom edge.
        params: the N views' crop boxes and flips.

    Returns:
        x, y: (N, ...) image column and row coordinates, pixels.
    """
    top, left, h, w, flip = _box(params, u.ndim - 1)
    u = torch.where(flip, 1.0 - u, u)  # (N, ...) position in the crop box, left to right
    return left + w * u, top + h * v


def image_to_view(x: Tensor, y: Tensor, params: CropParams) -> tuple[Tensor, Tensor]:
    """View coordinates (u, v) of image points (x, y): the inverse of :func:`view_to_image`.

    Args:
        x: (N, ...) image column coordinates, pixels (one row of points per view).
        y: same shape, image row coordinates.
        params: the N views' crop boxes and flips.

    Returns:
        u, v: (N, ...); a point inside the view has both in [0, 1].
    """
    top, left, h, w, flip = _box(params, x.ndim - 1)
    u = (x - left) / w  # (N, ...)
    return torch.where(flip, 1.0 - u, u), (y - top) / h


def cell_centres(h: int, w: int, *, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """View coordinates of the centres of an h x w map's cells: u, v float32 (h, w)."""
    v = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h  # (h,)
    u = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w  # (w,)
    return u.view(1, w).expand(h, w), v.view(h, 1).expand(h, w)


def correspondence(src: CropParams, dst: CropParams, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Where each cell of an h x w map over the ``src`` views lies in the ``dst`` views of the same images.

    Args:
        src: crop boxes and flips of N views.
        dst: crop boxes and flips of N other views of the same N images.
        h: map rows.
        w: map columns.

    Returns:
        grid: float32 (N, h, w, 2) the cells' centres as (x, y) in ``dst`` view coordinates scaled to
            [-1, 1] (``grid_sample`` with ``align_corners=False``); outside [-1, 1] where not shown.
        valid: bool (N, h, w) the cell's centre lies inside the ``dst`` view.
    """
    u, v = cell_centres(h, w, device=src.box.device)  # (h, w) each
    n = src.box.shape[0]
    x, y = view_to_image(u.expand(n, h, w), v.expand(n, h, w), src)  # (N, h, w) image pixels
    u2, v2 = image_to_view(x, y, dst)  # (N, h, w) view coordinates in dst
    valid = (u2 >= 0) & (u2 <= 1) & (v2 >= 0) & (v2 <= 1)  # (N, h, w)
    return torch.stack([2 * u2 - 1, 2 * v2 - 1], dim=-1), valid


def sample_cells(maps: Tensor, grid: Tensor) -> Tensor:
    """Bilinear samples of feature maps at grid points (edge values beyond the border).

    Args:
        maps: (N, C, H, W) feature maps.
        grid: (N, h, w, 2) points from :func:`correspondence`.

    Returns:
        (N, C, h, w); exactly the map's cell where a point is a cell centre.
    """
    return F.grid_sample(maps, grid.to(maps.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def _overlap(lo: Tensor, hi: Tensor, cells: int) -> Tensor:
    """(..., cells) length of [lo, hi] (in cell units) inside each unit cell [k, k + 1)."""
    k = torch.arange(cells, dtype=lo.dtype, device=lo.device)  # (cells,)
    return (torch.minimum(hi.unsqueeze(-1), k + 1) - torch.maximum(lo.unsqueeze(-1), k)).clamp(min=0)


def region_weights(boxes: Tensor, params: CropParams, h: int, w: int) -> tuple[Tensor, Tensor]:
    """How much of every cell of an h x w map over each view each image region covers, and how much of each
    region the view shows.

    Args:
        boxes: (N, R, 4) image regions (row0, col0, row1, col1), half-open, pixels.
        params: the N views' crop boxes and flips.
        h: map rows.
        w: map columns.

    Returns:
        weights: float32 (N, R, h, w) covered fraction of each cell, in [0, 1] (area-weighted pooling:
            ``(weights * map).sum / weights.sum``).
        visible: float32 (N, R) fraction of each region's area inside the view, in [0, 1].
    """
    b = boxes.to(device=params.box.device, dtype=torch.float32)  # (N, R, 4)
    u0, v0 = image_to_view(b[..., 1], b[..., 0], params)  # (N, R) each
    u1, v1 = image_to_view(b[..., 3], b[..., 2], params)
    ul, ur = torch.minimum(u0, u1), torch.maximum(u0, u1)  # a flip swaps the ends
    wx = _overlap(ul * w, ur * w, w)  # (N, R, w) cells' covered width
    wy = _overlap(v0 * h, v1 * h, h)  # (N, R, h)
    weights = wy.unsqueeze(-1) * wx.unsqueeze(-2)  # (N, R, h, w)
    area = ((ur - ul) * w * (v1 - v0) * h).clamp(min=1e-12)  # (N, R) in cell units
    return weights, (weights.sum((-1, -2)) / area).clamp(max=1.0)
