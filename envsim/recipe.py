"""Dataset recipes (``data_manifests/*.toml``): which scenes, which split, which render settings.

A recipe is TOML::

    description = "Ten procedural houses, ESS-like settings"
    scenes = ["procedural:10"]          # mesh files, folders (relative to --root) or procedural:N

    [render]                            # any `ess render` option, by its long name (dashes or underscores)
    views = 500
    size = "128x128"

    [splits]                            # optional: scene names per split, recorded for later evaluation
    train = ["house-0000", "house-0001"]

Options given on the command line override the recipe's.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class RecipeError(ValueError):
    """A recipe file that cannot be used."""


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe.

    Attributes:
        path: the recipe file.
        scenes: scene specs with relative paths resolved against the root.
        options: ``ess render`` option values keyed by argparse destination.
        splits: split name -> scene names.
        description: free text.
    """

    path: str
    scenes: tuple[str, ...]
    options: dict[str, Any]
    splits: dict[str, tuple[str, ...]]
    description: str = ""


def load_recipe(path: str | Path, *, root: str | None = None, known_options: set[str] | None = None) -> Recipe:
    """Read and check a recipe.

    Args:
        path: the ``.toml`` file.
        root: folder that relative scene paths start from (default: the recipe's folder).
        known_options: accepted option names (argparse destinations); others are refused.

    Raises:
        RecipeError: missing file, bad TOML, no scenes, unknown options.
    """
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{path.name} is not valid TOML: {exc}") from exc
    scenes = data.get("scenes")
    if not isinstance(scenes, list) or not scenes or not all(isinstance(s, str) for s in scenes):
        raise RecipeError(f'{path.name} needs scenes = ["...", ...] (mesh files, folders or procedural:N)')
    base = Path(root) if root else path.parent
    resolved = tuple(s if s.startswith("procedural:") or Path(s).is_absolute() else str(base / s) for s in scenes)
    options: dict[str, Any] = {}
    for key, value in dict(data.get("render", {})).items():
        dest = key.replace("-", "_")
        if known_options is not None and dest not in known_options:
            raise RecipeError(f"{path.name}: unknown render option {key!r}")
        if dest == "size" and isinstance(value, str):
            from envsim.cli import parse_size

            value = parse_size(value)
        options[dest] = value
    splits = {str(k): tuple(v) for k, v in dict(data.get("splits", {})).items()}
    return Recipe(path=str(path), scenes=resolved, options=options, splits=splits, description=str(data.get("description", "")))
