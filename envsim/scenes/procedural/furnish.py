"""Furnishing routines, one per room type (what goes in the room, drawn sizes, where it stands).

:func:`furnish_room` picks the routine by the room's type.
"""

from __future__ import annotations

import numpy as np

from envsim.scenes.procedural.furniture import (
    armchair,
    bathtub,
    bed,
    cabinet,
    coat_rack,
    counter,
    floor_lamp,
    fridge,
    shower,
    sofa,
    table,
    toilet,
    tv,
    washing_machine,
)
from envsim.scenes.procedural.geometry import Frame, bb, cyl
from envsim.scenes.procedural.materials import Mat, MaterialBank
from envsim.scenes.procedural.nodes import Nodes
from envsim.scenes.procedural.palette import (
    ART,
    CERAMIC,
    FABRIC,
    METAL,
    RGB,
    WALL_TILES,
    WHITE,
    WOOD,
    jitter,
    pick,
    pick_colour,
)
from envsim.scenes.procedural.placement import OPPOSITE, RoomCtx
from envsim.scenes.procedural.shared_items import place_bookshelf, place_desk, place_dining_set, place_plant, place_rug
from envsim.scenes.procedural.textures import tex_tiles


def furnish_room(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """Furnish one room with the routine of its type (``ctx.label``).

    Args:
        rng: source of every draw.
        ctx: the room's free-space state; placed items are reserved in it.
        bank: the house's materials.
        out: receives the furniture nodes.
    """
    _FURNISH[ctx.label](rng, ctx, bank, out)


# --------------------------------------------------------------------------------------------- bedroom


def _furnish_bedroom(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """A bed with nightstands, a wardrobe, maybe a desk, a dresser and a plant; one wood colour throughout."""
    wood = pick_colour(rng, WOOD, ("light_oak", "oak", "walnut", "white", "grey"))
    _place_bed(rng, ctx, bank, out, wood)
    _place_wardrobe(rng, ctx, bank, out, wood)
    if rng.random() < 0.4:
        place_desk(rng, ctx, bank, out, small=True)
    ix0, iz0, ix1, iz1 = ctx.inner
    if rng.random() < min(0.8, 0.4 * (ix1 - ix0) * (iz1 - iz0) / 12.0):
        w, h = float(rng.uniform(0.8, 1.2)), float(rng.uniform(0.75, 0.9))
        spot = ctx.on_wall(rng, w, 0.45, h)
        if spot:
            out.add_item(ctx.index, "dresser", "dresser", spot[0], cabinet(rng, bank, w, 0.45, h, wood, 3))
    if rng.random() < 0.3:
        place_plant(rng, ctx, bank, out)


def _place_bed(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, wood: RGB) -> None:
    """A bed against a wall (narrower when the drawn width does not fit), nightstands beside it, maybe a rug."""
    bw = float(pick(rng, [0.9, 1.2, 1.4, 1.6, 1.8])) + float(rng.uniform(-0.05, 0.05))
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
    if not spot:
        return
    frame, side, along = spot
    linen = jitter(rng, pick(rng, [FABRIC["cream"], (0.96, 0.96, 0.96), FABRIC["grey"]]), 0.02)
    duvet = pick_colour(rng, FABRIC, tuple(FABRIC), 0.06)
    parts = bed(bank, bw, bl, ht, (base_h, matt_h, head_h), wood, linen, duvet)
    out.add_item(ctx.index, "bed", "bed", frame, parts)
    _place_nightstands(rng, ctx, bank, out, side, along, bw, wood)
    if rng.random() < 0.5:
        rw, rd = bw + float(rng.uniform(0.4, 0.8)), float(rng.uniform(0.8, 1.4))
        place_rug(rng, ctx, bank, out, frame, (-rw / 2, ht + bl * 0.55, rw / 2, ht + bl * 0.55 + rd))


def _place_nightstands(
    rng: np.random.Generator,
    ctx: RoomCtx,
    bank: MaterialBank,
    out: Nodes,
    side: str,
    along: float,
    bw: float,
    wood: RGB,
) -> None:
    """Nightstands with lamps either side of a bed ``bw`` metres wide at ``along`` on wall ``side`` (85% each)."""
    nw, nd, nh = float(rng.uniform(0.4, 0.5)), 0.4, float(rng.uniform(0.45, 0.58))
    for sign in (-1, 1):
        a = along + sign * (bw / 2 + 0.05 + nw / 2)
        f = ctx.wall_frame(side, a)
        if rng.random() < 0.85 and ctx.try_place(f, (-nw / 2, 0.0, nw / 2, nd), nh, clearance=0.01):
            parts = cabinet(rng, bank, nw, nd, nh, wood, 1)
            parts.append(
                (
                    "lamp",
                    cyl(0.0, nd / 2, nh, nh + 0.3, 0.09, 12),
                    bank.flat(jitter(rng, (0.95, 0.92, 0.80), 0.03)),
                )
            )
            out.add_item(ctx.index, "nightstand", "nightstand", f, parts)


def _place_wardrobe(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, wood: RGB) -> None:
    """A wardrobe against a wall, 1 m wide when the drawn width does not fit."""
    ww, wh = float(rng.uniform(0.9, 2.0)), float(rng.uniform(1.9, 2.2))
    for width in (ww, 1.0):
        spot = ctx.on_wall(rng, width, 0.6, wh, corner=0.6)
        if spot:
            out.add_item(
                ctx.index,
                "wardrobe",
                "wardrobe",
                spot[0],
                cabinet(rng, bank, width, 0.6, wh, wood, 2 if width < 1.4 else 3),
            )
            return


# --------------------------------------------------------------------------------------------- bathroom


def _furnish_bathroom(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """A bathtub or a shower, a toilet, a sink with a mirror, maybe a washing machine and a bath mat."""
    white = bank.flat(jitter(rng, CERAMIC, 0.01))
    metal = bank.flat(METAL)
    _place_bath_or_shower(rng, ctx, out, white, metal)
    spot = ctx.on_wall(rng, 0.42, 0.62, 0.8, corner=0.2)
    if spot:
        out.add_item(ctx.index, "toilet", "toilet", spot[0], toilet(white))
    _place_sink_and_mirror(rng, ctx, bank, out, white, metal)
    if rng.random() < 0.4:
        spot = ctx.on_wall(rng, 0.6, 0.6, 0.85)
        if spot:
            out.add_item(ctx.index, "washing_machine", "washing_machine", spot[0], washing_machine(rng, bank))
    if rng.random() < 0.6:
        place_rug(rng, ctx, bank, out, Frame(0.0, ctx.centre[0], ctx.centre[1]), (-0.35, -0.25, 0.35, 0.25))


def _place_bath_or_shower(rng: np.random.Generator, ctx: RoomCtx, out: Nodes, white: Mat, metal: Mat) -> None:
    """A bathtub (55%) or a shower tray with its pipe and head, in a corner when possible."""
    if rng.random() < 0.55:
        w, d, h = float(rng.uniform(1.5, 1.7)), float(rng.uniform(0.7, 0.8)), float(rng.uniform(0.5, 0.6))
        spot = ctx.on_wall(rng, w, d, h, corner=0.8)
        if spot:
            out.add_item(ctx.index, "bathtub", "bathtub", spot[0], bathtub(w, d, h, white, metal))
    else:
        s = float(rng.uniform(0.8, 1.0))
        spot = ctx.on_wall(rng, s, s, 2.0, corner=0.9)
        if spot:
            out.add_item(ctx.index, "shower", "shower", spot[0], shower(s, white, metal))


def _place_sink_and_mirror(
    rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, white: Mat, metal: Mat
) -> None:
    """A vanity unit with worktop, basin and tap against a wall, and a framed mirror above it."""
    w = float(rng.uniform(0.6, 1.0))
    spot = ctx.on_wall(rng, w, 0.46, 1.9, corner=0.3)
    if not spot:
        return
    frame = spot[0]
    col = pick_colour(rng, WOOD, ("white", "oak", "walnut", "grey"))
    parts = cabinet(rng, bank, w, 0.46, 0.82, col, 2 if w > 0.8 else 1)
    parts += [
        ("top", bb(-w / 2, w / 2, 0.82, 0.85, 0.0, 0.48), white),
        ("basin", cyl(0.0, 0.26, 0.85, 0.97, 0.17), white),
        ("tap", cyl(0.0, 0.05, 0.85, 1.05, 0.015, 8), metal),
    ]
    mw = min(w, float(rng.uniform(0.5, 0.9)))
    out.add_item(ctx.index, "sink", "sink", frame, parts)
    mirror = [
        (
            "frame",
            bb(-mw / 2 - 0.03, mw / 2 + 0.03, 1.17, 1.93, -0.015, 0.0),
            bank.flat(jitter(rng, pick(rng, [WHITE, WOOD["black"], WOOD["oak"]]), 0.03)),
        ),
        ("glass", bb(-mw / 2, mw / 2, 1.2, 1.9, -0.015, 0.008), bank.flat((0.72, 0.78, 0.82))),
    ]
    out.add_item(ctx.index, "mirror", "mirror", frame, mirror)


# --------------------------------------------------------------------------------------------- kitchen


def _furnish_kitchen(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """A counter run with backsplash and a fridge, then an island (large kitchens) or maybe a small dining set."""
    cab = pick_colour(rng, WOOD, ("white", "oak", "grey", "walnut", "black", "light_oak"))
    stone = bank.flat(
        jitter(rng, pick(rng, [(0.85, 0.84, 0.80), (0.25, 0.25, 0.26), (0.60, 0.58, 0.55), (0.72, 0.62, 0.50)]), 0.03)
    )
    dark = bank.flat((0.08, 0.08, 0.09))
    metal = bank.flat(METAL)
    _place_counter(rng, ctx, bank, out, cab, (stone, dark, metal))
    if _place_island(rng, ctx, bank, out, cab, stone):
        return
    if rng.random() < 0.6:
        place_dining_set(rng, ctx, bank, out, small=True)


def _place_counter(
    rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, cab: RGB, mats: tuple[Mat, Mat, Mat]
) -> None:
    """A counter run with a tiled backsplash and a fridge beside it.

    The run goes on one of the two longest walls if it fits, else on any wall, shortened by 0.3 m at a time
    down to 1.2 m. ``mats`` are the (worktop, hob, metal) materials.
    """
    stone, dark, metal = mats
    sides = sorted(("z0", "z1", "x0", "x1"), key=lambda s: -(ctx.side_range(s)[1] - ctx.side_range(s)[0]))
    length = float(rng.uniform(1.8, 3.6))
    spot = None
    while length >= 1.2 and spot is None:
        spot = ctx.on_wall(rng, length, 0.62, 2.15, sides=tuple(sides[:2]), tries=12, corner=0.6)
        if spot is None:
            spot = ctx.on_wall(rng, length, 0.62, 2.15, tries=12, corner=0.6)
        if spot is None:
            length -= 0.3
    if not spot:
        return
    frame, side, along = spot
    L = length
    out.add_item(ctx.index, "counter", "counter", frame, counter(rng, bank, L, cab, stone, dark, metal))
    splash_col = jitter(rng, pick(rng, WALL_TILES + [(0.30, 0.45, 0.55), (0.85, 0.80, 0.70)]), 0.04)
    grout = jitter(rng, (0.78, 0.78, 0.76), 0.03)
    splash = bank.textured(
        f"backsplash_r{ctx.index:02d}", tex_tiles(rng, bank.size, 4, 8, [splash_col], grout, stagger=True), 0.6
    )
    out.add_item(
        ctx.index,
        "backsplash",
        "backsplash",
        frame,
        [("tiles", bb(-L / 2, L / 2, 0.9, 1.45, -0.012, -0.004), splash)],
    )
    _place_fridge(rng, ctx, bank, out, side, along, L, dark)


def _place_fridge(
    rng: np.random.Generator,
    ctx: RoomCtx,
    bank: MaterialBank,
    out: Nodes,
    side: str,
    along: float,
    length: float,
    dark: Mat,
) -> None:
    """A fridge at either end of a counter run ``length`` metres long at ``along`` on wall ``side``, else anywhere."""
    fh = float(rng.uniform(1.75, 2.0))
    fcol = jitter(rng, pick(rng, [WHITE, METAL, (0.15, 0.15, 0.16)]), 0.02)
    parts = fridge(bank, fh, fcol, dark)
    for sign in (1, -1) if rng.random() < 0.5 else (-1, 1):
        a = along + sign * (length / 2 + 0.03 + 0.35)
        f = ctx.wall_frame(side, a)
        if ctx.try_place(f, (-0.35, 0.0, 0.35, 0.68), fh, clearance=0.01):
            out.add_item(ctx.index, "fridge", "fridge", f, parts)
            return
    spot = ctx.on_wall(rng, 0.7, 0.68, fh, corner=0.6)
    if spot:
        out.add_item(ctx.index, "fridge", "fridge", spot[0], parts)


def _place_island(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, cab: RGB, stone: Mat) -> bool:
    """A kitchen island near the centre (60% when both sides exceed 3.4 m); whether one was placed."""
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
                        bb(-w / 2 + 0.05, w / 2 - 0.05, 0.0, 0.88, -d / 2 + 0.05, d / 2 - 0.05),
                        bank.tinted("grain", cab),
                    ),
                    ("top", bb(-w / 2, w / 2, 0.88, 0.92, -d / 2, d / 2), stone),
                ],
            )
            return True
    return False


# --------------------------------------------------------------------------------------------- living room


def _furnish_living(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """A sofa with coffee table, rug and TV, armchairs, a bookshelf, a plant and a floor lamp as space allows."""
    fabric = pick_colour(rng, FABRIC, tuple(FABRIC), 0.05)
    wood = pick_colour(rng, WOOD, ("oak", "walnut", "light_oak", "white", "black"))
    _place_sofa_group(rng, ctx, bank, out, fabric, wood)
    ix0, iz0, ix1, iz1 = ctx.inner
    scale = (ix1 - ix0) * (iz1 - iz0) / 15.0  # larger rooms get more furniture
    _place_armchairs(rng, ctx, bank, out, scale)
    if rng.random() < min(0.8, 0.35 * scale):
        place_bookshelf(rng, ctx, bank, out)
    if rng.random() < 0.6:
        place_plant(rng, ctx, bank, out)
    if rng.random() < 0.4:
        _place_floor_lamp(rng, ctx, bank, out)


def _place_sofa_group(
    rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, fabric: RGB, wood: RGB
) -> None:
    """A sofa against a wall (narrower when needed); a coffee table and rug before it, a TV on the opposite wall."""
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
    if not spot:
        return
    frame, side, along = spot
    cushion_top = min(seat_h + float(rng.uniform(0.3, 0.4)), back_h - 0.03)
    cushion_col = jitter(rng, fabric, 0.05) if rng.random() < 0.5 else pick_colour(rng, FABRIC, tuple(FABRIC))
    parts = sofa(bank, w, d, (back_h, arm_w, arm_h, seat_h), cushion_top, fabric, cushion_col)
    out.add_item(ctx.index, "sofa", "sofa", frame, parts)
    _place_coffee_table(rng, ctx, bank, out, frame, (w, d), wood)
    _place_tv(rng, ctx, bank, out, side, along, wood)


def _place_coffee_table(
    rng: np.random.Generator,
    ctx: RoomCtx,
    bank: MaterialBank,
    out: Nodes,
    frame: Frame,
    sofa_wd: tuple[float, float],
    wood: RGB,
) -> None:
    """A coffee table in front of the sofa placed by ``frame`` (``sofa_wd``: its width, depth), a rug under it."""
    w, d = sofa_wd
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
            [("table", table(cw, cd, ch, z0=d + gap, leg=0.045), bank.tinted("grain", wood))],
        )
    rw, rd = cw + float(rng.uniform(0.8, 1.4)), cd + float(rng.uniform(0.8, 1.2))
    mid = d + gap + cd / 2
    place_rug(rng, ctx, bank, out, frame, (-rw / 2, mid - rd / 2, rw / 2, mid + rd / 2))


def _place_tv(
    rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, side: str, along: float, wood: RGB
) -> None:
    """A TV on a stand on the wall opposite the sofa at ``along`` on ``side``, facing it (4 positions tried)."""
    opp = OPPOSITE[side]
    lo, hi = ctx.side_range(opp)
    tw = float(rng.uniform(1.2, 1.8))
    tv_w = min(tw - 0.1, float(rng.uniform(0.9, 1.4)))
    tv_h = tv_w * 0.58
    for a in (along, along + 0.4, along - 0.4, (lo + hi) / 2):
        a = min(max(a, lo + tw / 2 + 0.02), hi - tw / 2 - 0.02)
        f = ctx.wall_frame(opp, a)
        if ctx.try_place(f, (-tw / 2, 0.0, tw / 2, 0.42), 0.62 + tv_h):
            out.add_item(
                ctx.index, "tv_stand", "tv_stand", f, cabinet(rng, bank, tw, 0.42, 0.5, wood, 2 if tw < 1.5 else 3)
            )
            out.add_item(ctx.index, "tv", "tv", f, tv(bank, tv_w, tv_h))
            return


def _place_armchairs(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes, scale: float) -> None:
    """Up to two armchairs of one colour, likelier in larger rooms (``scale``: floor area / 15 m^2)."""
    col = pick_colour(rng, FABRIC, tuple(FABRIC))
    for k in range(2):
        if rng.random() > min(0.9, 0.5 * scale) / (1 + 2 * k):
            break
        aw = float(rng.uniform(0.8, 0.95))
        spot = ctx.on_wall(rng, aw, 0.85, 0.8, corner=0.5)
        if spot:
            out.add_item(ctx.index, "armchair", "armchair", spot[0], armchair(bank, aw, col))


def _place_floor_lamp(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """A floor lamp against a wall, usually in a corner."""
    spot = ctx.on_wall(rng, 0.4, 0.4, 1.7, corner=0.8)
    if spot:
        out.add_item(ctx.index, "floor_lamp", "lamp", spot[0], floor_lamp(rng, bank))


# --------------------------------------------------------------------------------------------- other rooms


def _furnish_dining(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """A dining set, maybe a sideboard with a vase, a plant and a bookshelf."""
    place_dining_set(rng, ctx, bank, out)
    if rng.random() < 0.8:
        w, h = float(rng.uniform(1.2, 1.8)), float(rng.uniform(0.75, 0.9))
        spot = ctx.on_wall(rng, w, 0.45, h)
        if spot:
            col = pick_colour(rng, WOOD, ("oak", "walnut", "white", "cherry", "black"))
            parts = cabinet(rng, bank, w, 0.45, h, col, 3 if w > 1.5 else 2)
            parts.append(
                (
                    "vase",
                    cyl(w * 0.25, 0.22, h, h + float(rng.uniform(0.2, 0.35)), 0.07, 12),
                    bank.flat(jitter(rng, pick(rng, ART), 0.05)),
                )
            )
            out.add_item(ctx.index, "sideboard", "sideboard", spot[0], parts)
    if rng.random() < 0.5:
        place_plant(rng, ctx, bank, out)
    if rng.random() < 0.3:
        place_bookshelf(rng, ctx, bank, out)


def _furnish_office(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """A desk, one or two bookshelves, maybe a filing cabinet, a plant and a rug."""
    place_desk(rng, ctx, bank, out)
    place_bookshelf(rng, ctx, bank, out)
    if rng.random() < 0.4:
        place_bookshelf(rng, ctx, bank, out)
    if rng.random() < 0.4:
        spot = ctx.on_wall(rng, 0.45, 0.6, 0.72)
        if spot:
            out.add_item(
                ctx.index,
                "cabinet",
                "cabinet",
                spot[0],
                cabinet(rng, bank, 0.45, 0.6, 0.72, jitter(rng, METAL, 0.05), 1),
            )
    if rng.random() < 0.4:
        place_plant(rng, ctx, bank, out)
    if rng.random() < 0.4:
        rw, rd = float(rng.uniform(1.2, 2.0)), float(rng.uniform(1.0, 1.6))
        place_rug(rng, ctx, bank, out, Frame(0.0, ctx.centre[0], ctx.centre[1]), (-rw / 2, -rd / 2, rw / 2, rd / 2))


def _furnish_hallway(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """Console tables, plants and a coat rack beside the clear central band, and a runner rug."""
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
            col = pick_colour(rng, WOOD, ("oak", "walnut", "white", "black"))
            parts = [
                ("table", table(w, d, h, top=0.03, leg=0.035, inset=0.02), bank.tinted("grain", col)),
                (
                    "vase",
                    cyl(w * 0.3, d / 2, h, h + float(rng.uniform(0.2, 0.4)), 0.06, 12),
                    bank.flat(jitter(rng, pick(rng, ART), 0.05)),
                ),
            ]
            out.add_item(ctx.index, "console_table", "console_table", spot[0], parts)
    for _ in range(int(rng.integers(0, 3))):
        place_plant(rng, ctx, bank, out, max_radius=min(0.28, room / 2))
    if rng.random() < 0.6:
        r = min(0.2, room / 2)
        spot = ctx.on_wall(rng, 2 * r, 2 * r, 1.8)
        if spot:
            out.add_item(ctx.index, "coat_rack", "coat_rack", spot[0], coat_rack(rng, bank, r))
    length = ix1 - ix0
    rl, rw = float(rng.uniform(0.4, 0.7)) * length, min(float(rng.uniform(0.6, 0.8)), iz1 - iz0 - 0.2)
    place_rug(
        rng,
        ctx,
        bank,
        out,
        Frame(0.0, ctx.centre[0] + float(rng.uniform(-0.2, 0.2)) * (length - rl), ctx.centre[1]),
        (-rl / 2, -rw / 2, rl / 2, rw / 2),
    )


_FURNISH = {
    "bedroom": _furnish_bedroom,
    "bathroom": _furnish_bathroom,
    "kitchen": _furnish_kitchen,
    "living_room": _furnish_living,
    "dining_room": _furnish_dining,
    "office": _furnish_office,
    "hallway": _furnish_hallway,
}
