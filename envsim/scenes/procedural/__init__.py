"""Procedural indoor houses in the spirit of ProcTHOR: rooms off a hallway, textured surfaces, furniture.

The package's public face: :func:`generate_house`, :func:`write_house`, :class:`ProceduralConfig`, :class:`House`;
the modules hold layout, geometry, textures, materials, structure, placement, furniture and furnishing.

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

from envsim.scenes.procedural.config import EXTRA_ROOMS, MANDATORY_ROOMS, ProceduralConfig
from envsim.scenes.procedural.geometry import Geo, Rect
from envsim.scenes.procedural.house import GENERATOR, House, generate_house, write_house
from envsim.scenes.procedural.nodes import Parts
from envsim.scenes.procedural.palette import RGB

__all__ = [
    "EXTRA_ROOMS",
    "GENERATOR",
    "MANDATORY_ROOMS",
    "RGB",
    "Geo",
    "House",
    "Parts",
    "ProceduralConfig",
    "Rect",
    "generate_house",
    "write_house",
]
