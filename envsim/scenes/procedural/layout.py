"""House layout: room rectangles on both sides of a hallway strip, their room types and their doorways.

Also the sidecar records of doorways and room polygons.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from envsim.scenes.procedural.config import EXTRA_ROOMS, MANDATORY_ROOMS, ProceduralConfig
from envsim.scenes.procedural.geometry import Rect

_EXTRA_WEIGHTS = np.array([0.35, 0.25, 0.25, 0.15])
_MIN_ROOM_WIDTH = 2.5  # interior metres
_DOOR_MARGIN = 0.15  # metres between a doorway and the room's corner


@dataclass(frozen=True)
class Door:
    """A doorway in the wall whose centre line is ``axis`` = ``line`` ('z': wall runs along x)."""

    axis: str
    line: float
    center: float
    width: float


@dataclass
class RoomPlan:
    """A room's rectangle between wall centre lines, which of its sides are outer walls, and its doors."""

    label: str
    grid: Rect
    exterior: dict[str, bool]
    doors: list[Door] = field(default_factory=list)

    def outer(self, h: float) -> Rect:
        """The rectangle this room's walls occupy on the outside (outer walls: their full thickness)."""
        x0, z0, x1, z1 = self.grid
        e = self.exterior
        return (x0 - h * e["x0"], z0 - h * e["z0"], x1 + h * e["x1"], z1 + h * e["z1"])

    def inner(self, h: float) -> Rect:
        """The interior floor rectangle (inside faces of the walls)."""
        x0, z0, x1, z1 = self.grid
        return (x0 + h, z0 + h, x1 - h, z1 - h)

    def side_doors(self, side: str) -> list[tuple[float, float]]:
        """(start, end) along the wall of the doorways on ``side`` ('x0', 'x1', 'z0', 'z1'), sorted."""
        x0, z0, x1, z1 = self.grid
        coord = {"x0": x0, "x1": x1, "z0": z0, "z1": z1}[side]
        lo, hi = (x0, x1) if side[0] == "z" else (z0, z1)
        spans = [
            (d.center - d.width / 2, d.center + d.width / 2)
            for d in self.doors
            if d.axis == side[0] and abs(d.line - coord) < 1e-9 and lo < d.center < hi
        ]
        return sorted(spans)


def plan_layout(rng: np.random.Generator, cfg: ProceduralConfig) -> tuple[list[RoomPlan], list[tuple[Door, int, int]]]:
    """Room rectangles, labels and doorways; index 0 is the hallway.

    Args:
        rng: source of every draw.
        cfg: generation settings (room counts, wall thickness, door width).

    Returns:
        The rooms, and every doorway with the indices of the two rooms it joins.
    """
    n = int(rng.integers(cfg.min_rooms, cfg.max_rooms + 1))
    n_a = n // 2 + (int(rng.integers(0, 2)) if n % 2 else 0)
    counts = (n_a, n - n_a)
    t = cfg.wall_thickness
    min_w = _MIN_ROOM_WIDTH + t + 0.002
    width = max(counts) * max(float(rng.uniform(2.9, 4.2)), min_w + 0.1)
    depths = rng.uniform(3.0, 5.0, 2)
    hall = float(rng.uniform(1.4, 2.0))
    z_edges = np.round(np.cumsum([0.0, depths[0], hall, depths[1]]) - (depths.sum() + hall) / 2, 3)
    x_lo, x_hi = round(-width / 2, 3), round(width / 2, 3)

    slots: list[tuple[int, Rect]] = []
    for side, k in enumerate(counts):
        w = min_w + (width - k * min_w) * rng.dirichlet(np.full(k, 2.0))
        xs = np.round(x_lo + np.concatenate([[0.0], np.cumsum(w)]), 3)
        xs[-1] = x_hi
        z0, z1 = (z_edges[0], z_edges[1]) if side == 0 else (z_edges[2], z_edges[3])
        for i in range(k):
            slots.append((side, (float(xs[i]), float(z0), float(xs[i + 1]), float(z1))))
    assigned = _assign_labels(rng, slots)

    hallway = RoomPlan(
        "hallway",
        (x_lo, float(z_edges[1]), x_hi, float(z_edges[2])),
        {"x0": True, "x1": True, "z0": False, "z1": False},
    )
    plans = [hallway]
    side_rooms: list[list[RoomPlan]] = [[], []]
    for (side, rect), label in zip(slots, assigned):
        ext = {"x0": rect[0] == x_lo, "x1": rect[2] == x_hi, "z0": side == 0, "z1": side == 1}
        plan = RoomPlan(label, rect, ext)
        plans.append(plan)
        side_rooms[side].append(plan)
    return plans, _add_doors(rng, cfg, plans, side_rooms)


def _assign_labels(rng: np.random.Generator, slots: list[tuple[int, Rect]]) -> list[str]:
    """Room types for the slots: the mandatory ones plus drawn extras, larger types to larger slots."""
    n = len(slots)
    labels = list(MANDATORY_ROOMS) + [EXTRA_ROOMS[i] for i in rng.choice(len(EXTRA_ROOMS), n - 4, p=_EXTRA_WEIGHTS)]
    size_pref = {"living_room": 3.0, "dining_room": 2.2, "kitchen": 2.0, "bedroom": 2.0, "office": 1.2, "bathroom": 0.0}
    score = np.array([size_pref[lab] for lab in labels]) + rng.uniform(0.0, 1.2, n)
    areas = np.array([(r[2] - r[0]) * (r[3] - r[1]) for _, r in slots])
    by_label = [labels[i] for i in np.argsort(-score, kind="stable")]
    assigned = [""] * n
    for rank, slot in enumerate(np.argsort(-areas, kind="stable")):
        assigned[slot] = by_label[rank]
    return assigned


def _add_doors(
    rng: np.random.Generator, cfg: ProceduralConfig, plans: list[RoomPlan], side_rooms: list[list[RoomPlan]]
) -> list[tuple[Door, int, int]]:
    """A doorway from every room to the hallway (``plans[0]``), and some between neighbours on one side."""
    hallway = plans[0]
    h, dw = cfg.wall_thickness / 2, cfg.door_width
    doors: list[tuple[Door, int, int]] = []
    for index, plan in enumerate(plans[1:], start=1):  # every room opens onto the hallway
        ix0, _, ix1, _ = plan.inner(h)
        c = round(float(rng.uniform(ix0 + _DOOR_MARGIN + dw / 2, ix1 - _DOOR_MARGIN - dw / 2)), 3)
        line = plan.grid[3] if plan.grid[3] == hallway.grid[1] else plan.grid[1]
        door = Door("z", line, c, dw)
        plan.doors.append(door)
        hallway.doors.append(door)
        doors.append((door, 0, index))
    pair_prob = {
        ("dining_room", "kitchen"): 0.8,
        ("dining_room", "living_room"): 0.6,
        ("kitchen", "living_room"): 0.5,
        ("bathroom", "bedroom"): 0.4,
    }
    for rooms in side_rooms:
        for a, b in itertools.pairwise(rooms):
            ia, ib = plans.index(a), plans.index(b)
            key = tuple(sorted((a.label, b.label)))
            if rng.random() < pair_prob.get(key, 0.15):
                _, iz0, _, iz1 = a.inner(h)
                c = round(float(rng.uniform(iz0 + _DOOR_MARGIN + dw / 2, iz1 - _DOOR_MARGIN - dw / 2)), 3)
                door = Door("x", a.grid[2], c, dw)
                a.doors.append(door)
                b.doors.append(door)
                doors.append((door, ia, ib))
    return doors


def door_record(door: Door, i: int, j: int, plans: list[RoomPlan], cfg: ProceduralConfig) -> dict:
    """Sidecar entry of a doorway: the rooms it joins, its centre (x, z) on the wall centre line, its size and
    the unit (x, z) normal pointing from ``rooms[0]`` into ``rooms[1]``.

    Args:
        door: the doorway.
        i: index of the first room it joins.
        j: index of the second room it joins.
        plans: every room, indexed as in the sidecar.
        cfg: generation settings (door height).

    Returns:
        ``{"rooms": [i, j], "center": [x, z], "normal": [nx, nz], "width": m, "height": m}``.
    """
    if door.axis == "z":
        centre, inside = [door.center, door.line], plans[j].grid[1] + plans[j].grid[3]
        normal = [0.0, 1.0 if inside / 2 > door.line else -1.0]
    else:
        centre, inside = [door.line, door.center], plans[j].grid[0] + plans[j].grid[2]
        normal = [1.0 if inside / 2 > door.line else -1.0, 0.0]
    return {
        "rooms": [i, j],
        "center": [round(float(c), 6) for c in centre],
        "normal": normal,
        "width": float(door.width),
        "height": float(cfg.door_height),
    }


def rect_polygon(r: Rect) -> list[list[float]]:
    """Counter-clockwise seen from above (+Y towards the viewer): (x0, z0), (x0, z1), (x1, z1), (x1, z0)."""
    x0, z0, x1, z1 = (round(float(v), 6) for v in r)
    return [[x0, z0], [x0, z1], [x1, z1], [x1, z0]]
