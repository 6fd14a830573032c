"""Settings of the procedural house generator and the room types every house has or may have.

:class:`ProceduralConfig` validates its fields on construction.
"""

from __future__ import annotations

from dataclasses import dataclass

MANDATORY_ROOMS: tuple[str, ...] = ("living_room", "kitchen", "bedroom", "bathroom")
"""Room types every house has (plus exactly one hallway)."""

EXTRA_ROOMS: tuple[str, ...] = ("bedroom", "dining_room", "office", "bathroom")
"""Room types drawn for rooms beyond the mandatory ones."""


@dataclass(frozen=True)
class ProceduralConfig:
    """How procedural houses are generated.

    Attributes:
        min_rooms: fewest rooms besides the hallway (>= 4: living room, kitchen, bedroom, bathroom).
        max_rooms: most rooms besides the hallway.
        wall_height: floor-to-ceiling height in metres.
        wall_thickness: wall thickness in metres.
        door_width: doorway width in metres.
        door_height: doorway height in metres (< wall_height; a lintel fills the rest).
        texture_size: pixels per side of each procedural texture.
        furniture: when False, rooms are left empty (floors, walls, ceilings only).
    """

    min_rooms: int = 4
    max_rooms: int = 7
    wall_height: float = 2.6
    wall_thickness: float = 0.1
    door_width: float = 1.0
    door_height: float = 2.1
    texture_size: int = 128
    furniture: bool = True

    def __post_init__(self) -> None:
        if self.min_rooms < len(MANDATORY_ROOMS):
            raise ValueError(
                f"min_rooms must be >= {len(MANDATORY_ROOMS)} (every house has {', '.join(MANDATORY_ROOMS)})"
            )
        if not self.min_rooms <= self.max_rooms <= 12:
            raise ValueError(
                f"max_rooms must lie in [min_rooms, 12], got {self.max_rooms} with min_rooms={self.min_rooms}"
            )
        if not 2.4 <= self.wall_height <= 5.0:
            raise ValueError(
                f"wall_height must lie in [2.4, 5.0] metres (furniture is up to 2.2 m), got {self.wall_height}"
            )
        if not 0.02 <= self.wall_thickness <= 0.4:
            raise ValueError(f"wall_thickness must lie in [0.02, 0.4] metres, got {self.wall_thickness}")
        if not 0.7 <= self.door_width <= 1.6:
            raise ValueError(f"door_width must lie in [0.7, 1.6] metres, got {self.door_width}")
        if not 1.8 <= self.door_height <= self.wall_height - 0.05:
            raise ValueError(f"door_height must lie in [1.8, wall_height - 0.05] metres, got {self.door_height}")
        if not 8 <= self.texture_size <= 2048:
            raise ValueError(f"texture_size must lie in [8, 2048] pixels, got {self.texture_size}")
