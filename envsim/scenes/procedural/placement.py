"""Free-space bookkeeping for furnishing one room: footprints, doorway zones, sight corridors, reachability.

:class:`RoomCtx` finds spots against walls or near the centre and reserves them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from envsim.scenes.procedural.config import ProceduralConfig
from envsim.scenes.procedural.geometry import Frame, Rect
from envsim.scenes.procedural.layout import RoomPlan

_WALL_GAP = 0.02  # metres between furniture and the wall it stands against
_AGENT_RADIUS = 0.1  # metres; every doorway of a room must stay reachable for this agent
_CORRIDOR_RADIUS = 0.25  # metres of clear space (above 0.95 m) on the line from the room centre to a door
_TALL = 0.95  # metres; furniture taller than this stays out of the centre-to-door corridors
_CELL = 0.05  # metres, grid of the reachability check

# side -> (theta turning local +z into the room, wall-normal axis, along axis)
_SIDE_THETA = {"z0": 0.0, "z1": math.pi, "x0": math.pi / 2, "x1": -math.pi / 2}
OPPOSITE = {"z0": "z1", "z1": "z0", "x0": "x1", "x1": "x0"}
"""The wall facing each wall side of a room ('z0' <-> 'z1', 'x0' <-> 'x1')."""


def overlap(a: Rect, b: Rect, clearance: float = 0.0) -> bool:
    """Whether rectangles ``a`` and ``b`` (x0, z0, x1, z1 in metres) overlap once grown by ``clearance``."""
    return a[0] < b[2] + clearance and b[0] < a[2] + clearance and a[1] < b[3] + clearance and b[1] < a[3] + clearance


class RoomCtx:
    """Free space bookkeeping for furnishing one room.

    Furniture is axis-aligned. Every item stays inside the room and off the doorway zones (0.9 m deep in
    front of each doorway); items taller than 0.95 m also keep 0.25 m clear of the straight lines from the
    room centre to each doorway (so the centre sees every doorway at 1 m height); in the hallway a central
    band stays clear. After each placement all doorways must remain connected for an agent of radius 0.1 m.
    """

    def __init__(self, index: int, plan: RoomPlan, cfg: ProceduralConfig) -> None:
        """Set up the free-space state of an empty room.

        Args:
            index: the room's index in the house (node names ``rNN/...``).
            plan: the room.
            cfg: generation settings (wall thickness).
        """
        self.index, self.plan, self.label = index, plan, plan.label
        h = cfg.wall_thickness / 2
        self.inner = plan.inner(h)
        ix0, iz0, ix1, iz1 = self.inner
        self.centre = ((ix0 + ix1) / 2, (iz0 + iz1) / 2)
        self.items: list[tuple[Rect, float]] = []
        self.wall_items: list[tuple[str, float, float, float, float]] = []  # side, a0, a1, y0, y1
        self.doors: list[tuple[str, float, float]] = []
        self.door_zones: list[Rect] = []
        self.door_points: list[tuple[float, float]] = []
        for side in ("z0", "z1", "x0", "x1"):
            for d0, d1 in plan.side_doors(side):
                self.doors.append((side, d0, d1))
                self.door_zones.append(self.wall_rect(side, d0 - 0.1, d1 + 0.1, 0.0, 0.9))
                c = (d0 + d1) / 2
                p = {"z0": (c, iz0), "z1": (c, iz1), "x0": (ix0, c), "x1": (ix1, c)}[side]
                self.door_points.append(p)
        self.band: Rect | None = None
        if self.label == "hallway":
            cz, half = self.centre[1], 0.35
            self.band = (ix0, cz - half, ix1, cz + half)
        nx = max(1, int((ix1 - ix0) / _CELL))
        nz = max(1, int((iz1 - iz0) / _CELL))
        xs = ix0 + (np.arange(nx) + 0.5) * (ix1 - ix0) / nx
        zs = iz0 + (np.arange(nz) + 0.5) * (iz1 - iz0) / nz
        self._gx, self._gz = np.meshgrid(xs, zs)
        a = _AGENT_RADIUS
        self._free0 = (self._gx > ix0 + a) & (self._gx < ix1 - a) & (self._gz > iz0 + a) & (self._gz < iz1 - a)
        self._entries = []
        for side, d0, d1 in self.doors:
            depth = {"z0": self._gz - iz0, "z1": iz1 - self._gz, "x0": self._gx - ix0, "x1": ix1 - self._gx}[side]
            along = self._gx if side[0] == "z" else self._gz
            self._entries.append((along > d0 + a) & (along < d1 - a) & (depth > a) & (depth < a + 0.2))

    def side_range(self, side: str) -> tuple[float, float]:
        """(start, end) in metres of the interior along the wall on ``side``."""
        ix0, iz0, ix1, iz1 = self.inner
        return (ix0, ix1) if side[0] == "z" else (iz0, iz1)

    def wall_rect(self, side: str, a0: float, a1: float, d0: float, d1: float) -> Rect:
        """World rectangle spanning [a0, a1] along a wall and [d0, d1] metres out from it into the room."""
        ix0, iz0, ix1, iz1 = self.inner
        if side == "z0":
            return (a0, iz0 + d0, a1, iz0 + d1)
        if side == "z1":
            return (a0, iz1 - d1, a1, iz1 - d0)
        if side == "x0":
            return (ix0 + d0, a0, ix0 + d1, a1)
        return (ix1 - d1, a0, ix1 - d0, a1)

    def wall_frame(self, side: str, along: float, gap: float = _WALL_GAP) -> Frame:
        """Frame whose local origin is on the wall at ``along`` (+ ``gap``), local +z pointing into the room."""
        ix0, iz0, ix1, iz1 = self.inner
        if side == "z0":
            return Frame(_SIDE_THETA[side], along, iz0 + gap)
        if side == "z1":
            return Frame(_SIDE_THETA[side], along, iz1 - gap)
        if side == "x0":
            return Frame(_SIDE_THETA[side], ix0 + gap, along)
        return Frame(_SIDE_THETA[side], ix1 - gap, along)

    def _corridor_clear(self, rect: Rect) -> bool:
        """Whether ``rect`` keeps clear of the room centre and of the sight lines from it to every doorway."""

        def dist(px: float, pz: float) -> float:
            dx = max(rect[0] - px, 0.0, px - rect[2])
            dz = max(rect[1] - pz, 0.0, pz - rect[3])
            return math.hypot(dx, dz)

        cx, cz = self.centre
        if dist(cx, cz) < _CORRIDOR_RADIUS + 0.1:
            return False
        for px, pz in self.door_points:
            n = max(2, int(math.hypot(px - cx, pz - cz) / 0.05) + 1)
            for t in np.linspace(0.0, 1.0, n):
                if dist(cx + t * (px - cx), cz + t * (pz - cz)) < _CORRIDOR_RADIUS:
                    return False
        return True

    def _connected(self, rects: list[Rect]) -> bool:
        """Whether all doorways stay connected for the agent with ``rects`` occupied."""
        if not self._entries:
            return True
        a = _AGENT_RADIUS
        free = self._free0.copy()
        for r in rects:
            free &= ~((self._gx > r[0] - a) & (self._gx < r[2] + a) & (self._gz > r[1] - a) & (self._gz < r[3] + a))
        labels, _ = ndimage.label(free)
        common = None
        for entry in self._entries:
            ids = np.unique(labels[entry & free])
            ids = ids[ids > 0]
            common = ids if common is None else np.intersect1d(common, ids)
            if common.size == 0:
                return False
        return True

    def fits(self, rect: Rect, height: float, *, flat: bool = False, clearance: float = 0.03) -> bool:
        """Whether an item with this footprint (world AABB) and height (metres) can stand here."""
        ix0, iz0, ix1, iz1 = self.inner
        eps = 1e-6
        if rect[0] < ix0 - eps or rect[1] < iz0 - eps or rect[2] > ix1 + eps or rect[3] > iz1 + eps:
            return False
        if flat:
            return True
        if any(overlap(rect, r, clearance) for r, _ in self.items):
            return False
        if any(overlap(rect, z) for z in self.door_zones):
            return False
        if self.band is not None and overlap(rect, self.band):
            return False
        if self.band is None and height > _TALL and not self._corridor_clear(rect):
            return False
        return self._connected([r for r, _ in self.items] + [rect])

    def reserve(self, rect: Rect, height: float) -> None:
        """Mark the world footprint ``rect`` of an item ``height`` metres tall as occupied."""
        self.items.append((rect, height))

    def try_place(
        self, frame: Frame, local: Rect, height: float, *, flat: bool = False, clearance: float = 0.03
    ) -> bool:
        """Reserve the local footprint ``local`` placed by ``frame`` when it fits (``flat``: rugs, never reserved).

        Returns:
            Whether it fits.
        """
        rect = frame.rect(*local)
        if not self.fits(rect, height, flat=flat, clearance=clearance):
            return False
        if not flat:
            self.reserve(rect, height)
        return True

    def on_wall(
        self,
        rng: np.random.Generator,
        width: float,
        depth: float,
        height: float,
        *,
        sides: tuple[str, ...] = ("z0", "z1", "x0", "x1"),
        tries: int = 30,
        corner: float = 0.3,
    ) -> tuple[Frame, str, float] | None:
        """Find a spot against a wall for a ``width`` x ``depth`` item (local x in [-w/2, w/2], z in [0, d]).

        Args:
            rng: source of the draws (per try: side, corner or not, position).
            width: item width along the wall in metres.
            depth: item depth into the room in metres.
            height: item height in metres.
            sides: the walls to try.
            tries: attempts before giving up.
            corner: probability of pushing the item into one end of the wall.

        Returns:
            (frame, side, along) with the footprint reserved, or None.
        """
        for _ in range(tries):
            side = sides[int(rng.integers(0, len(sides)))]
            lo, hi = self.side_range(side)
            lo, hi = lo + width / 2 + 0.02, hi - width / 2 - 0.02
            if hi < lo:
                continue
            u = rng.random()
            if u < corner / 2:
                along = lo
            elif u < corner:
                along = hi
            else:
                along = float(rng.uniform(lo, hi))
            frame = self.wall_frame(side, along)
            if self.try_place(frame, (-width / 2, 0.0, width / 2, depth), height):
                return frame, side, along
        return None

    def free_spot(
        self,
        rng: np.random.Generator,
        local: Rect,
        height: float,
        *,
        spread: float = 0.5,
        tries: int = 30,
        clearance: float = 0.03,
    ) -> Frame | None:
        """Place a free-standing item (local footprint ``local``, centred) near the room centre.

        The long side of the footprint follows the room's long side; the centre is jittered by up to
        ``spread`` times the free slack along each axis.

        Args:
            rng: source of the draws (two per try).
            local: the item's local footprint (x0, z0, x1, z1) in metres around its origin.
            height: item height in metres.
            spread: fraction of the free slack the centre may move.
            tries: attempts before giving up.
            clearance: metres kept from other items.

        Returns:
            The frame with the footprint reserved, or None.
        """
        ix0, iz0, ix1, iz1 = self.inner
        w, d = local[2] - local[0], local[3] - local[1]
        theta = 0.0 if ((ix1 - ix0) >= (iz1 - iz0)) == (w >= d) else math.pi / 2
        for _ in range(tries):
            fw, fd = (w, d) if theta == 0.0 else (d, w)
            sx, sz = max(0.0, (ix1 - ix0 - fw) / 2), max(0.0, (iz1 - iz0 - fd) / 2)
            cx = self.centre[0] + float(rng.uniform(-1, 1)) * spread * sx
            cz = self.centre[1] + float(rng.uniform(-1, 1)) * spread * sz
            frame = Frame(theta, cx, cz)
            if self.try_place(frame, local, height, clearance=clearance):
                return frame
        return None
