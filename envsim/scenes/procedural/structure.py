"""A room's shell: floor, ceiling, walls with doorway openings and lintels, baseboards and ceiling lamps.

Also the floor and wall palettes and the floor/wall materials drawn per room type.
"""

from __future__ import annotations

import numpy as np

from envsim.scenes.procedural.config import ProceduralConfig
from envsim.scenes.procedural.geometry import Geo, bb, box, cat, ellipsoid
from envsim.scenes.procedural.layout import RoomPlan
from envsim.scenes.procedural.materials import Mat, MaterialBank
from envsim.scenes.procedural.nodes import Nodes
from envsim.scenes.procedural.palette import RGB, WALL_TILES, WHITE, WOOD, jitter, pick
from envsim.scenes.procedural.textures import tex_carpet, tex_planks, tex_tiles

_BASEBOARD = (0.08, 0.012)  # height, thickness in metres

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


def build_structure(
    rng: np.random.Generator, cfg: ProceduralConfig, plans: list[RoomPlan], bank: MaterialBank, out: Nodes
) -> None:
    """Floors, ceilings, walls with doorway openings, baseboards and ceiling lamps of every room.

    Args:
        rng: source of every draw (materials and lamp sizes, room by room).
        cfg: generation settings.
        plans: the rooms, index 0 the hallway.
        bank: the house's materials.
        out: receives the nodes, room by room.
    """
    h = cfg.wall_thickness / 2
    s = cfg.texture_size
    ceiling = bank.tinted("ceiling", jitter(rng, (0.95, 0.94, 0.91), 0.015))
    trim = bank.flat(jitter(rng, pick(rng, [WHITE, WOOD["oak"], WOOD["walnut"], (0.85, 0.85, 0.83)]), 0.03))
    for i, plan in enumerate(plans):
        ox0, oz0, ox1, oz1 = plan.outer(h)
        floor = _floor_material(rng, plan.label, i, s, bank)
        out.add(i, "floor", "floor", box((ox0, 0.0, oz0), (ox1, 0.0, oz1), ("+y",)), floor)
        out.add(
            i, "ceiling", "ceiling", box((ox0, cfg.wall_height, oz0), (ox1, cfg.wall_height, oz1), ("-y",)), ceiling
        )
        wall = _wall_material(rng, plan.label, i, s, bank)
        for side in ("z0", "z1", "x0", "x1"):
            out.add(i, f"wall_{side}", "wall", _wall_side(plan, side, cfg), wall)
        if plan.label != "bathroom":
            out.add(i, "baseboard", "baseboard", _baseboards(plan, h), trim)
        ix0, iz0, ix1, iz1 = plan.inner(h)
        shade = bank.flat(jitter(rng, pick(rng, [(0.97, 0.95, 0.85), (0.92, 0.92, 0.92), (0.85, 0.80, 0.65)]), 0.02))
        long_x = (ix1 - ix0) >= (iz1 - iz0)
        n_lamps = max(1, int(max(ix1 - ix0, iz1 - iz0) // 4.0)) if plan.label == "hallway" else 1
        r = float(rng.uniform(0.15, 0.25))
        lamps = []
        for k in range(n_lamps):
            t = (k + 0.5) / n_lamps
            cx = ix0 + t * (ix1 - ix0) if long_x else (ix0 + ix1) / 2
            cz = (iz0 + iz1) / 2 if long_x else iz0 + t * (iz1 - iz0)
            lamps.append(ellipsoid(cx, cfg.wall_height, cz, r, 0.45 * r, r))
        out.add(i, "lamp0_shade", "lamp", cat(*lamps), shade)


def _floor_material(rng: np.random.Generator, label: str, room: int, s: int, bank: MaterialBank) -> Mat:
    """A floor of wood planks, tiles or carpet for a room of type ``label``, textures of ``s`` pixels."""
    kind = "wood"
    if label == "bathroom" or (label == "kitchen" and rng.random() < 0.85):
        kind = "tiles"
    elif label in _CARPET and rng.random() < 0.35:
        kind = "carpet"
    elif label in ("hallway", "dining_room") and rng.random() < 0.2:
        kind = "tiles"
    if kind == "wood":
        fam = _FLOOR_FAMILIES[label]
        rgb = jitter(rng, _WOOD_FLOOR[pick(rng, fam, p=[0.6, 0.25, 0.15])], 0.06)
        rows = int(rng.choice([6, 8]))
        plank = float(rng.uniform(0.12, 0.2))
        img = tex_planks(rng, s, rgb, rows)
        if rng.random() < 0.5:
            img = np.ascontiguousarray(img.transpose(1, 0, 2))
        return bank.textured(f"floor_r{room:02d}_wood", img, rows * plank)
    if kind == "carpet":
        img = tex_carpet(rng, s, jitter(rng, pick(rng, _CARPET[label]), 0.05))
        return bank.textured(f"floor_r{room:02d}_carpet", img, 1.0)
    palette = _FLOOR_TILES["bathroom" if label == "bathroom" else "kitchen"]
    if label == "bathroom":
        n, size, checker = 4, float(rng.uniform(0.1, 0.3)), False
        colours = [jitter(rng, pick(rng, palette), 0.04)]
    elif rng.random() < 0.3:
        n, size, checker = 4, float(rng.uniform(0.2, 0.3)), True
        colours = [jitter(rng, (0.92, 0.91, 0.88), 0.02), jitter(rng, (0.14, 0.14, 0.15), 0.05)]
    else:
        n, size, checker = 2, float(rng.uniform(0.3, 0.6)), False
        colours = [jitter(rng, pick(rng, palette), 0.05)]
    grout = jitter(rng, (0.55, 0.55, 0.53) if np.mean(colours[0]) > 0.5 else (0.75, 0.75, 0.73), 0.03)
    img = tex_tiles(rng, s, n, n, colours, grout, checker=checker)
    return bank.textured(f"floor_r{room:02d}_tiles", img, n * size)


def _wall_material(rng: np.random.Generator, label: str, room: int, s: int, bank: MaterialBank) -> Mat:
    """Tiles (bathrooms) or tinted paint for a room of type ``label``, textures of ``s`` pixels."""
    if label == "bathroom":
        colour = jitter(rng, pick(rng, WALL_TILES), 0.03)
        grout = jitter(rng, (0.80, 0.80, 0.78), 0.03)
        if rng.random() < 0.5:  # subway tiles
            size = float(rng.uniform(0.12, 0.2))
            img = tex_tiles(rng, s, 4, 8, [colour], grout, stagger=True)
        else:
            size = float(rng.uniform(0.1, 0.2))
            img = tex_tiles(rng, s, 4, 4, [colour], grout)
        return bank.textured(f"wall_r{room:02d}_tiles", img, 4 * size)
    return bank.tinted("paint", jitter(rng, pick(rng, _WALL_PAINT[label]), 0.035))


def _wall_side(plan: RoomPlan, side: str, cfg: ProceduralConfig) -> Geo:
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
        return box(lo, hi, tuple(faces))

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
    return cat(*pieces)


def _baseboards(plan: RoomPlan, h: float) -> Geo:
    """Baseboards along the inner wall faces (``h``: half the wall thickness), broken at doorways."""
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
                parts.append(bb(a0, a1, 0, bh, iz0, iz0 + bt))
            elif side == "z1":
                parts.append(bb(a0, a1, 0, bh, iz1 - bt, iz1))
            elif side == "x0":
                parts.append(bb(ix0, ix0 + bt, 0, bh, a0, a1))
            else:
                parts.append(bb(ix1 - bt, ix1, 0, bh, a0, a1))
    return cat(*parts)
