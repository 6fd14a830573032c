"""Furniture pieces built from primitives in local coordinates (back at local z = 0, front towards +z, metres).

Tables, chairs, plants, bookshelves, cabinets, beds, sofas, kitchen and bathroom fixtures, lamps; each returns
its parts for a :class:`~envsim.scenes.procedural.geometry.Frame` to place. Builders taking ``rng`` draw details.
"""

from __future__ import annotations

import itertools

import numpy as np

from envsim.scenes.procedural.geometry import Geo, bb, cat, cyl, cyl_z, ellipsoid
from envsim.scenes.procedural.materials import Mat, MaterialBank
from envsim.scenes.procedural.nodes import Parts
from envsim.scenes.procedural.palette import (
    BOOKS,
    METAL,
    PLANT,
    POT,
    RGB,
    SCREEN,
    WHITE,
    WOOD,
    jitter,
    pick,
    pick_colour,
)


def _legs(x0: float, x1: float, z0: float, z1: float, y1: float, s: float) -> Geo:
    """Four square legs of side ``s`` under the rectangle [x0, x1] x [z0, z1], from the floor to y1."""
    return cat(*[bb(x, x + s, 0.0, y1, z, z + s) for x in (x0, x1 - s) for z in (z0, z1 - s)])


def table(
    w: float, d: float, h: float, top: float = 0.04, leg: float = 0.05, inset: float = 0.04, z0: float = 0.0
) -> Geo:
    """A table (top + four legs), local x in [-w/2, w/2], z in [z0, z0 + d].

    Args:
        w: width in metres.
        d: depth in metres.
        h: height of the top surface in metres.
        top: top thickness in metres.
        leg: leg side in metres.
        inset: leg inset from the top's edges in metres.
        z0: local z of the top's back edge.
    """
    return cat(
        bb(-w / 2, w / 2, h - top, h, z0, z0 + d),
        _legs(-w / 2 + inset, w / 2 - inset, z0 + inset, z0 + d - inset, h - top, leg),
    )


def chair(rng: np.random.Generator, seat_h: float = 0.46) -> Geo:
    """A dining chair facing +z, local x in [-0.21, 0.21], z in [0, 0.44], back at z = 0, top below 0.95 m."""
    w, d, t = 0.42, 0.44, 0.04
    back_h = float(rng.uniform(0.36, 0.44))
    return cat(
        _legs(-w / 2, w / 2, 0.0, d, seat_h, 0.035),
        bb(-w / 2, w / 2, seat_h, seat_h + t, 0.0, d),
        bb(-w / 2, w / 2, seat_h + t, seat_h + t + back_h, 0.0, 0.04),
    )


def plant(rng: np.random.Generator, bank: MaterialBank, radius: float) -> tuple[Parts, float]:
    """A pot with a foliage ball, centred at local (0, radius).

    Args:
        rng: source of the draws (pot size, pot colour, foliage size and colour).
        bank: the house's materials.
        radius: foliage radius in metres.

    Returns:
        (parts ``pot`` and ``leaves``, total height in metres).
    """
    pot_r = radius * float(rng.uniform(0.5, 0.65))
    pot_h = float(rng.uniform(0.3, 0.45))
    fy = pot_h + radius * 0.8
    parts = [
        ("pot", cyl(0.0, radius, 0.0, pot_h, pot_r), bank.flat(jitter(rng, pick(rng, POT)))),
        (
            "leaves",
            ellipsoid(0.0, fy, radius, radius, radius * float(rng.uniform(1.0, 1.5)), radius),
            bank.flat(jitter(rng, pick(rng, PLANT), 0.08)),
        ),
    ]
    return parts, fy + radius * 1.5


def bookshelf(rng: np.random.Generator, bank: MaterialBank, w: float, d: float, h: float) -> Parts:
    """An open bookshelf with 4-5 shelves of books, back at local z = 0, x in [-w/2, w/2].

    Args:
        rng: source of the draws (shelves, wood colour, book colours, then each book).
        bank: the house's materials.
        w: width in metres.
        d: depth in metres.
        h: height in metres.

    Returns:
        Part ``frame`` and one part ``books<c>`` per book colour used.
    """
    t = 0.02
    n = int(rng.integers(4, 6))
    wood = bank.tinted("grain", pick_colour(rng, WOOD, ("light_oak", "oak", "walnut", "white", "black")))
    ys = np.linspace(0.08, h - t, n + 1)
    frame = [
        bb(-w / 2, -w / 2 + t, 0, h, 0, d),
        bb(w / 2 - t, w / 2, 0, h, 0, d),
        bb(-w / 2 + t, w / 2 - t, h - t, h, 0, d),
    ]
    frame.append(bb(-w / 2 + t, w / 2 - t, 0, h - t, 0, 0.01))
    frame += [bb(-w / 2 + t, w / 2 - t, y - t, y, 0.01, d) for y in ys[:-1]]
    books: dict[int, list[Geo]] = {}
    colours = [int(i) for i in rng.choice(len(BOOKS), 3, replace=False)]
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
            books.setdefault(c, []).append(bb(x, x + bw, y0, y0 + bh, d - 0.01 - bd, d - 0.01))
            x += bw + 0.002
    parts: Parts = [("frame", cat(*frame), wood)]
    for c in sorted(books):
        parts.append((f"books{c}", cat(*books[c]), bank.flat(jitter(rng, BOOKS[c], 0.05))))
    return parts


def cabinet(
    rng: np.random.Generator, bank: MaterialBank, w: float, d: float, h: float, colour: RGB, n_doors: int
) -> Parts:
    """A closed cabinet body with door seams and handles on its front (local z = d).

    Args:
        rng: unused (kept so every builder takes the generator first).
        bank: the house's materials.
        w: width in metres.
        d: depth in metres.
        h: height in metres.
        colour: body colour (wood grain, or lacquer for greys).
        n_doors: doors across the front.

    Returns:
        Parts ``body``, ``seams`` (more than one door) and ``handles``.
    """
    dark = bank.flat((0.1, 0.1, 0.1))
    seams, handles = [], []
    for k in range(1, n_doors):
        x = -w / 2 + k * w / n_doors
        seams.append(bb(x - 0.003, x + 0.003, 0.02, h - 0.02, d, d + 0.003))
    for k in range(n_doors):
        x = -w / 2 + (k + 0.5) * w / n_doors + (0.35 * w / n_doors) * (1 if k % 2 == 0 else -1) * (n_doors > 1)
        handles.append(bb(x - 0.01, x + 0.01, h * 0.5, h * 0.5 + 0.12, d, d + 0.025))
    parts = [("body", bb(-w / 2, w / 2, 0.0, h, 0.0, d), bank.tinted("grain", colour))]
    if seams:
        parts.append(("seams", cat(*seams), dark))
    parts.append(("handles", cat(*handles), bank.flat(METAL)))
    return parts


def bed(
    bank: MaterialBank,
    width: float,
    length: float,
    head_t: float,
    heights: tuple[float, float, float],
    wood: RGB,
    linen: RGB,
    duvet: RGB,
) -> Parts:
    """A bed with its headboard at local z in [0, head_t] and the mattress beyond it, x in [-width/2, width/2].

    Args:
        bank: the house's materials.
        width: bed width in metres.
        length: frame length in metres (without the headboard).
        head_t: headboard thickness in metres.
        heights: (base, mattress, headboard) heights in metres.
        wood: frame colour.
        linen: mattress and pillow colour.
        duvet: duvet colour.

    Returns:
        Parts ``frame``, ``mattress``, ``duvet``, ``pillows``.
    """
    bw, bl, ht = width, length, head_t
    base_h, matt_h, head_h = heights
    top = base_h + matt_h
    pillows = []
    n_p = 1 if bw < 1.2 else 2
    pw = (bw - 0.1) / n_p - 0.05
    for k in range(n_p):
        x = -bw / 2 + 0.05 + k * (pw + 0.05) + 0.025
        pillows.append(bb(x, x + pw, top, top + 0.12, ht + 0.05, ht + 0.4))
    return [
        (
            "frame",
            cat(bb(-bw / 2, bw / 2, 0.0, base_h, ht, ht + bl), bb(-bw / 2, bw / 2, 0.0, head_h, 0.0, ht)),
            bank.tinted("grain", wood),
        ),
        (
            "mattress",
            bb(-bw / 2 + 0.02, bw / 2 - 0.02, base_h, top, ht + 0.02, ht + bl - 0.02),
            bank.tinted("fabric", linen),
        ),
        (
            "duvet",
            bb(-bw / 2 + 0.005, bw / 2 - 0.005, top - 0.12, top + 0.04, ht + 0.32 * bl, ht + bl - 0.005),
            bank.tinted("fabric", duvet),
        ),
        ("pillows", cat(*pillows), bank.tinted("fabric", linen)),
    ]


def sofa(
    bank: MaterialBank,
    w: float,
    d: float,
    dims: tuple[float, float, float, float],
    cushion_top: float,
    fabric: RGB,
    cushion_col: RGB,
) -> Parts:
    """A sofa with its back at local z in [0, 0.2], seat towards +z, x in [-w/2, w/2].

    Args:
        bank: the house's materials.
        w: width in metres.
        d: depth in metres.
        dims: (back height, arm width, arm height, seat height) in metres.
        cushion_top: top of the back cushions in metres.
        fabric: upholstery colour.
        cushion_col: cushion colour.

    Returns:
        Parts ``body`` and ``cushions`` (2 cushions below 2.1 m width, else 3).
    """
    back_h, arm_w, arm_h, seat_h = dims
    n_c = 2 if w < 2.1 else 3
    inner_w = w - 2 * arm_w
    cushions = [
        bb(
            -inner_w / 2 + k * inner_w / n_c + 0.01,
            -inner_w / 2 + (k + 1) * inner_w / n_c - 0.01,
            seat_h,
            cushion_top,
            0.2,
            0.33,
        )
        for k in range(n_c)
    ]
    return [
        (
            "body",
            cat(
                bb(-w / 2, w / 2, 0.0, back_h, 0.0, 0.2),
                bb(-w / 2, -w / 2 + arm_w, 0.0, arm_h, 0.2, d),
                bb(w / 2 - arm_w, w / 2, 0.0, arm_h, 0.2, d),
                bb(-inner_w / 2, inner_w / 2, 0.0, seat_h, 0.2, d),
            ),
            bank.tinted("fabric", fabric),
        ),
        ("cushions", cat(*cushions), bank.tinted("fabric", cushion_col)),
    ]


def armchair(bank: MaterialBank, aw: float, colour: RGB) -> Parts:
    """An armchair ``aw`` metres wide and 0.85 m deep, back at local z = 0; one part ``body``."""
    return [
        (
            "body",
            cat(
                bb(-aw / 2, aw / 2, 0.0, 0.8, 0.0, 0.2),
                bb(-aw / 2, -aw / 2 + 0.14, 0.0, 0.6, 0.2, 0.85),
                bb(aw / 2 - 0.14, aw / 2, 0.0, 0.6, 0.2, 0.85),
                bb(-aw / 2 + 0.14, aw / 2 - 0.14, 0.0, 0.42, 0.2, 0.85),
            ),
            bank.tinted("fabric", colour),
        ),
    ]


def tv(bank: MaterialBank, tv_w: float, tv_h: float) -> Parts:
    """A flat TV ``tv_w`` x ``tv_h`` metres on a foot, standing on a surface 0.5 m high; one part ``screen``."""
    screen = cat(
        bb(-0.15, 0.15, 0.5, 0.52, 0.1, 0.3),
        bb(-0.03, 0.03, 0.52, 0.62, 0.18, 0.21),
        bb(-tv_w / 2, tv_w / 2, 0.62, 0.62 + tv_h, 0.18, 0.23),
    )
    return [("screen", screen, bank.flat(SCREEN))]


def fridge(bank: MaterialBank, fh: float, colour: RGB, dark: Mat) -> Parts:
    """A fridge 0.7 x 0.68 m and ``fh`` metres tall, front at local z = 0.68; parts ``body``, ``handle``, ``seam``."""
    return [
        ("body", bb(-0.35, 0.35, 0.0, fh, 0.0, 0.68), bank.flat(colour)),
        (
            "handle",
            cat(bb(0.25, 0.27, fh * 0.62, fh * 0.9, 0.68, 0.71), bb(0.25, 0.27, fh * 0.3, fh * 0.55, 0.68, 0.71)),
            dark,
        ),
        ("seam", bb(-0.35, 0.35, fh * 0.58, fh * 0.585, 0.68, 0.683), dark),
    ]


def counter(
    rng: np.random.Generator, bank: MaterialBank, length: float, cab: RGB, stone: Mat, dark: Mat, metal: Mat
) -> Parts:
    """A kitchen counter run against local z = 0: base cabinets, worktop, hob, oven, sink, wall cabinets, hood.

    Args:
        rng: source of the draws (the hob's module, then the sink's).
        bank: the house's materials.
        length: run length in metres (one module per 0.6 m).
        cab: cabinet colour.
        stone: worktop material.
        dark: hob material.
        metal: sink and hood material.

    Returns:
        The parts, ``body`` ... ``hood``.
    """
    L = length
    mods = max(1, int(L // 0.6))
    parts = cabinet(rng, bank, L, 0.58, 0.86, cab, mods)
    parts.append(("top", bb(-L / 2, L / 2, 0.86, 0.9, 0.0, 0.62), stone))
    stove_k = int(rng.integers(0, mods))
    sx = -L / 2 + (stove_k + 0.5) * L / mods
    burners = [cyl(sx + dx, 0.3 + dz, 0.91, 0.92, 0.08) for dx in (-0.14, 0.14) for dz in (-0.12, 0.12)]
    parts.append(("hob", bb(sx - 0.29, sx + 0.29, 0.9, 0.91, 0.04, 0.58), dark))
    parts.append(("burners", cat(*burners), bank.flat((0.25, 0.25, 0.26))))
    parts.append(("oven", bb(sx - 0.27, sx + 0.27, 0.12, 0.74, 0.58, 0.61), bank.flat((0.12, 0.12, 0.13))))
    if mods > 1:
        sink_k = (stove_k + 1 + int(rng.integers(0, mods - 1))) % mods
        kx = -L / 2 + (sink_k + 0.5) * L / mods
        parts.append(
            (
                "sink",
                cat(bb(kx - 0.24, kx + 0.24, 0.9, 0.905, 0.1, 0.5), cyl(kx, 0.06, 0.9, 1.15, 0.015, 8)),
                metal,
            )
        )
    parts.append(("upper", bb(-L / 2, L / 2, 1.45, 2.15, -0.0, 0.35), bank.tinted("grain", cab)))
    parts.append(("hood", bb(sx - 0.3, sx + 0.3, 1.35, 1.45, 0.0, 0.48), metal))
    return parts


def bathtub(w: float, d: float, h: float, white: Mat, metal: Mat) -> Parts:
    """A bathtub ``w`` x ``d`` x ``h`` metres (walls 0.08 m thick), tap at the back; parts ``tub`` and ``tap``."""
    r = 0.08
    tub = cat(
        bb(-w / 2, w / 2, 0.0, 0.15, 0.0, d),
        bb(-w / 2, w / 2, 0.15, h, 0.0, r),
        bb(-w / 2, w / 2, 0.15, h, d - r, d),
        bb(-w / 2, -w / 2 + r, 0.15, h, r, d - r),
        bb(w / 2 - r, w / 2, 0.15, h, r, d - r),
    )
    tap = cyl(-w / 2 + 0.2, 0.04, h, h + 0.2, 0.015, 8)
    return [("tub", tub, white), ("tap", tap, metal)]


def shower(s: float, white: Mat, metal: Mat) -> Parts:
    """A square shower tray of side ``s`` metres with a pipe and head on the back wall; parts ``tray``, ``pipe``."""
    return [
        ("tray", bb(-s / 2, s / 2, 0.0, 0.06, 0.0, s), white),
        (
            "pipe",
            cat(
                cyl(0.0, 0.04, 0.9, 1.95, 0.015, 8),
                cyl(0.0, 0.12, 1.92, 1.96, 0.1, 16),
                bb(-0.012, 0.012, 1.92, 1.945, 0.04, 0.12),
            ),
            metal,
        ),
    ]


def toilet(white: Mat) -> Parts:
    """A toilet 0.42 m wide with its tank against local z = 0; parts ``tank`` and ``bowl``."""
    return [
        ("tank", bb(-0.2, 0.2, 0.4, 0.8, 0.0, 0.18), white),
        ("bowl", cat(cyl(0.0, 0.38, 0.0, 0.4, 0.19), cyl(0.0, 0.39, 0.4, 0.43, 0.2)), white),
    ]


def washing_machine(rng: np.random.Generator, bank: MaterialBank) -> Parts:
    """A front-loading washing machine 0.6 x 0.6 x 0.85 m (draws its white); parts ``body`` and ``door``."""
    return [
        ("body", bb(-0.3, 0.3, 0.0, 0.85, 0.0, 0.6), bank.flat(jitter(rng, WHITE, 0.01))),
        ("door", cyl_z(0.0, 0.48, 0.6, 0.62, 0.17), bank.flat((0.2, 0.22, 0.25))),
    ]


def floor_lamp(rng: np.random.Generator, bank: MaterialBank) -> Parts:
    """A floor lamp 1.7 m tall centred at local (0, 0.2) (draws its shade colour); parts ``stand``, ``shade``."""
    return [
        (
            "stand",
            cat(cyl(0.0, 0.2, 0.0, 0.03, 0.16), cyl(0.0, 0.2, 0.03, 1.45, 0.015, 8)),
            bank.flat((0.15, 0.15, 0.15)),
        ),
        ("shade", cyl(0.0, 0.2, 1.4, 1.7, 0.18), bank.flat(jitter(rng, (0.95, 0.90, 0.78), 0.03))),
    ]


def coat_rack(rng: np.random.Generator, bank: MaterialBank, r: float) -> Parts:
    """A coat rack 1.8 m tall on a base of radius ``0.9 r`` centred at local (0, r) (draws its colour)."""
    black = bank.flat(jitter(rng, pick(rng, [(0.12, 0.12, 0.12), WOOD["oak"], WOOD["walnut"]]), 0.03))
    hooks = [
        bb(-0.01 + dx, 0.01 + dx, 1.62, 1.64, r - 0.01 + dz, r + 0.01 + dz)
        for dx, dz in ((-0.1, 0), (0.1, 0), (0, -0.1), (0, 0.1))
    ]
    return [
        (
            "stand",
            cat(
                cyl(0.0, r, 0.0, 0.03, r * 0.9),
                cyl(0.0, r, 0.03, 1.78, 0.018, 8),
                ellipsoid(0.0, 1.78, r, 0.03, 0.03, 0.03),
                *hooks,
            ),
            black,
        )
    ]
