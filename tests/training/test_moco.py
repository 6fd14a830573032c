"""MoCo-v2 with ESS positives: encoders, momentum, queue, logits and targets against slow references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from envsim.camera import quat_from_yaw_pitch_roll
from pairing import similarity as ref
from pairing.similarity import Falloff, SimilarityConfig
from training.losses import info_nce, soft_info_nce
from training.moco import (
    MASKED_LOGIT,
    Method,
    MoCo,
    MoCoConfig,
    binary_similarity,
    concat_all_gather,
    pose_geometry,
    weighted_similarity,
)

N = 8
SMALL = dict(dim=16, mlp_hidden=32, K=32, bn_splits=2)

def _model(seed: int = 0, **kw) -> MoCo:
    return MoCo(MoCoConfig(**{**SMALL, **kw}), generator=torch.Generator().manual_seed(seed))


def _images(seed: int, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randn(n, 3, 32, 32, generator=g)


def _poses(seed: int, n: int = N, scenes: int = 2, *, scene: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Views in a 2 x 2 m patch looking within +-60 degrees of -Z: many, but not all, pairs are positives."""
    rng = np.random.default_rng(seed)
    rot = quat_from_yaw_pitch_roll(rng.uniform(-1.05, 1.05, n), rng.uniform(-0.2, 0.2, n), rng.uniform(-0.3, 0.3, n))
    return {
        "scene": torch.as_tensor(rng.integers(0, scenes, n) if scene is None else scene),
        "position": torch.as_tensor(rng.uniform(-1, 1, (n, 3)) * [1, 0.1, 1], dtype=torch.float32),
        "rotation": torch.as_tensor(rot, dtype=torch.float32),
    }


def _step(model: MoCo, seed: int, key=None, query=None, own_weight=None):
    im_q, im_k = _images(seed)
    return model(im_q, im_k, key, query, own_weight, generator=torch.Generator().manual_seed(seed))


def test_gradients_never_reach_the_key_encoder():
    model = _model(method=Method.ESS_MB)
    logits, targets = _step(model, 0, _poses(0), _poses(1))
    soft_info_nce(logits, targets).backward()
    assert all(not p.requires_grad and p.grad is None for p in model.encoder_k.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.encoder_q.parameters())


def test_momentum_update_is_exact():
    model = _model(m=0.99)
    with torch.no_grad():
        for p in model.encoder_q.parameters():
            p.add_(torch.randn_like(p))
    theta_q = [p.detach().clone() for p in model.encoder_q.parameters()]
    theta_k = [p.detach().clone() for p in model.encoder_k.parameters()]
    model._momentum_update_key_encoder()
    for pk, tk, tq in zip(model.encoder_k.parameters(), theta_k, theta_q):
        torch.testing.assert_close(pk, 0.99 * tk + (1 - 0.99) * tq, rtol=1e-6, atol=1e-7)


def test_momentum_is_applied_before_the_keys():
    # m = 0: the key encoder becomes the query encoder before it embeds the keys.
    model = _model(m=0.0, bn_splits=1)
    with torch.no_grad():
        for p in model.encoder_q.parameters():
            p.mul_(1.1)
    im_q, im_k = _images(0)
    logits, _ = model(im_q, im_k)
    q = torch.nn.functional.normalize(model.encoder_q(im_q), dim=1)
    k = torch.nn.functional.normalize(model.encoder_q(im_k), dim=1)
    torch.testing.assert_close(logits[:, 0], (q * k).sum(1) / model.config.T, rtol=1e-4, atol=1e-5)


def test_queue_wraps_around_exactly():
    model = _model(K=20)
    expected = list(model.queue.clone())
    scenes = [-1] * 20
    ptr = 0
    for b in range(3):
        keys = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
        meta = {"scene": torch.arange(8) + 10 * b, "position": torch.randn(8, 3), "rotation": torch.randn(8, 4)}
        model._dequeue_and_enqueue(keys, meta)
        for i in range(8):  # Python reference: one slot at a time
            expected[ptr], scenes[ptr] = keys[i], int(meta["scene"][i])
            ptr = (ptr + 1) % 20
        assert int(model.queue_ptr) == ptr
        assert int(model.queue_filled) == min(20, 8 * (b + 1))
    assert torch.equal(model.queue, torch.stack(expected))
    assert model.queue_scene.tolist() == scenes and ptr == 4
    assert model.queue_scene.tolist()[:4] == [24, 25, 26, 27] and model.queue_scene.tolist()[4:8] == [4, 5, 6, 7]


def test_batch_longer_than_queue_keeps_the_newest_keys():
    model = _model(K=5)
    keys = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    meta = {"scene": torch.arange(8), "position": torch.zeros(8, 3), "rotation": torch.randn(8, 4)}
    model._dequeue_and_enqueue(keys, meta)
    # Slots written in order 0, 1, 2, ... wrapping: key i lands in slot i % 5, the later key winning.
    assert model.queue_scene.tolist() == [5, 6, 7, 3, 4]
    assert torch.equal(model.queue[0], keys[5]) and int(model.queue_ptr) == 3 and int(model.queue_filled) == 5


def test_empty_queue_slots_are_excluded():
    model = _model(method=Method.MOCO)
    logits, targets = _step(model, 0)
    assert logits.shape == (N, 1 + 32)
    assert torch.all(logits[:, 1:] == MASKED_LOGIT)  # nothing in the queue yet: the own key only
    assert soft_info_nce(logits, targets).item() == pytest.approx(0.0, abs=1e-6)
    logits, targets = _step(model, 1)
    assert torch.all(logits[:, 1 + N :] == MASKED_LOGIT) and torch.all(logits[:, : 1 + N] > MASKED_LOGIT)
    # The loss equals InfoNCE over the real keys alone.
    torch.testing.assert_close(soft_info_nce(logits, targets), info_nce(logits[:, : 1 + N]))


def test_moco_targets_are_one_hot_and_loss_is_info_nce():
    model = _model(method="moco")
    for seed in range(3):
        logits, targets = _step(model, seed, _poses(seed))
    assert logits.shape == targets.shape == (N, 1 + 32)
    assert torch.equal(targets[:, 0], torch.ones(N)) and torch.all(targets[:, 1:] == 0)
    torch.testing.assert_close(soft_info_nce(logits, targets), info_nce(logits))
    assert model.queue_scene.tolist()[: 3 * N] == torch.cat([_poses(s)["scene"] for s in range(3)]).tolist()


def test_ess_mb_without_spatial_positives_is_moco():
    ess, moco = _model(method=Method.ESS_MB), _model(method=Method.MOCO)
    for seed in range(2):  # all scenes distinct: no key can be a spatial positive
        key = _poses(seed, scene=np.arange(N) + 100 * seed)
        query = _poses(seed + 10, scene=np.arange(N) + 100 * seed + 50)
        logits, targets = _step(ess, seed, key, query)
        moco_logits, _ = _step(moco, seed, key)
        assert logits.shape == (N, 1 + (N - 1) + 32)
        assert torch.all(targets[:, 0] == 1) and torch.all(targets[:, 1:] == 0)
        torch.testing.assert_close(soft_info_nce(logits, targets), info_nce(logits))
        # Same weights, same keys: ESS's own and queue columns are MoCo's logits.
        torch.testing.assert_close(torch.cat([logits[:, :1], logits[:, N:]], 1), moco_logits)


def _slow_targets(
    model: MoCo, key: dict, query: dict, own_weight: torch.Tensor, queue: dict, filled: int
) -> torch.Tensor:
    """ESS targets one pair at a time with pairing.similarity (numpy, float64)."""
    cfg = model.config.similarity
    rows = []
    for i in range(N):
        cand = [("own", i)] + [("batch", j) for j in range(N) if j != i] + [("queue", s) for s in range(model.config.K)]
        w = []
        for kind, j in cand:
            src = key if kind in ("own", "batch") else queue
            if kind == "own":
                w.append(float(own_weight[i]) if model.config.method is Method.ESS_MW else 1.0)
                continue
            if (kind == "queue" and j >= filled) or int(src["scene"][j]) != int(query["scene"][i]):
                w.append(0.0)
                continue
            d, a = ref.pair_geometry(
                np.stack([query["position"][i].numpy(), src["position"][j].numpy()]),
                np.stack([query["rotation"][i].numpy(), src["rotation"][j].numpy()]),
                np.array([[0, 1]]),
            )
            fn = ref.binary_similarity if model.config.method is Method.ESS_MB else ref.weighted_similarity
            w.append(float(fn(d, a, cfg)[0]))
        w = torch.tensor(w, dtype=torch.float64)
        rows.append(w / w.sum() if model.config.method is Method.ESS_MW else (w > 0).double() / (w > 0).sum())
    return torch.stack(rows).float()


@pytest.mark.parametrize("method", [Method.ESS_MB, Method.ESS_MW])
def test_ess_targets_match_slow_reference(method):
    model = _model(method=method, similarity=SimilarityConfig(radius=1.2, max_angle_deg=60))
    positives = 0
    for seed in range(3):
        key, query = _poses(seed), _poses(seed + 20)
        own = torch.linspace(0.3, 1.0, N)
        queue = {name: getattr(model, f"queue_{name}").clone() for name in ("scene", "position", "rotation")}
        filled = int(model.queue_filled)
        logits, targets = _step(model, seed, key, query, own)
        expected = _slow_targets(model, key, query, own, queue, filled)
        torch.testing.assert_close(targets, expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(targets.sum(1), torch.ones(N))
        assert torch.all(targets[:, 0] > 0)  # the own key is always a positive
        assert torch.all(targets[:, N + filled :] == 0)
        positives += int((targets[:, 1:] > 0).sum())
    assert positives > 20  # the check exercised real spatial positives, in the batch and in the queue


@pytest.mark.parametrize("falloff", [Falloff.GAUSSIAN, Falloff.LINEAR])
def test_torch_similarity_agrees_with_pairing_similarity(falloff):
    rng = np.random.default_rng(0)
    n, m = 40, 60
    pos_a, pos_b = rng.uniform(-1.5, 1.5, (n, 3)), rng.uniform(-1.5, 1.5, (m, 3))
    rot_a, rot_b = (
        quat_from_yaw_pitch_roll(rng.uniform(-math.pi, math.pi, c), rng.uniform(-0.5, 0.5, c), rng.uniform(-1, 1, c))
        for c in (n, m)
    )
    rot_b[:5] = rot_a[:5]  # identical and nearly identical directions exercise small angles
    rot_b[5:10] = -rot_a[5:10]  # the same rotation, the other quaternion sign
    pairs = np.stack(np.meshgrid(np.arange(n), np.arange(m) + n, indexing="ij"), -1).reshape(-1, 2)
    d_ref, a_ref = ref.pair_geometry(np.concatenate([pos_a, pos_b]), np.concatenate([rot_a, rot_b]), pairs)
    t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    distance, angle = pose_geometry(t(pos_a), t(rot_a), t(pos_b), t(rot_b))
    np.testing.assert_allclose(distance.numpy().ravel(), d_ref, atol=1e-5)
    np.testing.assert_allclose(angle.numpy().ravel(), a_ref, atol=1e-5)
    cfg = SimilarityConfig(radius=1.5, max_angle_deg=90, falloff=falloff)
    away = (np.abs(d_ref - cfg.radius) > 1e-4) & (np.abs(a_ref - cfg.max_angle) > 1e-4)  # off the gate's edge
    binary = binary_similarity(distance, angle, cfg).numpy().ravel()
    weighted = weighted_similarity(distance, angle, cfg).numpy().ravel()
    np.testing.assert_array_equal(binary[away], ref.binary_similarity(d_ref, a_ref, cfg)[away])
    np.testing.assert_allclose(weighted[away], ref.weighted_similarity(d_ref, a_ref, cfg)[away], atol=1e-5)
    assert 0.1 < binary.mean() < 0.9


def test_features_shape_and_concat_all_gather_is_a_no_op():
    model = _model()
    model.eval()
    assert model.features(torch.randn(3, 3, 32, 32)).shape == (3, 512)
    x = torch.randn(4, 2)
    assert concat_all_gather(x) is x


def test_training_step_on_cpu():
    model = _model(method=Method.ESS_MW)
    opt = torch.optim.SGD(model.encoder_q.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    before_q = [p.detach().clone() for p in model.encoder_q.parameters()]
    before_k = [p.detach().clone() for p in model.encoder_k.parameters()]
    losses = []
    for seed in range(2):
        logits, targets = _step(model, seed, _poses(seed), _poses(seed + 20))
        loss = soft_info_nce(logits, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert any(not torch.equal(a, p) for a, p in zip(before_q, model.encoder_q.parameters()))
    # The key encoder moved only by momentum: (1 - m) of the distance to the query encoder after step 1.
    assert any(not torch.equal(a, p) for a, p in zip(before_k, model.encoder_k.parameters()))


def test_inputs_validated():
    with pytest.raises(ValueError, match="resnet18"):
        MoCoConfig(arch="vit")
    with pytest.raises(ValueError, match="method"):
        MoCoConfig(method="simclr")
    with pytest.raises(ValueError, match="temperature"):
        MoCoConfig(T=0)
    with pytest.raises(ValueError, match="momentum"):
        MoCoConfig(m=1.5)
    assert MoCoConfig(method="ess-mw").method is Method.ESS_MW
    model = _model(method=Method.ESS_MB)
    im_q, im_k = _images(0)
    with pytest.raises(ValueError, match="key_meta and query_meta"):
        model(im_q, im_k)
    with pytest.raises(ValueError, match="multiple of bn_splits"):
        model(im_q[:7], im_k[:7], _poses(0, 7), _poses(1, 7))
    with pytest.raises(ValueError, match="position"):
        model(im_q, im_k, {"scene": torch.zeros(N)}, _poses(1))
    with pytest.raises(ValueError, match="own_weight"):
        model(im_q, im_k, _poses(0), _poses(1), torch.zeros(N))
