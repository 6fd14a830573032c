"""Frozen features of a dataset's views (and of images derived from them) for every representation.

The representations ``ess bench`` reads: each frozen encoder it is given (the run's backbone, its random
initialisation) and raw pixels (:func:`pixel_features`). Images are read from the shards once, chunk by
chunk; images derived from a view (its crops, its jigsaw tiles: :mod:`benchmarks.evaluation.pretext`) are
made from the chunk in memory and embedded with it, so no view is read twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

READ_CHUNK = 512  # views read from the shards (and embedded) at a time
DERIVED_CHUNK = 64  # views whose derived images are made and embedded at a time (bounds their memory)
PIXELS = "pixels"


def pixel_features(images: np.ndarray, size: int) -> np.ndarray:
    """The raw-pixel baseline: RGB averaged over areas down to ``size`` x ``size``, flattened.

    Args:
        images: (N, H, W, 3) uint8, or float in [0, 255].
        size: output side in pixels.

    Returns:
        float32 (N, 3 * size * size) in [0, 1].
    """
    x = torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W)
    x = torch.nn.functional.adaptive_avg_pool2d(x, (size, size))  # (N, 3, size, size)
    return x.reshape(x.shape[0], -1).numpy()


@dataclass(frozen=True)
class FeatureSettings:
    """How images are embedded.

    Attributes:
        size: side in pixels the encoders see (images are resized to it).
        batch_size: images per encoder forward pass.
        device: torch device of the encoders.
        pixels_size: side of the raw-pixel baseline's downsampled image.
    """

    size: int
    batch_size: int
    device: str
    pixels_size: int


@dataclass(frozen=True)
class Derived:
    """Images made from some views, embedded alongside them.

    Attributes:
        views: int (V_d,) sorted view indices, a subset of the views embedded.
        make: ``make(rgb, views)`` -> float32 (c, m, size, size, 3) in [0, 255]: ``m`` images of each of the
            ``c`` views ``views`` (uint8 (c, H, W, 3) images ``rgb``), already at the encoders' size.
    """

    views: np.ndarray
    make: Callable[[np.ndarray, np.ndarray], np.ndarray]


def embed_views(
    reader,
    views: np.ndarray,
    models: dict[str, torch.nn.Module],
    *,
    settings: FeatureSettings,
    derived: Derived | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Features of ``views`` (and of their derived images) for each model plus raw pixels.

    Args:
        reader: an open :class:`envsim.store.reader.DatasetReader`.
        views: int (V,) sorted view indices.
        models: name -> frozen encoder mapping normalised (B, 3, size, size) images to (B, D) features.
        settings: image size, batch, device, pixel baseline size.
        derived: images to make from some of the views (None: none).
        progress: called with (views embedded so far, views to embed) after every chunk.

    Returns:
        ``(features, derived_features)``: per representation (each model's name and ``"pixels"``), float32
        (V, D) features of ``views`` in order, and float32 (V_d, m, D) features of the derived images (empty
        (0, 0, 0) arrays when ``derived`` is None).
    """
    names = (*models, PIXELS)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    extra: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for s in range(0, views.size, READ_CHUNK):
        chunk = views[s : s + READ_CHUNK]
        rgb = reader.read_many("rgb", chunk)  # uint8 (c, H, W, 3)
        for name, feats in _embed_images(rgb, models, settings).items():
            parts[name].append(feats)
        if derived is not None:
            keep = np.isin(chunk, derived.views)
            for d in range(0, int(keep.sum()), DERIVED_CHUNK):
                rows = np.flatnonzero(keep)[d : d + DERIVED_CHUNK]
                images = derived.make(rgb[rows], chunk[rows])  # (c, m, size, size, 3)
                flat = images.reshape(-1, *images.shape[2:])  # (c * m, size, size, 3)
                for name, feats in _embed_images(flat, models, settings).items():
                    extra[name].append(feats.reshape(images.shape[0], images.shape[1], -1))  # (c, m, D)
        if progress is not None:
            progress(min(s + READ_CHUNK, views.size), views.size)
    full = {k: np.concatenate(v).astype(np.float32) if v else np.zeros((0, 0), np.float32) for k, v in parts.items()}
    more = {k: np.concatenate(v).astype(np.float32) if v else np.zeros((0, 0, 0), np.float32) for k, v in extra.items()}
    return full, more


def _embed_images(images: np.ndarray, models: dict[str, torch.nn.Module], settings: FeatureSettings) -> dict[str, np.ndarray]:
    """float32 (B, D) features of (B, H, W, 3) images for each model (resized to ``settings.size``) and pixels."""
    from training.encoder import embed

    out = {name: embed(model, images, batch_size=settings.batch_size, size=settings.size, device=settings.device)
           for name, model in models.items()}
    out[PIXELS] = pixel_features(images, settings.pixels_size)
    return out
