"""The generator's entry points: :func:`generate_house` (layout, shell, furniture, sidecar) and :func:`write_house`.

:class:`House` holds the trimesh scene and its room sidecar.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from envsim.provenance import atomic_write
from envsim.scenes.procedural.config import ProceduralConfig
from envsim.scenes.procedural.furnish import furnish_room
from envsim.scenes.procedural.layout import door_record, plan_layout, rect_polygon
from envsim.scenes.procedural.materials import MaterialBank
from envsim.scenes.procedural.nodes import Nodes, to_trimesh
from envsim.scenes.procedural.pictures import add_pictures
from envsim.scenes.procedural.placement import RoomCtx
from envsim.scenes.procedural.structure import build_structure
from envsim.scenes.rooms import SIDECAR_FORMAT, SIDECAR_SUFFIX

log = logging.getLogger(__package__)  # the package's logger, "envsim.scenes.procedural", as before the split

GENERATOR = "envsim.procedural"
"""The name a house's sidecar records as its generator (fixed: moving the code must not change the bytes)."""


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
            name and the config. Objects with a front (:data:`~envsim.scenes.procedural.nodes.FACING`) carry
            ``"yaw"``: the way they face, radians about +Y, 0 = facing -Z, pi / 2 = facing -X.
    """

    scene: trimesh.Scene
    sidecar: dict


def generate_house(*, rng: np.random.Generator, config: ProceduralConfig = ProceduralConfig()) -> House:
    """Generate one furnished house.

    Args:
        rng: the only source of randomness; the same generator state gives the same house.
        config: generation settings.

    Returns:
        The house: a trimesh scene and its room sidecar.
    """
    plans, doors = plan_layout(rng, config)
    bank = MaterialBank(rng, config.texture_size)
    out = Nodes()
    build_structure(rng, config, plans, bank, out)
    if config.furniture:
        for index, plan in enumerate(plans):
            ctx = RoomCtx(index, plan, config)
            furnish_room(rng, ctx, bank, out)
            add_pictures(rng, ctx, bank, out)
    scene = trimesh.Scene()
    objects: dict[str, dict] = {}
    for name, room, category, (v, f), mat in out.nodes:
        scene.add_geometry(to_trimesh(v, f, mat), node_name=name, geom_name=name)
        objects[name] = {"room": room, "category": category}
        if name in out.yaw:
            objects[name]["yaw"] = out.yaw[name]
    t = config.wall_thickness / 2
    sidecar = {
        "format": SIDECAR_FORMAT,
        "up": "y",
        "rooms": [
            {
                "label": p.label,
                "polygon": rect_polygon(p.inner(t)),
                "floor": 0.0,
                "ceiling": float(config.wall_height),
            }
            for p in plans
        ],
        "objects": objects,
        "doors": [door_record(door, i, j, plans, config) for door, i, j in doors],
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
