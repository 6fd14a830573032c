"""``ess pair``: spatial positives, weights, covisibility, relative poses and pretext labels of a dataset.

Candidates come from a KD-tree over camera centres per scene (never an O(N^2) loop); every candidate
gets its distance, viewing angle, ESS-MW weight, relative pose and (by default) covisibility from depth,
and the positive rule marks ESS-MB positives by distance, by covisibility or by both. Per-view pretext
labels (depth ordering, crop relation, jigsaw, flipped patch) are drawn from per-scene generators seeded
from (seed, scene name), so the same dataset and seed give the same bytes.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from envsim.lock import FolderLock
from envsim.provenance import derive_rng, to_jsonable
from envsim.store.reader import DatasetReader
from envsim.version import code_version
from pairing.covisibility import CovisibilityConfig, covisibility_pairs
from pairing.index import radius_pairs
from pairing.pretext import (
    PERMUTATIONS_3,
    CropConfig,
    DepthOrderConfig,
    crop_relation,
    jigsaw_permutations,
    relative_pose,
    sample_crop_boxes,
    sample_depth_order,
    sample_flipped_patch,
    sample_jigsaw,
)
from pairing.similarity import SimilarityConfig, binary_similarity, pair_geometry, weighted_similarity
from pairing.store import PAIRS_NAME, csr_of_sorted_parts, read_pairs, write_pairs

log = logging.getLogger(__name__)


class PositiveRule(str, Enum):
    """What makes two views of a scene a positive pair.

    ``distance``: ESS-MB: camera centres within the radius and viewing directions within the angle.
    ``covisibility``: the mean covisibility of the two views is at least ``min_covisibility``.
    ``both``: both conditions (a wall between two nearby cameras no longer makes a positive).
    """

    DISTANCE = "distance"
    COVISIBILITY = "covisibility"
    BOTH = "both"


@dataclass(frozen=True)
class PairConfig:
    """Settings of ``ess pair``.

    Attributes:
        similarity: radius, angle gate and ESS-MW fall-off.
        covisibility: pixel stride and occlusion tolerances.
        compute_covisibility: compute covisibility from depth (needs every view's depth once).
        rule: the positive rule.
        min_covisibility: threshold on the mean of both directions, in [0, 1].
        depth_order: depth-ordering pretext settings.
        crops: crop-pair pretext settings.
        jigsaw_permutations: size of the jigsaw permutation set.
        jigsaw_grid: tiles per side for jigsaw and flipped-patch labels.
        seed: seed of the pretext labels.
    """

    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    covisibility: CovisibilityConfig = field(default_factory=CovisibilityConfig)
    compute_covisibility: bool = True
    rule: PositiveRule = PositiveRule.DISTANCE
    min_covisibility: float = 0.3
    depth_order: DepthOrderConfig = field(default_factory=DepthOrderConfig)
    crops: CropConfig = field(default_factory=CropConfig)
    jigsaw_permutations: int = 100
    jigsaw_grid: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", PositiveRule(self.rule))
        if self.rule is not PositiveRule.DISTANCE and not self.compute_covisibility:
            raise ValueError(f"positive rule {self.rule.value!r} needs covisibility; drop --no-covisibility")
        if not 0.0 <= self.min_covisibility <= 1.0:
            raise ValueError(f"--min-covisibility must lie in [0, 1], got {self.min_covisibility}")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {self.seed}")
        if self.jigsaw_grid < 2 or self.jigsaw_permutations < 1:
            raise ValueError("jigsaw needs a grid of >= 2 tiles per side and >= 1 permutation")


def build_pairs(
    folder: str | os.PathLike,
    *,
    config: PairConfig,
    out: str | os.PathLike | None = None,
    progress: Callable[[int], None] | None = None,
    force: bool = False,
) -> Path:
    """Build the pairs file of a rendered dataset, holding ``.ess-pair.lock`` in its folder meanwhile.

    Args:
        folder: a finished ``ess render`` output folder.
        config: pairing settings.
        out: the pairs file (default ``<folder>/pairs.h5``).
        progress: called with the number of views finished after each scene.
        force: rebuild even when ``out`` holds pairs of other settings.

    Returns:
        The path of the pairs file. When a file built from the same dataset and config exists, it is
        kept as it is (unless ``force``).

    Raises:
        ValueError: not a finished dataset, ``out`` holds pairs of another dataset or config (without
            ``force``), or another ``ess pair`` is writing into the folder (:class:`envsim.lock.LockedError`).
    """
    reader = DatasetReader(folder)
    out = Path(out) if out is not None else reader.folder / PAIRS_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    with FolderLock(out.parent, PAIR_LOCK_NAME, what="ess pair", advice="wait for it to finish"):
        if force:
            out.unlink(missing_ok=True)
        return _build_locked(reader, out, config=config, progress=progress)


PAIR_LOCK_NAME = ".ess-pair.lock"


def _build_locked(reader: DatasetReader, out: Path, *, config: PairConfig, progress) -> Path:
    cfg_json = to_jsonable(config)
    dataset_sha = reader.manifest_sha256()
    if out.exists():
        try:
            old = read_pairs(out, keys=())["attrs"]
        except (OSError, ValueError) as exc:
            raise ValueError(f"{out} exists and is not a pairs file; remove it or pick another --out") from exc
        if old.get("config") == cfg_json and old.get("dataset_manifest_sha256") == dataset_sha:
            log.info("%s is up to date", out)
            if progress is not None:
                progress(len(reader))
            return out
        raise ValueError(f"{out} holds pairs built with other settings or another dataset; pass --force to rebuild")
    arrays = compute_pairs(reader, config=config, progress=progress)
    attrs = {
        "config": cfg_json,
        "seed": config.seed,
        "code_version": code_version(),
        "dataset_manifest_sha256": dataset_sha,
        "n_views": len(reader),
        "positive_rule": config.rule.value,
    }
    write_pairs(out, arrays, attrs)
    return out


def compute_pairs(
    reader: DatasetReader, *, config: PairConfig, progress: Callable[[int], None] | None = None
) -> PairArrays:
    """Every array of the pairs file (see :mod:`pairing.store`) for the views behind ``reader``.

    Scene by scene, the candidates get their geometry, weights, covisibility and positive flags and only the
    kept pairs (int64 (p, 2)) and their covisibility (float32 (p, 2)) stay, scene by scene, with the per-view
    pretext labels; every per-pair dataset is made from those when the returned :class:`PairArrays` is asked
    for it, so writing the file holds one dataset at a time besides them (~40 bytes a pair at most in all).
    """
    meta = reader.meta()
    n = len(reader)
    scene = meta["scene"].astype(np.int64)
    h, w = reader.height, reader.width
    labels = _empty_labels(n)
    perms = jigsaw_permutations(config.jigsaw_permutations, config.jigsaw_grid, seed=0)
    with_depth_order = config.depth_order.region_size <= min(h, w) // 2
    if not with_depth_order:
        log.warning(
            "images of %dx%d are too small for depth-order regions of %d px: depth_order_label is -1 everywhere",
            w, h, config.depth_order.region_size,
        )
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for s in np.unique(scene):
        views = np.flatnonzero(scene == s)  # sorted global indices of the scene
        depth = reader.read_many("depth", views).astype(np.float32)  # (n_s, H, W)
        kept.append(_scene_pairs(meta, views, depth, reader.K, config))
        rng = derive_rng(config.seed, "pretext", reader.scene_names[int(s)])
        _scene_labels(labels, views, depth, (h, w), rng=rng, config=config, perms=perms,
                      with_depth_order=with_depth_order)
        del depth
        if progress is not None:
            progress(len(views))
    crop_offset, crop_log_scale = crop_relation(labels["crop_boxes"][:, 0], labels["crop_boxes"][:, 1], h, w)
    labels.update(crop_offset=np.asarray(crop_offset, np.float32), crop_log_scale=np.asarray(crop_log_scale, np.float32),
                  jigsaw_permutations=perms.astype(np.int8))
    return PairArrays(parts=_in_file_order(kept), labels=labels, meta=meta, config=config)


def _scene_pairs(meta: dict[str, np.ndarray], views: np.ndarray, depth: np.ndarray, K: np.ndarray,
                 config: PairConfig) -> tuple[np.ndarray, np.ndarray]:
    """The kept pairs of one scene and their covisibility.

    Args:
        meta: per-view metadata of every view (:meth:`DatasetReader.meta`).
        views: int64 (n_s,) sorted global indices of the scene's views.
        depth: float32 (n_s, H, W) their depth maps, metres.
        K: (3, 3) intrinsics, pixels.
        config: pairing settings.

    Returns:
        int64 (p, 2) global view indices (a < b, sorted) of the candidates related in any way (positive,
        weight > 0 or some covisibility), and float32 (p, 2) their covisibility (None when not computed).
    """
    sim = config.similarity
    position = meta["position"][views].astype(np.float64)
    rotation = meta["rotation"][views].astype(np.float64)
    local = radius_pairs(position, np.zeros(len(views), np.int64), radius=sim.radius)  # (p_s, 2) into views
    distance, angle = pair_geometry(position, rotation, local)
    weight = weighted_similarity(distance, angle, sim)
    gate = binary_similarity(distance, angle, sim) > 0
    covis = np.zeros((len(local), 2), np.float32)
    if config.compute_covisibility and len(local):
        pose = meta["pose"][views].astype(np.float64)
        for s in range(0, len(local), COVISIBILITY_BLOCK):  # its per-pair transforms take ~500 bytes a pair
            covis[s : s + COVISIBILITY_BLOCK] = covisibility_pairs(depth, pose, K, local[s : s + COVISIBILITY_BLOCK],
                                                                   config=config.covisibility)
    keep = _positive(config, gate, covis) | (weight > 0) | (covis.max(axis=1) > 0)  # drop unrelated candidates
    return views[local[keep]].reshape(-1, 2), covis[keep] if config.compute_covisibility else None


def _in_file_order(kept: list[tuple[np.ndarray, np.ndarray | None]]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Every scene's kept pairs (int64 (p, 2), sorted) and covisibility (float32 (p, 2) or None) as parts that,
    one after the other, hold the rows in the file's order (by (a, b)); scenes whose views interleave are
    merged into one sorted part."""
    parts = sorted((pc for pc in kept if len(pc[0])), key=lambda pc: (int(pc[0][0, 0]), int(pc[0][0, 1])))
    kept.clear()
    ends = [(tuple(p[-1]), tuple(q[0])) for (p, _), (q, _) in itertools.pairwise(parts)]
    if all(last < first for last, first in ends):
        return parts
    pairs = np.concatenate([p for p, _ in parts])
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    covis = np.concatenate([c for _, c in parts])[order] if parts[0][1] is not None else None
    return [(pairs[order], covis)]


class PairArrays(Mapping):
    """The datasets of a pairs file, in the file's order, each made when asked for (and not kept).

    Holds the kept pairs and their covisibility in parts (one per scene) and the per-view labels; ``pair`` and
    ``covisibility`` are the parts joined, distance, angle, weight and positive come from the pairs' geometry
    (computed once for the four, dropped when a later dataset is asked for), the relative pose in blocks of
    pairs, the per-view CSR (:func:`pairing.store.csr_of_sorted_parts`) when ``view_offsets`` is asked for
    (``view_pairs`` kept until asked for next).

    Args:
        parts: (pairs int64 (p, 2), covisibility float32 (p, 2) or None) that together hold the file's rows
            in order (by (a, b), a < b); covisibility None when ``config.compute_covisibility`` is off.
        labels: per-view pretext arrays by dataset name.
        meta: per-view metadata of every view (position, rotation, pose, scene).
        config: pairing settings.
    """

    GEOMETRY_KEYS = ("distance", "angle", "weight", "positive")
    LABEL_KEYS = ("depth_order_boxes", "depth_order_label", "depth_order_permutations", "crop_boxes", "crop_offset",
                  "crop_log_scale", "jigsaw_label", "jigsaw_permutations", "flip_label")

    def __init__(self, *, parts: list[tuple[np.ndarray, np.ndarray | None]], labels: dict[str, np.ndarray],
                 meta: dict[str, np.ndarray], config: PairConfig):
        self.parts, self.labels, self.meta, self.config = parts, labels, meta, config
        self.labels["depth_order_permutations"] = np.asarray(PERMUTATIONS_3, np.int8)
        self._keys = ("pair", *self.GEOMETRY_KEYS, "rel_translation", "rel_rotation", "view_offsets", "view_pairs",
                      *self.LABEL_KEYS) + (("covisibility",) if config.compute_covisibility else ())
        self._geometry: tuple[np.ndarray, np.ndarray] | None = None
        self._view_pairs: np.ndarray | None = None

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._keys:
            raise KeyError(key)
        if key not in self.GEOMETRY_KEYS:
            self._geometry = None
        if key in ("pair", "covisibility"):
            return self._joined(0 if key == "pair" else 1)
        if key in self.GEOMETRY_KEYS:
            return self._from_geometry(key)
        if key in ("rel_translation", "rel_rotation"):
            return self._relative_pose(key == "rel_rotation")
        if key in ("view_offsets", "view_pairs"):
            if key == "view_pairs" and self._view_pairs is not None:
                rows, self._view_pairs = self._view_pairs, None
                return rows
            offsets, rows = csr_of_sorted_parts([p for p, _ in self.parts], len(self.meta["scene"]))
            self._view_pairs = rows if key == "view_offsets" else None
            return offsets if key == "view_offsets" else rows
        return self.labels[key]

    def _joined(self, which: int) -> np.ndarray:
        """The parts' pairs (0: int64 (P, 2)) or covisibility (1: float32 (P, 2)) as one array."""
        empty = np.zeros((0, 2), np.int64 if which == 0 else np.float32)
        return np.concatenate([empty, *(part[which] for part in self.parts)])

    def _from_geometry(self, key: str) -> np.ndarray:
        """distance, angle (float32 metres, radians), ESS-MW weight (float32) or positive (uint8), each (P,)."""
        if self._geometry is None:
            position = self.meta["position"].astype(np.float64)
            rotation = self.meta["rotation"].astype(np.float64)
            both = [pair_geometry(position, rotation, p) for p, _ in self.parts]
            self._geometry = (np.concatenate([np.zeros(0, np.float32), *(d for d, _ in both)]),
                              np.concatenate([np.zeros(0, np.float32), *(a for _, a in both)]))
        distance, angle = self._geometry
        sim = self.config.similarity
        if key == "distance":
            return distance
        if key == "angle":
            return angle
        if key == "weight":
            return weighted_similarity(distance, angle, sim).astype(np.float32)
        gate = binary_similarity(distance, angle, sim) > 0
        covis = self._joined(1) if self.config.compute_covisibility else np.broadcast_to(np.float32(0), (len(gate), 2))
        return _positive(self.config, gate, covis).astype(np.uint8)

    def _relative_pose(self, rotation: bool) -> np.ndarray:
        """float32 (P, 3) b's camera centre in a's frame (metres), or (P, 4) its orientation (w, x, y, z)."""
        out = np.empty((sum(len(p) for p, _ in self.parts), 4 if rotation else 3), np.float32)
        pose, start = self.meta["pose"], 0
        for pairs, _ in self.parts:
            for s in range(0, len(pairs), RELATIVE_POSE_BLOCK):
                p = pairs[s : s + RELATIVE_POSE_BLOCK]
                t, q = relative_pose(pose[p[:, 0]].astype(np.float64), pose[p[:, 1]].astype(np.float64))
                out[start : start + len(p)] = q if rotation else t
                start += len(p)
        return out


COVISIBILITY_BLOCK = 1 << 16  # candidate pairs per covisibility call (~35 MB of temporaries)
RELATIVE_POSE_BLOCK = 1 << 16  # pairs per relative-pose computation while writing (~40 MB of temporaries)


def _empty_labels(n: int) -> dict[str, np.ndarray]:
    """Per-view pretext label arrays of ``n`` views before sampling (depth-order label -1: none)."""
    return {
        "depth_order_boxes": np.zeros((n, 3, 4), np.int16),
        "depth_order_label": np.full(n, -1, np.int8),
        "crop_boxes": np.zeros((n, 2, 4), np.int16),
        "jigsaw_label": np.zeros(n, np.int16),
        "flip_label": np.zeros(n, np.int8),
    }


def _scene_labels(
    labels: dict[str, np.ndarray],
    views: np.ndarray,
    depth: np.ndarray,
    size: tuple[int, int],
    *,
    rng: np.random.Generator,
    config: PairConfig,
    perms: np.ndarray,
    with_depth_order: bool,
) -> None:
    """Sample the pretext labels of one scene's views into ``labels`` (from :func:`_empty_labels`), in place.

    Args:
        labels: the per-view label arrays of every view.
        views: int (n_s,) sorted global indices of the scene's views.
        depth: float32 (n_s, H, W) their depth maps, in metres.
        size: (H, W) image height and width, in pixels.
        rng: the scene's generator; its draws run view by view in ``views`` order.
        config: pairing settings.
        perms: (n_perm, grid * grid) jigsaw permutation set.
        with_depth_order: the images are large enough for depth-order regions.
    """
    h, w = size
    for i, v in enumerate(views):
        sample = sample_depth_order(depth[i], rng=rng, config=config.depth_order) if with_depth_order else None
        if sample is not None:
            labels["depth_order_boxes"][v] = sample.boxes
            labels["depth_order_label"][v] = sample.label
        labels["crop_boxes"][v] = sample_crop_boxes(h, w, rng=rng, config=config.crops)  # relations: all at once
        labels["jigsaw_label"][v] = sample_jigsaw(rng=rng, permutations=perms)
        labels["flip_label"][v] = sample_flipped_patch(rng=rng, grid=config.jigsaw_grid)


def _positive(config: PairConfig, gate: np.ndarray, covis: np.ndarray) -> np.ndarray:
    """bool (P,) positives among the candidates under ``config.rule``.

    Args:
        config: pairing settings (rule and ``min_covisibility``).
        gate: bool (P,) the ESS-MB distance and angle gate.
        covis: float32 (P, 2) covisibility of each candidate in both directions, in [0, 1].
    """
    mean_covis = covis.mean(axis=1)
    if config.rule is PositiveRule.DISTANCE:
        return gate
    if config.rule is PositiveRule.COVISIBILITY:
        return mean_covis >= config.min_covisibility
    return gate & (mean_covis >= config.min_covisibility)


def positives_per_view(pairs_file: dict[str, Any]) -> np.ndarray:
    """int64 (N,) number of positives of every view in a loaded pairs file."""
    pos = pairs_file["pair"][pairs_file["positive"].astype(bool)]
    return np.bincount(pos.reshape(-1), minlength=int(pairs_file["attrs"]["n_views"]))


__all__ = ["PairArrays", "PairConfig", "PositiveRule", "build_pairs", "compute_pairs", "positives_per_view"]
