"""Framed pictures hung on free wall stretches of every room but bathrooms, away from doorways and tall items."""

from __future__ import annotations

import numpy as np

from envsim.scenes.procedural.geometry import bb
from envsim.scenes.procedural.materials import MaterialBank
from envsim.scenes.procedural.nodes import Nodes
from envsim.scenes.procedural.palette import ART, WHITE, WOOD, jitter, pick
from envsim.scenes.procedural.placement import RoomCtx, overlap


def add_pictures(rng: np.random.Generator, ctx: RoomCtx, bank: MaterialBank, out: Nodes) -> None:
    """Framed pictures on free wall stretches (not bathrooms): 0-2, each with up to 10 tries for a spot.

    Args:
        rng: source of every draw.
        ctx: the room's free-space state (items, doorways); each picture is recorded in ``ctx.wall_items``.
        bank: the house's materials.
        out: receives the picture nodes.
    """
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
            if any(overlap(strip, r) and hgt_item > y0 - 0.1 for r, hgt_item in ctx.items):
                continue
            if any(s == side and b0 < a1 and a0 < b1 for s, b0, b1, _, _ in ctx.wall_items):
                continue
            ctx.wall_items.append((side, a0, a1, y0, y1))
            frame = ctx.wall_frame(side, a, gap=0.0)
            border = bank.flat(jitter(rng, pick(rng, [WOOD["black"], WOOD["oak"], WHITE, (0.75, 0.65, 0.35)]), 0.03))
            bg, fg = pick(rng, ART), pick(rng, ART)
            parts = [
                ("frame", bb(-w / 2 - 0.04, w / 2 + 0.04, y0 - 0.04, y1 + 0.04, 0.0, 0.025), border),
                ("canvas", bb(-w / 2, w / 2, y0, y1, 0.0, 0.03), bank.flat(jitter(rng, bg, 0.08))),
                (
                    "motif",
                    bb(
                        -w / 2 + w * 0.2,
                        w / 2 - w * float(rng.uniform(0.2, 0.5)),
                        y0 + hgt * 0.2,
                        y1 - hgt * float(rng.uniform(0.2, 0.5)),
                        0.0,
                        0.035,
                    ),
                    bank.flat(jitter(rng, fg, 0.08)),
                ),
            ]
            out.add_item(ctx.index, "picture", "picture", frame, parts)
            break
