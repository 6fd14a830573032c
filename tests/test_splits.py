import numpy as np
import pytest

from envsim.store.splits import HOLDOUT_EVERY, view_splits


def _meta(traj_per_scene, views_per_traj=3):
    scene, traj = [], []
    for s, t in enumerate(traj_per_scene):
        for k in range(t):
            scene += [s] * views_per_traj
            traj += [k] * views_per_traj
    return {"scene": np.array(scene), "trajectory": np.array(traj)}


def test_default_splits_hold_out_scenes_and_trajectories():
    names = [f"s{i}" for i in range(5)]
    meta = _meta([10, 10, 3, 1, 10])
    sp = view_splits({"scene_names": names}, meta)
    assert sp.test_scenes == ("s4",) and sp.source == "default"
    assert not np.any(sp.train & sp.unfamiliar) and not np.any(sp.train & sp.familiar)
    held = lambda s: sorted(set(meta["trajectory"][(meta["scene"] == s) & sp.query]))  # noqa: E731
    assert held(0) == [HOLDOUT_EVERY - 1, 2 * HOLDOUT_EVERY - 1]
    assert held(2) == [2]  # fewer trajectories than HOLDOUT_EVERY: the last one
    assert held(3) == []  # a single trajectory stays in training
    assert np.all(sp.unfamiliar == (meta["scene"] == 4))
    assert sp.summary()["views"]["train"] == int(sp.train.sum())


def test_recipe_splits():
    meta = _meta([5, 5, 5])
    manifest = {"scene_names": ["a", "b", "c"], "splits": {"train": ["a", "c"], "test": ["b"]}}
    sp = view_splits(manifest, meta)
    assert sp.source == "recipe" and np.all(sp.unfamiliar == (meta["scene"] == 1))
    with pytest.raises(ValueError, match="lacks"):
        view_splits({"scene_names": ["a"], "splits": {"train": ["zz"]}}, _meta([2]))
    with pytest.raises(ValueError, match="share"):
        view_splits({"scene_names": ["a", "b"], "splits": {"train": ["a"], "test": ["a", "b"]}}, _meta([2, 2]))


def test_val_split_is_held_out_when_there_is_no_test_split():
    meta = _meta([5, 5, 5])
    s = view_splits({"scene_names": ["a", "b", "c"], "splits": {"train": ["a", "c"], "val": ["b"]}}, meta)
    assert s.test_scenes == ("b",) and s.train_scenes == ("a", "c")
    assert s.unfamiliar.sum() == 15 and not (s.unfamiliar & s.train).any()
