"""Probes on synthetic data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.evaluation.probes import (
    knn_classify,
    linear_probe,
    ridge_regression,
    ridge_regression_cv,
    softmax_regression_loss,
    standardize,
)


def test_softmax_loss_and_gradient_match_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    n, c, k, wd = 30, 7, 4, 0.3
    x, y = rng.normal(size=(n, c)), rng.integers(0, k, n)
    theta = rng.normal(size=c * k + k)
    loss, grad = softmax_regression_loss(theta, x, np.eye(k)[y], wd)
    t = torch.tensor(theta, requires_grad=True)
    w, b = t[: c * k].view(c, k), t[c * k :]
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(x) @ w + b, torch.from_numpy(y)) + 0.5 * wd * (w * w).sum()
    ref.backward()
    assert loss == pytest.approx(float(ref.detach()), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def _separable(rng, n=300, c=10, k=4):
    centres = rng.normal(size=(k, c)) * 5
    y = rng.integers(0, k, n)
    x = centres[y] + rng.normal(size=(n, c)) * 0.3
    return x, y


def test_linear_probe_separable_is_perfect_and_deterministic():
    rng = np.random.default_rng(0)
    x, y = _separable(rng)
    pred = linear_probe(x[:200], y[:200], x[200:], 4, seed=0)
    assert np.mean(pred == y[200:]) == 1.0
    assert pred.dtype == np.int64
    np.testing.assert_array_equal(pred, linear_probe(x[:200], y[:200], x[200:], 4, seed=0))


def test_linear_probe_xor_free_linear_boundary():
    # Classes split by a hyperplane, not by clusters: still linearly separable.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0, 1.0]) > 0).astype(int)
    margin = np.abs(x @ np.array([1.0, -2.0, 0.5, 0.0, 1.0])) > 0.1
    x, y = x[margin], y[margin]
    pred = linear_probe(x, y, x, 2, seed=3, epochs=200)
    assert np.mean(pred == y) == 1.0


def test_linear_probe_unknown_and_absent_classes():
    rng = np.random.default_rng(2)
    x, y = _separable(rng, k=3)
    y_train = y.copy()
    y_train[:20] = -1  # unknown rooms: dropped from training
    pred = linear_probe(x, y_train, x, 6, seed=0)  # classes 3..5 never seen in training
    assert set(np.unique(pred)) <= {0, 1, 2}
    assert np.mean(pred == y) == 1.0
    one = linear_probe(x, np.full(len(x), 4), x[:5], 6, seed=0)  # a single training class
    np.testing.assert_array_equal(one, 4)
    with pytest.raises(ValueError, match="known label"):
        linear_probe(x, np.full(len(x), -1), x, 3, seed=0)
    with pytest.raises(ValueError, match="n_classes"):
        linear_probe(x, y, x, 2, seed=0)


def test_knn_on_clusters():
    rng = np.random.default_rng(3)
    directions = np.eye(8)[:4] * 10  # clusters in distinct directions: cosine separates them
    y = rng.integers(0, 4, 200)
    x = directions[y] + rng.normal(size=(200, 8))
    y_train = y[:150].copy()
    y_train[:10] = -1
    pred = knn_classify(x[:150], y_train, x[150:], k=10)
    assert np.mean(pred == y[150:]) == 1.0
    np.testing.assert_array_equal(pred, knn_classify(x[:150], y_train, x[150:], k=10))
    # k larger than the training set is capped; a lone neighbour decides with k=1.
    assert knn_classify(x[:3], y[:3], x[:3], k=1).tolist() == y[:3].tolist()
    assert len(knn_classify(x[:3], y[:3], x[:7], k=50)) == 7


def test_knn_weighted_vote_by_hand():
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = np.array([0, 0, 1])
    query = np.array([[0.2, 1.0]])
    # k=3: class 1's single very similar neighbour outweighs two dissimilar class-0 neighbours at T=0.07.
    assert knn_classify(train, labels, query, k=3, temperature=0.07)[0] == 1
    # At a huge temperature every vote weighs ~1: the majority (class 0) wins.
    assert knn_classify(train, labels, query, k=3, temperature=1e6)[0] == 0


def test_ridge_recovers_linear_map():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 12)) * rng.uniform(0.1, 10, 12) + rng.normal(size=12)
    w = rng.normal(size=(12, 3))
    b = np.array([1.0, -2.0, 0.5])
    y = x @ w + b
    xt = rng.normal(size=(50, 12)) * 3
    for alpha in (1e-8, 0.0):
        np.testing.assert_allclose(ridge_regression(x, y, xt, alpha=alpha), xt @ w + b, atol=1e-4)
    # Fewer rows than channels (the dual form) still interpolates the training rows with a tiny alpha.
    xs, ys = x[:8], y[:8]
    np.testing.assert_allclose(ridge_regression(xs, ys, xs, alpha=1e-9), ys, atol=1e-4)
    # 1-D targets come back 1-D; a large alpha shrinks towards the mean.
    assert ridge_regression(x, y[:, 0], xt).shape == (50,)
    np.testing.assert_allclose(ridge_regression(x, y, xt, alpha=1e12), np.broadcast_to(y.mean(0), (50, 3)), atol=1e-3)


def test_ridge_constant_feature_and_errors():
    x = np.column_stack([np.arange(10.0), np.ones(10)])  # one constant channel
    y = 2 * np.arange(10.0)[:, None]
    np.testing.assert_allclose(ridge_regression(x, y, x, alpha=1e-10), y, atol=1e-6)
    with pytest.raises(ValueError, match="channels"):
        ridge_regression(x, y, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        ridge_regression(np.full((3, 2), np.nan), y[:3], x)


def _loo_error_by_refitting(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Mean squared leave-one-out residual per target, refitting ridge n times on the fixed standardisation."""
    xs = standardize(x)[0]
    out = []
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        a, b = xs[keep], y[keep]
        a_mean, b_mean = a.mean(axis=0), b.mean(axis=0)
        coef = np.linalg.solve((a - a_mean).T @ (a - a_mean) + alpha * np.eye(a.shape[1]), (a - a_mean).T @ (b - b_mean))
        out.append(y[i] - ((xs[i] - a_mean) @ coef + b_mean))
    return np.mean(np.square(out), axis=0)


def test_ridge_cv_picks_the_penalty_of_least_leave_one_out_error():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(40, 12))
    signal = x[:, :2] @ [1.0, -2.0]
    y = np.column_stack([signal + rng.normal(size=40) * 0.1, rng.normal(size=40)])  # a readable target and noise
    alphas = (1e-3, 1e-1, 10.0, 1e3, 1e5)
    pred, chosen = ridge_regression_cv(x, y, x[:5], alphas=alphas)
    brute = np.array([_loo_error_by_refitting(x, y, a) for a in alphas])  # (alphas, 2)
    np.testing.assert_array_equal(chosen, np.array(alphas)[brute.argmin(axis=0)])
    assert chosen[0] < chosen[1]  # signal: little shrinkage; noise: shrunk to the mean
    for j in range(2):  # the prediction is plain ridge at the chosen penalty
        np.testing.assert_allclose(pred[:, j], ridge_regression(x, y[:, j], x[:5], alpha=chosen[j]), atol=1e-10)
    one, _ = ridge_regression_cv(x, y[:, 0], x[:5], alphas=alphas)
    assert one.shape == (5,)
    with pytest.raises(ValueError, match="two training rows"):
        ridge_regression_cv(x[:1], y[:1], x[:1])
    with pytest.raises(ValueError, match="> 0"):
        ridge_regression_cv(x, y, x, alphas=(0.0,))
