"""Targets of the auxiliary heads (:mod:`training.heads`), from the sampled crops and the pairs file's labels.

* Spatial Prediction (``sp``): two local crops of each anchor image, drawn with :func:`pairing.pretext.
  sample_crop_pair` (the pairs file's crop sampler: sides 0.2-0.6 of the shorter image side, aspect up to
  4/3) from a generator seeded by (training seed, step, view); the target is :func:`pairing.pretext.
  crop_relation` of the two boxes: ``(dx, dy)`` of crop B's centre from crop A's over the image width and
  height (x right, y down) and ``log(sqrt(area_b / area_a))``. Boxes are ``(row0, col0, row1, col1)``,
  half-open, in pixels: (0, 0, 32, 32) and (64, 64, 80, 80) on a 128 x 128 image give (0.4375, 0.4375,
  log 0.5 = -0.693).
* Relative pose (``pose``): the partner's camera in the anchor's camera frame (x right, y up, z back,
  metres; OpenGL as the pairs file), from the pair's ``rel_translation`` / ``rel_rotation`` (b in a's frame
  for the pair (a, b), a < b), inverted when the anchor is b. A left-right flip of the anchor's view mirrors
  its camera frame by S = diag(-1, 1, 1): t -> S t and R -> S R S (x, yaw and roll change sign). The target
  is ``(t, R e_x, R e_y)``: the translation and the first two columns of R (the continuous 6-D rotation
  representation of Zhou et al., CVPR 2019), 9 numbers.
* Depth order (``depth-order``): the three regions of the pairs file's ``depth_order_boxes`` mapped through
  the anchor's crop and flip onto its layer3 map and area-average pooled; a view counts when its
  ``depth_order_label`` is not -1 and its view shows at least half of each region's area.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from envsim.camera import quat_to_matrix
from pairing.pretext import CropConfig, crop_relation, sample_crop_pair
from training.augment import CropParams
from training.correspondence import region_weights

SP_CROPS = CropConfig()
"""Local crops of Spatial Prediction: the pairs file's crop sampler with its defaults."""
SP_STREAM = 0x5350  # "SP": the stream of the step's seeds that SP crops draw from
MIN_VISIBLE = 0.5
"""A depth-order region counts when the view shows at least this fraction of its area."""
MIRROR = np.diag([-1.0, 1.0, 1.0])


def sample_sp_boxes(views: np.ndarray, height: int, width: int, *, seed: int, step: int) -> np.ndarray:
    """Two local crops of each anchor image.

    Args:
        views: int (N,) the anchors' global view indices.
        height: image height, pixels.
        width: image width, pixels.
        seed: the training seed.
        step: the training step; with ``seed`` and the view it seeds the crops (the same whatever the
            batch's order or rank).

    Returns:
        int64 (N, 2, 4) boxes (row0, col0, row1, col1), half-open, pixels.
    """
    out = np.zeros((len(views), 2, 4), np.int64)
    for i, view in enumerate(np.asarray(views).tolist()):
        rng = np.random.default_rng((int(seed), int(step), int(view), SP_STREAM))
        pair = sample_crop_pair(height, width, rng=rng, config=SP_CROPS)
        out[i] = pair.box_a, pair.box_b
    return out


def sp_targets(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Spatial Prediction targets of crop pairs: float32 (N, 3) ``(dx, dy, log_scale)`` (module docstring).

    Args:
        boxes: (N, 2, 4) crop A and crop B of each image, (row0, col0, row1, col1), pixels.
        height: image height, pixels.
        width: image width, pixels.
    """
    offset, log_scale = crop_relation(boxes[:, 0], boxes[:, 1], height, width)  # (N, 2), (N,)
    return np.concatenate([offset, np.reshape(log_scale, (-1, 1))], axis=1).astype(np.float32)


def boxes_to_tlhw(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) (row0, col0, row1, col1) boxes as float32 (top, left, h, w) (what the crop resampler takes)."""
    b = np.asarray(boxes, np.float32)
    return np.stack([b[..., 0], b[..., 1], b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]], axis=-1)


def partner_pose(rel_translation: np.ndarray, rel_rotation: np.ndarray, *, anchor_is_a: bool) -> tuple[np.ndarray, np.ndarray]:
    """The partner's camera in the anchor's camera frame, from a pair's relative pose.

    Args:
        rel_translation: (3,) b's camera centre in a's frame, metres (the pairs file's ``rel_translation``).
        rel_rotation: (4,) b's orientation in a's frame, unit quaternion (w, x, y, z).
        anchor_is_a: the anchor is the pair's first view a (else it is b, and the pose is inverted).

    Returns:
        translation float32 (3,) metres and rotation float32 (3, 3), the partner's pose in the anchor's frame.
    """
    r = quat_to_matrix(np.asarray(rel_rotation, np.float64))  # (3, 3)
    t = np.asarray(rel_translation, np.float64)  # (3,)
    if not anchor_is_a:  # inv([R t]) = [R^T, -R^T t]
        r, t = r.T, -r.T @ t
    return t.astype(np.float32), r.astype(np.float32)


def pose_targets(translation: Tensor, rotation: Tensor, flip: Tensor) -> Tensor:
    """Relative-pose targets ``(t, R e_x, R e_y)`` (N, 9), mirrored where the anchor's view was flipped.

    Args:
        translation: (N, 3) the partner's camera centre in the anchor's frame, metres.
        rotation: (N, 3, 3) the partner's orientation in the anchor's frame.
        flip: bool (N,) the anchor's view is mirrored left-right.
    """
    s = torch.as_tensor(MIRROR, dtype=rotation.dtype, device=rotation.device)  # (3, 3)
    f = flip.to(rotation.device).view(-1, 1, 1)  # (N, 1, 1)
    r = torch.where(f, s @ rotation @ s, rotation)  # (N, 3, 3)
    t = torch.where(f[:, :, 0], translation @ s, translation)  # (N, 3); S is diagonal: t S = S t
    return torch.cat([t, r[:, :, 0], r[:, :, 1]], dim=1)  # (N, 9)


def region_features(fmap: Tensor, boxes: Tensor, params: CropParams) -> tuple[Tensor, Tensor]:
    """Area-average pooled features of image regions on a view's feature map, and which views show them all.

    Args:
        fmap: (N, C, h, w) the views' feature map.
        boxes: (N, R, 4) regions (row0, col0, row1, col1) in image pixels.
        params: the views' crop boxes and flips.

    Returns:
        features (N, R, C) (0 where a region is not shown) and visible bool (N,): every region of the view
        shows at least :data:`MIN_VISIBLE` of its area.
    """
    weights, visible = region_weights(boxes, params, fmap.shape[2], fmap.shape[3])  # (N, R, h, w), (N, R)
    weights = weights.to(fmap.dtype)
    total = weights.sum((-1, -2)).clamp(min=1e-12).unsqueeze(-1)  # (N, R, 1)
    feats = torch.einsum("nrhw,nchw->nrc", weights, fmap) / total  # (N, R, C)
    return feats, (visible >= MIN_VISIBLE).all(1)
