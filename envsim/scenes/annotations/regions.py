"""Habitat region annotations: rooms from ``region_annotations`` in a ``*.semantic_config.json``.

habitat-sim reads them in ``SemanticAttributesManager.cpp`` / ``SemanticScene.cpp``: a Y-up poly-loop extruded
from ``floor_height`` by ``extrusion_height``, in metres.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from envsim.scenes.annotations.files import load_json
from envsim.scenes.annotations.labels import AnnotationError, PathLike, load_room_labels, map_room_label
from envsim.scenes.scene import Room

__all__ = ["HABITAT_DEFAULT_EXTRUSION_HEIGHT", "HABITAT_DEFAULT_FLOOR_HEIGHT", "read_habitat_regions"]

HABITAT_DEFAULT_FLOOR_HEIGHT = 0.0
HABITAT_DEFAULT_EXTRUSION_HEIGHT = 2.5
"""Habitat's defaults for a region without ``floor_height`` / ``extrusion_height`` (``SemanticAttributes.cpp``)."""


def read_habitat_regions(
    semantic_config_json_path: PathLike, *, table: dict[str, dict[str, str]] | None = None
) -> tuple[Room, ...]:
    """Rooms from the ``region_annotations`` of a habitat ``*.semantic_config.json``.

    Each region is ``{"name", "label", "poly_loop": [[x, y, z], ...], "floor_height",
    "extrusion_height", "min_bounds", "max_bounds"}`` in habitat's Y-up world (habitat-sim keeps each
    point's (x, z) as the 2D loop and tests heights against y). ``poly_loop`` may also be an object whose
    values are the points, in key order. Missing heights take habitat's defaults (floor 0.0 m, extrusion
    2.5 m).

    Args:
        semantic_config_json_path: the ``*.semantic_config.json`` file.
        table: room-label table (default: the packaged one); its ``[habitat]`` table maps labels.

    Returns:
        One room per region, in file order: polygon float64 (P, 2) = the loop's (x, z) in metres, floor =
        ``floor_height``, ceiling = ``floor_height + extrusion_height``.

    Raises:
        AnnotationError: not JSON, no or an empty ``region_annotations`` list, a region without ``label``
            or ``poly_loop``, a loop of fewer than 3 points or with non-numeric coordinates, a negative
            extrusion.
    """
    path = Path(semantic_config_json_path)
    table = load_room_labels() if table is None else table
    data = load_json(path, "habitat semantic config")
    if not isinstance(data, dict) or "region_annotations" not in data:
        raise AnnotationError(
            f"{path}: no 'region_annotations' list; a habitat *.semantic_config.json lists its rooms under "
            "'region_annotations' (this scene may have no region annotations)"
        )
    regions = data["region_annotations"]
    if not isinstance(regions, list):
        raise AnnotationError(f"{path}: 'region_annotations' must be a list of regions, got {type(regions).__name__}")
    if not regions:
        raise AnnotationError(f"{path}: 'region_annotations' is empty; the scene has no rooms to read")
    return tuple(_habitat_room(path, i, region, table) for i, region in enumerate(regions))


def _habitat_room(path: Path, i: int, region: Any, table: dict[str, dict[str, str]]) -> Room:
    """Region ``i`` of ``region_annotations`` as a room (see :func:`read_habitat_regions`)."""
    where = f"{path}: region_annotations[{i}]"
    if not isinstance(region, dict):
        raise AnnotationError(f"{where} must be an object, got {type(region).__name__}")
    if isinstance(region.get("name"), str):
        where += f" ({region['name']!r})"
    for key in ("label", "poly_loop"):
        if key not in region:
            raise AnnotationError(f"{where} has no {key!r}; every region needs 'label' and 'poly_loop'")
    label = region["label"]
    if not isinstance(label, str):
        raise AnnotationError(f"{where}: 'label' must be a string, got {label!r}")
    loop = region["poly_loop"]
    if isinstance(loop, dict):
        loop = [loop[k] for k in sorted(loop, key=lambda k: (len(k), k))]
    if not isinstance(loop, list) or len(loop) < 3:
        raise AnnotationError(f"{where}: 'poly_loop' must list at least 3 [x, y, z] points")
    pts = []
    for j, p in enumerate(loop):
        if not isinstance(p, (list, tuple)) or len(p) != 3:
            raise AnnotationError(f"{where}: poly_loop[{j}] must be an [x, y, z] point, got {p!r}")
        pts.append([_json_number(c, where, f"poly_loop[{j}]") for c in p])
    pts = np.asarray(pts, dtype=np.float64)
    floor = _json_number(region.get("floor_height", HABITAT_DEFAULT_FLOOR_HEIGHT), where, "floor_height")
    ext = _json_number(region.get("extrusion_height", HABITAT_DEFAULT_EXTRUSION_HEIGHT), where, "extrusion_height")
    if ext < 0:
        raise AnnotationError(f"{where}: 'extrusion_height' is {ext}; it must be >= 0 (metres above the floor)")
    return Room(
        label=map_room_label("habitat", label, table),
        polygon=np.ascontiguousarray(pts[:, [0, 2]]),
        floor=floor,
        ceiling=floor + ext,
    )


def _json_number(value: Any, where: str, key: str) -> float:
    """``value`` as a float; AnnotationError unless it is a finite JSON number (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnnotationError(f"{where}: {key!r} must be a finite number, got {value!r}")
    return float(value)
