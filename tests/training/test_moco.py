"""MoCo-v2 with ESS positives: encoders, momentum, queue, logits and targets against slow references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.losses import info_nce, soft_info_nce
from training.moco import MASKED_LOGIT, Method, MoCo, MoCoConfig, concat_all_gather
from training.positives import PositiveTable

N = 8
V = 40  # views of the hand-made dataset: 2 scenes of 20
SMALL = dict(dim=16, mlp_hidden=32, K=32, bn_splits=2)


def _model(seed: int = 0, **kw) -> MoCo:
    return MoCo(MoCoConfig(**{**SMALL, **kw}), generator=torch.Generator().manual_seed(seed))


def _images(seed: int, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randn(n, 3, 32, 32, generator=g)


def _table(seed: int = 0, density: float = 0.3) -> tuple[PositiveTable, dict[tuple[int, int], tuple[float, bool]]]:
    """Random positive pairs within each scene of V views, with weights and a few same-pose pairs, and the
    same as a Python dict {(a, b): (weight, same_pose)} for slow references."""
    rng = np.random.default_rng(seed)
    scene = np.repeat([0, 1], V // 2)
    pairs, weight, same = [], [], []
    for a in range(V):
        for b in range(a + 1, V):
            if scene[a] == scene[b] and rng.random() < density:
                pairs.append((a, b))
                same.append(bool(rng.random() < 0.1))
                weight.append(1.0 if same[-1] else float(rng.uniform(0.05, 1.0)))
    table = PositiveTable(np.array(pairs), np.array(weight), np.array(same), scene)
    ref = {}
    for (a, b), w, s in zip(pairs, weight, same):
        ref[(a, b)] = ref[(b, a)] = (w, s)
    return table, ref


def _views(seed: int, n: int = N) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).choice(V, n, replace=False))


def _step(model: MoCo, seed: int, **kw):
    im_q, im_k = _images(seed)
    return model(im_q, im_k, generator=torch.Generator().manual_seed(seed), **kw)


def _ess_step(model: MoCo, seed: int, table: PositiveTable, *, partners: bool = True):
    """A step whose anchors are distinct views, own keys the anchors themselves, partners other views."""
    view_q = _views(seed)
    view_p = torch.as_tensor(np.random.default_rng(seed + 100).integers(0, V, N))
    im_p = _images(seed + 50)[0] if partners else None
    return _step(model, seed, view_q=view_q, view_k=view_q, im_p=im_p, view_p=view_p if partners else None,
                 positives=table), view_q, view_p


def test_gradients_never_reach_the_key_encoder():
    model = _model(method=Method.ESS_MB)
    (logits, targets), _, _ = _ess_step(model, 0, _table()[0])
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
    views = [-1] * 20
    ptr = 0
    for b in range(3):
        keys = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
        ids = torch.arange(8) + 10 * b
        model._dequeue_and_enqueue(keys, ids)
        for i in range(8):  # Python reference: one slot at a time
            expected[ptr], views[ptr] = keys[i], int(ids[i])
            ptr = (ptr + 1) % 20
        assert int(model.queue_ptr) == ptr
        assert int(model.queue_filled) == min(20, 8 * (b + 1))
    assert torch.equal(model.queue, torch.stack(expected))
    assert model.queue_view.tolist() == views and ptr == 4
    assert model.queue_view.tolist()[:4] == [24, 25, 26, 27] and model.queue_view.tolist()[4:8] == [4, 5, 6, 7]


def test_batch_longer_than_queue_keeps_the_newest_keys():
    model = _model(K=5)
    keys = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    model._dequeue_and_enqueue(keys, torch.arange(8))
    # Slots written in order 0, 1, 2, ... wrapping: key i lands in slot i % 5, the later key winning.
    assert model.queue_view.tolist() == [5, 6, 7, 3, 4]
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
    views = [torch.arange(N) + N * seed for seed in range(3)]  # all distinct: nothing excluded
    for seed in range(3):
        logits, targets = _step(model, seed, view_q=views[seed], view_k=views[seed])
    assert logits.shape == targets.shape == (N, 1 + 32)
    assert torch.equal(targets[:, 0], torch.ones(N)) and torch.all(targets[:, 1:] == 0)
    assert torch.all(logits[:, 1 : 1 + 2 * N] > MASKED_LOGIT)
    torch.testing.assert_close(soft_info_nce(logits, targets), info_nce(logits))
    assert model.queue_view.tolist()[: 3 * N] == torch.cat(views).tolist()


def test_moco_never_takes_a_queued_key_of_the_same_view_as_a_negative():
    """A hand-made batch: the queue holds older keys of views 0..7; the next batch's queries are views 4..11."""
    table = PositiveTable(np.array([[10, 30], [9, 3]]), np.array([1.0, 0.5]), np.array([True, False]), np.zeros(V))
    for positives in (None, table):
        model = _model(method=Method.MOCO)
        _step(model, 0, view_q=torch.arange(8), view_k=torch.arange(8), positives=positives)
        view_q = torch.arange(4, 12)
        logits, targets = _step(model, 1, view_q=view_q, view_k=view_q, positives=positives)
        queue = logits[:, 1 : 1 + N]  # (N, 8) the first batch's keys, slot j = view j
        for i, v in enumerate(view_q.tolist()):
            for j in range(N):
                excluded = v == j or (positives is not None and {v, j} == {10, 30})
                assert (queue[i, j] == MASKED_LOGIT) == excluded, (v, j)
        # view 9's spatial positive 3 (not the same pose) stays a negative for MoCo
        assert queue[5, 3] > MASKED_LOGIT and torch.all(targets[:, 1:] == 0)
    # the same pose under another light: the queued key of view 30 is excluded for a query of view 10
    model = _model(method=Method.MOCO)
    _step(model, 0, view_q=torch.arange(23, 31), view_k=torch.arange(23, 31), positives=table)
    logits, _ = _step(model, 1, view_q=torch.arange(8, 16), view_k=torch.arange(8, 16), positives=table)
    assert logits[2, 1 + 7] == MASKED_LOGIT and torch.sum(logits[:, 1 : 1 + N] == MASKED_LOGIT) == 1


def _slow_ess_targets(method: Method, view_q, key_views, queue_views, filled, ref) -> torch.Tensor:
    """ESS targets one key at a time from the Python dict of pairs: own key, other batch keys, queue."""
    n, b = len(view_q), len(key_views)
    rows = []
    for i in range(n):
        cols = [key_views[i]] + [key_views[j] for j in range(b) if j != i] + list(queue_views)
        live = [True] * b + [s < filled for s in range(len(queue_views))]
        w = []
        for c, (v, ok) in enumerate(zip(cols, live)):
            if not ok or v < 0:
                w.append(0.0)
            elif v == view_q[i]:
                w.append(1.0)
            elif (view_q[i], v) in ref:
                w.append(ref[(view_q[i], v)][0] if method is Method.ESS_MW else 1.0)
            else:
                w.append(1e-3 if c == 0 and method is Method.ESS_MW else float(c == 0))
        w = torch.tensor(w, dtype=torch.float64)
        rows.append(w / w.sum() if method is Method.ESS_MW else (w > 0).double() / (w > 0).sum())
    return torch.stack(rows).float()


@pytest.mark.parametrize("partners", [True, False])
@pytest.mark.parametrize("method", [Method.ESS_MB, Method.ESS_MW])
def test_ess_targets_match_slow_reference(method, partners):
    table, ref = _table(3)
    model = _model(method=method)
    positives = 0
    for seed in range(4):
        queue_views, filled = model.queue_view.tolist(), int(model.queue_filled)
        (logits, targets), view_q, view_p = _ess_step(model, seed, table, partners=partners)
        keys = view_q.tolist() + (view_p.tolist() if partners else [])
        b = len(keys)
        assert logits.shape == targets.shape == (N, b + 32)
        expected = _slow_ess_targets(method, view_q.tolist(), keys, queue_views, filled, ref)
        torch.testing.assert_close(targets, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(targets.sum(1), torch.ones(N))
        assert torch.all(targets[:, 0] > 0)  # the instance positive (the anchor's own second view) stays
        assert torch.all(logits[:, b + filled :] == MASKED_LOGIT) and torch.all(targets[:, b + filled :] == 0)
        positives += int((targets[:, 1:b] > 0).sum()) + int((targets[:, b:] > 0).sum())
    assert positives > 30  # the check exercised real spatial positives, in the batch and in the queue


def test_ess_keeps_the_instance_positive_and_adds_the_partner():
    """A hand-made batch: anchors 0..7 (own keys = themselves), partner of anchor i = view 20 + i, a positive
    of i only; no other pair. ESS-MB's targets are 1/2 on the own key and 1/2 on the partner's column."""
    pairs = np.array([[i, 20 + i] for i in range(N)])
    scene = np.zeros(V)
    table = PositiveTable(pairs, np.full(N, 0.5), np.zeros(N, bool), scene)
    for method, partner_weight in ((Method.ESS_MB, 1.0), (Method.ESS_MW, 0.5)):
        model = _model(method=method)
        im_q, im_k = _images(0)
        im_p = _images(1)[0]
        logits, targets = model(im_q, im_k, view_q=torch.arange(N), view_k=torch.arange(N), im_p=im_p,
                                view_p=torch.arange(N) + 20, positives=table)
        # columns: own (0), the other N-1 own keys (1..N-1), the N partners (N..2N-1; row i's at N + i), the queue
        expected = torch.zeros(N, 2 * N + 32)
        expected[:, 0] = 1.0 / (1.0 + partner_weight)
        expected[torch.arange(N), N + torch.arange(N)] = partner_weight / (1.0 + partner_weight)
        torch.testing.assert_close(targets, expected)
        assert torch.all(logits[:, : 2 * N] > MASKED_LOGIT) and logits.shape == (N, 2 * N + 32)


def test_ess_without_spatial_positives_is_moco_with_extra_negatives():
    empty = PositiveTable(np.zeros((0, 2)), np.zeros(0), np.zeros(0, bool), np.zeros(V))
    ess, moco = _model(method=Method.ESS_MB), _model(method=Method.MOCO)
    for seed in range(2):
        view_q = torch.arange(N) + N * seed
        im_q, im_k = _images(seed)
        gen = lambda: torch.Generator().manual_seed(seed)  # noqa: E731
        logits, targets = ess(im_q, im_k, view_q=view_q, view_k=view_q, positives=empty, generator=gen())
        moco_logits, _ = moco(im_q, im_k, view_q=view_q, view_k=view_q, generator=gen())
        assert logits.shape == (N, 1 + (N - 1) + 32)
        assert torch.all(targets[:, 0] == 1) and torch.all(targets[:, 1:] == 0)
        torch.testing.assert_close(soft_info_nce(logits, targets), info_nce(logits))
        # Same weights, same keys: ESS's own and queue columns are MoCo's logits.
        torch.testing.assert_close(torch.cat([logits[:, :1], logits[:, N:]], 1), moco_logits)


def test_features_shape_and_concat_all_gather_is_a_no_op():
    model = _model()
    model.eval()
    assert model.features(torch.randn(3, 3, 32, 32)).shape == (3, 512)
    x = torch.randn(4, 2)
    assert concat_all_gather(x) is x


def test_training_step_on_cpu():
    model = _model(method=Method.ESS_MW)
    table = _table()[0]
    opt = torch.optim.SGD(model.encoder_q.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    before_q = [p.detach().clone() for p in model.encoder_q.parameters()]
    before_k = [p.detach().clone() for p in model.encoder_k.parameters()]
    losses = []
    for seed in range(2):
        (logits, targets), _, _ = _ess_step(model, seed, table)
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
    ids = torch.arange(N)
    with pytest.raises(ValueError, match="PositiveTable"):
        model(im_q, im_k, view_q=ids, view_k=ids)
    with pytest.raises(ValueError, match="multiple of bn_splits"):
        model(im_q[:7], im_k[:7], view_q=ids[:7], view_k=ids[:7], positives=_table()[0])
    with pytest.raises(ValueError, match="view_q"):
        model(im_q, im_k, view_q=ids[:3], view_k=ids, positives=_table()[0])
    with pytest.raises(ValueError, match="im_p"):
        model(im_q, im_k, im_p=im_q[:4], view_q=ids, view_k=ids, positives=_table()[0])
