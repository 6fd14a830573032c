"""Probes that read a frozen representation: linear classifier, weighted k-NN, ridge regression.

All three take features as arrays and never touch an encoder, so a probe cannot change what it measures.

- :func:`linear_probe`: multinomial logistic regression on standardised features, full-batch L-BFGS
  (the linear evaluation protocol of MoCo / SimCLR, without augmentation: features are computed once).
- :func:`knn_classify`: cosine-similarity k-NN with votes weighted by ``exp(s / T)``
  (Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination", CVPR 2018;
  the k-NN monitor of MoCo).
- :func:`ridge_regression`: closed-form ridge on standardised features (a linear readout of a continuous
  target such as the camera position); :func:`ridge_regression_cv` picks its penalty per target by
  leave-one-out error on the training rows (the test rows never choose it).

Unknown labels: training labels of -1 (a view whose room is unknown) are dropped before fitting. The
probes predict a class for every test row; the caller excludes test rows whose label is -1 from scoring.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

UNKNOWN = -1
KNN_CHUNK = 1024  # test rows per similarity block: bounds the (chunk, n_train) matrix
RIDGE_ALPHAS = tuple(float(10.0**e) for e in range(-4, 7))  # penalties ridge_regression_cv chooses from


def _features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (views, channels), got shape {x.shape}")
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite values; check the encoder's output")
    return x


def _train_test(train_x, train_y, test_x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    train_x, test_x = _features(train_x, "train_x"), _features(test_x, "test_x")
    train_y = np.asarray(train_y)
    if train_y.shape[:1] != train_x.shape[:1]:
        raise ValueError(f"train_y must have one row per training view ({train_x.shape[0]}), got {train_y.shape}")
    if test_x.shape[1] != train_x.shape[1]:
        raise ValueError(f"test_x has {test_x.shape[1]} channels, train_x {train_x.shape[1]}; use one representation")
    return train_x, train_y, test_x


def _labelled(train_x: np.ndarray, train_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the views whose label is unknown (-1)."""
    if train_y.ndim != 1 or (train_y.size and not np.issubdtype(train_y.dtype, np.integer)):
        raise ValueError(
            f"train_y must be 1-D integer class indices (-1 = unknown), got {train_y.dtype} {train_y.shape}"
        )
    if train_y.size and train_y.min() < UNKNOWN:
        raise ValueError(f"train_y holds {int(train_y.min())}; labels are class indices >= 0, or -1 for unknown")
    keep = train_y != UNKNOWN
    if not np.any(keep):
        raise ValueError("no training view has a known label; a probe needs at least one")
    return train_x[keep], train_y[keep].astype(np.int64)


def standardize(train_x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Centre and scale every channel by the training rows' mean and standard deviation (float64).

    A constant channel (zero spread) is only centred.

    Args:
        train_x: (n, C) features that define the statistics.
        *others: (m, C) arrays scaled with the same statistics.

    Returns:
        ``[train_x, *others]`` standardised.
    """
    x = np.asarray(train_x, np.float64)
    mean = x.mean(axis=0)  # (C,)
    std = x.std(axis=0)  # (C,)
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return [(np.asarray(a, np.float64) - mean) / std for a in (x, *others)]


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    n_classes: int,
    *,
    seed: int,
    epochs: int = 100,
    weight_decay: float = 1e-4,
) -> np.ndarray:
    """Multinomial logistic regression on standardised features; the predicted class of every test row.

    Minimises ``mean cross-entropy + weight_decay / 2 * ||W||^2`` (bias not decayed; loss and gradient in
    closed form, :func:`softmax_regression_loss`, float64) with full-batch L-BFGS (SciPy's L-BFGS-B: no
    learning rate to tune) from weights drawn with ``seed``: the result is a deterministic function of the
    inputs and the seed. Standardisation uses the training rows' statistics only. Classes absent from the
    (labelled) training rows get no output unit, so they are never predicted; a single training class is
    predicted everywhere.

    Args:
        train_x: (n, C) training features.
        train_y: int (n,) classes in [0, n_classes); -1 (unknown) rows are dropped.
        test_x: (m, C) features to classify.
        n_classes: number of classes.
        seed: initialisation seed (>= 0).
        epochs: at most this many L-BFGS iterations over the full training set (each is one or a few
            passes); it stops earlier once the gradient or the loss change is negligible. >= 1.
        weight_decay: L2 penalty on the weights, >= 0.

    Returns:
        int64 (m,) predicted classes in [0, n_classes).

    Raises:
        ValueError: bad shapes, labels out of range, or no labelled training row.
    """
    train_x, train_y, test_x = _train_test(train_x, train_y, test_x)
    x, y = _labelled(train_x, train_y)
    if y.max() >= n_classes:
        raise ValueError(f"train_y holds class {int(y.max())} but n_classes is {n_classes}")
    if epochs < 1 or weight_decay < 0 or seed < 0:
        raise ValueError("epochs must be >= 1, weight_decay >= 0 and seed >= 0 (L-BFGS needs no learning rate)")
    present = np.unique(y)  # sorted classes seen in training
    if present.size == 1 or test_x.shape[0] == 0:
        return np.full(test_x.shape[0], present[0], np.int64)
    xs, ts = standardize(x, test_x)  # (n, C), (m, C)
    onehot = np.eye(present.size)[np.searchsorted(present, y)]  # (n, k) over the classes seen in training
    c, k = xs.shape[1], present.size
    theta0 = np.concatenate([np.random.default_rng(seed).normal(0.0, 0.01, c * k), np.zeros(k)])

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return softmax_regression_loss(theta, xs, onehot, weight_decay)

    theta = scipy.optimize.minimize(  # deterministic: no randomness inside L-BFGS-B
        loss_and_grad, theta0, jac=True, method="L-BFGS-B",
        options={"maxiter": epochs, "maxcor": 20, "gtol": 1e-7, "ftol": 1e-12},
    ).x
    w, b = theta[: c * k].reshape(c, k), theta[c * k :]
    logits = ts @ w + b  # (m, k)
    return present[logits.argmax(axis=1)].astype(np.int64)


def softmax_regression_loss(
    theta: np.ndarray, x: np.ndarray, onehot: np.ndarray, weight_decay: float
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of a linear softmax classifier plus ``weight_decay / 2 * ||W||^2``, and its gradient.

    Args:
        theta: (C * k + k,) the weights W (C, k), row-major, then the biases b (k,).
        x: (n, C) features.
        onehot: (n, k) one-hot targets.
        weight_decay: L2 penalty on W (not on b).

    Returns:
        (loss, gradient (C * k + k,)).
    """
    n, c = x.shape
    k = onehot.shape[1]
    w, b = theta[: c * k].reshape(c, k), theta[c * k :]  # (C, k), (k,)
    z = x @ w + b  # (n, k) logits
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # (n, k) log-softmax
    loss = -np.sum(onehot * log_p) / n + 0.5 * weight_decay * np.sum(w * w)
    d = (np.exp(log_p) - onehot) / n  # (n, k) dloss/dz
    grad = np.concatenate([(x.T @ d + weight_decay * w).ravel(), d.sum(axis=0)])
    return float(loss), grad


def knn_classify(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, *, k: int = 20, temperature: float = 0.07
) -> np.ndarray:
    """Weighted k-nearest-neighbour vote by cosine similarity (the InstDisc / MoCo k-NN monitor).

    Each test row takes its ``k`` most similar training rows (cosine similarity ``s``); each votes for its
    class with weight ``exp(s / T)``; the class with the largest total wins (ties: the lower class index).

    Args:
        train_x: (n, C) training features (not standardised: cosine similarity of the raw features).
        train_y: int (n,) classes >= 0; -1 (unknown) rows are dropped.
        test_x: (m, C) features to classify.
        k: neighbours, >= 1 (capped at the number of labelled training rows).
        temperature: T > 0 of the vote weights.

    Returns:
        int64 (m,) predicted classes.
    """
    train_x, train_y, test_x = _train_test(train_x, train_y, test_x)
    x, y = _labelled(train_x, train_y)
    if k < 1 or not temperature > 0:
        raise ValueError(f"k must be >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    k = min(k, x.shape[0])
    n_classes = int(y.max()) + 1
    db = _unit_rows(x)  # (n, C)
    out = np.empty(test_x.shape[0], np.int64)
    for s in range(0, test_x.shape[0], KNN_CHUNK):
        sim = _unit_rows(test_x[s : s + KNN_CHUNK]) @ db.T  # (c, n)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]  # (c, k) indices of the k most similar
        weight = np.exp((np.take_along_axis(sim, top, axis=1) - 1.0) / temperature)  # (c, k); shift by max s = 1
        votes = np.zeros((sim.shape[0], n_classes))  # (c, classes)
        np.add.at(votes, (np.arange(sim.shape[0])[:, None], y[top]), weight)
        out[s : s + KNN_CHUNK] = votes.argmax(axis=1)
    return out


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float64); a zero row stays zero."""
    x = np.asarray(x, np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)  # (n, 1)
    return x / np.where(norm > 0, norm, 1.0)


def ridge_regression(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    """Closed-form ridge regression on standardised features, with an unpenalised intercept.

    Solves ``min_W ||X W - (Y - mean Y)||^2 + alpha ||W||^2`` on the standardised training features: the
    primal system ``(X^T X + alpha I) W = X^T Y`` when n > C, else the equivalent dual
    ``W = X^T (X X^T + alpha I)^-1 Y``; ``alpha = 0`` is ordinary least squares (minimum-norm solution).

    Args:
        train_x: (n, C) training features, n >= 1.
        train_y: (n, d) or (n,) targets (e.g. camera positions in metres).
        test_x: (m, C) features to predict from.
        alpha: ridge penalty >= 0, in units of standardised features.

    Returns:
        float64 (m, d) predictions ((m,) when ``train_y`` is 1-D).
    """
    train_x, train_y, test_x = _train_test(train_x, train_y, test_x)
    if train_x.shape[0] == 0:
        raise ValueError("ridge regression needs at least one training row")
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    one_target, xs, ts, y_mean, yc = _regression_inputs(train_x, train_y, test_x)
    n, c = xs.shape
    if alpha == 0:
        coef = np.linalg.lstsq(xs, yc, rcond=None)[0]  # (C, d)
    elif n > c:
        coef = np.linalg.solve(xs.T @ xs + alpha * np.eye(c), xs.T @ yc)  # (C, d)
    else:
        coef = xs.T @ np.linalg.solve(xs @ xs.T + alpha * np.eye(n), yc)  # (C, d)
    pred = ts @ coef + y_mean  # (m, d)
    return pred[:, 0] if one_target else pred


def _regression_inputs(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray):
    """(targets were 1-D, standardised train (n, C) and test (m, C) features, target mean (d,), centred targets (n, d))."""
    y = np.asarray(train_y, np.float64)
    y2 = y.reshape(len(y), -1)  # (n, d)
    xs, ts = standardize(train_x, test_x)  # (n, C), (m, C)
    y_mean = y2.mean(axis=0)  # (d,)
    return y.ndim == 1, xs, ts, y_mean, y2 - y_mean


def ridge_regression_cv(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, *, alphas: tuple[float, ...] = RIDGE_ALPHAS
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression as :func:`ridge_regression`, each target's penalty chosen by leave-one-out error.

    For every ``alpha`` the leave-one-out residuals come in closed form from one SVD of the standardised
    training features ``X = U S V^T``: with hat matrix ``H = 11^T / n + U diag(s^2 / (s^2 + alpha)) U^T``
    (intercept included), the residual of row i fitted without it is ``r_i / (1 - H_ii)``. Each target
    column takes the penalty of smallest mean squared leave-one-out residual (ties: the larger penalty), so
    a readout with no signal shrinks to the training mean (R^2 near 0 on new data) instead of interpolating
    noise. Deterministic.

    Args:
        train_x: (n, C) training features, n >= 2.
        train_y: (n, d) or (n,) targets.
        test_x: (m, C) features to predict from.
        alphas: candidate penalties > 0, in units of standardised features.

    Returns:
        ``(pred, alpha)``: float64 (m, d) predictions ((m,) when ``train_y`` is 1-D) and float64 (d,) the
        penalty chosen for each target.
    """
    train_x, train_y, test_x = _train_test(train_x, train_y, test_x)
    if train_x.shape[0] < 2:
        raise ValueError("leave-one-out needs at least two training rows")
    if not alphas or min(alphas) <= 0:
        raise ValueError(f"alphas must be a non-empty tuple of penalties > 0, got {alphas}")
    one_target, xs, ts, y_mean, yc = _regression_inputs(train_x, train_y, test_x)
    n = xs.shape[0]
    u, s, vt = np.linalg.svd(xs, full_matrices=False)  # (n, r), (r,), (r, C)
    uty = u.T @ yc  # (r, d)
    best_err = np.full(yc.shape[1], np.inf)  # (d,)
    best_alpha = np.full(yc.shape[1], float(max(alphas)))  # (d,)
    for alpha in sorted(alphas, reverse=True):
        shrink = s**2 / (s**2 + alpha)  # (r,)
        fitted = u @ (shrink[:, None] * uty)  # (n, d)
        keep = 1.0 - (u**2 @ shrink + 1.0 / n)  # (n,) 1 - H_ii
        with np.errstate(divide="ignore", invalid="ignore"):
            loo = np.where(keep[:, None] > 1e-9, (yc - fitted) / keep[:, None], np.inf)  # (n, d)
        err = np.mean(loo**2, axis=0)  # (d,)
        better = err < best_err
        best_err, best_alpha = np.where(better, err, best_err), np.where(better, alpha, best_alpha)
    coef = vt.T @ ((s / (s**2 + best_alpha[:, None])).T * uty)  # (C, d): per column V diag(s / (s^2 + a)) U^T y
    pred = ts @ coef + y_mean  # (m, d)
    return (pred[:, 0] if one_target else pred), best_alpha
