"""Procedural indoor houses in the spirit of ProcTHOR: rooms off a hallway, textured surfaces, furniture.

A house is a rectangle split by a hallway strip that runs along X; rooms sit on both sides of it, each
with a doorway to the hallway and sometimes one to its neighbour. Every room has a floor, a ceiling and
walls with doorway openings (no door leaves); the outer walls are closed, so the house is sealed. Surfaces
carry procedural textures with a real-world scale (UVs in metres divided by a tile size, REPEAT wrapping):
wood planks, ceramic tiles and carpet on floors, painted plaster or tiles on walls. Furniture is built from
primitives (boxes, cylinders, spheres) per room type.

Conventions: right-handed, Y up, metres, floor at y = 0. Everything is drawn from the ``rng`` argument, so
the same seed gives byte-identical files.

Geometry notes for ray casting: each room owns the wall slab between its interior and the wall centre
line (outer walls: the whole thickness), so a wall shared by two rooms is two half-thickness slabs that only
touch inside the wall. Faces that can never be seen (slab tops and bottoms, the faces on a shared centre
line, slab ends inside corners) are left out, so no two faces overlap in the same plane. Floors and
ceilings reach the wall centre lines (the floor under a doorway is split between the two rooms).

Appearance: floors, walls, ceilings and most furniture are ``PBRMaterial`` with a ``baseColorTexture``
(PNG) and UVs; the colour is ``baseColorFactor * texture``. Paint, ceiling, fabric and lacquer/wood grain use
shared near-white detail textures tinted by the factor; planks, tiles and carpet are coloured textures with
a white factor. Small parts (metal, ceramic, screens, books, plants) have a ``baseColorFactor`` only and no
UVs. No vertex colours are used.

Example::

    house = generate_house(rng=np.random.default_rng(7))
    glb, sidecar = write_house(house, "houses/house_0007.glb")
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image
from scipy import ndimage

from envsim.provenance import atomic_write
from envsim.scenes.rooms import SIDECAR_FORMAT, SIDECAR_SUFFIX

log = logging.getLogger(__name__)

GENERATOR = "envsim.procedural"
"""The name a house's sidecar records as its generator (fixed: moving the code must not change the bytes)."""

RGB = tuple[float, float, float]
Rect = tuple[float, float, float, float]  # (x0, z0, x1, z1) in metres
Geo = tuple[np.ndarray, np.ndarray]  # (V, 3) float64 vertices, (F, 3) int64 faces

MANDATORY_ROOMS: tuple[str, ...] = ("living_room", "kitchen", "bedroom", "bathroom")
"""Room types every house has (plus exactly one hallway)."""

EXTRA_ROOMS: tuple[str, ...] = ("bedroom", "dining_room", "office", "bathroom")
"""Room types drawn for rooms beyond the mandatory ones."""

_EXTRA_WEIGHTS = np.array([0.35, 0.25, 0.25, 0.15])
_MIN_ROOM_WIDTH = 2.5  # interior metres
_DOOR_MARGIN = 0.15  # metres between a doorway and the room's corner
_WALL_GAP = 0.02  # metres between furniture and the wall it stands against
_AGENT_RADIUS = 0.1  # metres; every doorway of a room must stay reachable for this agent
_CORRIDOR_RADIUS = 0.25  # metres of clear space (above 0.95 m) on the line from the room centre to a door
_TALL = 0.95  # metres; furniture taller than this stays out of the centre-to-door corridors
_CELL = 0.05  # metres, grid of the reachability check
_BASEBOARD = (0.08, 0.012)  # height, thickness in metres


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


@dataclass(frozen=True, eq=False)
class House:
    """A generated house.

    Attributes:
        scene: Y-up scene in metres; every geometry node has a unique name ``rNN/<part>`` (NN = room index)
            and world coordinates baked into its vertices (identity node transforms).
        sidecar: the ``envsim-rooms/1`` sidecar (see :mod:`envsim.scenes.rooms`), JSON-serialisable. Room 0 is the
            hallway; polygons are the interior floor rectangles. Two extra keys: ``"doors"``, a list of
            ``{"rooms": [i, j], "center": [x, z], "normal": [nx, nz], "width": m, "height": m}`` (centre on
            the wall centre line, normal pointing from room i into room j), and ``"generator"``, :data:`GENERATOR`
            name and the config.
    """

    scene: trimesh.Scene
    sidecar: dict


# --------------------------------------------------------------------------------------------- public API


def generate_house(*, rng: np.random.Generator, config: ProceduralConfig = ProceduralConfig()) -> House:
    """Generate one furnished house.

    Args:
        rng: the only source of randomness; the same generator state gives the same house.
        config: generation settings.

    Returns:
        The house: a trimesh scene and its room sidecar.
    """
    plans, doors = _plan_layout(rng, config)
    bank = _MaterialBank(rng, config.texture_size)
    out = _Nodes()
    _build_structure(rng, config, plans, bank, out)
    if config.furniture:
        for index, plan in enumerate(plans):
            ctx = _RoomCtx(index, plan, config)
            _FURNISH[plan.label](rng, ctx, bank, out)
            _add_pictures(rng, ctx, bank, out)
    scene = trimesh.Scene()
    objects: dict[str, dict] = {}
    for name, room, category, (v, f), mat in out.nodes:
        scene.add_geometry(_to_trimesh(v, f, mat), node_name=name, geom_name=name)
        objects[name] = {"room": room, "category": category}
    t = config.wall_thickness / 2
    sidecar = {
        "format": SIDECAR_FORMAT,
        "up": "y",
        "rooms": [
            {
                "label": p.label,
                "polygon": _rect_polygon(p.inner(t)),
                "floor": 0.0,
                "ceiling": float(config.wall_height),
            }
            for p in plans
        ],
        "objects": objects,
        "doors": [_door_record(door, i, j, plans, config) for door, i, j in doors],
        "generator": {"module": GENERATOR, "config": dataclasses.asdict(config)},
    }
    log.debug("procedural house: %d rooms, %d nodes, %d triangles", len(plans), len(objects), out.n_triangles)
    return House(scene=scene, sidecar=sidecar)


def write_house(house: House, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write a house as a GLB and its room sidecar ``<stem>.rooms.json`` next to it.

    Both files are written to a temporary name in the target folder and then renamed, so readers never see
    a partial file.

    Args:
        house: from :func:`generate_house`.
        path: the GLB path; must end in ``.glb``. Missing parent folders are created.

    Returns:
        (GLB path, sidecar path).
    """
    glb = Path(path)
    if glb.suffix.lower() != ".glb":
        raise ValueError(f"write_house writes binary glTF: give a path ending in .glb, got {glb.name!r}")
    side = glb.with_name(glb.stem + SIDECAR_SUFFIX)
    glb.parent.mkdir(parents=True, exist_ok=True)
    data = house.scene.export(file_type="glb")
    atomic_write(glb, data, unique=True)
    atomic_write(side, (json.dumps(house.sidecar, indent=1) + "\n").encode(), unique=True)
    return glb, side


# --------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _Door:
    """A doorway in the wall whose centre line is ``axis`` = ``line`` ('z': wall runs along x)."""

    axis: str
    line: float
    center: float
    width: float


@dataclass
class _RoomPlan:
    """A room's rectangle between wall centre lines, which of its sides are outer walls, and its doors."""

    label: str
    grid: Rect
    exterior: dict[str, bool]
    doors: list[_Door] = field(default_factory=list)

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


def _plan_layout(
    rng: np.random.Generator, cfg: ProceduralConfig
) -> tuple[list[_RoomPlan], list[tuple[_Door, int, int]]]:
    """Room rectangles, labels and doorways; index 0 is the hallway.

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

    labels = list(MANDATORY_ROOMS) + [EXTRA_ROOMS[i] for i in rng.choice(len(EXTRA_ROOMS), n - 4, p=_EXTRA_WEIGHTS)]
    size_pref = {"living_room": 3.0, "dining_room": 2.2, "kitchen": 2.0, "bedroom": 2.0, "office": 1.2, "bathroom": 0.0}
    score = np.array([size_pref[lab] for lab in labels]) + rng.uniform(0.0, 1.2, n)
    areas = np.array([(r[2] - r[0]) * (r[3] - r[1]) for _, r in slots])
    by_label = [labels[i] for i in np.argsort(-score, kind="stable")]
    assigned = [""] * n
    for rank, slot in enumerate(np.argsort(-areas, kind="stable")):
        assigned[slot] = by_label[rank]

    hallway = _RoomPlan(
        "hallway",
        (x_lo, float(z_edges[1]), x_hi, float(z_edges[2])),
        {"x0": True, "x1": True, "z0": False, "z1": False},
    )
    plans = [hallway]
    side_rooms: list[list[_RoomPlan]] = [[], []]
    for (side, rect), label in zip(slots, assigned):
        ext = {"x0": rect[0] == x_lo, "x1": rect[2] == x_hi, "z0": side == 0, "z1": side == 1}
        plan = _RoomPlan(label, rect, ext)
        plans.append(plan)
        side_rooms[side].append(plan)

    h, dw = t / 2, cfg.door_width
    doors: list[tuple[_Door, int, int]] = []
    for index, plan in enumerate(plans[1:], start=1):  # every room opens onto the hallway
        ix0, _, ix1, _ = plan.inner(h)
        c = round(float(rng.uniform(ix0 + _DOOR_MARGIN + dw / 2, ix1 - _DOOR_MARGIN - dw / 2)), 3)
        line = plan.grid[3] if plan.grid[3] == hallway.grid[1] else plan.grid[1]
        door = _Door("z", line, c, dw)
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
                door = _Door("x", a.grid[2], c, dw)
                a.doors.append(door)
                b.doors.append(door)
                doors.append((door, ia, ib))
    return plans, doors


def _door_record(door: _Door, i: int, j: int, plans: list[_RoomPlan], cfg: ProceduralConfig) -> dict:
    """Sidecar entry of a doorway: the rooms it joins, its centre (x, z) on the wall centre line, its size and
    the unit (x, z) normal pointing from ``rooms[0]`` into ``rooms[1]``."""
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


def _rect_polygon(r: Rect) -> list[list[float]]:
    """Counter-clockwise seen from above (+Y towards the viewer): (x0, z0), (x0, z1), (x1, z1), (x1, z0)."""
    x0, z0, x1, z1 = (round(float(v), 6) for v in r)
    return [[x0, z0], [x0, z1], [x1, z1], [x1, z0]]


# --------------------------------------------------------------------------------------------- geometry

_FACES = ("-x", "+x", "-y", "+y", "-z", "+z")


def _box(lo, hi, faces: tuple[str, ...] = _FACES) -> Geo:
    """An axis-aligned box (or some of its faces) with outward winding; 4 unshared vertices per face.

    Args:
        lo: (3,) minimum corner in metres.
        hi: (3,) maximum corner in metres.
        faces: which faces to build, from ``-x +x -y +y -z +z``.
    """
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    verts, tris = [], []
    for key in _FACES:
        if key not in faces:
            continue
        axis, sign = "xyz".index(key[1]), 1 if key[0] == "+" else -1
        a, b = (axis + 1) % 3, (axis + 2) % 3  # e_a x e_b = e_axis
        quad = np.empty((4, 3))
        quad[:, axis] = hi[axis] if sign > 0 else lo[axis]
        quad[:, a] = [lo[a], hi[a], hi[a], lo[a]]
        quad[:, b] = [lo[b], lo[b], hi[b], hi[b]]
        if sign < 0:
            quad = quad[::-1]
        base = 4 * len(verts)
        verts.append(quad)
        tris.append(np.array([[0, 1, 2], [0, 2, 3]]) + base)
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    return np.concatenate(verts), np.concatenate(tris).astype(np.int64)


def _bb(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> Geo:
    """A closed box spanning the given ranges (metres)."""
    return _box((x0, y0, z0), (x1, y1, z1))


def _cyl(cx: float, cz: float, y0: float, y1: float, r: float, sections: int = 16) -> Geo:
    """A vertical closed cylinder of radius ``r`` standing on y0 (metres)."""
    m = trimesh.creation.cylinder(radius=r, height=y1 - y0, sections=sections)
    v = np.asarray(m.vertices, np.float64)
    v = np.stack([v[:, 0], v[:, 2], -v[:, 1]], axis=1)  # rotate the Z axis onto Y (a proper rotation)
    return v + [cx, (y0 + y1) / 2, cz], np.asarray(m.faces, np.int64)


def _cyl_z(cx: float, cy: float, z0: float, z1: float, r: float, sections: int = 16) -> Geo:
    """A closed cylinder of radius ``r`` along +Z from z0 to z1, axis through (cx, cy) (metres)."""
    m = trimesh.creation.cylinder(radius=r, height=z1 - z0, sections=sections)
    return np.asarray(m.vertices, np.float64) + [cx, cy, (z0 + z1) / 2], np.asarray(m.faces, np.int64)


def _ellipsoid(cx: float, cy: float, cz: float, rx: float, ry: float, rz: float) -> Geo:
    """An ellipsoid (scaled 80-triangle icosphere) centred at (cx, cy, cz), radii in metres."""
    m = trimesh.creation.icosphere(subdivisions=1, radius=1.0)
    return np.asarray(m.vertices, np.float64) * [rx, ry, rz] + [cx, cy, cz], np.asarray(m.faces, np.int64)


def _cat(*geos: Geo) -> Geo:
    verts, faces, offset = [], [], 0
    for v, f in geos:
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def _planar_uv(v: np.ndarray, f: np.ndarray, tile: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-face planar UVs in metres / ``tile``: faces facing X map (z, y), Y map (x, z), Z map (x, y).

    Vertices shared by faces with different projections are split first. Returns (vertices, faces, uv).
    """
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    axis = np.argmax(np.abs(n), axis=1)
    vert_axis = np.full(len(v), -1)
    vert_axis[f] = axis[:, None]
    if not np.all(vert_axis[f] == axis[:, None]):
        v = v[f].reshape(-1, 3)
        f = np.arange(len(v)).reshape(-1, 3)
        vert_axis = np.repeat(axis, 3)
    uv = np.empty((len(v), 2))
    proj = {0: (2, 1), 1: (0, 2), 2: (0, 1)}
    for ax, (pu, pv) in proj.items():
        sel = vert_axis == ax
        uv[sel, 0], uv[sel, 1] = v[sel, pu], v[sel, pv]
    return v, f, uv / tile


@dataclass(frozen=True)
class _Frame:
    """Local -> world placement: rotation ``theta`` (radians) about +Y, then translation (tx, 0, tz)."""

    theta: float
    tx: float
    tz: float

    def apply(self, v: np.ndarray) -> np.ndarray:
        c, s = round(math.cos(self.theta)), round(math.sin(self.theta))  # multiples of 90 degrees only
        x, z = v[:, 0], v[:, 2]
        return np.stack([c * x + s * z + self.tx, v[:, 1], -s * x + c * z + self.tz], axis=1)

    def rect(self, lx0: float, lz0: float, lx1: float, lz1: float) -> Rect:
        """World AABB of a local footprint rectangle."""
        p = self.apply(np.array([[lx0, 0, lz0], [lx1, 0, lz1]], np.float64))
        return (float(p[:, 0].min()), float(p[:, 2].min()), float(p[:, 0].max()), float(p[:, 2].max()))


# side -> (theta turning local +z into the room, wall-normal axis, along axis)
_SIDE_THETA = {"z0": 0.0, "z1": math.pi, "x0": math.pi / 2, "x1": -math.pi / 2}
_OPPOSITE = {"z0": "z1", "z1": "z0", "x0": "x1", "x1": "x0"}


# --------------------------------------------------------------------------------------------- textures


def _noise(rng: np.random.Generator, size: int, sigma_u: float, sigma_v: float) -> np.ndarray:
    """Seamlessly tiling Gaussian-filtered noise, zero mean and unit std; (size, size), rows = v.

    Args:
        sigma_u: blur along u (columns) in pixels.
        sigma_v: blur along v (rows) in pixels.
    """
    white = rng.standard_normal((size, size))
    fv = np.fft.fftfreq(size)[:, None]
    fu = np.fft.fftfreq(size)[None, :]
    filt = np.exp(-2.0 * math.pi**2 * ((sigma_u * fu) ** 2 + (sigma_v * fv) ** 2))
    n = np.fft.ifft2(np.fft.fft2(white) * filt).real
    n -= n.mean()
    std = n.std()
    return n / std if std > 0 else n


def _u8(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _tex_planks(rng: np.random.Generator, size: int, rgb: RGB, rows: int) -> np.ndarray:
    """Wood planks along u, ``rows`` per texture, one end seam per row; uint8 (size, size, 3)."""
    s = size
    edges = np.round(np.linspace(0, s, rows + 1)).astype(int)
    line = max(1, s // 128)
    grain = 0.06 * _noise(rng, s, s / 5.0, 0.7) + 0.025 * _noise(rng, s, 1.5, 0.6)
    warp = _noise(rng, s, s / 6.0, s / 10.0)
    yy = np.arange(s)[:, None]
    streak = 0.05 * np.sin(2 * math.pi * (yy * rows * 2.5 / s + 0.5 * warp))
    shade = np.ones((s, s))
    tint = np.ones((s, s, 3))
    for r in range(rows):
        a, b = edges[r], edges[r + 1]
        shade[a:b] *= 1.0 + rng.normal(0.0, 0.08)
        tint[a:b] *= 1.0 + rng.normal(0.0, 0.025, 3)
        shade[a : a + line] *= 0.55
        seam = int(rng.integers(0, s))
        shade[a:b, np.arange(seam, seam + line) % s] *= 0.55
    img = np.asarray(rgb)[None, None, :] * tint * (shade * (1.0 + grain + streak))[..., None]
    return _u8(img)


def _tex_tiles(
    rng: np.random.Generator,
    size: int,
    n_u: int,
    n_v: int,
    colours: list[RGB],
    grout: RGB,
    *,
    checker: bool = False,
    stagger: bool = False,
) -> np.ndarray:
    """Ceramic tiles, ``n_u x n_v`` per texture, grout lines, per-tile shade; uint8 (size, size, 3)."""
    s = size
    cu, cv = s / n_u, s / n_v
    pos = np.arange(s) + 0.5
    row = np.floor(pos / cv).astype(int)  # (s,)
    shift = np.where(stagger & (row % 2 == 1), cu / 2, 0.0)
    uu = (pos[None, :] + shift[:, None]) % s
    col = np.floor(uu / cu).astype(int)
    fu = uu - col * cu
    fv = (pos - row * cv)[:, None] * np.ones((1, s))
    g = max(1.0, s / 128)
    palette = np.asarray(colours, np.float64)
    if checker:
        which = (row[:, None] + col) % len(palette)
    else:
        which = rng.integers(0, len(palette), (n_v, n_u))[row[:, None], np.minimum(col, n_u - 1)]
    jit = 1.0 + rng.normal(0.0, 0.035, (n_v, n_u))
    tile = palette[which] * jit[row[:, None], np.minimum(col, n_u - 1)][..., None]
    tile *= (1.0 + 0.02 * _noise(rng, s, 1.0, 1.0))[..., None]
    bevel = (fu < 2 * g) | (fv < 2 * g) | (cu - fu < g) | (cv - fv < g)
    tile[bevel] *= 0.95
    img = np.where(((fu < g) | (fv < g))[..., None], np.asarray(grout)[None, None, :], tile)
    return _u8(img)


def _tex_carpet(rng: np.random.Generator, size: int, rgb: RGB) -> np.ndarray:
    s = size
    shade = 0.92 + 0.07 * _noise(rng, s, 0.6, 0.6) + 0.03 * _noise(rng, s, 3, 3) + 0.04 * _noise(rng, s, s / 8, s / 8)
    return _u8(np.asarray(rgb)[None, None, :] * shade[..., None])


def _tex_grey(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """Near-white greyscale detail textures that a material's colour factor tints."""
    s = size
    if kind == "paint":
        img = (
            0.94
            + 0.014 * _noise(rng, s, s / 10, s / 10)
            + 0.01 * _noise(rng, s, 3, 3)
            + 0.012 * _noise(rng, s, 0.7, 0.7)
        )
    elif kind == "ceiling":
        img = 0.95 + 0.012 * _noise(rng, s, 0.7, 0.7) + 0.01 * _noise(rng, s, s / 8, s / 8)
    elif kind == "fabric":
        weave = ((np.arange(s)[:, None] + np.arange(s)[None, :]) % 2) * 2.0 - 1.0
        img = 0.88 + 0.05 * _noise(rng, s, 0.6, 0.6) + 0.03 * weave + 0.03 * _noise(rng, s, s / 8, s / 8)
    elif kind == "grain":
        warp = _noise(rng, s, s / 4, s / 12)
        yy = np.arange(s)[:, None]
        rings = np.sin(2 * math.pi * (yy * 24.0 / s + 0.25 * warp))
        img = 0.88 + 0.035 * rings + 0.04 * _noise(rng, s, s / 5, 0.6) + 0.015 * _noise(rng, s, 1.0, 0.5)
    else:
        raise ValueError(f"unknown texture kind {kind!r}")
    return _u8(img)


# Colours are sRGB in [0, 1]; draws jitter them.
_WOOD_FLOOR: dict[str, RGB] = {
    "birch": (0.80, 0.66, 0.48),
    "honey": (0.74, 0.55, 0.34),
    "oak": (0.62, 0.45, 0.28),
    "walnut": (0.40, 0.27, 0.17),
    "cherry": (0.56, 0.31, 0.20),
    "grey": (0.58, 0.55, 0.50),
    "ebony": (0.30, 0.24, 0.20),
}
_FLOOR_FAMILIES: dict[str, tuple[str, str, str]] = {
    "living_room": ("oak", "walnut", "honey"),
    "bedroom": ("honey", "birch", "oak"),
    "office": ("walnut", "grey", "oak"),
    "dining_room": ("cherry", "oak", "walnut"),
    "hallway": ("grey", "ebony", "oak"),
    "kitchen": ("oak", "grey", "birch"),
}
_CARPET: dict[str, list[RGB]] = {
    "bedroom": [(0.76, 0.70, 0.60), (0.55, 0.60, 0.68), (0.78, 0.64, 0.64), (0.62, 0.62, 0.62)],
    "office": [(0.45, 0.47, 0.50), (0.35, 0.42, 0.55), (0.45, 0.50, 0.45)],
}
_FLOOR_TILES: dict[str, list[RGB]] = {
    "bathroom": [(0.92, 0.92, 0.90), (0.62, 0.64, 0.66), (0.55, 0.62, 0.70), (0.80, 0.74, 0.62), (0.32, 0.33, 0.35)],
    "kitchen": [(0.70, 0.42, 0.30), (0.62, 0.62, 0.60), (0.85, 0.80, 0.70), (0.40, 0.40, 0.42)],
}
_WALL_PAINT: dict[str, list[RGB]] = {
    "living_room": [(0.93, 0.90, 0.84), (0.85, 0.82, 0.74), (0.78, 0.80, 0.72), (0.90, 0.86, 0.78), (0.82, 0.76, 0.70)],
    "bedroom": [(0.78, 0.84, 0.90), (0.84, 0.80, 0.88), (0.90, 0.82, 0.82), (0.86, 0.86, 0.86), (0.88, 0.85, 0.78)],
    "kitchen": [(0.95, 0.94, 0.90), (0.94, 0.90, 0.72), (0.84, 0.88, 0.80), (0.90, 0.90, 0.88)],
    "dining_room": [(0.80, 0.62, 0.52), (0.62, 0.72, 0.62), (0.88, 0.80, 0.66), (0.72, 0.52, 0.52), (0.90, 0.86, 0.78)],
    "office": [(0.80, 0.82, 0.84), (0.74, 0.80, 0.86), (0.92, 0.92, 0.90), (0.62, 0.74, 0.74), (0.85, 0.82, 0.74)],
    "hallway": [(0.94, 0.93, 0.90), (0.86, 0.86, 0.84), (0.85, 0.82, 0.76)],
}
_WALL_TILES: list[RGB] = [
    (0.95, 0.95, 0.94),
    (0.80, 0.88, 0.92),
    (0.78, 0.90, 0.84),
    (0.88, 0.84, 0.76),
    (0.70, 0.72, 0.74),
]
_WOOD: dict[str, RGB] = {
    "light_oak": (0.78, 0.62, 0.44),
    "oak": (0.62, 0.45, 0.28),
    "walnut": (0.38, 0.25, 0.16),
    "cherry": (0.55, 0.29, 0.19),
    "white": (0.92, 0.92, 0.90),
    "black": (0.16, 0.16, 0.16),
    "grey": (0.55, 0.55, 0.55),
}
_FABRIC: dict[str, RGB] = {
    "grey": (0.50, 0.50, 0.52),
    "navy": (0.18, 0.22, 0.38),
    "beige": (0.78, 0.72, 0.62),
    "green": (0.30, 0.42, 0.30),
    "rust": (0.62, 0.32, 0.20),
    "mustard": (0.78, 0.62, 0.22),
    "blue": (0.35, 0.48, 0.68),
    "leather": (0.40, 0.24, 0.14),
    "pink": (0.80, 0.60, 0.62),
    "cream": (0.90, 0.87, 0.80),
    "charcoal": (0.25, 0.25, 0.27),
}
_ART: list[RGB] = [
    (0.85, 0.30, 0.20),
    (0.20, 0.40, 0.70),
    (0.95, 0.75, 0.20),
    (0.30, 0.60, 0.45),
    (0.60, 0.35, 0.60),
    (0.15, 0.15, 0.18),
]
_BOOKS: list[RGB] = [
    (0.60, 0.12, 0.12),
    (0.14, 0.24, 0.50),
    (0.18, 0.42, 0.24),
    (0.88, 0.84, 0.72),
    (0.12, 0.12, 0.12),
    (0.85, 0.62, 0.18),
]
_WHITE: RGB = (0.93, 0.93, 0.92)
_CERAMIC: RGB = (0.96, 0.96, 0.95)
_METAL: RGB = (0.70, 0.71, 0.73)
_SCREEN: RGB = (0.05, 0.06, 0.07)
_PLANT: list[RGB] = [(0.20, 0.45, 0.18), (0.28, 0.52, 0.22), (0.16, 0.36, 0.20)]
_POT: list[RGB] = [(0.70, 0.38, 0.24), (0.90, 0.90, 0.88), (0.25, 0.25, 0.26)]


def _jitter(rng: np.random.Generator, rgb: RGB, amount: float = 0.04) -> RGB:
    c = np.clip(np.asarray(rgb) * (1.0 + rng.normal(0.0, amount, 3)), 0.0, 1.0)
    return (float(c[0]), float(c[1]), float(c[2]))


def _pick(rng: np.random.Generator, options: list | tuple, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _pick_colour(
    rng: np.random.Generator, palette: dict[str, RGB], names: tuple[str, ...], amount: float = 0.04
) -> RGB:
    return _jitter(rng, palette[_pick(rng, names)], amount)


# --------------------------------------------------------------------------------------------- materials


@dataclass(frozen=True, eq=False)
class _Mat:
    """A PBR material and the size in metres of one texture repeat (None: untextured, no UVs)."""

    pbr: trimesh.visual.material.PBRMaterial
    tile: float | None


class _MaterialBank:
    """Builds and caches materials; shared detail textures are drawn once per house."""

    def __init__(self, rng: np.random.Generator, size: int):
        self.size = size
        self._cache: dict[tuple, _Mat] = {}
        self._detail = {
            kind: Image.fromarray(_tex_grey(rng, size, kind), "RGB") for kind in ("paint", "ceiling", "fabric", "grain")
        }
        self._detail_tile = {"paint": 1.0, "ceiling": 1.0, "fabric": 0.5, "grain": 1.2}

    @staticmethod
    def _factor(rgb: RGB) -> list[int]:
        return [round(c * 255) for c in rgb] + [255]

    def flat(self, rgb: RGB) -> _Mat:
        """An untextured material of colour ``rgb`` (sRGB in [0, 1])."""
        factor = self._factor(rgb)
        key = ("flat", *factor)
        if key not in self._cache:
            name = "flat_" + "".join(f"{c:02x}" for c in factor[:3])
            pbr = trimesh.visual.material.PBRMaterial(
                name=name, baseColorFactor=factor, metallicFactor=0.0, roughnessFactor=0.8
            )
            self._cache[key] = _Mat(pbr, None)
        return self._cache[key]

    def tinted(self, kind: str, rgb: RGB) -> _Mat:
        """A shared greyscale detail texture (paint, ceiling, fabric, grain) tinted by ``rgb``."""
        if kind == "grain" and max(rgb) - min(rgb) < 0.08:
            kind = "paint"  # white, grey and black furniture is lacquered, not grained
        factor = self._factor(rgb)
        key = (kind, *factor)
        if key not in self._cache:
            name = f"{kind}_" + "".join(f"{c:02x}" for c in factor[:3])
            pbr = trimesh.visual.material.PBRMaterial(
                name=name,
                baseColorTexture=self._detail[kind],
                baseColorFactor=factor,
                metallicFactor=0.0,
                roughnessFactor=0.9,
            )
            self._cache[key] = _Mat(pbr, self._detail_tile[kind])
        return self._cache[key]

    def textured(self, name: str, image: np.ndarray, tile: float) -> _Mat:
        """A colour texture (uint8 (S, S, 3)) repeating every ``tile`` metres."""
        pbr = trimesh.visual.material.PBRMaterial(
            name=name,
            baseColorTexture=Image.fromarray(image, "RGB"),
            baseColorFactor=[255, 255, 255, 255],
            metallicFactor=0.0,
            roughnessFactor=0.8,
        )
        return _Mat(pbr, tile)


def _to_trimesh(v: np.ndarray, f: np.ndarray, mat: _Mat) -> trimesh.Trimesh:
    uv = None
    if mat.tile is not None:
        v, f, uv = _planar_uv(v, f, mat.tile)
    visual = trimesh.visual.TextureVisuals(uv=uv, material=mat.pbr)
    return trimesh.Trimesh(vertices=v.astype(np.float32), faces=f, visual=visual, process=False)


class _Nodes:
    """The scene's nodes in insertion order: (name, room index, category, world geometry, material)."""

    def __init__(self) -> None:
        self.nodes: list[tuple[str, int, str, Geo, _Mat]] = []
        self._count: dict[tuple[int, str], int] = {}
        self.n_triangles = 0

    def add(self, room: int, name: str, category: str, geo: Geo, mat: _Mat) -> None:
        if len(geo[1]) == 0:
            return
        self.nodes.append((f"r{room:02d}/{name}", room, category, geo, mat))
        self.n_triangles += len(geo[1])

    def add_item(self, room: int, item: str, category: str, frame: _Frame, parts: list[tuple[str, Geo, _Mat]]) -> None:
        """Add a furniture item's parts (local geometry) placed by ``frame``, named ``<item><k>_<part>``."""
        k = self._count.get((room, item), 0)
        self._count[(room, item)] = k + 1
        for suffix, (v, f), mat in parts:
            self.add(room, f"{item}{k}_{suffix}", category, (frame.apply(v), f), mat)


# --------------------------------------------------------------------------------------------- structure


def _build_structure(
    rng: np.random.Generator, cfg: ProceduralConfig, plans: list[_RoomPlan], bank: _MaterialBank, out: _Nodes
) -> None:
    """Floors, ceilings, walls with doorway openings, baseboards and ceiling lamps of every room."""
    h = cfg.wall_thickness / 2
    s = cfg.texture_size
    ceiling = bank.tinted("ceiling", _jitter(rng, (0.95, 0.94, 0.91), 0.015))
    trim = bank.flat(_jitter(rng, _pick(rng, [_WHITE, _WOOD["oak"], _WOOD["walnut"], (0.85, 0.85, 0.83)]), 0.03))
    for i, plan in enumerate(plans):
        ox0, oz0, ox1, oz1 = plan.outer(h)
        floor = _floor_material(rng, plan.label, i, s, bank)
        out.add(i, "floor", "floor", _box((ox0, 0.0, oz0), (ox1, 0.0, oz1), ("+y",)), floor)
        out.add(
            i, "ceiling", "ceiling", _box((ox0, cfg.wall_height, oz0), (ox1, cfg.wall_height, oz1), ("-y",)), ceiling
        )
        wall = _wall_material(rng, plan.label, i, s, bank)
        for side in ("z0", "z1", "x0", "x1"):
            out.add(i, f"wall_{side}", "wall", _wall_side(plan, side, cfg), wall)
        if plan.label != "bathroom":
            out.add(i, "baseboard", "baseboard", _baseboards(plan, h), trim)
        ix0, iz0, ix1, iz1 = plan.inner(h)
        shade = bank.flat(_jitter(rng, _pick(rng, [(0.97, 0.95, 0.85), (0.92, 0.92, 0.92), (0.85, 0.80, 0.65)]), 0.02))
        long_x = (ix1 - ix0) >= (iz1 - iz0)
        n_lamps = max(1, int(max(ix1 - ix0, iz1 - iz0) // 4.0)) if plan.label == "hallway" else 1
        r = float(rng.uniform(0.15, 0.25))
        lamps = []
        for k in range(n_lamps):
            t = (k + 0.5) / n_lamps
            cx = ix0 + t * (ix1 - ix0) if long_x else (ix0 + ix1) / 2
            cz = (iz0 + iz1) / 2 if long_x else iz0 + t * (iz1 - iz0)
            lamps.append(_ellipsoid(cx, cfg.wall_height, cz, r, 0.45 * r, r))
        out.add(i, "lamp0_shade", "lamp", _cat(*lamps), shade)


def _floor_material(rng: np.random.Generator, label: str, room: int, s: int, bank: _MaterialBank) -> _Mat:
    kind = "wood"
    if label == "bathroom" or (label == "kitchen" and rng.random() < 0.85):
        kind = "tiles"
    elif label in _CARPET and rng.random() < 0.35:
        kind = "carpet"
    elif label in ("hallway", "dining_room") and rng.random() < 0.2:
        kind = "tiles"
    if kind == "wood":
        fam = _FLOOR_FAMILIES[label]
        rgb = _jitter(rng, _WOOD_FLOOR[_pick(rng, fam, p=[0.6, 0.25, 0.15])], 0.06)
        rows = int(rng.choice([6, 8]))
        plank = float(rng.uniform(0.12, 0.2))
        img = _tex_planks(rng, s, rgb, rows)
        if rng.random() < 0.5:
            img = np.ascontiguousarray(img.transpose(1, 0, 2))
        return bank.textured(f"floor_r{room:02d}_wood", img, rows * plank)
    if kind == "carpet":
        img = _tex_carpet(rng, s, _jitter(rng, _pick(rng, _CARPET[label]), 0.05))
        return bank.textured(f"floor_r{room:02d}_carpet", img, 1.0)
    palette = _FLOOR_TILES["bathroom" if label == "bathroom" else "kitchen"]
    if label == "bathroom":
        n, size, checker = 4, float(rng.uniform(0.1, 0.3)), False
        colours = [_jitter(rng, _pick(rng, palette), 0.04)]
    elif rng.random() < 0.3:
        n, size, checker = 4, float(rng.uniform(0.2, 0.3)), True
        colours = [_jitter(rng, (0.92, 0.91, 0.88), 0.02), _jitter(rng, (0.14, 0.14, 0.15), 0.05)]
    else:
        n, size, checker = 2, float(rng.uniform(0.3, 0.6)), False
        colours = [_jitter(rng, _pick(rng, palette), 0.05)]
    grout = _jitter(rng, (0.55, 0.55, 0.53) if np.mean(colours[0]) > 0.5 else (0.75, 0.75, 0.73), 0.03)
    img = _tex_tiles(rng, s, n, n, colours, grout, checker=checker)
    return bank.textured(f"floor_r{room:02d}_tiles", img, n * size)


def _wall_material(rng: np.random.Generator, label: str, room: int, s: int, bank: _MaterialBank) -> _Mat:
    if label == "bathroom":
        colour = _jitter(rng, _pick(rng, _WALL_TILES), 0.03)
        grout = _jitter(rng, (0.80, 0.80, 0.78), 0.03)
        if rng.random() < 0.5:  # subway tiles
            size = float(rng.uniform(0.12, 0.2))
            img = _tex_tiles(rng, s, 4, 8, [colour], grout, stagger=True)
        else:
            size = float(rng.uniform(0.1, 0.2))
            img = _tex_tiles(rng, s, 4, 4, [colour], grout)
        return bank.textured(f"wall_r{room:02d}_tiles", img, 4 * size)
    return bank.tinted("paint", _jitter(rng, _pick(rng, _WALL_PAINT[label]), 0.035))


def _wall_side(plan: _RoomPlan, side: str, cfg: ProceduralConfig) -> Geo:
    """The wall slab on one side of a room, split around its doorways with a lintel above each."""
    h, height = cfg.wall_thickness / 2, cfg.wall_height
    ox0, oz0, ox1, oz1 = plan.outer(h)
    ix0, iz0, ix1, iz1 = plan.inner(h)
    ext = plan.exterior[side]
    if side[0] == "z":  # runs along x, spans the whole outer width
        along, across = 0, 2
        a_lo, a_hi = ox0, ox1
        c_lo, c_hi = (oz0, iz0) if side == "z0" else (iz1, oz1)
        inner_face, outer_face = ("+z", "-z") if side == "z0" else ("-z", "+z")
        open_lo, open_hi = plan.exterior["x0"], plan.exterior["x1"]
    else:  # runs along z between the two long sides
        along, across = 2, 0
        a_lo, a_hi = iz0, iz1
        c_lo, c_hi = (ox0, ix0) if side == "x0" else (ix1, ox1)
        inner_face, outer_face = ("+x", "-x") if side == "x0" else ("-x", "+x")
        open_lo = open_hi = False
    end_lo, end_hi = "-" + "xyz"[along], "+" + "xyz"[along]

    def piece(a0: float, a1: float, y0: float, y1: float, faces: list[str]) -> Geo:
        lo, hi = np.zeros(3), np.zeros(3)
        lo[along], hi[along] = a0, a1
        lo[across], hi[across] = c_lo, c_hi
        lo[1], hi[1] = y0, y1
        return _box(lo, hi, tuple(faces))

    base = [inner_face] + ([outer_face] if ext else [])
    pieces = []
    start, start_is_jamb = a_lo, False
    for d0, d1 in plan.side_doors(side):
        faces = base + [end_hi] + ([end_lo] if start_is_jamb or (start == a_lo and open_lo) else [])
        pieces.append(piece(start, d0, 0.0, height, faces))
        pieces.append(piece(d0, d1, cfg.door_height, height, base + ["-y"]))
        start, start_is_jamb = d1, True
    faces = base + ([end_lo] if start_is_jamb or open_lo and start == a_lo else []) + ([end_hi] if open_hi else [])
    pieces.append(piece(start, a_hi, 0.0, height, faces))
    return _cat(*pieces)


def _baseboards(plan: _RoomPlan, h: float) -> Geo:
    bh, bt = _BASEBOARD
    ix0, iz0, ix1, iz1 = plan.inner(h)
    parts = []
    for side in ("z0", "z1", "x0", "x1"):
        if side[0] == "z":
            lo, hi = ix0, ix1
        else:
            lo, hi = iz0 + bt, iz1 - bt
        spans, start = [], lo
        for d0, d1 in plan.side_doors(side):
            spans.append((start, d0))
            start = d1
        spans.append((start, hi))
        for a0, a1 in spans:
            if a1 - a0 < 1e-3:
                continue
            if side == "z0":
                parts.append(_bb(a0, a1, 0, bh, iz0, iz0 + bt))
            elif side == "z1":
                parts.append(_bb(a0, a1, 0, bh, iz1 - bt, iz1))
            elif side == "x0":
                parts.append(_bb(ix0, ix0 + bt, 0, bh, a0, a1))
            else:
                parts.append(_bb(ix1 - bt, ix1, 0, bh, a0, a1))
    return _cat(*parts)


# --------------------------------------------------------------------------------------------- placement


def _overlap(a: Rect, b: Rect, clearance: float = 0.0) -> bool:
    return a[0] < b[2] + clearance and b[0] < a[2] + clearance and a[1] < b[3] + clearance and b[1] < a[3] + clearance


class _RoomCtx:
    """Free space bookkeeping for furnishing one room.

    Furniture is axis-aligned. Every item stays inside the room and off the doorway zones (0.9 m deep in
    front of each doorway); items taller than 0.95 m also keep 0.25 m clear of the straight lines from the
    room centre to each doorway (so the centre sees every doorway at 1 m height); in the hallway a central
    band stays clear. After each placement all doorways must remain connected for an agent of radius 0.1 m.
    """

    def __init__(self, index: int, plan: _RoomPlan, cfg: ProceduralConfig):
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

    def wall_frame(self, side: str, along: float, gap: float = _WALL_GAP) -> _Frame:
        """Frame whose local origin is on the wall at ``along`` (+ ``gap``), local +z pointing into the room."""
        ix0, iz0, ix1, iz1 = self.inner
        if side == "z0":
            return _Frame(_SIDE_THETA[side], along, iz0 + gap)
        if side == "z1":
            return _Frame(_SIDE_THETA[side], along, iz1 - gap)
        if side == "x0":
            return _Frame(_SIDE_THETA[side], ix0 + gap, along)
        return _Frame(_SIDE_THETA[side], ix1 - gap, along)

    def _corridor_clear(self, rect: Rect) -> bool:
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
        if any(_overlap(rect, r, clearance) for r, _ in self.items):
            return False
        if any(_overlap(rect, z) for z in self.door_zones):
            return False
        if self.band is not None and _overlap(rect, self.band):
            return False
        if self.band is None and height > _TALL and not self._corridor_clear(rect):
            return False
        return self._connected([r for r, _ in self.items] + [rect])

    def reserve(self, rect: Rect, height: float) -> None:
        self.items.append((rect, height))

    def try_place(
        self, frame: _Frame, local: Rect, height: float, *, flat: bool = False, clearance: float = 0.03
    ) -> bool:
        """Reserve the local footprint ``local`` placed by ``frame`` when it fits."""
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
    ) -> tuple[_Frame, str, float] | None:
        """Find a spot against a wall for a ``width`` x ``depth`` item (local x in [-w/2, w/2], z in [0, d]).

        Returns (frame, side, along) with the footprint reserved, or None.
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
    ) -> _Frame | None:
        """Place a free-standing item (local footprint ``local``, centred) near the room centre.

        The long side of the footprint follows the room's long side; the centre is jittered by up to
        ``spread`` times the free slack along each axis.
        """
        ix0, iz0, ix1, iz1 = self.inner
        w, d = local[2] - local[0], local[3] - local[1]
        theta = 0.0 if ((ix1 - ix0) >= (iz1 - iz0)) == (w >= d) else math.pi / 2
        for _ in range(tries):
            fw, fd = (w, d) if theta == 0.0 else (d, w)
            sx, sz = max(0.0, (ix1 - ix0 - fw) / 2), max(0.0, (iz1 - iz0 - fd) / 2)
            cx = self.centre[0] + float(rng.uniform(-1, 1)) * spread * sx
            cz = self.centre[1] + float(rng.uniform(-1, 1)) * spread * sz
            frame = _Frame(theta, cx, cz)
            if self.try_place(frame, local, height, clearance=clearance):
                return frame
        return None


# --------------------------------------------------------------------------------------------- furniture

Parts = list[tuple[str, Geo, _Mat]]


def _legs(x0: float, x1: float, z0: float, z1: float, y1: float, s: float) -> Geo:
    """Four square legs of side ``s`` under the rectangle [x0, x1] x [z0, z1], from the floor to y1."""
    return _cat(*[_bb(x, x + s, 0.0, y1, z, z + s) for x in (x0, x1 - s) for z in (z0, z1 - s)])


def _table(
    w: float, d: float, h: float, top: float = 0.04, leg: float = 0.05, inset: float = 0.04, z0: float = 0.0
) -> Geo:
    """A table (top + four legs), local x in [-w/2, w/2], z in [z0, z0 + d]."""
    return _cat(
        _bb(-w / 2, w / 2, h - top, h, z0, z0 + d),
        _legs(-w / 2 + inset, w / 2 - inset, z0 + inset, z0 + d - inset, h - top, leg),
    )


def _chair(rng: np.random.Generator, seat_h: float = 0.46) -> Geo:
    """A dining chair facing +z, local x in [-0.21, 0.21], z in [0, 0.44], back at z = 0, top below 0.95 m."""
    w, d, t = 0.42, 0.44, 0.04
    back_h = float(rng.uniform(0.36, 0.44))
    return _cat(
        _legs(-w / 2, w / 2, 0.0, d, seat_h, 0.035),
        _bb(-w / 2, w / 2, seat_h, seat_h + t, 0.0, d),
        _bb(-w / 2, w / 2, seat_h + t, seat_h + t + back_h, 0.0, 0.04),
    )


def _plant(rng: np.random.Generator, bank: _MaterialBank, radius: float) -> tuple[Parts, float]:
    """A pot with a foliage ball, centred at local (0, radius); returns (parts, height)."""
    pot_r = radius * float(rng.uniform(0.5, 0.65))
    pot_h = float(rng.uniform(0.3, 0.45))
    fy = pot_h + radius * 0.8
    parts = [
        ("pot", _cyl(0.0, radius, 0.0, pot_h, pot_r), bank.flat(_jitter(rng, _pick(rng, _POT)))),
        (
            "leaves",
            _ellipsoid(0.0, fy, radius, radius, radius * float(rng.uniform(1.0, 1.5)), radius),
            bank.flat(_jitter(rng, _pick(rng, _PLANT), 0.08)),
        ),
    ]
    return parts, fy + radius * 1.5


def _place_plant(
    rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes, max_radius: float = 0.3
) -> None:
    lo = min(0.2, max_radius)
    radius = float(rng.uniform(lo, max(lo, max_radius)))
    parts, height = _plant(rng, bank, radius)
    spot = ctx.on_wall(rng, 2 * radius, 2 * radius, height, corner=0.7)
    if spot:
        out.add_item(ctx.index, "plant", "plant", spot[0], parts)


def _place_rug(
    rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes, frame: _Frame, local: Rect
) -> None:
    if ctx.try_place(frame, local, 0.01, flat=True):
        x0, z0, x1, z1 = local
        col = _jitter(rng, _pick(rng, list(_FABRIC.values())), 0.06)
        out.add_item(
            ctx.index, "rug", "rug", frame, [("rug", _bb(x0, x1, 0.0, 0.01, z0, z1), bank.tinted("fabric", col))]
        )


def _bookshelf(rng: np.random.Generator, bank: _MaterialBank, w: float, d: float, h: float) -> Parts:
    t = 0.02
    n = int(rng.integers(4, 6))
    wood = bank.tinted("grain", _pick_colour(rng, _WOOD, ("light_oak", "oak", "walnut", "white", "black")))
    ys = np.linspace(0.08, h - t, n + 1)
    frame = [
        _bb(-w / 2, -w / 2 + t, 0, h, 0, d),
        _bb(w / 2 - t, w / 2, 0, h, 0, d),
        _bb(-w / 2 + t, w / 2 - t, h - t, h, 0, d),
    ]
    frame.append(_bb(-w / 2 + t, w / 2 - t, 0, h - t, 0, 0.01))
    frame += [_bb(-w / 2 + t, w / 2 - t, y - t, y, 0.01, d) for y in ys[:-1]]
    books: dict[int, list[Geo]] = {}
    colours = [int(i) for i in rng.choice(len(_BOOKS), 3, replace=False)]
    for y0, y1 in itertools.pairwise(ys):
        x = -w / 2 + t + float(rng.uniform(0.0, 0.1))
        while True:
            bw = float(rng.uniform(0.02, 0.05))
            if x + bw > w / 2 - t - 0.01:
                break
            if rng.random() < 0.08:
                x += float(rng.uniform(0.05, 0.2))
                continue
            bh = min(float(rng.uniform(0.6, 0.9)) * (y1 - y0 - t), 0.32)
            bd = min(d - 0.04, float(rng.uniform(0.16, 0.24)))
            c = colours[int(rng.integers(0, 3))]
            books.setdefault(c, []).append(_bb(x, x + bw, y0, y0 + bh, d - 0.01 - bd, d - 0.01))
            x += bw + 0.002
    parts: Parts = [("frame", _cat(*frame), wood)]
    for c in sorted(books):
        parts.append((f"books{c}", _cat(*books[c]), bank.flat(_jitter(rng, _BOOKS[c], 0.05))))
    return parts


def _place_bookshelf(rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes) -> None:
    w, d, h = float(rng.uniform(0.8, 1.2)), float(rng.uniform(0.3, 0.36)), float(rng.uniform(1.8, 2.1))
    spot = ctx.on_wall(rng, w, d, h)
    if spot:
        out.add_item(ctx.index, "bookshelf", "bookshelf", spot[0], _bookshelf(rng, bank, w, d, h))


def _cabinet(
    rng: np.random.Generator, bank: _MaterialBank, w: float, d: float, h: float, colour: RGB, n_doors: int
) -> Parts:
    """A closed cabinet body with door seams and handles on its front (local z = d)."""
    dark = bank.flat((0.1, 0.1, 0.1))
    seams, handles = [], []
    for k in range(1, n_doors):
        x = -w / 2 + k * w / n_doors
        seams.append(_bb(x - 0.003, x + 0.003, 0.02, h - 0.02, d, d + 0.003))
    for k in range(n_doors):
        x = -w / 2 + (k + 0.5) * w / n_doors + (0.35 * w / n_doors) * (1 if k % 2 == 0 else -1) * (n_doors > 1)
        handles.append(_bb(x - 0.01, x + 0.01, h * 0.5, h * 0.5 + 0.12, d, d + 0.025))
    parts = [("body", _bb(-w / 2, w / 2, 0.0, h, 0.0, d), bank.tinted("grain", colour))]
    if seams:
        parts.append(("seams", _cat(*seams), dark))
    parts.append(("handles", _cat(*handles), bank.flat(_METAL)))
    return parts


def _furnish_bedroom(rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes) -> None:
    wood = _pick_colour(rng, _WOOD, ("light_oak", "oak", "walnut", "white", "grey"))
    bw = float(_pick(rng, [0.9, 1.2, 1.4, 1.6, 1.8])) + float(rng.uniform(-0.05, 0.05))
    bl = float(rng.uniform(1.95, 2.1))
    base_h, matt_h, head_h, ht = (
        float(rng.uniform(0.25, 0.35)),
        float(rng.uniform(0.18, 0.24)),
        float(rng.uniform(0.9, 1.2)),
        0.06,
    )
    spot = None
    for width in (bw, 1.4, 0.9):
        spot = ctx.on_wall(rng, width, ht + bl, head_h, corner=0.2)
        if spot:
            bw = width
            break
    if spot:
        frame, side, along = spot
        top = base_h + matt_h
        linen = _jitter(rng, _pick(rng, [_FABRIC["cream"], (0.96, 0.96, 0.96), _FABRIC["grey"]]), 0.02)
        duvet = _pick_colour(rng, _FABRIC, tuple(_FABRIC), 0.06)
        pillows = []
        n_p = 1 if bw < 1.2 else 2
        pw = (bw - 0.1) / n_p - 0.05
        for k in range(n_p):
            x = -bw / 2 + 0.05 + k * (pw + 0.05) + 0.025
            pillows.append(_bb(x, x + pw, top, top + 0.12, ht + 0.05, ht + 0.4))
        out.add_item(
            ctx.index,
            "bed",
            "bed",
            frame,
            [
                (
                    "frame",
                    _cat(_bb(-bw / 2, bw / 2, 0.0, base_h, ht, ht + bl), _bb(-bw / 2, bw / 2, 0.0, head_h, 0.0, ht)),
                    bank.tinted("grain", wood),
                ),
                (
                    "mattress",
                    _bb(-bw / 2 + 0.02, bw / 2 - 0.02, base_h, top, ht + 0.02, ht + bl - 0.02),
                    bank.tinted("fabric", linen),
                ),
                (
                    "duvet",
                    _bb(-bw / 2 + 0.005, bw / 2 - 0.005, top - 0.12, top + 0.04, ht + 0.32 * bl, ht + bl - 0.005),
                    bank.tinted("fabric", duvet),
                ),
                ("pillows", _cat(*pillows), bank.tinted("fabric", linen)),
            ],
        )
        nw, nd, nh = float(rng.uniform(0.4, 0.5)), 0.4, float(rng.uniform(0.45, 0.58))
        for sign in (-1, 1):
            a = along + sign * (bw / 2 + 0.05 + nw / 2)
            f = ctx.wall_frame(side, a)
            if rng.random() < 0.85 and ctx.try_place(f, (-nw / 2, 0.0, nw / 2, nd), nh, clearance=0.01):
                parts = _cabinet(rng, bank, nw, nd, nh, wood, 1)
                parts.append(
                    (
                        "lamp",
                        _cyl(0.0, nd / 2, nh, nh + 0.3, 0.09, 12),
                        bank.flat(_jitter(rng, (0.95, 0.92, 0.80), 0.03)),
                    )
                )
                out.add_item(ctx.index, "nightstand", "nightstand", f, parts)
        if rng.random() < 0.5:
            rw, rd = bw + float(rng.uniform(0.4, 0.8)), float(rng.uniform(0.8, 1.4))
            _place_rug(rng, ctx, bank, out, frame, (-rw / 2, ht + bl * 0.55, rw / 2, ht + bl * 0.55 + rd))
    ww, wh = float(rng.uniform(0.9, 2.0)), float(rng.uniform(1.9, 2.2))
    for width in (ww, 1.0):
        spot = ctx.on_wall(rng, width, 0.6, wh, corner=0.6)
        if spot:
            out.add_item(
                ctx.index,
                "wardrobe",
                "wardrobe",
                spot[0],
                _cabinet(rng, bank, width, 0.6, wh, wood, 2 if width < 1.4 else 3),
            )
            break
    if rng.random() < 0.4:
        _place_desk(rng, ctx, bank, out, small=True)
    ix0, iz0, ix1, iz1 = ctx.inner
    if rng.random() < min(0.8, 0.4 * (ix1 - ix0) * (iz1 - iz0) / 12.0):
        w, h = float(rng.uniform(0.8, 1.2)), float(rng.uniform(0.75, 0.9))
        spot = ctx.on_wall(rng, w, 0.45, h)
        if spot:
            out.add_item(ctx.index, "dresser", "dresser", spot[0], _cabinet(rng, bank, w, 0.45, h, wood, 3))
    if rng.random() < 0.3:
        _place_plant(rng, ctx, bank, out)


def _furnish_bathroom(rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes) -> None:
    white = bank.flat(_jitter(rng, _CERAMIC, 0.01))
    metal = bank.flat(_METAL)
    if rng.random() < 0.55:
        w, d, h = float(rng.uniform(1.5, 1.7)), float(rng.uniform(0.7, 0.8)), float(rng.uniform(0.5, 0.6))
        spot = ctx.on_wall(rng, w, d, h, corner=0.8)
        if spot:
            r = 0.08
            tub = _cat(
                _bb(-w / 2, w / 2, 0.0, 0.15, 0.0, d),
                _bb(-w / 2, w / 2, 0.15, h, 0.0, r),
                _bb(-w / 2, w / 2, 0.15, h, d - r, d),
                _bb(-w / 2, -w / 2 + r, 0.15, h, r, d - r),
                _bb(w / 2 - r, w / 2, 0.15, h, r, d - r),
            )
            tap = _cyl(-w / 2 + 0.2, 0.04, h, h + 0.2, 0.015, 8)
            out.add_item(ctx.index, "bathtub", "bathtub", spot[0], [("tub", tub, white), ("tap", tap, metal)])
    else:
        s = float(rng.uniform(0.8, 1.0))
        spot = ctx.on_wall(rng, s, s, 2.0, corner=0.9)
        if spot:
            parts = [
                ("tray", _bb(-s / 2, s / 2, 0.0, 0.06, 0.0, s), white),
                (
                    "pipe",
                    _cat(
                        _cyl(0.0, 0.04, 0.9, 1.95, 0.015, 8),
                        _cyl(0.0, 0.12, 1.92, 1.96, 0.1, 16),
                        _bb(-0.012, 0.012, 1.92, 1.945, 0.04, 0.12),
                    ),
                    metal,
                ),
            ]
            out.add_item(ctx.index, "shower", "shower", spot[0], parts)
    spot = ctx.on_wall(rng, 0.42, 0.62, 0.8, corner=0.2)
    if spot:
        parts = [
            ("tank", _bb(-0.2, 0.2, 0.4, 0.8, 0.0, 0.18), white),
            ("bowl", _cat(_cyl(0.0, 0.38, 0.0, 0.4, 0.19), _cyl(0.0, 0.39, 0.4, 0.43, 0.2)), white),
        ]
        out.add_item(ctx.index, "toilet", "toilet", spot[0], parts)
    w = float(rng.uniform(0.6, 1.0))
    spot = ctx.on_wall(rng, w, 0.46, 1.9, corner=0.3)
    if spot:
        frame = spot[0]
        col = _pick_colour(rng, _WOOD, ("white", "oak", "walnut", "grey"))
        parts = _cabinet(rng, bank, w, 0.46, 0.82, col, 2 if w > 0.8 else 1)
        parts += [
            ("top", _bb(-w / 2, w / 2, 0.82, 0.85, 0.0, 0.48), white),
            ("basin", _cyl(0.0, 0.26, 0.85, 0.97, 0.17), white),
            ("tap", _cyl(0.0, 0.05, 0.85, 1.05, 0.015, 8), metal),
        ]
        mw = min(w, float(rng.uniform(0.5, 0.9)))
        out.add_item(ctx.index, "sink", "sink", frame, parts)
        mirror = [
            (
                "frame",
                _bb(-mw / 2 - 0.03, mw / 2 + 0.03, 1.17, 1.93, -0.015, 0.0),
                bank.flat(_jitter(rng, _pick(rng, [_WHITE, _WOOD["black"], _WOOD["oak"]]), 0.03)),
            ),
            ("glass", _bb(-mw / 2, mw / 2, 1.2, 1.9, -0.015, 0.008), bank.flat((0.72, 0.78, 0.82))),
        ]
        out.add_item(ctx.index, "mirror", "mirror", frame, mirror)
    if rng.random() < 0.4:
        spot = ctx.on_wall(rng, 0.6, 0.6, 0.85)
        if spot:
            parts = [
                ("body", _bb(-0.3, 0.3, 0.0, 0.85, 0.0, 0.6), bank.flat(_jitter(rng, _WHITE, 0.01))),
                ("door", _cyl_z(0.0, 0.48, 0.6, 0.62, 0.17), bank.flat((0.2, 0.22, 0.25))),
            ]
            out.add_item(ctx.index, "washing_machine", "washing_machine", spot[0], parts)
    if rng.random() < 0.6:
        _place_rug(rng, ctx, bank, out, _Frame(0.0, ctx.centre[0], ctx.centre[1]), (-0.35, -0.25, 0.35, 0.25))


def _furnish_kitchen(rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes) -> None:
    cab = _pick_colour(rng, _WOOD, ("white", "oak", "grey", "walnut", "black", "light_oak"))
    stone = bank.flat(
        _jitter(rng, _pick(rng, [(0.85, 0.84, 0.80), (0.25, 0.25, 0.26), (0.60, 0.58, 0.55), (0.72, 0.62, 0.50)]), 0.03)
    )
    dark = bank.flat((0.08, 0.08, 0.09))
    metal = bank.flat(_METAL)
    sides = sorted(("z0", "z1", "x0", "x1"), key=lambda s: -(ctx.side_range(s)[1] - ctx.side_range(s)[0]))
    length = float(rng.uniform(1.8, 3.6))
    spot = None
    while length >= 1.2 and spot is None:
        spot = ctx.on_wall(rng, length, 0.62, 2.15, sides=tuple(sides[:2]), tries=12, corner=0.6)
        if spot is None:
            spot = ctx.on_wall(rng, length, 0.62, 2.15, tries=12, corner=0.6)
        if spot is None:
            length -= 0.3
    if spot:
        frame, side, along = spot
        L = length
        mods = max(1, int(L // 0.6))
        parts = _cabinet(rng, bank, L, 0.58, 0.86, cab, mods)
        parts.append(("top", _bb(-L / 2, L / 2, 0.86, 0.9, 0.0, 0.62), stone))
        stove_k = int(rng.integers(0, mods))
        sx = -L / 2 + (stove_k + 0.5) * L / mods
        burners = [_cyl(sx + dx, 0.3 + dz, 0.91, 0.92, 0.08) for dx in (-0.14, 0.14) for dz in (-0.12, 0.12)]
        parts.append(("hob", _bb(sx - 0.29, sx + 0.29, 0.9, 0.91, 0.04, 0.58), dark))
        parts.append(("burners", _cat(*burners), bank.flat((0.25, 0.25, 0.26))))
        parts.append(("oven", _bb(sx - 0.27, sx + 0.27, 0.12, 0.74, 0.58, 0.61), bank.flat((0.12, 0.12, 0.13))))
        if mods > 1:
            sink_k = (stove_k + 1 + int(rng.integers(0, mods - 1))) % mods
            kx = -L / 2 + (sink_k + 0.5) * L / mods
            parts.append(
                (
                    "sink",
                    _cat(_bb(kx - 0.24, kx + 0.24, 0.9, 0.905, 0.1, 0.5), _cyl(kx, 0.06, 0.9, 1.15, 0.015, 8)),
                    metal,
                )
            )
        parts.append(("upper", _bb(-L / 2, L / 2, 1.45, 2.15, -0.0, 0.35), bank.tinted("grain", cab)))
        parts.append(("hood", _bb(sx - 0.3, sx + 0.3, 1.35, 1.45, 0.0, 0.48), metal))
        out.add_item(ctx.index, "counter", "counter", frame, parts)
        splash_col = _jitter(rng, _pick(rng, _WALL_TILES + [(0.30, 0.45, 0.55), (0.85, 0.80, 0.70)]), 0.04)
        grout = _jitter(rng, (0.78, 0.78, 0.76), 0.03)
        splash = bank.textured(
            f"backsplash_r{ctx.index:02d}", _tex_tiles(rng, bank.size, 4, 8, [splash_col], grout, stagger=True), 0.6
        )
        out.add_item(
            ctx.index,
            "backsplash",
            "backsplash",
            frame,
            [("tiles", _bb(-L / 2, L / 2, 0.9, 1.45, -0.012, -0.004), splash)],
        )
        fh = float(rng.uniform(1.75, 2.0))
        fcol = _jitter(rng, _pick(rng, [_WHITE, _METAL, (0.15, 0.15, 0.16)]), 0.02)
        fridge = [
            ("body", _bb(-0.35, 0.35, 0.0, fh, 0.0, 0.68), bank.flat(fcol)),
            (
                "handle",
                _cat(
                    _bb(0.25, 0.27, fh * 0.62, fh * 0.9, 0.68, 0.71), _bb(0.25, 0.27, fh * 0.3, fh * 0.55, 0.68, 0.71)
                ),
                dark,
            ),
            ("seam", _bb(-0.35, 0.35, fh * 0.58, fh * 0.585, 0.68, 0.683), dark),
        ]
        placed = False
        for sign in (1, -1) if rng.random() < 0.5 else (-1, 1):
            a = along + sign * (L / 2 + 0.03 + 0.35)
            f = ctx.wall_frame(side, a)
            if ctx.try_place(f, (-0.35, 0.0, 0.35, 0.68), fh, clearance=0.01):
                out.add_item(ctx.index, "fridge", "fridge", f, fridge)
                placed = True
                break
        if not placed:
            spot2 = ctx.on_wall(rng, 0.7, 0.68, fh, corner=0.6)
            if spot2:
                out.add_item(ctx.index, "fridge", "fridge", spot2[0], fridge)
    ix0, iz0, ix1, iz1 = ctx.inner
    if min(ix1 - ix0, iz1 - iz0) > 3.4 and rng.random() < 0.6:
        w, d = float(rng.uniform(1.2, 1.8)), float(rng.uniform(0.7, 0.9))
        frame = ctx.free_spot(rng, (-w / 2, -d / 2, w / 2, d / 2), 0.92, spread=0.6, clearance=0.9)
        if frame:
            out.add_item(
                ctx.index,
                "island",
                "island",
                frame,
                [
                    (
                        "body",
                        _bb(-w / 2 + 0.05, w / 2 - 0.05, 0.0, 0.88, -d / 2 + 0.05, d / 2 - 0.05),
                        bank.tinted("grain", cab),
                    ),
                    ("top", _bb(-w / 2, w / 2, 0.88, 0.92, -d / 2, d / 2), stone),
                ],
            )
            return
    if rng.random() < 0.6:
        _place_dining_set(rng, ctx, bank, out, small=True)


def _place_dining_set(
    rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes, small: bool = False
) -> None:
    wood = _pick_colour(rng, _WOOD, ("oak", "walnut", "light_oak", "white", "cherry", "black"))
    chair_col = wood if rng.random() < 0.6 else _pick_colour(rng, _WOOD, ("white", "black", "grey", "oak"))
    options = (
        [(0.8, 0.7, 1), (1.0, 0.8, 1)]
        if small
        else [
            (float(rng.uniform(1.6, 2.0)), float(rng.uniform(0.85, 1.0)), 3),
            (1.4, 0.85, 2),
            (1.2, 0.8, 2),
            (0.9, 0.8, 1),
        ]
    )
    for w, d, per_side in options:
        reach = 0.3  # how far a chair sticks out past the table edge
        ends = (not small) and w >= 1.6 and rng.random() < 0.5
        ex = reach if ends else 0.0
        frame = ctx.free_spot(
            rng,
            (-w / 2 - ex, -d / 2 - reach, w / 2 + ex, d / 2 + reach),
            0.95,
            spread=0.3 if not small else 0.8,
            clearance=0.15,
        )
        if frame is None:
            continue
        chairs = []
        xs = (np.arange(per_side) + 0.5) * w / per_side - w / 2
        for x in xs:
            for sign in (-1, 1):
                v, f = _chair(rng)
                if sign < 0:  # facing +z, back at z = -d/2 - reach
                    v = v + [x, 0.0, -d / 2 - reach]
                else:  # turned 180 degrees, facing -z
                    v = v * [-1.0, 1.0, -1.0] + [x, 0.0, d / 2 + reach]
                chairs.append((v, f))
        if ends:
            for sign in (-1, 1):
                v, f = _chair(rng)
                x, y, z = v[:, 0], v[:, 1], v[:, 2]
                if sign < 0:  # facing +x (local +z turned onto +x)
                    v = np.stack([z - w / 2 - ex, y, -x], axis=1)
                else:  # facing -x
                    v = np.stack([-z + w / 2 + ex, y, x], axis=1)
                chairs.append((v, f))
        parts = [
            ("table", _table(w, d, 0.75, z0=-d / 2), bank.tinted("grain", wood)),
            ("chairs", _cat(*chairs), bank.tinted("grain", chair_col)),
        ]
        out.add_item(ctx.index, "table", "table", frame, parts)
        return


def _furnish_living(rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes) -> None:
    fabric = _pick_colour(rng, _FABRIC, tuple(_FABRIC), 0.05)
    wood = _pick_colour(rng, _WOOD, ("oak", "walnut", "light_oak", "white", "black"))
    w, d = float(rng.uniform(1.8, 2.6)), float(rng.uniform(0.85, 0.95))
    back_h, arm_w, arm_h, seat_h = (
        float(rng.uniform(0.75, 0.9)),
        float(rng.uniform(0.12, 0.22)),
        float(rng.uniform(0.55, 0.65)),
        0.42,
    )
    spot = None
    for width in (w, 1.8, 1.5):
        spot = ctx.on_wall(rng, width, d, back_h, corner=0.1, tries=40)
        if spot:
            w = width
            break
    if spot:
        frame, side, along = spot
        n_c = 2 if w < 2.1 else 3
        inner_w = w - 2 * arm_w
        cushion_top = min(seat_h + float(rng.uniform(0.3, 0.4)), back_h - 0.03)
        cushions = [
            _bb(
                -inner_w / 2 + k * inner_w / n_c + 0.01,
                -inner_w / 2 + (k + 1) * inner_w / n_c - 0.01,
                seat_h,
                cushion_top,
                0.2,
                0.33,
            )
            for k in range(n_c)
        ]
        cushion_col = _jitter(rng, fabric, 0.05) if rng.random() < 0.5 else _pick_colour(rng, _FABRIC, tuple(_FABRIC))
        parts = [
            (
                "body",
                _cat(
                    _bb(-w / 2, w / 2, 0.0, back_h, 0.0, 0.2),
                    _bb(-w / 2, -w / 2 + arm_w, 0.0, arm_h, 0.2, d),
                    _bb(w / 2 - arm_w, w / 2, 0.0, arm_h, 0.2, d),
                    _bb(-inner_w / 2, inner_w / 2, 0.0, seat_h, 0.2, d),
                ),
                bank.tinted("fabric", fabric),
            ),
            ("cushions", _cat(*cushions), bank.tinted("fabric", cushion_col)),
        ]
        out.add_item(ctx.index, "sofa", "sofa", frame, parts)
        cw, cd, ch = (
            min(float(rng.uniform(0.9, 1.3)), w - 0.3),
            float(rng.uniform(0.5, 0.7)),
            float(rng.uniform(0.38, 0.45)),
        )
        gap = float(rng.uniform(0.35, 0.5))
        table_local = (-cw / 2, d + gap, cw / 2, d + gap + cd)
        if ctx.try_place(frame, table_local, ch):
            out.add_item(
                ctx.index,
                "coffee_table",
                "coffee_table",
                frame,
                [("table", _table(cw, cd, ch, z0=d + gap, leg=0.045), bank.tinted("grain", wood))],
            )
        rw, rd = cw + float(rng.uniform(0.8, 1.4)), cd + float(rng.uniform(0.8, 1.2))
        mid = d + gap + cd / 2
        _place_rug(rng, ctx, bank, out, frame, (-rw / 2, mid - rd / 2, rw / 2, mid + rd / 2))
        # TV on the opposite wall, facing the sofa
        opp = _OPPOSITE[side]
        lo, hi = ctx.side_range(opp)
        tw = float(rng.uniform(1.2, 1.8))
        tv_w = min(tw - 0.1, float(rng.uniform(0.9, 1.4)))
        tv_h = tv_w * 0.58
        for a in (along, along + 0.4, along - 0.4, (lo + hi) / 2):
            a = min(max(a, lo + tw / 2 + 0.02), hi - tw / 2 - 0.02)
            f = ctx.wall_frame(opp, a)
            if ctx.try_place(f, (-tw / 2, 0.0, tw / 2, 0.42), 0.62 + tv_h):
                out.add_item(
                    ctx.index, "tv_stand", "tv_stand", f, _cabinet(rng, bank, tw, 0.42, 0.5, wood, 2 if tw < 1.5 else 3)
                )
                tv = _cat(
                    _bb(-0.15, 0.15, 0.5, 0.52, 0.1, 0.3),
                    _bb(-0.03, 0.03, 0.52, 0.62, 0.18, 0.21),
                    _bb(-tv_w / 2, tv_w / 2, 0.62, 0.62 + tv_h, 0.18, 0.23),
                )
                out.add_item(ctx.index, "tv", "tv", f, [("screen", tv, bank.flat(_SCREEN))])
                break
    ix0, iz0, ix1, iz1 = ctx.inner
    scale = (ix1 - ix0) * (iz1 - iz0) / 15.0  # larger rooms get more furniture
    col = _pick_colour(rng, _FABRIC, tuple(_FABRIC))
    for k in range(2):
        if rng.random() > min(0.9, 0.5 * scale) / (1 + 2 * k):
            break
        aw = float(rng.uniform(0.8, 0.95))
        spot = ctx.on_wall(rng, aw, 0.85, 0.8, corner=0.5)
        if spot:
            parts = [
                (
                    "body",
                    _cat(
                        _bb(-aw / 2, aw / 2, 0.0, 0.8, 0.0, 0.2),
                        _bb(-aw / 2, -aw / 2 + 0.14, 0.0, 0.6, 0.2, 0.85),
                        _bb(aw / 2 - 0.14, aw / 2, 0.0, 0.6, 0.2, 0.85),
                        _bb(-aw / 2 + 0.14, aw / 2 - 0.14, 0.0, 0.42, 0.2, 0.85),
                    ),
                    bank.tinted("fabric", col),
                ),
            ]
            out.add_item(ctx.index, "armchair", "armchair", spot[0], parts)
    if rng.random() < min(0.8, 0.35 * scale):
        _place_bookshelf(rng, ctx, bank, out)
    if rng.random() < 0.6:
        _place_plant(rng, ctx, bank, out)
    if rng.random() < 0.4:
        spot = ctx.on_wall(rng, 0.4, 0.4, 1.7, corner=0.8)
        if spot:
            parts = [
                (
                    "stand",
                    _cat(_cyl(0.0, 0.2, 0.0, 0.03, 0.16), _cyl(0.0, 0.2, 0.03, 1.45, 0.015, 8)),
                    bank.flat((0.15, 0.15, 0.15)),
                ),
                ("shade", _cyl(0.0, 0.2, 1.4, 1.7, 0.18), bank.flat(_jitter(rng, (0.95, 0.90, 0.78), 0.03))),
            ]
            out.add_item(ctx.index, "floor_lamp", "lamp", spot[0], parts)


def _furnish_dining(rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes) -> None:
    _place_dining_set(rng, ctx, bank, out)
    if rng.random() < 0.8:
        w, h = float(rng.uniform(1.2, 1.8)), float(rng.uniform(0.75, 0.9))
        spot = ctx.on_wall(rng, w, 0.45, h)
        if spot:
            col = _pick_colour(rng, _WOOD, ("oak", "walnut", "white", "cherry", "black"))
            parts = _cabinet(rng, bank, w, 0.45, h, col, 3 if w > 1.5 else 2)
            parts.append(
                (
                    "vase",
                    _cyl(w * 0.25, 0.22, h, h + float(rng.uniform(0.2, 0.35)), 0.07, 12),
                    bank.flat(_jitter(rng, _pick(rng, _ART), 0.05)),
                )
            )
            out.add_item(ctx.index, "sideboard", "sideboard", spot[0], parts)
    if rng.random() < 0.5:
        _place_plant(rng, ctx, bank, out)
    if rng.random() < 0.3:
        _place_bookshelf(rng, ctx, bank, out)


def _place_desk(rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes, small: bool = False) -> None:
    w = float(rng.uniform(0.9, 1.2)) if small else float(rng.uniform(1.2, 1.6))
    d, h = float(rng.uniform(0.55, 0.75)), 0.75
    reach = 0.55
    spot = ctx.on_wall(rng, w, d + reach, 1.25)
    if spot is None:
        return
    wood = _pick_colour(rng, _WOOD, ("white", "oak", "walnut", "black", "light_oak"))
    sw = float(rng.uniform(0.5, 0.65))
    screen = _cat(
        _bb(-0.11, 0.11, h, h + 0.015, 0.08, 0.26),
        _bb(-0.02, 0.02, h + 0.015, h + 0.12, 0.14, 0.17),
        _bb(-sw / 2, sw / 2, h + 0.1, h + 0.1 + sw * 0.58, 0.17, 0.2),
    )
    cz = d + 0.2
    chair_col = _jitter(rng, _pick(rng, [(0.12, 0.12, 0.13), _FABRIC["grey"], _FABRIC["navy"], _FABRIC["rust"]]), 0.05)
    chair = _cat(
        _cyl(0.0, cz, 0.0, 0.05, 0.26),
        _cyl(0.0, cz, 0.05, 0.42, 0.025, 8),
        _bb(-0.24, 0.24, 0.42, 0.5, cz - 0.23, cz + 0.23),
        _bb(-0.22, 0.22, 0.55, 1.05, cz + 0.2, cz + 0.26),
        _bb(-0.03, 0.03, 0.5, 0.55, cz + 0.21, cz + 0.25),
    )
    parts = [
        ("desk", _table(w, d, h, leg=0.04), bank.tinted("grain", wood)),
        ("monitor", screen, bank.flat(_SCREEN)),
        ("keyboard", _bb(-0.22, 0.22, h, h + 0.02, d - 0.28, d - 0.14), bank.flat((0.2, 0.2, 0.21))),
        ("chair", chair, bank.tinted("fabric", chair_col)),
    ]
    out.add_item(ctx.index, "desk", "desk", spot[0], parts)


def _furnish_office(rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes) -> None:
    _place_desk(rng, ctx, bank, out)
    _place_bookshelf(rng, ctx, bank, out)
    if rng.random() < 0.4:
        _place_bookshelf(rng, ctx, bank, out)
    if rng.random() < 0.4:
        spot = ctx.on_wall(rng, 0.45, 0.6, 0.72)
        if spot:
            out.add_item(
                ctx.index,
                "cabinet",
                "cabinet",
                spot[0],
                _cabinet(rng, bank, 0.45, 0.6, 0.72, _jitter(rng, _METAL, 0.05), 1),
            )
    if rng.random() < 0.4:
        _place_plant(rng, ctx, bank, out)
    if rng.random() < 0.4:
        rw, rd = float(rng.uniform(1.2, 2.0)), float(rng.uniform(1.0, 1.6))
        _place_rug(rng, ctx, bank, out, _Frame(0.0, ctx.centre[0], ctx.centre[1]), (-rw / 2, -rd / 2, rw / 2, rd / 2))


def _furnish_hallway(rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes) -> None:
    ix0, iz0, ix1, iz1 = ctx.inner
    room = (ctx.band[1] - iz0) - 0.03 if ctx.band else 0.3  # depth left beside the central band
    if room < 0.22:
        return
    for _ in range(int(rng.integers(1, 3))):
        w, d, h = (
            float(rng.uniform(0.8, 1.2)),
            min(float(rng.uniform(0.28, 0.35)), room),
            float(rng.uniform(0.75, 0.85)),
        )
        spot = ctx.on_wall(rng, w, d, h, sides=("z0", "z1"))
        if spot:
            col = _pick_colour(rng, _WOOD, ("oak", "walnut", "white", "black"))
            parts = [
                ("table", _table(w, d, h, top=0.03, leg=0.035, inset=0.02), bank.tinted("grain", col)),
                (
                    "vase",
                    _cyl(w * 0.3, d / 2, h, h + float(rng.uniform(0.2, 0.4)), 0.06, 12),
                    bank.flat(_jitter(rng, _pick(rng, _ART), 0.05)),
                ),
            ]
            out.add_item(ctx.index, "console_table", "console_table", spot[0], parts)
    for _ in range(int(rng.integers(0, 3))):
        _place_plant(rng, ctx, bank, out, max_radius=min(0.28, room / 2))
    if rng.random() < 0.6:
        r = min(0.2, room / 2)
        spot = ctx.on_wall(rng, 2 * r, 2 * r, 1.8)
        if spot:
            black = bank.flat(_jitter(rng, _pick(rng, [(0.12, 0.12, 0.12), _WOOD["oak"], _WOOD["walnut"]]), 0.03))
            hooks = [
                _bb(-0.01 + dx, 0.01 + dx, 1.62, 1.64, r - 0.01 + dz, r + 0.01 + dz)
                for dx, dz in ((-0.1, 0), (0.1, 0), (0, -0.1), (0, 0.1))
            ]
            parts = [
                (
                    "stand",
                    _cat(
                        _cyl(0.0, r, 0.0, 0.03, r * 0.9),
                        _cyl(0.0, r, 0.03, 1.78, 0.018, 8),
                        _ellipsoid(0.0, 1.78, r, 0.03, 0.03, 0.03),
                        *hooks,
                    ),
                    black,
                )
            ]
            out.add_item(ctx.index, "coat_rack", "coat_rack", spot[0], parts)
    length = ix1 - ix0
    rl, rw = float(rng.uniform(0.4, 0.7)) * length, min(float(rng.uniform(0.6, 0.8)), iz1 - iz0 - 0.2)
    _place_rug(
        rng,
        ctx,
        bank,
        out,
        _Frame(0.0, ctx.centre[0] + float(rng.uniform(-0.2, 0.2)) * (length - rl), ctx.centre[1]),
        (-rl / 2, -rw / 2, rl / 2, rw / 2),
    )


def _add_pictures(rng: np.random.Generator, ctx: _RoomCtx, bank: _MaterialBank, out: _Nodes) -> None:
    """Framed pictures on free wall stretches (not bathrooms)."""
    if ctx.label == "bathroom":
        return
    n = int(rng.integers(0, 3))
    for _ in range(n):
        for _try in range(10):
            side = ("z0", "z1", "x0", "x1")[int(rng.integers(0, 4))]
            w, hgt = float(rng.uniform(0.4, 1.0)), float(rng.uniform(0.35, 0.8))
            y0 = float(rng.uniform(1.2, 1.5))
            y1 = min(y0 + hgt, 1.9)
            hgt = y1 - y0
            lo, hi = ctx.side_range(side)
            if hi - lo < w + 0.2:
                continue
            a = float(rng.uniform(lo + w / 2 + 0.1, hi - w / 2 - 0.1))
            a0, a1 = a - w / 2 - 0.05, a + w / 2 + 0.05
            if any(d0 - 0.1 < a1 and a0 < d1 + 0.1 for s, d0, d1 in ctx.doors if s == side):
                continue
            strip = ctx.wall_rect(side, a0, a1, 0.0, 0.1)
            if any(_overlap(strip, r) and hgt_item > y0 - 0.1 for r, hgt_item in ctx.items):
                continue
            if any(s == side and b0 < a1 and a0 < b1 for s, b0, b1, _, _ in ctx.wall_items):
                continue
            ctx.wall_items.append((side, a0, a1, y0, y1))
            frame = ctx.wall_frame(side, a, gap=0.0)
            border = bank.flat(
                _jitter(rng, _pick(rng, [_WOOD["black"], _WOOD["oak"], _WHITE, (0.75, 0.65, 0.35)]), 0.03)
            )
            bg, fg = _pick(rng, _ART), _pick(rng, _ART)
            parts = [
                ("frame", _bb(-w / 2 - 0.04, w / 2 + 0.04, y0 - 0.04, y1 + 0.04, 0.0, 0.025), border),
                ("canvas", _bb(-w / 2, w / 2, y0, y1, 0.0, 0.03), bank.flat(_jitter(rng, bg, 0.08))),
                (
                    "motif",
                    _bb(
                        -w / 2 + w * 0.2,
                        w / 2 - w * float(rng.uniform(0.2, 0.5)),
                        y0 + hgt * 0.2,
                        y1 - hgt * float(rng.uniform(0.2, 0.5)),
                        0.0,
                        0.035,
                    ),
                    bank.flat(_jitter(rng, fg, 0.08)),
                ),
            ]
            out.add_item(ctx.index, "picture", "picture", frame, parts)
            break


_FURNISH = {
    "bedroom": _furnish_bedroom,
    "bathroom": _furnish_bathroom,
    "kitchen": _furnish_kitchen,
    "living_room": _furnish_living,
    "dining_room": _furnish_dining,
    "office": _furnish_office,
    "hallway": _furnish_hallway,
}
