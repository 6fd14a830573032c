"""Evaluation metrics as pure functions: classification accuracy, regression errors, pose errors, recall, mean
and spread.

Shared by every benchmark script and by :mod:`benchmarks.evaluation.compare` (one definition, never a copy). Each
function checks its inputs' shapes and returns plain numbers or numpy arrays; an empty input gives NaN
rather than an exception, so a setting with no test views still yields a (NaN) report entry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def _labels_pair(pred: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, labels = np.asarray(pred), np.asarray(labels)
    if pred.shape != labels.shape or pred.ndim != 1:
        raise ValueError(f"pred and labels must be 1-D arrays of equal length, got {pred.shape} and {labels.shape}")
    for name, a in (("pred", pred), ("labels", labels)):
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    return pred.astype(np.int64), labels.astype(np.int64)


def _check_range(a: np.ndarray, n_classes: int, name: str) -> None:
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if a.size and (a.min() < 0 or a.max() >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes}); drop unknown labels (-1) before scoring")


def top1_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of predictions equal to the labels.

    Args:
        pred: int (N,) predicted classes.
        labels: int (N,) true classes.

    Returns:
        Accuracy in [0, 1]; NaN when N = 0.
    """
    pred, labels = _labels_pair(pred, labels)
    return float(np.mean(pred == labels)) if labels.size else math.nan


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class).

    Args:
        pred: int (N,) predicted classes in [0, n_classes).
        labels: int (N,) true classes in [0, n_classes).
        n_classes: number of classes.

    Returns:
        int64 (n_classes, n_classes): row = true class, column = predicted class.
    """
    pred, labels = _labels_pair(pred, labels)
    _check_range(pred, n_classes, "pred")
    _check_range(labels, n_classes, "labels")
    return np.bincount(labels * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Accuracy (recall) of every class: correct predictions among the views of that class.

    Args:
        pred: int (N,) predicted classes in [0, n_classes).
        labels: int (N,) true classes in [0, n_classes).
        n_classes: number of classes.

    Returns:
        float64 (n_classes,) in [0, 1]; NaN for classes absent from ``labels``.
    """
    cm = confusion_matrix(pred, labels, n_classes)  # (n, n)
    support = cm.sum(axis=1)  # (n,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def tile_accuracy(pred: np.ndarray, labels: np.ndarray, permutations: np.ndarray) -> float:
    """Fraction of jigsaw tiles a predicted permutation puts in the right place.

    Position ``k`` of a view is right when the predicted permutation and the true one take the tile at
    ``k`` from the same source tile: ``permutations[pred][k] == permutations[labels][k]``. A correct label
    scores 1; a wrong one still scores the positions the two permutations share.

    Args:
        pred: int (N,) predicted permutation indices into ``permutations``.
        labels: int (N,) true permutation indices.
        permutations: int (n, k) one permutation of ``range(k)`` per label.

    Returns:
        Mean over views and positions in [0, 1]; NaN when N = 0.
    """
    pred, labels = _labels_pair(pred, labels)
    permutations = np.asarray(permutations)
    if permutations.ndim != 2:
        raise ValueError(f"permutations must be a (labels, tiles) array, got shape {permutations.shape}")
    _check_range(pred, permutations.shape[0], "pred")
    _check_range(labels, permutations.shape[0], "labels")
    return float(np.mean(permutations[pred] == permutations[labels])) if labels.size else math.nan


def _targets_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape or pred.ndim not in (1, 2):
        raise ValueError(f"pred and target must have the same shape (N,) or (N, d), got {pred.shape} and {target.shape}")
    return (pred, target) if pred.ndim == 2 else (pred[:, None], target[:, None])


def mean_absolute_error(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean absolute error of every target column.

    Args:
        pred: (N, d) or (N,) predictions.
        target: same shape, true values (same unit).

    Returns:
        float64 (d,) in the targets' unit; NaN when N = 0.
    """
    pred, target = _targets_pair(pred, target)
    if pred.shape[0] == 0:
        return np.full(pred.shape[1], math.nan)
    return np.mean(np.abs(pred - target), axis=0)


def r2_score(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Coefficient of determination of every target column: ``1 - SS_res / SS_tot``.

    ``SS_tot`` is taken around the mean of ``target`` itself (the rows scored), so predicting that mean
    scores 0, a perfect prediction 1, and anything worse than the mean is negative.

    Args:
        pred: (N, d) or (N,) predictions.
        target: same shape, true values.

    Returns:
        float64 (d,); NaN for a column whose targets do not vary (or N = 0).
    """
    pred, target = _targets_pair(pred, target)
    ss_res = np.sum((target - pred) ** 2, axis=0)  # (d,)
    ss_tot = np.sum((target - target.mean(axis=0)) ** 2, axis=0) if len(target) else np.zeros(target.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), math.nan)


def _quaternions(q: np.ndarray, name: str) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) (quaternions w, x, y, z), got {q.shape}")
    norm = np.linalg.norm(q, axis=1, keepdims=True)  # (N, 1)
    if np.any(~(norm > 0)):
        raise ValueError(f"{name} holds a zero or non-finite quaternion; give unit quaternions [w, x, y, z]")
    return q / norm


def rotation_error_deg(q_a: np.ndarray, q_b: np.ndarray) -> np.ndarray:
    """Geodesic angle between two orientations: the angle of the rotation taking one to the other.

    ``q`` and ``-q`` are the same rotation, so the error is at most 180 degrees. Computed as
    ``4 * atan2(|a - s b|, |a + s b|)`` with ``s = sign(a . b)``, accurate for small angles (``arccos``
    of the dot product is not).

    Args:
        q_a: (N, 4) quaternions (w, x, y, z); normalised here.
        q_b: (N, 4) quaternions (w, x, y, z).

    Returns:
        float64 (N,) degrees in [0, 180].
    """
    a, b = _quaternions(q_a, "q_a"), _quaternions(q_b, "q_b")
    if a.shape != b.shape:
        raise ValueError(f"q_a and q_b must have the same shape (N, 4), got {a.shape} and {b.shape}")
    s = np.where(np.einsum("nk,nk->n", a, b) < 0, -1.0, 1.0)[:, None]  # (N, 1)
    half = np.arctan2(np.linalg.norm(a - s * b, axis=1), np.linalg.norm(a + s * b, axis=1))  # (N,) quarter angle
    return np.degrees(4.0 * half)


def position_error(p_a: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    """Euclidean distance between two sets of positions.

    Args:
        p_a: (N, 3) metres.
        p_b: (N, 3) metres.

    Returns:
        float64 (N,) metres.
    """
    p_a, p_b = np.asarray(p_a, np.float64), np.asarray(p_b, np.float64)
    if p_a.shape != p_b.shape or p_a.ndim != 2:
        raise ValueError(f"p_a and p_b must have the same shape (N, D), got {p_a.shape} and {p_b.shape}")
    return np.linalg.norm(p_a - p_b, axis=1)


def recall_at(errors: np.ndarray, threshold: float) -> float:
    """Fraction of errors at most ``threshold`` (a NaN error, e.g. a query that could not be answered,
    counts as a miss).

    Args:
        errors: (N,) errors in the threshold's unit.
        threshold: inclusive bound.

    Returns:
        Recall in [0, 1]; NaN when N = 0.
    """
    errors = np.asarray(errors, np.float64).ravel()
    return float(np.mean(errors <= threshold)) if errors.size else math.nan


def median(values: np.ndarray) -> float:
    """Median of the finite values; NaN when there are none."""
    values = np.asarray(values, np.float64).ravel()
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else math.nan


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of repeated measurements, e.g. over seeds.

    Args:
        values: N numbers; ``None`` counts as NaN (and makes both results NaN).

    Returns:
        ``(mean, std)``; std is 0 for a single value; both NaN for none.
    """
    v = np.array([math.nan if x is None else float(x) for x in values], np.float64)
    if v.size == 0:
        return math.nan, math.nan
    mean = float(np.mean(v))
    std = float(np.std(v, ddof=1)) if v.size > 1 else (0.0 if math.isfinite(mean) else math.nan)
    return mean, std
