"""The toolkit's room vocabulary and the scene sidecar that carries room polygons.

A scene file (GLB, PLY, OBJ) may have a sidecar ``<stem>.rooms.json`` next to it::

    {
      "format": "envsim-rooms/1",
      "up": "y",                      # frame of the coordinates below: "y" or "z"
      "rooms": [
        {"label": "kitchen", "polygon": [[x, z], ...], "floor": 0.0, "ceiling": 2.6},
        ...
      ],
      "objects": {"<node name>": {"room": 0, "category": "bed", "yaw": 3.141593}, ...}
    }

For ``"up": "y"`` a polygon lists (x, z) floor coordinates in metres and ``floor``/``ceiling`` are
heights along +Y. For ``"up": "z"`` the polygon lists (x, y) and heights are along +Z; the loader maps
them to the Y-up world as (x, y, z) -> (x, z, -y), like the mesh itself. An object's optional ``yaw`` is the
way it faces (its front), radians about +Y with 0 facing -Z; the loader ignores it, ``ess qa`` reads it from
``"up": "y"`` sidecars, and procedural houses write it for furniture with a front.
"""

from __future__ import annotations

ROOM_NAMES: tuple[str, ...] = (
    "bathroom",
    "bedroom",
    "dining_room",
    "hallway",
    "kitchen",
    "living_room",
    "office",
)
"""Canonical room labels; a shard's ``room`` dataset indexes into this tuple (-1 = unknown)."""

SIDECAR_FORMAT = "envsim-rooms/1"
SIDECAR_SUFFIX = ".rooms.json"


def room_index(label: str) -> int:
    """Index of ``label`` in :data:`ROOM_NAMES`, or -1 when the label is not a known room."""
    key = label.strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return ROOM_NAMES.index(key)
    except ValueError:
        return -1
