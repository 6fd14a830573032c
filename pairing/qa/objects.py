"""What each object id of a view is: the table that turns ``semantic`` ids into objects, categories and yaws.

A dataset rendered with ``--semantic object`` stores ``1 + object index`` per pixel, the object index being the
position of the scene's mesh node in the loaded scene (``Scene.object_names``), or the scan's own instance id.
The scene's ``<stem>.rooms.json`` sidecar says what each node is (``"objects": {"<node>": {"category": ...,
"yaw": ...}}``). This module turns both into a :class:`SceneObjects` table:

- nodes are grouped into objects: in procedural houses (sidecar ``generator.module == "envsim.procedural"``)
  the parts of one furniture item, ``rNN/<item><k>_<part>``, form the object ``rNN/<item><k>``; elsewhere each
  node is an object;
- structure (walls, floors, ceilings, baseboards, backsplashes: :data:`STRUCTURE`) is no object and maps to -1;
- an object's yaw (radians about +Y, 0 = facing -Z) is kept when every node of it records the same one in a
  ``"up": "y"`` sidecar; otherwise it is unknown (NaN) and questions about it use the camera's frame.

Without a table (scans whose ids are the annotation's instance ids) every id is its own anonymous object.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pairing.qa.records import QAError

STRUCTURE = frozenset({"wall", "floor", "ceiling", "baseboard", "backsplash"})
"""Sidecar categories that are part of the building, not objects one could ask about."""

PROCEDURAL_GENERATOR = "envsim.procedural"
"""The ``generator.module`` of procedural houses' sidecars (``envsim.scenes.procedural.GENERATOR``)."""

_ITEM = re.compile(r"^(r\d+/[A-Za-z_]*[A-Za-z]\d+)_")  # rNN/<item><k>_<part> -> rNN/<item><k>


@dataclass(frozen=True, eq=False)
class SceneObjects:
    """The objects of one scene, indexed by object index (``semantic`` id - 1).

    Attributes:
        group: int64 (N,) the object each node belongs to, index into ``names``; -1 for structure.
        names: one name per object (``rNN/sofa0`` for a procedural item, the node name otherwise).
        category: one category per object, None where the sidecar gives none.
        yaw: float64 (G,) the way each object faces, radians about +Y (0 = facing -Z); NaN when unknown.
    """

    group: np.ndarray
    names: tuple[str, ...]
    category: tuple[str | None, ...]
    yaw: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(self.category) != n or self.yaw.shape != (n,):
            raise ValueError(f"SceneObjects needs one category and one yaw per object ({n}), got "
                             f"{len(self.category)} and {self.yaw.shape}")
        if self.group.ndim != 1 or (self.group.size and (self.group.min() < -1 or self.group.max() >= n)):
            raise ValueError(f"SceneObjects.group must index its {n} objects or be -1")


def _node_yaw(info: Mapping[str, Any], up: str) -> float:
    yaw = info.get("yaw")
    if up != "y" or isinstance(yaw, bool) or not isinstance(yaw, (int, float)) or not math.isfinite(yaw):
        return math.nan
    return float(yaw)


def scene_objects(object_names: Sequence[str], sidecar: Mapping[str, Any] | None) -> SceneObjects:
    """The object table of a scene from its node names (in the loaded scene's order) and its sidecar.

    Args:
        object_names: the scene's node names, object index order (``Scene.object_names``).
        sidecar: the parsed ``<stem>.rooms.json`` (``envsim-rooms/1``), or None when the scene has none.

    Returns:
        The table; every node its own object, without category or yaw, when ``sidecar`` is None.

    Raises:
        QAError: ``sidecar`` is not a JSON object or its ``objects`` is not a mapping.
    """
    sidecar = {} if sidecar is None else sidecar
    if not isinstance(sidecar, Mapping) or not isinstance(sidecar.get("objects", {}), Mapping):
        raise QAError('a rooms sidecar must be a JSON object whose "objects" maps node names to {"category": ...}')
    nodes = sidecar.get("objects", {})
    up = str(sidecar.get("up", "y")).lower()
    generator = sidecar.get("generator")
    procedural = isinstance(generator, Mapping) and generator.get("module") == PROCEDURAL_GENERATOR
    index: dict[str, int] = {}
    names: list[str] = []
    category: list[str | None] = []
    yaws: list[set[float]] = []
    group = np.full(len(object_names), -1, np.int64)
    for i, node in enumerate(object_names):
        info = nodes.get(node)
        info = info if isinstance(info, Mapping) else {}
        cat = info.get("category")
        cat = str(cat) if isinstance(cat, str) and cat else None
        if cat in STRUCTURE:
            continue
        match = _ITEM.match(node) if procedural else None
        key = match.group(1) if match else node
        if key not in index:
            index[key] = len(names)
            names.append(key)
            category.append(cat)
            yaws.append(set())
        g = index[key]
        group[i] = g
        yaws[g].add(_node_yaw(info, up))
    yaw = np.array([next(iter(y)) if len(y) == 1 else math.nan for y in yaws], np.float64)
    return SceneObjects(group=group, names=tuple(names), category=tuple(category), yaw=yaw)
