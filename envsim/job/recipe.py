"""Dataset recipes (``data_manifests/*.toml``): which scenes, which split, which render settings.

A recipe is TOML::

    description = "Ten procedural houses, ESS-like settings"
    scenes = ["procedural:10"]          # mesh files, folders (relative to --root) or procedural:N

    [render]                            # any `ess render` option, by its long name (dashes or underscores)
    views = 500
    size = "128x128"

    [splits]                            # optional: scenes per split, recorded for later evaluation
    train = ["house-0000", "house-0001"] # names or shell patterns,
    val = { folder = "val" }            # or the scenes found under a folder of the root,
    test = "rest"                       # or every scene no other split names

``train`` and ``test`` (or ``val`` when there is no ``test``) are what training and the benchmarks use as
familiar and unfamiliar scenes; ``ess render RECIPE --split NAME`` renders one split only.

Options given on the command line override the recipe's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from envsim.camera import parse_size

REST = "rest"
"""A split given as ``"rest"`` holds every scene no other split names."""


class RecipeError(ValueError):
    """A recipe file that cannot be used."""


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe.

    Attributes:
        path: the recipe file.
        scenes: scene specs with relative paths resolved against the root.
        options: ``ess render`` option values keyed by argparse destination.
        splits: split name -> scene names or patterns, ``"rest"``, or ``{"folder": ...}`` (see
            :func:`resolve_splits`).
        description: free text.
    """

    path: str
    scenes: tuple[str, ...]
    options: dict[str, Any]
    splits: dict[str, Any]
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
            try:
                value = parse_size(value)
            except ValueError as exc:
                raise RecipeError(f"{path.name}: {exc}") from None
        options[dest] = value
    splits: dict[str, Any] = {}
    for k, v in dict(data.get("splits", {})).items():
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            splits[str(k)] = tuple(v)
        elif v == REST or (isinstance(v, dict) and set(v) == {"folder"} and isinstance(v["folder"], str)):
            splits[str(k)] = v
        else:
            raise RecipeError(
                f'{path.name}: split {k!r} must be a list of scene names or patterns, "{REST}", or {{ folder = "..." }}'
            )
    return Recipe(path=str(path), scenes=resolved, options=options, splits=splits, description=str(data.get("description", "")))


def resolve_splits(spec: dict[str, Any], names: list[str], paths: list[str], *, root: str | Path | None = None) -> dict[str, tuple[str, ...]]:
    """Concrete scene names per split.

    Args:
        spec: split name -> list of names or shell patterns, ``"rest"``, or ``{"folder": F}`` (scenes
            whose mesh lies under ``root/F``).
        names: the scene names found, in order.
        paths: each scene's mesh file.
        root: the dataset root that ``folder`` entries start from.

    Returns:
        split name -> names (in scene order); every split keeps its key even when empty.

    Raises:
        RecipeError: more than one ``"rest"`` split, or a scene in two splits.
    """
    import fnmatch

    out: dict[str, tuple[str, ...]] = {}
    rest = [k for k, v in spec.items() if v == REST]
    if len(rest) > 1:
        raise RecipeError(f'only one split may be "{REST}", got {rest}')
    for key, value in spec.items():
        if value == REST:
            continue
        if isinstance(value, dict):
            base = (Path(root) if root else Path(".")).resolve() / value["folder"]
            out[key] = tuple(n for n, p in zip(names, paths) if Path(p).resolve().is_relative_to(base))
        else:
            out[key] = tuple(n for n in names if any(fnmatch.fnmatchcase(n, pat) for pat in value))
    taken = [n for v in out.values() for n in v]
    dup = sorted({n for n in taken if taken.count(n) > 1})
    if dup:
        raise RecipeError(f"scenes in more than one split: {dup[:5]}")
    for key in rest:
        out[key] = tuple(n for n in names if n not in set(taken))
    return {k: out[k] for k in spec}
