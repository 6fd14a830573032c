"""The positive lookup table against a brute-force dict of pairs, and against a real pairs file's rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.positives import PositiveTable


def _random_pairs(rng: np.random.Generator, n_views: int, n_pairs: int):
    scene = np.sort(rng.integers(0, 3, n_views))
    pairs = set()
    while len(pairs) < n_pairs:
        a, b = rng.integers(0, n_views, 2)
        if a != b and scene[a] == scene[b]:
            pairs.add((int(a), int(b)))  # either order: the table must not care
    pairs = np.array(sorted(pairs))
    pairs = pairs[np.unique(np.sort(pairs, 1), axis=0, return_index=True)[1]]
    return scene, pairs, rng.uniform(0, 1, len(pairs)).astype(np.float32), rng.random(len(pairs)) < 0.2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lookup_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    scene, pairs, weight, same = _random_pairs(rng, 60, 300)
    table = PositiveTable(pairs, weight, same, scene)
    ref = {}
    for (a, b), w, s in zip(pairs.tolist(), weight.tolist(), same.tolist()):
        ref[(a, b)] = ref[(b, a)] = (w, s)
    query = torch.as_tensor(rng.integers(0, 60, 17))
    keys = torch.as_tensor(np.concatenate([rng.integers(0, 60, 40), [-1, -1, int(query[0])]]))
    rel = table.lookup(query, keys)
    assert rel.positive.shape == rel.weight.shape == rel.same_view.shape == (17, 43)
    for i, a in enumerate(query.tolist()):
        for j, b in enumerate(keys.tolist()):
            if b < 0:
                expected = (False, 0.0, False)
            elif a == b:
                expected = (True, 1.0, True)
            elif (a, b) in ref:
                expected = (True, ref[(a, b)][0], ref[(a, b)][1])
            else:
                expected = (False, 0.0, False)
            got = (bool(rel.positive[i, j]), float(rel.weight[i, j]), bool(rel.same_view[i, j]))
            assert got[0] == expected[0] and got[2] == expected[2] and got[1] == pytest.approx(expected[1]), (a, b)


def test_empty_table_and_validation():
    table = PositiveTable(np.zeros((0, 2)), np.zeros(0), np.zeros(0, bool), np.zeros(5))
    rel = table.lookup(torch.tensor([0, 1]), torch.tensor([1, 0, -1]))
    assert rel.positive.tolist() == [[False, True, False], [True, False, False]]
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        PositiveTable(np.array([[0, 5]]), np.ones(1), np.zeros(1, bool), np.zeros(5))
    with pytest.raises(ValueError, match="weights"):
        PositiveTable(np.array([[0, 1]]), np.array([1.5]), np.zeros(1, bool), np.zeros(5))
    with pytest.raises(ValueError, match="one entry per pair"):
        PositiveTable(np.array([[0, 1]]), np.ones(2), np.zeros(1, bool), np.zeros(5))


def test_table_follows_the_pairs_files_rule(tmp_path):
    """Under ``--positive both`` the table holds exactly the pairs the file marks positive: a pair within the
    distance gate that fails covisibility is no positive of the batch or the queue either."""
    from envsim.job import DatasetConfig, render_dataset, resolve_sources
    from envsim.nav.trajectory import TrajectoryConfig
    from envsim.render.renderer import RenderConfig
    from pairing.build import PairConfig, PositiveRule, build_pairs
    from pairing.store import read_pairs

    data = tmp_path / "d"
    render_dataset(resolve_sources(["procedural:1"]), out=data, config=DatasetConfig(
        render=RenderConfig(width=24, height=24), trajectory=TrajectoryConfig(views=40, views_per_trajectory=10)))
    build_pairs(data, config=PairConfig(rule=PositiveRule.BOTH, min_covisibility=0.5))
    d = read_pairs(data / "pairs.h5")
    positive = d["positive"].astype(bool)
    assert positive.any() and not positive.all()  # the rule rejected some pairs within the distance gate
    from envsim.store.reader import DatasetReader

    scene = DatasetReader(data).meta()["scene"]
    table = PositiveTable.from_pairs_file(d, positive, scene)
    a, b = torch.as_tensor(d["pair"][:, 0]), torch.as_tensor(d["pair"][:, 1])
    rel = table.lookup(a, b)
    assert torch.equal(rel.positive.diagonal(), torch.as_tensor(positive) | (a == b))
