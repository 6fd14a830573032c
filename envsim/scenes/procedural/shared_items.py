"""Placing the items several room types share: plants, rugs, bookshelves, a desk set and a dining set.

Each routine draws the item's size, finds it a spot in the room and adds its nodes; it skips the item when
no spot fits.
"""

from __future__ import annotations

import numpy as np

from envsim.scenes.procedural.furniture import bookshelf, chair, plant, table
from envsim.scenes.procedural.geometry import Frame, Rect, bb, cat, cyl
from envsim.scenes.procedural.materials import MaterialBank
from envsim.scenes.procedural.nodes import Nodes
from envsim.scenes.procedural.palette import FABRIC, SCREEN, WOOD, jitter, pick, pick_colour
from envsim.scenes.procedural.placement import RoomCtx


def place_plant(
    rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, max_radius: float = 0.3
) -> None:
    """A plant against a wall, often in a corner.

    Args:
        rng: source of the draws (radius, the plant's own draws, then the spot).
        ctx: the room's free-space state.
        bank: the house's materials.
        out: receives the nodes.
        max_radius: largest foliage radius in metres (the radius is drawn from [min(0.2, max), max]).
    """
    lo = min(0.2, max_radius)
    radius = float(rng.uniform(lo, max(lo, max_radius)))
    parts, height = plant(rng, bank, radius)
    spot = ctx.on_wall(rng, 2 * radius, 2 * radius, height, corner=0.7)
    if spot:
        out.add_item(ctx.index, "plant", "plant", spot[0], parts)


def place_rug(
    rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, frame: Frame, local: Rect
) -> None:
    """A rug with local footprint ``local`` placed by ``frame``, when it lies inside the room (rugs never block).

    Args:
        rng: source of the colour draw (only drawn when the rug fits).
        ctx: the room's free-space state.
        bank: the house's materials.
        out: receives the node.
        frame: local -> world placement.
        local: footprint (x0, z0, x1, z1) in local metres.
    """
    if ctx.try_place(frame, local, 0.01, flat=True):
        x0, z0, x1, z1 = local
        col = jitter(rng, pick(rng, list(FABRIC.values())), 0.06)
        out.add_item(
            ctx.index, "rug", "rug", frame, [("rug", bb(x0, x1, 0.0, 0.01, z0, z1), bank.tinted("fabric", col))]
        )


def place_bookshelf(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """A bookshelf 0.8-1.2 m wide and 1.8-2.1 m tall against a wall.

    Args:
        rng: source of the draws (size, spot, then the shelf's own draws).
        ctx: the room's free-space state.
        bank: the house's materials.
        out: receives the nodes.
    """
    w, d, h = float(rng.uniform(0.8, 1.2)), float(rng.uniform(0.3, 0.36)), float(rng.uniform(1.8, 2.1))
    spot = ctx.on_wall(rng, w, d, h)
    if spot:
        out.add_item(ctx.index, "bookshelf", "bookshelf", spot[0], bookshelf(rng, bank, w, d, h))


def place_desk(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, small: bool = False) -> None:
    """A desk with a monitor, keyboard and swivel chair against a wall.

    Args:
        rng: source of the draws (size, spot, then colours and monitor size).
        ctx: the room's free-space state.
        bank: the house's materials.
        out: receives the nodes.
        small: a 0.9-1.2 m desk (bedrooms) instead of 1.2-1.6 m.
    """
    w = float(rng.uniform(0.9, 1.2)) if small else float(rng.uniform(1.2, 1.6))
    d, h = float(rng.uniform(0.55, 0.75)), 0.75
    reach = 0.55
    spot = ctx.on_wall(rng, w, d + reach, 1.25)
    if spot is None:
        return
    wood = pick_colour(rng, WOOD, ("white", "oak", "walnut", "black", "light_oak"))
    sw = float(rng.uniform(0.5, 0.65))
    screen = cat(
        bb(-0.11, 0.11, h, h + 0.015, 0.08, 0.26),
        bb(-0.02, 0.02, h + 0.015, h + 0.12, 0.14, 0.17),
        bb(-sw / 2, sw / 2, h + 0.1, h + 0.1 + sw * 0.58, 0.17, 0.2),
    )
    cz = d + 0.2
    chair_col = jitter(rng, pick(rng, [(0.12, 0.12, 0.13), FABRIC["grey"], FABRIC["navy"], FABRIC["rust"]]), 0.05)
    desk_chair = cat(
        cyl(0.0, cz, 0.0, 0.05, 0.26),
        cyl(0.0, cz, 0.05, 0.42, 0.025, 8),
        bb(-0.24, 0.24, 0.42, 0.5, cz - 0.23, cz + 0.23),
        bb(-0.22, 0.22, 0.55, 1.05, cz + 0.2, cz + 0.26),
        bb(-0.03, 0.03, 0.5, 0.55, cz + 0.21, cz + 0.25),
    )
    parts = [
        ("desk", table(w, d, h, leg=0.04), bank.tinted("grain", wood)),
        ("monitor", screen, bank.flat(SCREEN)),
        ("keyboard", bb(-0.22, 0.22, h, h + 0.02, d - 0.28, d - 0.14), bank.flat((0.2, 0.2, 0.21))),
        ("chair", desk_chair, bank.tinted("fabric", chair_col)),
    ]
    out.add_item(ctx.index, "desk", "desk", spot[0], parts)


def place_dining_set(
    rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, small: bool = False
) -> None:
    """A table with chairs near the room centre: the first of the size options that fits.

    Args:
        rng: source of the draws (colours, sizes, per option: end chairs and spot, then each chair's back).
        ctx: the room's free-space state.
        bank: the house's materials.
        out: receives the nodes.
        small: a table for two near a kitchen's centre, instead of 2-8 chairs in a dining room.
    """
    wood = pick_colour(rng, WOOD, ("oak", "walnut", "light_oak", "white", "cherry", "black"))
    chair_col = wood if rng.random() < 0.6 else pick_colour(rng, WOOD, ("white", "black", "grey", "oak"))
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
                v, f = chair(rng)
                if sign < 0:  # facing +z, back at z = -d/2 - reach
                    v = v + [x, 0.0, -d / 2 - reach]
                else:  # turned 180 degrees, facing -z
                    v = v * [-1.0, 1.0, -1.0] + [x, 0.0, d / 2 + reach]
                chairs.append((v, f))
        if ends:
            for sign in (-1, 1):
                v, f = chair(rng)
                x, y, z = v[:, 0], v[:, 1], v[:, 2]
                if sign < 0:  # facing +x (local +z turned onto +x)
                    v = np.stack([z - w / 2 - ex, y, -x], axis=1)
                else:  # facing -x
                    v = np.stack([-z + w / 2 + ex, y, x], axis=1)
                chairs.append((v, f))
        parts = [
            ("table", table(w, d, 0.75, z0=-d / 2), bank.tinted("grain", wood)),
            ("chairs", cat(*chairs), bank.tinted("grain", chair_col)),
        ]
        out.add_item(ctx.index, "table", "table", frame, parts)
        return
