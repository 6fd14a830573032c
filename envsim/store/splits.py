"""Train / familiar / unfamiliar view splits of a rendered dataset, shared by training and benchmarks.

- **Scenes**: the recipe's ``splits`` (``train`` and ``test`` scene names; ``val`` when there is no
  ``test``, as in the official MP3D/HM3D/Gibson splits) when the manifest has them;
  otherwise the last ``max(1, round(0.2 * scenes))`` scenes are held out (none when there is one scene).
- **Views**: every trajectory whose index is ``HOLDOUT_EVERY - 1`` modulo ``HOLDOUT_EVERY`` is held out
  (in a scene with fewer trajectories than that but at least two, its last trajectory). Training uses the remaining views of training scenes; "familiar" views
  are the held-out trajectories of training scenes; "unfamiliar" views are all views of held-out scenes.
- Localization queries are held-out trajectories (familiar: against the training views of the scene;
  unfamiliar: against the scene's other trajectories, never seen in training).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

HOLDOUT_EVERY = 5


@dataclass(frozen=True)
class ViewSplits:
    """Boolean masks over a dataset's N views, and the scene names of each side.

    Attributes:
        train: (N,) views training may use.
        familiar: (N,) held-out views of training scenes.
        unfamiliar: (N,) views of scenes never used in training.
        query: (N,) held-out trajectories (familiar and unfamiliar scenes): localization queries.
        train_scenes: names of the training scenes.
        test_scenes: names of the held-out scenes.
        source: "recipe" or "default".
    """

    train: np.ndarray
    familiar: np.ndarray
    unfamiliar: np.ndarray
    query: np.ndarray
    train_scenes: tuple[str, ...]
    test_scenes: tuple[str, ...]
    source: str

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "holdout_every": HOLDOUT_EVERY,
            "train_scenes": list(self.train_scenes),
            "test_scenes": list(self.test_scenes),
            "views": {k: int(getattr(self, k).sum()) for k in ("train", "familiar", "unfamiliar", "query")},
        }


def view_splits(manifest: dict[str, Any], meta: dict[str, np.ndarray]) -> ViewSplits:
    """The splits of a dataset from its manifest and per-view metadata (``scene``, ``trajectory``).

    Raises:
        ValueError: recipe splits name scenes the dataset does not have, or overlap.
    """
    names = list(manifest["scene_names"])
    splits = manifest.get("splits") or {}
    held_key = "test" if splits.get("test") else "val"
    if splits.get("train") or splits.get(held_key):
        train_names = list(splits.get("train", []))
        test_names = list(splits.get(held_key, [n for n in names if n not in train_names]))
        unknown = sorted(set(train_names + test_names) - set(names))
        if unknown:
            raise ValueError(f"the recipe's splits name scenes the dataset lacks: {unknown[:5]}")
        if set(train_names) & set(test_names):
            raise ValueError("the recipe's train and test splits share scenes")
        source = "recipe"
    else:
        n_test = 0 if len(names) < 2 else max(1, round(0.2 * len(names)))
        train_names, test_names = names[: len(names) - n_test], names[len(names) - n_test :]
        source = "default"
    scene = meta["scene"]
    in_train = np.isin(scene, [names.index(n) for n in train_names])
    in_test = np.isin(scene, [names.index(n) for n in test_names])
    trajectory = meta["trajectory"]
    held = trajectory % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
    if len(scene):
        last = np.zeros(int(scene.max()) + 1, np.int64)
        np.maximum.at(last, scene, trajectory)  # last trajectory index of each scene
        few = (last >= 1) & (last < HOLDOUT_EVERY - 1)  # scenes with 2..HOLDOUT_EVERY-1 trajectories
        held |= few[scene] & (trajectory == last[scene])
    return ViewSplits(
        train=in_train & ~held,
        familiar=in_train & held,
        unfamiliar=in_test,
        query=(in_train | in_test) & held,
        train_scenes=tuple(train_names),
        test_scenes=tuple(test_names),
        source=source,
    )
