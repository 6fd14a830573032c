"""Pretext probes: what frozen features know of the geometric pretext labels in ``pairs.h5``.

Every probe reads features as arrays (it never touches an encoder), is fitted on the training split only
and scored on the familiar and the unfamiliar views separately; a pair counts in a split only when both
its views lie in it. The labels are the ones ``ess pair`` stored (:mod:`pairing.store`,
:mod:`pairing.pretext`), never recomputed.

- **SP position/scale** (Spatial Prediction, arXiv 2605.09963): each view's two stored crops
  (``crop_boxes``), each resized to the encoders' input size and embedded; a ridge readout
  (:func:`benchmarks.evaluation.probes.ridge_regression_cv`: penalty per target by leave-one-out on the
  training rows) from ``[f1, f2]`` to ``(dx, dy, log scale)``
  (``crop_offset``, ``crop_log_scale``: crop 2's centre offset from crop 1's as fractions of the image
  width and height, and the log side ratio). Scores: mean absolute error of each target and R^2 averaged
  over the three (:func:`sp_probe`).
- **Jigsaw** (Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
  Puzzles", ECCV 2016): the view shuffled by its stored permutation (``jigsaw_label`` into
  ``jigsaw_permutations``, :func:`pairing.pretext.apply_jigsaw`) and cut into its grid of tiles, each
  resized to the input size and embedded; a linear probe (:func:`benchmarks.evaluation.probes.linear_probe`)
  from the tiles' concatenated features to the permutation index. Scores: permutation top-1 and the
  fraction of tiles the predicted permutation puts in the right place (:func:`jigsaw_probe`).
- **Relative pose** (ESS, arXiv 2401.15120; the ``rel_translation`` / ``rel_rotation`` of each stored pair):
  each view of a split with a partner in the same split gets one partner, drawn uniformly; a ridge readout
  from ``[f_view, f_partner]`` to the partner's pose in the view's camera frame (translation in metres,
  unit quaternion (w, x, y, z)). Scores: median translation error (m) and median geodesic rotation error
  (degrees) of the normalised predicted quaternion (:func:`pose_probe`).

The crops and tiles cost 2 + rows * cols encoder passes per view, so at most ``max_views`` views per split
(a sample drawn with the bench seed) take part in the SP and jigsaw probes; the pose probe reads the whole
views' features, which every view already has.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.evaluation.metrics import (
    mean_absolute_error,
    median,
    position_error,
    r2_score,
    rotation_error_deg,
    tile_accuracy,
    top1_accuracy,
)
from benchmarks.evaluation.probes import RIDGE_ALPHAS, linear_probe, ridge_regression_cv
from envsim.camera import quat_to_matrix
from envsim.provenance import derive_rng, file_sha256
from pairing.pretext import apply_jigsaw
from pairing.store import PAIRS_NAME, PairColumn, PairRows, read_pairs

SP_TARGETS = ("dx", "dy", "log_scale")
PRETEXT_KEYS = (
    "sp_test_views", *(f"sp_mae_{t}" for t in SP_TARGETS), "sp_r2",
    "jigsaw_test_views", "jigsaw_perm_top1", "jigsaw_tile_acc",
    "pose_test_pairs", "pose_median_m", "pose_median_deg",
)
"""Every metric the pretext probes add to ``results[representation][setting]``."""
LABEL_KEYS = ("crop_boxes", "crop_offset", "crop_log_scale", "jigsaw_label", "jigsaw_permutations", "pair",
              "rel_translation", "rel_rotation")
ON_DEMAND_KEYS = ("rel_translation", "rel_rotation")  # read per drawn pair, never whole (28 bytes a pair)
TRAIN = "train"


class PretextLabelsError(ValueError):
    """The dataset has no usable pretext labels (no ``pairs.h5``, or one built from other data)."""


@dataclass(frozen=True)
class PretextLabels:
    """The stored pretext labels of a dataset's N views and P pairs.

    Attributes:
        crop_boxes: int64 (N, 2, 4) two crops of each view, ``(row0, col0, row1, col1)`` half-open pixels.
        crop_target: float64 (N, 3) ``(dx, dy, log scale)`` of crop 2 relative to crop 1.
        jigsaw_label: int64 (N,) index into ``permutations``.
        permutations: int64 (n_perm, rows * cols) the jigsaw permutation set.
        grid: ``(rows, cols)`` tiles per image column and row.
        pair: int64 (P, 2) view indices (a, b) of each pair.
        rel_translation: float64 (P, 3) b's camera centre in a's camera frame, metres (from a file: a
            :class:`pairing.store.PairColumn` that reads the rows indexed).
        rel_rotation: float64 (P, 4) b's orientation in a's camera frame, unit quaternion (w, x, y, z) (idem).
        source: where the labels came from (file, SHA-256, pairing seed and code version).
    """

    crop_boxes: np.ndarray
    crop_target: np.ndarray
    jigsaw_label: np.ndarray
    permutations: np.ndarray
    grid: tuple[int, int]
    pair: np.ndarray
    rel_translation: np.ndarray | PairColumn
    rel_rotation: np.ndarray | PairColumn
    source: dict[str, Any]


def load_pretext_labels(folder: str | os.PathLike, *, manifest_sha256: str, n_views: int) -> PretextLabels:
    """The pretext labels of the dataset in ``folder`` (its ``pairs.h5``).

    Args:
        folder: the dataset folder.
        manifest_sha256: the dataset's manifest hash (the pairs must have been built from it).
        n_views: N, the dataset's views.

    Raises:
        PretextLabelsError: no pairs file, one of another dataset, or one without pretext labels.
    """
    path = Path(folder) / PAIRS_NAME
    if not path.is_file():
        raise PretextLabelsError(f"no {PAIRS_NAME} in {folder}; run `ess pair {folder}` to add the pretext probes")
    try:
        data = read_pairs(path, keys=tuple(k for k in LABEL_KEYS if k not in ON_DEMAND_KEYS))
        rows = PairRows(path)
        data.update({k: PairColumn(rows, k, dtype=np.float64) for k in ON_DEMAND_KEYS if k in rows})
        rows.close()  # reopened when a pose pair is read
    except (OSError, ValueError) as exc:
        raise PretextLabelsError(f"{path} is not a readable pairs file ({exc}); rebuild it with `ess pair --force`") from exc
    attrs = data["attrs"]
    if attrs.get("dataset_manifest_sha256") != manifest_sha256 or int(attrs.get("n_views", -1)) != n_views:
        raise PretextLabelsError(f"{path} was built from another rendering of the data; rebuild it with `ess pair --force`")
    missing = [k for k in LABEL_KEYS if k not in data]
    if missing:
        raise PretextLabelsError(f"{path} lacks {', '.join(missing)}; rebuild it with this version's `ess pair --force`")
    permutations = np.asarray(data["jigsaw_permutations"], np.int64)
    grid = _jigsaw_grid((attrs.get("config") or {}).get("jigsaw_grid"), permutations.shape[1])
    if grid is None:
        raise PretextLabelsError(f"{path}: jigsaw_grid does not match the {permutations.shape[1]} tiles of its "
                                 "permutations; rebuild it with `ess pair --force`")
    return PretextLabels(
        crop_boxes=np.asarray(data["crop_boxes"], np.int64),
        crop_target=np.column_stack([data["crop_offset"], data["crop_log_scale"]]).astype(np.float64),
        jigsaw_label=np.asarray(data["jigsaw_label"], np.int64),
        permutations=permutations,
        grid=grid,
        pair=np.asarray(data["pair"], np.int64).reshape(-1, 2),
        rel_translation=data["rel_translation"],
        rel_rotation=data["rel_rotation"],
        source={"file": str(path), "sha256": file_sha256(path), "seed": attrs.get("seed"),
                "code_version": attrs.get("code_version")},
    )


def _jigsaw_grid(stored: Any, tiles: int) -> tuple[int, int] | None:
    """``(rows, cols)`` of the stored grid (one side, or rows and cols; absent: the square of ``tiles``), or
    None when it does not hold ``tiles`` tiles."""
    if stored is None:
        stored = math.isqrt(tiles)
    rows, cols = (stored, stored) if isinstance(stored, (int, np.integer)) else tuple(stored)
    return (int(rows), int(cols)) if int(rows) * int(cols) == tiles else None


# ---------------------------------------------------------------------------------------------------------
# Images: crops and jigsaw tiles at the encoders' input size
# ---------------------------------------------------------------------------------------------------------


def resize_images(images: np.ndarray | torch.Tensor, size: int | None) -> np.ndarray:
    """Images resized to ``size`` x ``size`` as :func:`training.encoder.embed` resizes (bilinear, antialiased).

    Args:
        images: (B, h, w, 3) uint8 or float in [0, 255].
        size: output side in pixels (None: unchanged).

    Returns:
        float32 (B, size, size, 3) in [0, 255].
    """
    x = torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float()  # (B, 3, h, w)
    if size is not None and (x.shape[-2] != size or x.shape[-1] != size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.permute(0, 2, 3, 1).numpy()  # (B, size, size, 3)


def crop_images(rgb: np.ndarray, boxes: np.ndarray, size: int | None) -> np.ndarray:
    """The crops of each view, resized.

    Args:
        rgb: uint8 (c, H, W, 3) views.
        boxes: int (c, m, 4) boxes ``(row0, col0, row1, col1)`` of each view, half-open pixels.
        size: output side in pixels (None: boxes of equal size kept as they are).

    Returns:
        float32 (c, m, size, size, 3) in [0, 255].
    """
    out = [resize_images(rgb[i, r0:r1, c0:c1][None], size)[0] for i in range(len(rgb)) for r0, c0, r1, c1 in boxes[i]]
    return np.stack(out).reshape(len(rgb), boxes.shape[1], *out[0].shape) if out else np.zeros((0, boxes.shape[1], 0, 0, 3), np.float32)


def grid_tiles(image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The tiles of an image made of whole tiles (as :func:`pairing.pretext.apply_jigsaw` returns it),
    row-major: tile ``k = tile_row * cols + tile_col``.

    Args:
        image: (rows * th, cols * tw, ...) any dtype.
        grid: ``(rows, cols)``.

    Returns:
        (rows * cols, th, tw, ...).
    """
    (rows, cols), (h, w) = grid, image.shape[:2]
    if h % rows or w % cols:
        raise ValueError(f"image of {h}x{w} pixels is not a whole {rows}x{cols} grid of tiles; shuffle it with apply_jigsaw first")
    th, tw, rest = h // rows, w // cols, image.shape[2:]
    return image.reshape(rows, th, cols, tw, *rest).swapaxes(1, 2).reshape(rows * cols, th, tw, *rest)


def jigsaw_tiles(rgb: np.ndarray, permutations: np.ndarray, grid: tuple[int, int], size: int | None) -> np.ndarray:
    """The tiles of each view shuffled by its permutation: tile ``k`` is the view's tile ``permutation[k]``.

    Args:
        rgb: uint8 (c, H, W, 3) views (bottom rows and right columns beyond whole tiles are cut off, as
            :func:`pairing.pretext.apply_jigsaw` does).
        permutations: int (c, rows * cols) each view's permutation.
        grid: ``(rows, cols)`` tiles per image column and row.
        size: side the tiles are resized to (None: kept at their size).

    Returns:
        float32 (c, rows * cols, size, size, 3) in [0, 255].
    """
    k = grid[0] * grid[1]
    side = grid[0] if grid[0] == grid[1] else grid  # pairing's square-grid form where it is square
    tiles = [grid_tiles(apply_jigsaw(image, perm, side), grid) for image, perm in zip(rgb, permutations)]
    if not tiles:
        return np.zeros((0, k, 0, 0, 3), np.float32)
    flat = resize_images(np.concatenate(tiles), size)  # (c * k, size, size, 3)
    return flat.reshape(len(rgb), k, *flat.shape[1:])


def pretext_images(rgb: np.ndarray, views: np.ndarray, *, labels: PretextLabels, size: int) -> np.ndarray:
    """Images the SP and jigsaw probes embed for each view: its two crops, then its shuffled tiles.

    Args:
        rgb: uint8 (c, H, W, 3) the views' images.
        views: int (c,) their view indices (to look up their labels).
        labels: the dataset's pretext labels.
        size: the encoders' input side in pixels.

    Returns:
        float32 (c, 2 + rows * cols, size, size, 3) in [0, 255].
    """
    crops = crop_images(rgb, labels.crop_boxes[views], size)  # (c, 2, S, S, 3)
    tiles = jigsaw_tiles(rgb, labels.permutations[labels.jigsaw_label[views]], labels.grid, size)  # (c, k, S, S, 3)
    return np.concatenate([crops, tiles], axis=1)


# ---------------------------------------------------------------------------------------------------------
# Probes: arrays in, metrics out
# ---------------------------------------------------------------------------------------------------------


def _stack_tests(tests: dict[str, tuple[np.ndarray, ...]]) -> tuple[np.ndarray, dict[str, slice]]:
    """The tests' feature rows stacked (one probe call scores every setting) and each setting's rows."""
    slices, start = {}, 0
    for setting, (x, *_) in tests.items():
        slices[setting] = slice(start, start + len(x))
        start += len(x)
    return np.concatenate([np.asarray(x, np.float64) for x, *_ in tests.values()]), slices


def sp_probe(train_x: np.ndarray, train_y: np.ndarray, tests: dict[str, tuple[np.ndarray, np.ndarray]], *,
             alphas: tuple[float, ...] = RIDGE_ALPHAS) -> dict[str, dict[str, Any]]:
    """The SP position/scale probe: ridge from crop-pair features to ``(dx, dy, log scale)``.

    Reference: Spatial Prediction (SP), arXiv 2605.09963: the relative position and scale of two crops
    of one view.

    Args:
        train_x: (n, C) features of the training views' crop pairs (``[f1, f2]``), n >= 2.
        train_y: (n, 3) their ``(dx, dy, log scale)`` (fractions of the image side; natural log).
        tests: setting -> ((m, C) features, (m, 3) targets).
        alphas: candidate ridge penalties (each target takes the one of least leave-one-out error).

    Returns:
        setting -> ``sp_test_views``, ``sp_mae_dx``, ``sp_mae_dy``, ``sp_mae_log_scale`` (same units as the
        targets) and ``sp_r2`` (R^2 averaged over the three targets).
    """
    test_x, slices = _stack_tests(tests)
    pred, _ = ridge_regression_cv(train_x, train_y, test_x, alphas=alphas)  # (M, 3)
    out = {}
    for setting, (_, y) in tests.items():
        mae = mean_absolute_error(pred[slices[setting]], y)  # (3,)
        r2 = r2_score(pred[slices[setting]], y) if len(y) else np.full(3, math.nan)  # (3,)
        out[setting] = {"sp_test_views": len(y), **{f"sp_mae_{t}": float(mae[i]) for i, t in enumerate(SP_TARGETS)},
                        "sp_r2": float(np.mean(r2))}
    return out


def jigsaw_probe(train_x: np.ndarray, train_label: np.ndarray, tests: dict[str, tuple[np.ndarray, np.ndarray]], *,
                 permutations: np.ndarray, seed: int, epochs: int) -> dict[str, dict[str, Any]]:
    """The jigsaw probe: a linear classifier from the shuffled tiles' concatenated features to the permutation.

    Reference: Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
    Puzzles", ECCV 2016 (permutation index from the tiles' features, in tile order).

    Args:
        train_x: (n, k * D) concatenated tile features of the training views, n >= 1.
        train_label: int (n,) their permutation indices.
        tests: setting -> ((m, k * D) features, int (m,) permutation indices).
        permutations: int (n_perm, k) the permutation set.
        seed: the probe's initialisation seed.
        epochs: most L-BFGS iterations.

    Returns:
        setting -> ``jigsaw_test_views``, ``jigsaw_perm_top1`` (permutation accuracy) and ``jigsaw_tile_acc``
        (fraction of tiles the predicted permutation places right).
    """
    test_x, slices = _stack_tests(tests)
    pred = linear_probe(train_x, train_label, test_x, len(permutations), seed=seed, epochs=epochs)  # (M,)
    return {setting: {"jigsaw_test_views": len(label),
                      "jigsaw_perm_top1": top1_accuracy(pred[slices[setting]], label),
                      "jigsaw_tile_acc": tile_accuracy(pred[slices[setting]], label, permutations)}
            for setting, (_, label) in tests.items()}


def pose_probe(train_x: np.ndarray, train_t: np.ndarray, train_q: np.ndarray,
               tests: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], *,
               alphas: tuple[float, ...] = RIDGE_ALPHAS) -> dict[str, dict[str, Any]]:
    """The relative-pose probe: ridge from pair features to the partner's translation and rotation.

    Args:
        train_x: (n, C) features of training pairs (``[f_view, f_partner]``), n >= 2.
        train_t: (n, 3) the partner's camera centre in the view's camera frame, metres.
        train_q: (n, 4) the partner's orientation in the view's frame, unit quaternions (w, x, y, z).
        tests: setting -> ((m, C) features, (m, 3) translations, (m, 4) quaternions).
        alphas: candidate ridge penalties (each target takes the one of least leave-one-out error).

    Returns:
        setting -> ``pose_test_pairs``, ``pose_median_m`` (median translation error, metres) and
        ``pose_median_deg`` (median geodesic error of the normalised predicted quaternion, degrees).
    """
    test_x, slices = _stack_tests(tests)
    pred, _ = ridge_regression_cv(train_x, np.column_stack([train_t, train_q]), test_x, alphas=alphas)  # (M, 7)
    q = pred[:, 3:]
    q = np.where(np.linalg.norm(q, axis=1, keepdims=True) > 1e-12, q, [1.0, 0.0, 0.0, 0.0])  # (M, 4) no zero norm
    out = {}
    for setting, (_, t, q_true) in tests.items():
        metres = position_error(pred[slices[setting], :3], t)  # (m,)
        degrees = rotation_error_deg(q[slices[setting]], q_true)  # (m,)
        out[setting] = {"pose_test_pairs": len(t), "pose_median_m": median(metres), "pose_median_deg": median(degrees)}
    return out


# ---------------------------------------------------------------------------------------------------------
# The plan: which views and pairs each split contributes (drawn once, shared by every representation)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PosePairs:
    """Oriented pairs of one split: each view with one partner.

    Attributes:
        view: int64 (M,) the views (ascending).
        partner: int64 (M,) each view's partner.
        translation: float64 (M, 3) the partner's camera centre in the view's camera frame, metres.
        rotation: float64 (M, 4) the partner's orientation in the view's frame, unit quaternion, w >= 0.
    """

    view: np.ndarray
    partner: np.ndarray
    translation: np.ndarray
    rotation: np.ndarray


def partner_pairs(labels: PretextLabels, mask: np.ndarray, *, rng: np.random.Generator) -> PosePairs:
    """One partner per view of ``mask``, among its pairs whose other view is in ``mask`` too, drawn uniformly.

    A pair stored as (a, b) gives b's pose in a's frame; seen from b it is inverted (``R' = R^T``,
    ``t' = -R^T t``, ``q' = conj(q)``).

    Args:
        labels: the stored pairs and relative poses.
        mask: bool (N,) the split.
        rng: draws the partners.
    """
    a, b = labels.pair[:, 0], labels.pair[:, 1]
    rows = np.flatnonzero(mask[a] & mask[b])  # pairs inside the split
    view = np.concatenate([a[rows], b[rows]])  # (2R,) each pair seen from both ends
    row = np.concatenate([rows, rows])
    from_b = np.repeat([False, True], rows.size)
    order = np.lexsort((rng.random(view.size), view))  # by view, in random order within a view
    first = order[np.r_[True, view[order][1:] != view[order][:-1]]] if view.size else order  # one per view
    row, from_b = row[first], from_b[first]
    t, q = labels.rel_translation[row], labels.rel_rotation[row]  # (M, 3), (M, 4)
    r_t = np.swapaxes(quat_to_matrix(q), -1, -2) if len(row) else np.zeros((0, 3, 3))  # (M, 3, 3) R^T
    t = np.where(from_b[:, None], -np.einsum("mij,mj->mi", r_t, t), t)
    q = np.where(from_b[:, None], q * [1.0, -1.0, -1.0, -1.0], q)
    partner = np.where(from_b, labels.pair[row, 0], labels.pair[row, 1])
    return PosePairs(view=view[first], partner=partner, translation=t, rotation=q)


@dataclass(frozen=True)
class PretextPlan:
    """What the pretext probes read, per split (``"train"`` first, then the test settings).

    Attributes:
        labels: the dataset's pretext labels.
        samples: split -> int64 sorted views whose crops and tiles are probed.
        pairs: split -> the pose pairs.
        max_views: the cap on each sample (None: every view).
    """

    labels: PretextLabels
    samples: dict[str, np.ndarray]
    pairs: dict[str, PosePairs]
    max_views: int | None

    @property
    def views(self) -> np.ndarray:
        """int64 sorted views whose crops and tiles must be embedded."""
        return np.unique(np.concatenate(list(self.samples.values())))

    def summary(self) -> dict[str, Any]:
        """Sizes and sources for the report."""
        return {"skipped": None, "labels": self.labels.source, "max_views": self.max_views,
                "views": {s: int(v.size) for s, v in self.samples.items()},
                "pose_pairs": {s: int(p.view.size) for s, p in self.pairs.items()},
                "jigsaw_permutations": len(self.labels.permutations), "jigsaw_grid": self.labels.grid}


def plan_pretext(labels: PretextLabels, masks: dict[str, np.ndarray], *, max_views: int | None, seed: int) -> PretextPlan:
    """Draw each split's sample of views and its pose pairs with generators derived from ``seed``.

    Args:
        labels: the dataset's pretext labels.
        masks: split -> bool (N,) its views; ``"train"`` and the test settings.
        max_views: most views per split in the SP and jigsaw probes (None: all).
        seed: the bench seed.
    """
    samples, pairs = {}, {}
    for split, mask in masks.items():
        views = np.flatnonzero(mask)
        if max_views is not None and views.size > max_views:
            views = np.sort(derive_rng(seed, "pretext-views", split).choice(views, max_views, replace=False))
        samples[split] = views.astype(np.int64)
        pairs[split] = partner_pairs(labels, mask, rng=derive_rng(seed, "pose-partners", split))
    return PretextPlan(labels=labels, samples=samples, pairs=pairs, max_views=max_views)


def skipped_metrics() -> dict[str, Any]:
    """The pretext keys of a setting that has no labels (every value None)."""
    return dict.fromkeys(PRETEXT_KEYS)


def pretext_metrics(view_x: np.ndarray, part_x: np.ndarray, plan: PretextPlan, *, seed: int,
                    epochs: int) -> dict[str, dict[str, Any]]:
    """The three probes of one representation in every test setting.

    Args:
        view_x: (N, D) features of whole views (rows of views outside the plan are not read).
        part_x: (V_p, 2 + rows * cols, D) features of the crops then tiles of ``plan.views``
            (:func:`pretext_images`).
        plan: the samples and pairs.
        seed: seed of the jigsaw probe's initialisation.
        epochs: most L-BFGS iterations of the jigsaw probe.

    Returns:
        setting -> every key of :data:`PRETEXT_KEYS` (None where the training split has fewer than two views
        or pairs to fit a probe on; NaN where a setting has nothing to score).
    """
    labels = plan.labels
    row = {int(v): i for i, v in enumerate(plan.views)}
    parts = {s: part_x[[row[int(v)] for v in views]] for s, views in plan.samples.items()}  # (V_s, 2 + k, D)
    settings = [s for s in plan.samples if s != TRAIN]
    out = {s: skipped_metrics() for s in settings}
    if plan.samples[TRAIN].size >= 2:
        crops = {s: (p[:, :2].reshape(len(p), -1), labels.crop_target[plan.samples[s]]) for s, p in parts.items()}
        tiles = {s: (p[:, 2:].reshape(len(p), -1), labels.jigsaw_label[plan.samples[s]]) for s, p in parts.items()}
        sp = sp_probe(*crops[TRAIN], {s: crops[s] for s in settings})
        jig = jigsaw_probe(*tiles[TRAIN], {s: tiles[s] for s in settings}, permutations=labels.permutations,
                           seed=seed, epochs=epochs)
        for s in settings:
            out[s].update({**sp[s], **jig[s]})
    if plan.pairs[TRAIN].view.size >= 2:
        pose = {s: (np.concatenate([view_x[p.view], view_x[p.partner]], axis=1), p.translation, p.rotation)
                for s, p in plan.pairs.items()}
        for s, m in pose_probe(*pose[TRAIN], {s: pose[s] for s in settings}).items():
            out[s].update(m)
    return out
